import numpy as np
import pytest

import keras_skel
from keras_skel.errors import ConfigError, DataError, ModelNotFoundError
from keras_skel.inference import KerasSkeletonizer, as_binary, load


def test_as_binary_rules():
    assert as_binary(np.array([[0, 1]], np.int64)).tolist() == [[False, True]]
    assert as_binary(np.array([[0, 1]], np.uint8)).tolist() == [[False, True]]
    assert as_binary(np.array([[127, 128]], np.uint8)).tolist() == [[False, True]]
    assert as_binary(np.array([[30000, 40000]], np.uint16)).tolist() == [[False, True]]
    assert as_binary(np.array([[0.2, 0.7]], np.float32)).tolist() == [[False, True]]
    assert as_binary(np.ones((3, 4, 1), bool)).shape == (3, 4)
    with pytest.raises(DataError, match="2-D"):
        as_binary(np.ones((2, 3, 4)))
    with pytest.raises(DataError, match="not a binary image"):
        as_binary(np.array([[0.0, 3.5]]))
    with pytest.raises(DataError, match="not a binary image"):
        as_binary(np.array([[0, 300]], np.int32))


def test_skeletonize_api_classical_matches_gt_rule():
    from keras_skel.data.targets import skeleton_target

    shape = np.zeros((40, 70), bool)
    shape[10:30, 5:65] = True
    out = keras_skel.skeletonize(shape)
    assert out.dtype == np.uint8 and out.shape == shape.shape
    np.testing.assert_array_equal(out, skeleton_target(shape))


def test_load_errors_are_specific(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load("nothing_here")
    with pytest.raises(ModelNotFoundError, match="is a folder but not a model"):
        load(tmp_path)
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    with pytest.raises(ModelNotFoundError, match="could not be loaded"):
        load(bad)


def test_keras_skeletonizer_any_size_uses_graph_thinning(tiny_run):
    from skimage.morphology import skeletonize

    model = load(tiny_run.run_dir)
    assert isinstance(model, KerasSkeletonizer)
    assert model.threshold == tiny_run.threshold
    shape = np.zeros((37, 53), bool)
    shape[5:30, 8:45] = True
    prob = model.probability(shape)
    assert prob.shape == (37, 53) and np.all((prob >= 0) & (prob <= 1))
    skel = model.skeletonize(shape)
    assert skel.shape == (37, 53) and skel.dtype == np.uint8
    # The graph post-processing equals threshold + scikit-image thinning.
    np.testing.assert_array_equal(skel, skeletonize(prob >= model.threshold).astype(np.uint8))
    # The API takes a loaded model, a run dir, or the .keras file.
    np.testing.assert_array_equal(keras_skel.skeletonize(shape, model=tiny_run.run_dir / "best.keras"), skel)


def test_canet_runs_large_inputs_as_tiles(tmp_path):
    """A CANet with attention at stage 1 has a small whole-input limit: larger images are tiled
    by the Keras and SavedModel paths (same result), and the exported graph refuses them."""
    import json

    import tensorflow as tf

    from keras_skel.config import load_config
    from keras_skel.data.synthetic import make_shape_sample
    from keras_skel.export import export_run
    from keras_skel.models.canet import canet_max_size
    from keras_skel.training import train

    cfg = load_config("canet_tiny", ["model.params.attention_stages=[1,2,3]", "train.epochs=1",
                                     "train.steps_per_epoch=1", "data.val_count=2"])
    train(cfg, tmp_path / "run", verbose=0)
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["max_size"] == canet_max_size((1, 2, 3), 3) == 128
    keras_model = load(tmp_path / "run")
    shape = make_shape_sample(2, 5, (200, 136), 2.0)[0]
    tiled = keras_model.predict(shape)
    assert tiled.skeleton.shape == shape.shape
    exported = export_run(tmp_path / "run", "att", root=tmp_path / "models")
    saved = load(exported.saved_model)
    assert saved.max_size == 128
    np.testing.assert_allclose(saved.predict(shape).probability, tiled.probability, atol=1e-5)
    raw = tf.saved_model.load(str(exported.saved_model)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="tiles"):
        raw(images=tf.zeros((1, 136, 64, 1)))
    with pytest.raises(ConfigError, match="tflite-size"):
        export_run(tmp_path / "run", "att2", root=tmp_path / "models", tflite=True, tflite_size=(256, 256))
