import pytest

from keras_skel.errors import ConfigError
from keras_skel.registry import DATASETS, LOSSES, MODELS, Registry


def test_builtins_are_registered():
    assert "unet" in MODELS.names()
    assert {"focal", "dice", "focal_dice"} <= set(LOSSES.names())
    assert {"synthetic_shapes", "folder"} <= set(DATASETS.names())


def test_unknown_model_name_lists_known():
    with pytest.raises(ConfigError, match="unknown model 'resnet'; known models: .*unet"):
        MODELS.get("resnet")


def test_build_rejects_unknown_parameter():
    with pytest.raises(ConfigError, match="model 'unet' has no parameter 'widht'; valid parameters: .*base_filters"):
        MODELS.build("unet", widht=3)


def test_duplicate_registration_is_an_error():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(lambda: 2)


def test_accepted_filters_arguments():
    args = DATASETS.accepted("synthetic_shapes", dict(image_size=(8, 8), seed=1, train_dir="x", noise=0.0))
    assert set(args) == {"image_size", "seed", "noise"}
