"""keras-skel: learned skeleton extraction with TensorFlow / Keras 3.

The Python API (TensorFlow is imported on first use, not at package import)::

    import keras_skel
    skeleton = keras_skel.skeletonize(mask)                    # classical baseline
    model = keras_skel.load("unet_shapes")                     # shipped; or a run dir, .keras,
                                                               # SavedModel, .tflite, REST URL
    skeleton = keras_skel.skeletonize(mask, model=model)
    result = keras_skel.train(keras_skel.load_config("unet_shapes"), "runs/unet")
    report = keras_skel.evaluate(model, "data/test")
    keras_skel.export_run("runs/unet", "my_model", tflite=True)  # saved_models/my_model/1/
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["skeletonize", "load", "train", "evaluate", "export_run", "load_config", "__version__"]

_LAZY = {
    "skeletonize": ("keras_skel.inference", "skeletonize"),
    "load": ("keras_skel.inference", "load"),
    "train": ("keras_skel.training", "train"),
    "evaluate": ("keras_skel.evaluation", "evaluate"),
    "load_config": ("keras_skel.config", "load_config"),
    "export_run": ("keras_skel.export.saved_model", "export_run"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'keras_skel' has no attribute {name!r}")
