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


def _built_once(tmp_path_factory, name, build):
    """`build(folder)` of a session fixture, run once per test run rather than once per xdist
    worker: the first worker to ask builds it in a folder the workers share, under a file lock,
    and pickles the value; the others wait for the lock and read it. Without xdist (or without
    `fcntl`) it is built here as usual. The value must be read-only to the tests."""
    try:
        import fcntl
    except ImportError:  # not POSIX: each worker builds its own
        fcntl = None
    if os.environ.get("PYTEST_XDIST_WORKER") is None or fcntl is None:
        return build(tmp_path_factory.mktemp(name))
    import pickle
    import tempfile
    from pathlib import Path

    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, above the workers' own
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / f"{name}.pickle"
        if done.is_file():
            return pickle.loads(done.read_bytes())
        value = build(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=shared)))  # a failed try leaves its own folder
        done.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished training run of the `unet_tiny` recipe (a few seconds; one for all workers)."""
    from keras_skel.config import load_config
    from keras_skel.training import train

    return _built_once(tmp_path_factory, "tiny_run", lambda folder: train(
        load_config("unet_tiny"), folder / "tiny", verbose=0, command="pytest"))


@pytest.fixture(scope="session")
def exported_tiny(tiny_run, tmp_path_factory):
    """The tiny run exported as `<root>/tiny/1/` plus `<root>/tiny.tflite` (64×64; one for all
    workers)."""
    from keras_skel.export import export_run

    return _built_once(tmp_path_factory, "exported_tiny", lambda folder: export_run(
        tiny_run.run_dir, "tiny", root=folder, tflite=True, tflite_size=(64, 64), command="pytest"))


CANET_VARIANTS = ("single", "ensemble_tta", "shape_target", "denoiser")


@pytest.fixture(scope="session", params=CANET_VARIANTS)
def canet_exported(request, tmp_path_factory):
    """Tiny deep-supervised CANets trained briefly and exported (SavedModel + 64×64 TFLite):
    a single model whose map gates the ground-truth rule (the shipped post-processing); an
    ensemble of 2 (`train --folds 2`) exported with D4 TTA; a model that predicts the clean
    shape (input skip, spur pruning in the post-processing); the shape denoiser
    (`models/denoiser.py`, the same post-processing).

    Yields `(run_dir, tta, ExportResult)`: `load(run_dir, tta=tta)` is the Keras reference."""
    from keras_skel.config import load_config
    from keras_skel.ensemble import train_folds
    from keras_skel.export import export_run
    from keras_skel.training import train

    variant = request.param
    runs = tmp_path_factory.mktemp("runs")
    tta = variant == "ensemble_tta"
    if variant == "single":
        gated = ["eval.prune_length=10", "eval.gate_radius=2"]
        run_dir = train(load_config("canet_tiny", gated), runs / "canet", verbose=0).run_dir
    elif variant == "denoiser":  # the denoise-then-rule model: same post-processing as shape_target
        run_dir = train(load_config("denoiser_tiny"), runs / "denoiser", verbose=0).run_dir
    elif variant == "ensemble_tta":
        run_dir = runs / "folds"
        train_folds(load_config("canet_tiny", ["train.epochs=1"]), run_dir, 2, verbose=0)
    else:
        overrides = ["data.target=shape", "model.params.input_skip=true", "model.params.input_kind=shape_distance",
                     "loss.params.w_pos=0.5", "loss.params.w_neg=0.5", "train.optimizer=adam",
                     "train.learning_rate=0.001", "eval.prune_length=10"]
        run_dir = train(load_config("canet_tiny", overrides), runs / "shape", verbose=0).run_dir
    root = tmp_path_factory.mktemp("canet_models")
    return run_dir, tta, export_run(run_dir, "canet", root=root, tflite=True, tflite_size=(64, 64), tta=tta)
