"""A per-user cache of parsed data files, keyed by the file's digest.

Parsing the CMU Pronouncing Dictionary (135,000 lines) costs more than aligning a short
file; a process that starts cold reads the parsed form instead. Entries live in
``$VQALIGN_CACHE_DIR`` (default ``$XDG_CACHE_HOME/vqalign``, else ``~/.cache/vqalign``),
named by what they hold and the SHA-256 of the source file plus a format version, so an
edited or upgraded source file is parsed again and never meets a stale entry.
``VQALIGN_CACHE_DIR=off`` turns the cache off. A cache that cannot be read or written
(read-only home, full disk, a damaged entry) is passed over silently: the data are then
parsed as without it.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vqalign.io.atomic import atomic_write

OFF = ("off", "0", "none", "false")


def cache_dir() -> Path | None:
    """The cache folder, or None when ``VQALIGN_CACHE_DIR`` turns the cache off.

    Returns
    -------
    Path or None
    """
    env = os.environ.get("VQALIGN_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in OFF or not env.strip() else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vqalign"


def file_digest(path) -> str:
    """SHA-256 hex digest of a file's bytes.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached(kind: str, key: str, build: Callable[[], dict]) -> dict:
    """``build()``'s arrays, read from the cache when an entry for ``key`` exists.

    Parameters
    ----------
    kind : str
        What the entry holds (a file-name prefix), e.g. ``"cmudict"``.
    key : str
        Everything the result depends on: the source file's digest and the parser's
        format version.
    build : callable
        Returns a dict of NumPy arrays (no object arrays) when there is no usable entry;
        they are then written, as an uncompressed ``.npz``, for next time.

    Returns
    -------
    dict of str to ndarray
        What ``build()`` returns (or returned when the entry was written).
    """
    folder = cache_dir()
    if folder is None:
        return build()
    path = folder / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        pass
    value = build()
    try:
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **value)
    except OSError:
        pass
    return value
