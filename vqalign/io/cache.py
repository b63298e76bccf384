"""A per-user cache of parsed data files, keyed by the file's digest.

Parsing the CMU Pronouncing Dictionary (135,000 lines) costs more than aligning a short
file; a process that starts cold reads the parsed form instead. Entries live in
``$VQALIGN_CACHE_DIR`` (default ``$XDG_CACHE_HOME/vqalign``, else ``~/.cache/vqalign``),
named by what they hold and the SHA-256 of the source file plus a format version, so an
edited or upgraded source file is parsed again and never meets a stale entry. Entries are
uncompressed ``.npz`` files whose arrays are memory-mapped when read: a process that looks
up a few dozen words touches a few pages of them, not 6 MB. A file's digest is
remembered beside the entries under its path, size, inode and change times (as git's
index does), so an unchanged 3.6 MB dictionary is not hashed again by every process.
``VQALIGN_CACHE_DIR=off`` turns the cache off. A cache that cannot be read or written
(read-only home, full disk, a damaged entry) is passed over silently: the data are then
parsed as without it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
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


#: a file changed less than this long ago (ns) is hashed every time: two writes within
#: one tick of the file system's clock can leave size and times unchanged ("racy git")
RACY_NS = 2_000_000_000


def file_digest(path) -> str:
    """SHA-256 hex digest of a file's bytes.

    The digest is remembered in the cache folder (``digests/``) under the file's path,
    size, inode, device and modification and change times; a file whose stat is
    unchanged is not read again. Files changed within the last :data:`RACY_NS` are
    always hashed.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        64 hex digits.
    """
    st = os.stat(path)
    folder = cache_dir()
    memo = None
    if folder is not None and time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
        ident = (f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
                 f"\0{st.st_ino}\0{st.st_dev}")
        memo = folder / "digests" / hashlib.sha256(ident.encode()).hexdigest()[:32]
        try:
            digest = memo.read_text(encoding="ascii")
            if len(digest) == 64:
                return digest
        except (OSError, UnicodeDecodeError):
            pass
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if memo is not None:
        try:
            with atomic_write(memo, "w", encoding="ascii") as fh:
                fh.write(digest)
        except OSError:
            pass
    return digest


def _read_npz_mapped(path) -> dict:
    """The arrays of an ``.npz`` file, memory-mapped read-only where a member is stored
    uncompressed (as ``np.savez`` writes it), otherwise read."""
    with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
        return {(info.filename[:-4] if info.filename.endswith(".npy") else info.filename):
                _npz_member(zf, raw, info, path) for info in zf.infolist()}


def _npz_member(zf, raw, info, path) -> np.ndarray:
    fmt = np.lib.format
    if info.compress_type == zipfile.ZIP_STORED:
        raw.seek(info.header_offset)
        head = raw.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"{path}: bad local header for {info.filename}")
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        start = info.header_offset + 30 + n_name + n_extra
        raw.seek(start)
        version = fmt.read_magic(raw)
        if version in ((1, 0), (2, 0)):
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else \
                fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(raw)
            offset = raw.tell()
            n_bytes = dtype.itemsize * int(np.prod(shape))
            if dtype.hasobject:
                raise ValueError(f"{path}: {info.filename} holds Python objects")
            if offset - start + n_bytes > info.file_size:
                raise ValueError(f"{path}: {info.filename} is truncated")
            if n_bytes == 0:
                return np.zeros(shape, dtype)
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C").view(np.ndarray)
    with zf.open(info) as fh:
        return fmt.read_array(fh, allow_pickle=False)


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
        What ``build()`` returns (or returned when the entry was written); arrays read
        from an entry are read-only memory maps.
    """
    folder = cache_dir()
    if folder is None:
        return build()
    path = folder / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    try:
        return _read_npz_mapped(path)
    except (OSError, EOFError, ValueError, KeyError, struct.error, zipfile.BadZipFile):
        pass
    value = build()
    try:
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **value)
    except OSError:
        pass
    return value
