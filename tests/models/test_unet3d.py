import keras
import numpy as np
import pytest

from keras_skel.models import build_unet, build_unet3d, probability_model
from keras_skel.registry import MODELS


def test_unet3d_shapes_softmax_and_save(tmp_path):
    model = build_unet3d(base_filters=4, depth=2, output_channels=3, output_activation="softmax")
    x = np.random.default_rng(0).normal(size=(2, 8, 12, 16, 1)).astype("float32")
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 8, 12, 16, 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras").predict(x, verbose=0), y, atol=1e-6)
    assert MODELS.get("unet3d") is build_unet3d


@pytest.mark.parametrize("builder,shape", [(build_unet, (1, 16, 16, 1)), (build_unet3d, (1, 8, 8, 8, 1))])
def test_deep_supervision_outputs_and_probability_view(builder, shape):
    kwargs = dict(base_filters=4, depth=3, output_channels=4, output_activation="softmax", deep_supervision=True)
    if builder is build_unet:
        kwargs["decoder_convs"] = 1
    model = builder(**kwargs)
    out = model(np.zeros(shape, "float32"))
    spatial = shape[1:-1]
    assert sorted(out) == ["probability", "side_1", "side_2"]
    assert tuple(out["side_2"].shape[1:-1]) == tuple(s // 4 for s in spatial)
    single = probability_model(model)
    assert tuple(single(np.zeros(shape, "float32")).shape) == shape[:-1] + (4,)


def test_unet_softmax_multiclass_sums_to_one():
    model = build_unet(base_filters=4, depth=2, decoder_convs=1, output_channels=4, output_activation="softmax")
    y = model.predict(np.random.default_rng(1).normal(size=(1, 16, 16, 1)).astype("float32"), verbose=0)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(output_activation="relu"), "output_activation"),
    (dict(output_channels=1, output_activation="softmax"), ">= 2 for softmax"),
    (dict(depth=0), "depth"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_unet3d(**kwargs)
