"""One test harness for every public layer and loss (after keras-hub's `run_layer_test`).

Checks: config round-trip, every `__init__` argument present in `get_config`, symbolic and
eager output shapes, one training step that changes the weights, and `.keras` save/load giving
identical outputs.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np


def _init_args(cls) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def run_layer_test(cls, init_kwargs: dict, input_shape: tuple, expected_output_shape: tuple, tmp_path) -> None:
    layer = cls(**init_kwargs)
    config = layer.get_config()
    for name in _init_args(cls):
        assert name in config, f"{cls.__name__}.get_config() lacks init argument {name!r}"
    for key, value in init_kwargs.items():
        assert config[key] == value, f"{key}: {config[key]!r} != {value!r}"
    clone = cls.from_config(config)
    assert clone.get_config() == config

    # Symbolic shape (batch and spatial dims unknown where the test says None).
    symbolic = keras.Input(shape=input_shape[1:], batch_size=input_shape[0])
    out = layer(symbolic)
    assert tuple(out.shape) == tuple(expected_output_shape), (out.shape, expected_output_shape)

    # Eager shape on concrete data.
    concrete = tuple(4 if d is None else d for d in input_shape)
    data = np.random.default_rng(0).normal(size=concrete).astype("float32")
    eager = layer(data)
    expected = tuple(c if e is None else e for c, e in zip(concrete, expected_output_shape))
    assert tuple(eager.shape) == expected

    # One training step moves the trainable weights.
    inputs = keras.Input(shape=concrete[1:])
    model = keras.Model(inputs, cls(**init_kwargs)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    target = np.random.default_rng(1).normal(size=expected).astype("float32")
    model.fit(data, target, epochs=1, batch_size=concrete[0], verbose=0)
    after = [w.numpy() for w in model.trainable_weights]
    assert before, "layer has no trainable weights"
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), "training step changed nothing"

    # .keras round-trip.
    path = tmp_path / f"{cls.__name__}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6)


def run_loss_test(cls, init_kwargs: dict, tmp_path, shape=(2, 8, 8, 1)) -> None:
    loss = cls(**init_kwargs)
    config = loss.get_config()
    for name in _init_args(cls):
        assert name in config, f"{cls.__name__}.get_config() lacks init argument {name!r}"
    clone = cls.from_config(config)
    assert clone.get_config() == config

    rng = np.random.default_rng(0)
    y_true = (rng.random(shape) > 0.8).astype("float32")
    y_pred = rng.uniform(0.05, 0.95, size=shape).astype("float32")
    value = loss(y_true, y_pred)
    assert tuple(value.shape) == () and np.isfinite(float(value))
    # Symbolic: traced with unknown batch and spatial sizes.
    import tensorflow as tf

    spec = tf.TensorSpec([None] * (len(shape) - 1) + [shape[-1]], tf.float32)
    traced = tf.function(lambda a, b: loss(a, b), input_signature=[spec, spec]).get_concrete_function()
    assert traced.structured_outputs.shape.rank == 0

    # One training step with the loss lowers it on that batch.
    inputs = keras.Input(shape=shape[1:])
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    x = rng.normal(size=shape).astype("float32")
    first = model.evaluate(x, y_true, verbose=0)
    model.fit(x, y_true, epochs=5, batch_size=shape[0], verbose=0)
    assert model.evaluate(x, y_true, verbose=0) < first

    path = tmp_path / f"model_with_{cls.__name__}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.loss.get_config() == model.loss.get_config()


REPO = Path(__file__).resolve().parents[1]


TOOLS = Path(__file__).resolve().parent.parent / "tools"


def load_tool(name: str):
    """The module of `tools/NAME.py` (the tools are scripts, not an installed package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(code: str, timeout: float) -> subprocess.CompletedProcess:
    """Runs `code` (dedented) in a fresh Python with the checkout importable; for what must be
    seen from a new process (lazy imports, a clean interpreter exit)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def unknown_ops(saved_model_dir) -> tuple[list[str], set[str]]:
    """`(ops stock TensorFlow does not register, all ops)` of a SavedModel's graphs and functions."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops = set()
    for meta in proto.meta_graphs:
        ops.update(node.op for node in meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            ops.update(node.op for node in fn.node_def)
    functions = {fn.signature.name for meta in proto.meta_graphs for fn in meta.graph_def.library.function}
    return sorted(op for op in ops if op not in functions and op_def_registry.get(op) is None), ops
