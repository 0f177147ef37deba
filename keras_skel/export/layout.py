"""Where exports go and how they appear: TF Serving's `<root>/<name>/<version>/` layout,
written atomically (temp dir + rename) and never over an existing version unless forced."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from keras_skel.errors import ConfigError

__all__ = ["versions", "next_version", "atomic_directory", "atomic_file", "validate_name"]

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_NAME = re.compile(f"^{NAME_PATTERN}$")


def validate_name(name: str) -> str:
    """Model names become folder names, file stems and URL parts: letters, digits, `_`, `-`
    (no `.`, which would read as a file suffix when a model is looked up by name)."""
    if not _NAME.match(name or ""):
        raise ConfigError(f"model name {name!r} must start with a letter or digit and use only "
                          "letters, digits, '_' and '-'")
    return name


def versions(model_dir: str | Path) -> list[int]:
    """The numeric version folders under `model_dir`, ascending (TF Serving ignores others)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | Path) -> int:
    existing = versions(model_dir)
    return existing[-1] + 1 if existing else 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publishable(path: Path) -> None:
    """Gives a temp file / dir the permissions a normal one would get (mkstemp and mkdtemp make
    them owner-only, which a TF Serving container running as another user could not read)."""
    mask = _umask()
    if path.is_dir():
        for root, dirs, _ in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777 & ~mask)
        os.chmod(path, 0o777 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


@contextmanager
def atomic_directory(target: str | Path, force: bool = False) -> Iterator[Path]:
    """Yields a temp dir beside `target`; on success it is renamed to `target` in one step.

    On an exception the temp dir is removed and `target` is untouched. An existing `target`
    is refused unless `force`, in which case it is replaced only after the new one is complete.
    """
    target = Path(target)
    if target.exists() and not force:
        raise ConfigError(f"{target} exists already; pass --force to replace it or choose another --version")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A dot-name is not a number, so TF Serving never loads a half-written version.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        yield tmp
        _publishable(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=target.parent))
            os.rename(target, old / target.name)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: str | Path, force: bool = False) -> Iterator[Path]:
    """Yields a temp file path beside `target`, moved onto `target` (`os.replace`) on success."""
    target = Path(target)
    if target.exists() and not force:
        raise ConfigError(f"{target} exists already; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publishable(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
