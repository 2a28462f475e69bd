"""Which code made a result: a hash over the handler's module and the helpers it uses, and the
distribution (and version) that ships it."""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from types import ModuleType
from typing import Any


def _source(module: ModuleType) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return module.__name__


def _helpers(module: ModuleType) -> list[ModuleType]:
    """The modules of the same top-level package whose names the handler's module uses."""
    top = module.__name__.split(".")[0]
    found: dict[str, ModuleType] = {}
    for value in vars(module).values():
        owner = value if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        name = owner.__name__ if isinstance(owner, ModuleType) else owner
        if not isinstance(name, str) or name.split(".")[0] != top or name == module.__name__:
            continue
        if (helper := sys.modules.get(name)) is not None:
            found[name] = helper
    return [found[k] for k in sorted(found)]


@functools.cache
def code_sha256(func: Callable[..., Any]) -> str:
    """sha256 over the handler's module source and its helpers' (read once per process: the
    code does not change under a running process). Where the module's source cannot be read
    (a handler typed into a notebook), the function's own source."""
    module = sys.modules.get(func.__module__)
    if module is None:
        try:
            texts = [inspect.getsource(func)]
        except (OSError, TypeError):
            texts = [f"{func.__module__}.{func.__qualname__}"]
    else:
        texts = [_source(module), *(f"\n# {m.__name__}\n{_source(m)}" for m in _helpers(module))]
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
    return digest.hexdigest()


@functools.cache
def distribution(module_name: str) -> str | None:
    """``name==version`` of the installed distribution that ships this module, if any."""
    top = module_name.split(".")[0]
    for dist in packages_distributions().get(top, []):
        try:
            return f"{dist}=={version(dist)}"
        except PackageNotFoundError:
            continue
    return None


@functools.cache
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths: tuple[str, ...]) -> str:
    """sha256 over the files' names and contents (each hashed once per process while its
    size and modification time stay the same)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        st = os.stat(path)
        digest.update(f"{path}\0{_file_sha256(path, st.st_mtime_ns, st.st_size)}\n".encode())
    return digest.hexdigest()
