"""Name → builder tables for models, losses and datasets.

Builders register themselves with a decorator where they are defined, so adding a model is one
new file and no edit to a dispatch chain::

    @MODELS.register("unet")
    def build_unet(...): ...

`MODELS.get("unet")` returns the builder; an unknown name raises `ConfigError` listing the
known ones. The tables are filled when the modules that define builders are imported;
`ensure_builtins()` imports them (lazily, because they import TensorFlow).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from keras_skel.errors import ConfigError

__all__ = ["Registry", "MODELS", "LOSSES", "DATASETS", "ensure_builtins"]

# Modules whose import registers the built-in builders.
_BUILTIN_MODULES = (
    "keras_skel.models",
    "keras_skel.losses",
    "keras_skel.data.datasets",
)


class Registry:
    """A named table of builders.

    Args:
        kind: what the table holds ("model", "loss", ...); used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that adds a builder under `name` (names are unique)."""

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name] is not fn:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        """Returns the builder registered as `name`; `ConfigError` lists the known names."""
        ensure_builtins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}") from None

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Calls the builder `name` with `kwargs`, rejecting arguments it does not take.

        Raises:
            ConfigError: unknown name, or a keyword the builder does not accept (the message
                lists the ones it does).
        """
        fn = self.get(name)
        params = inspect.signature(fn).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            unknown = sorted(set(kwargs) - set(valid))
            if unknown:
                raise ConfigError(
                    f"{self.kind} {name!r} has no parameter {unknown[0]!r}; valid parameters: "
                    f"{', '.join(valid)}"
                )
        return fn(**kwargs)

    def accepted(self, name: str, available: dict[str, Any]) -> dict[str, Any]:
        """The subset of `available` keyword arguments that builder `name` takes."""
        params = inspect.signature(self.get(name)).parameters
        return {k: v for k, v in available.items() if k in params}

    def names(self) -> list[str]:
        ensure_builtins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        ensure_builtins()
        return name in self._entries


MODELS = Registry("model")
LOSSES = Registry("loss")
DATASETS = Registry("dataset")


def ensure_builtins() -> None:
    """Imports the modules that register the built-in builders (idempotent)."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
