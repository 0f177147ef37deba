import keras
import numpy as np
import pytest

from keras_skel.models import build_unet, unet_stride


def test_unet_shapes_and_named_features():
    model = build_unet(base_filters=4, depth=3, decoder_convs=1)
    out = model(np.zeros((2, 48, 40, 1), "float32"))
    assert tuple(out.shape) == (2, 48, 40, 1)
    assert np.all((0 <= out) & (out <= 1))
    for name in ("enc0_out", "enc2_out", "bottleneck_out", "dec0_out", "probability"):
        assert model.get_layer(name) is not None
    assert unet_stride(3) == 8


def test_unet_paper_structure():
    model = build_unet()  # paper defaults: 5 stages, 4 decoder convs
    pools = [l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)]
    assert len(pools) == 5
    decoder_convs = [l for l in model.layers if l.name.startswith("dec0_") and l.name.endswith("_conv")]
    assert len(decoder_convs) == 4
    bottleneck = [model.get_layer("bottleneck_conv1"), model.get_layer("bottleneck_conv2")]
    assert all(l.kernel_size == (1, 1) and l.activation.__name__ == "relu" for l in bottleneck)


def test_unet_mixed_precision_output_is_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(base_filters=4, depth=2, decoder_convs=1)
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_unet_save_load_round_trip(tmp_path):
    model = build_unet(base_filters=4, depth=2, decoder_convs=1, input_channels=2)
    x = np.random.default_rng(0).random((1, 16, 16, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)


def test_unet_rejects_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        build_unet(depth=0)
