"""Serving over TensorFlow Serving's REST API.

- `keras_skel.serving.server`: an embedded server speaking that API (`keras-skel serve`),
  for machines without TF Serving; `make_app`, `serve`, `start_server`.
- `keras_skel.serving.client`: `RestClient` (status, metadata, predict) and
  `RestSkeletonizer`, what `keras_skel.load("http://host:8501/v1/models/NAME")` returns.
- `keras_skel.serving.rest`: the JSON ↔ tensor encoding both sides share (row and columnar
  formats, `{"b64": ...}` bytes).

The names below are imported on first use, so importing this package loads neither Flask nor
TensorFlow.

Example:
    >>> from keras_skel.serving import RestClient  # doctest: +SKIP
    >>> RestClient("http://localhost:8501/v1/models/unet_shapes").status()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["make_app", "serve", "start_server", "ServerHandle", "RestClient", "RestSkeletonizer",
           "ServingError", "RestError"]

_WHERE = {
    "make_app": "server",
    "serve": "server",
    "start_server": "server",
    "ServerHandle": "server",
    "RestClient": "client",
    "RestSkeletonizer": "client",
    "ServingError": "client",
    "RestError": "rest",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'keras_skel.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(f"keras_skel.serving.{_WHERE[name]}"), name)
