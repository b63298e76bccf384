"""Atomic file writes: nothing a user had is lost if a run dies half-way."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from vqalign.exceptions import ParameterError


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", *, overwrite: bool = True, encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    With ``overwrite=False`` an existing ``path`` raises :class:`ParameterError`
    before anything is written.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise ParameterError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file owner-only; give it the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
