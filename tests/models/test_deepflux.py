import keras
import numpy as np
import pytest

from keras_skel.errors import ConfigError
from keras_skel.inference import infer_stride
from keras_skel.models import build_deepflux, deepflux_stride

TINY = dict(backbone="light", width=4, blocks=(1, 1, 1, 1), aspp_filters=4, fusion_filters=4, head_filters=8)


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (37, 50)])
def test_light_model_any_size(size):
    model = build_deepflux(**TINY)
    out = model(np.random.default_rng(0).random((2, *size, 3)).astype(np.float32))
    assert tuple(out.shape) == (2, *size, 2)
    assert infer_stride(model) == deepflux_stride() == 16


def test_paper_structure_names():
    model = build_deepflux(**TINY)
    names = {layer.name for layer in model.layers}
    assert {"aspp", "fuse_conv3", "fuse_conv4", "fuse_conv5", "fuse_aspp", "fusion", "flux"} <= names
    assert model.get_layer("aspp").rates == (2, 4, 8, 16)
    # The fusion happens at conv3 resolution (stride 4).
    fusion = keras.Model(model.input, model.get_layer("fusion").output)
    assert tuple(fusion(np.zeros((1, 64, 64, 3), np.float32)).shape)[1:3] == (16, 16)


def test_ablations_and_binary_head():
    no_aspp = build_deepflux(**TINY, aspp=False)
    assert "aspp" not in {layer.name for layer in no_aspp.layers}
    binary = build_deepflux(**TINY, output="binary")
    out = keras.ops.convert_to_numpy(binary(np.zeros((1, 32, 32, 3), np.float32)))
    assert out.shape == (1, 32, 32, 1) and (out > 0).all() and (out < 1).all()
    assert binary.output.name.startswith("probability") or binary.layers[-1].name == "probability"


def test_vgg16_backbone_and_local_weights(tmp_path):
    model = build_deepflux(backbone="vgg16", aspp_filters=8, fusion_filters=8, head_filters=8)
    assert tuple(model(np.zeros((1, 32, 32, 3), np.float32)).shape) == (1, 32, 32, 2)
    assert infer_stride(model) == 16  # the pools sit inside the nested VGG16 model
    vgg = model.get_layer("vgg16")
    assert vgg.get_layer("block5_conv3") is not None and "block5_pool" not in [layer.name for layer in vgg.layers]
    # Weights in Keras' VGG16 "notop" layout, saved locally, load by layer name.
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    loaded = build_deepflux(backbone="vgg16", aspp_filters=8, fusion_filters=8, head_filters=8,
                            backbone_weights=str(path)).get_layer("vgg16")
    np.testing.assert_array_equal(loaded.get_layer("block4_conv3").get_weights()[0],
                                  source.get_layer("block4_conv3").get_weights()[0])
    # The BGR-trained first convolution is turned into an RGB one.
    np.testing.assert_array_equal(loaded.get_layer("block1_conv1").get_weights()[0],
                                  source.get_layer("block1_conv1").get_weights()[0][:, :, ::-1, :])


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="unknown DeepFlux backbone"):
        build_deepflux(backbone="resnet")
    with pytest.raises(ConfigError, match="unknown DeepFlux output"):
        build_deepflux(**TINY, output="mask")
    with pytest.raises(ConfigError, match="do not exist"):
        build_deepflux(backbone="vgg16", backbone_weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ConfigError, match="light backbone trains from scratch"):
        build_deepflux(**TINY, backbone_weights="x.h5")
    with pytest.raises(ConfigError, match="RGB input"):
        build_deepflux(backbone="vgg16", input_channels=1)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="could not load backbone weights"):
        build_deepflux(backbone="vgg16", backbone_weights=str(tmp_path / "junk.h5"))


def test_save_and_reload(tmp_path):
    model = build_deepflux(**TINY)
    x = np.random.default_rng(1).random((1, 32, 48, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
