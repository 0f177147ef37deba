import pytest

from keras_skel.config import (
    Config,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    recipe_names,
)
from keras_skel.errors import ConfigError


def test_shipped_recipes_load():
    names = recipe_names()
    assert {"unet_shapes", "unet_paper", "unet_tiny"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert isinstance(cfg, Config)


def test_recipe_by_path_equals_by_name(tmp_path):
    from importlib import resources

    text = (resources.files("keras_skel") / "configs" / "unet_tiny.yaml").read_text()
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    assert load_config(str(path)) == load_config("unet_tiny")


def test_overrides_are_parsed_as_yaml():
    cfg = load_config("unet_tiny", ["train.epochs=7", "train.learning_rate=0.02", "data.image_size=[32, 32]",
                                    "model.params.base_filters=4", "train.max_minutes=null"])
    assert cfg.train.epochs == 7
    assert cfg.train.learning_rate == 0.02
    assert cfg.data.image_size == (32, 32)
    assert cfg.model.params["base_filters"] == 4
    assert cfg.train.max_minutes is None


def test_config_is_frozen():
    cfg = load_config("unet_tiny")
    with pytest.raises(Exception):
        cfg.train.epochs = 3


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config("unet_tiny", ["train.epocs=3"])
    message = str(err.value)
    assert "train.epocs" in message and "did you mean 'epochs'" in message
    assert "steps_per_epoch" in message  # the list of valid keys


def test_unknown_section_lists_valid_sections():
    with pytest.raises(ConfigError, match="valid keys under the top level: task, seed, data"):
        config_from_dict({"trian": {}})


def test_wrong_type_and_choice_are_rejected():
    with pytest.raises(ConfigError, match="train.epochs must be an integer"):
        load_config("unet_tiny", ["train.epochs=many"])
    with pytest.raises(ConfigError, match="train.optimizer = 'rmsprop' is not one of adam, adamw, sgd"):
        load_config("unet_tiny", ["train.optimizer=rmsprop"])
    with pytest.raises(ConfigError, match="data.image_size must have 2 entries"):
        load_config("unet_tiny", ["data.image_size=[1, 2, 3]"])


def test_unknown_recipe_lists_shipped_ones():
    with pytest.raises(ConfigError, match="shipped recipes: .*unet_shapes"):
        load_config("no_such_recipe")


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nowhere/recipe.yaml")


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.epochs"])


def test_round_trip_through_dict():
    cfg = load_config("unet_shapes")
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("override,message", [
    ("eval.thresholds=[]", "eval.thresholds"),
    ("eval.thresholds=[1.5]", "eval.thresholds"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.image_size=[64, 48]", "square"),
    ("train.epochs=0", "train.epochs"),
    ("train.init_member=1", "train.init_member picks a member"),
])
def test_values_that_would_fail_late_are_rejected_early(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("unet_tiny", [override])
