import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    """A small synthetic noisy dataset folder (12 shapes, 64×64)."""
    from keras_skel.data.synthetic import write_shapes_dataset

    root = tmp_path_factory.mktemp("shapes")
    write_shapes_dataset(root, 12, (64, 64), seed=7, noise=1.0, progress=False)
    return root


@pytest.fixture(scope="session")
def clean_shapes_dir(tmp_path_factory):
    """The same kind of folder without boundary noise."""
    from keras_skel.data.synthetic import write_shapes_dataset

    root = tmp_path_factory.mktemp("clean_shapes")
    write_shapes_dataset(root, 12, (64, 64), seed=7, noise=0.0, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished training run of the `unet_tiny` recipe (a few seconds)."""
    from keras_skel.config import load_config
    from keras_skel.training import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = train(load_config("unet_tiny"), run_dir, verbose=0, command="pytest")
    return result


@pytest.fixture(scope="session")
def exported_tiny(tiny_run, tmp_path_factory):
    """The tiny run exported as `<root>/tiny/1/` plus `<root>/tiny.tflite` (64×64)."""
    from keras_skel.export import export_run

    root = tmp_path_factory.mktemp("saved_models")
    return export_run(tiny_run.run_dir, "tiny", root=root, tflite=True, tflite_size=(64, 64), command="pytest")


@pytest.fixture(scope="session")
def canet_exported(tmp_path_factory):
    """A tiny deep-supervised CANet trained briefly and exported (SavedModel + 64×64 TFLite)."""
    from keras_skel.config import load_config
    from keras_skel.export import export_run
    from keras_skel.training import train

    run = train(load_config("canet_tiny"), tmp_path_factory.mktemp("runs") / "canet", verbose=0)
    root = tmp_path_factory.mktemp("canet_models")
    return run, export_run(run.run_dir, "canet", root=root, tflite=True, tflite_size=(64, 64))
