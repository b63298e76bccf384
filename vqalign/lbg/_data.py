"""Training data access: arrays, memmaps and feature stores, streamed in blocks."""

from __future__ import annotations

import numbers

import numpy as np

from vqalign._validation import check_finite_block
from vqalign.exceptions import ParameterError

# rows per streamed block (13-D float32: 1M rows = 52 MB)
BLOCK_BYTES = 64 * 2**20


def as_training_data(X, *, name: str = "X"):
    """``(array, settings)`` from an array, a memmap or a feature store.

    A feature store is any object with an ``.X`` array attribute and a
    ``.settings`` dict (vqalign.io.store.open_store). Arrays in memory are
    checked for NaN/Inf here; memmaps are checked block by block as they are
    read (see :func:`iter_blocks`). Returns the float32 array (a memmap is not
    copied) and the settings dict (empty for plain arrays).
    """
    settings = {}
    if not isinstance(X, np.ndarray) and hasattr(X, "X") and hasattr(X, "settings"):
        settings = dict(X.settings or {})
        X = X.X
        name = f"{name} (feature store)"
    if isinstance(X, (list, tuple)):
        X = np.asarray(X)
    if not isinstance(X, np.ndarray):
        raise ParameterError(
            f"{name} must be a 2-D float array (n_frames, n_features), a numpy memmap or a "
            f"feature store (object with .X and .settings), got {type(X).__name__}"
        )
    if X.dtype.kind in "iub":
        raise ParameterError(
            f"{name} has integer/boolean dtype {X.dtype}; codebooks are learned on floating-"
            f"point features: convert with X.astype(np.float32)"
        )
    if X.dtype.kind != "f":
        raise ParameterError(f"{name} must hold floating-point features, got dtype {X.dtype}")
    if X.ndim != 2:
        hint = " (use X.reshape(-1, 1) for one feature)" if X.ndim == 1 else ""
        raise ParameterError(f"{name} must be 2-D (n_frames, n_features), got shape {X.shape}{hint}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ParameterError(f"{name} is empty (shape {X.shape}); there is nothing to quantize")
    if isinstance(X, np.memmap):
        if X.dtype != np.float32:
            raise ParameterError(
                f"{name} is a {X.dtype} memmap; codebooks stream float32 memmaps only "
                "(rewrite it as float32, e.g. with vqalign.io.store.write_store)"
            )
        return X, settings
    check_finite_block(X, name=name)
    return np.ascontiguousarray(X, dtype=np.float32), settings


def _mapped_at(X):
    """``(mmap, offset of X[0] in the mapping, offset of X[0] in the file)`` of a
    C-contiguous 2-D memmap or a row slice of one (None for anything else)."""
    mm = getattr(X, "_mmap", None)
    if (mm is None or not isinstance(X, np.memmap) or X.ndim != 2
            or not X.flags.c_contiguous or getattr(X, "filename", None) is None):
        return None
    import mmap

    in_map = X.ctypes.data - np.frombuffer(mm, np.uint8).ctypes.data
    off = int(getattr(X, "offset", 0))   # the mapping starts at the granule below it
    return mm, in_map, off - off % mmap.ALLOCATIONGRANULARITY + in_map


def release_pages(X, start: int = 0, stop: int | None = None) -> None:
    """Drop rows ``start:stop`` of a memmap from this process's resident memory (the
    file's pages stay in the OS cache): streaming a corpus-sized memmap then keeps RSS
    bounded instead of growing to the file's size. No-op for arrays in memory.

    Parameters
    ----------
    X : ndarray or numpy.memmap, shape (N, D)
        Rows being streamed.
    start, stop : int
        Row range to release (``stop`` None: to the end).
    """
    at = _mapped_at(X)
    if at is None or not hasattr(at[0], "madvise"):
        return
    import mmap

    mm, base, _ = at
    row = X.shape[1] * X.itemsize
    stop = X.shape[0] if stop is None else stop
    a = base + start * row
    a -= a % mmap.PAGESIZE
    b = min(base + stop * row, len(mm))
    if b > a:
        try:
            mm.madvise(mmap.MADV_DONTNEED, a, b - a)
        except (OSError, ValueError):
            pass


def take_rows(X, idx) -> np.ndarray:
    """``X[idx]`` (``idx`` sorted row indices) as a new float32 array.

    For a memmap the rows are read from its file, not through the mapping: touching
    scattered rows of a mapped file faults in their neighbours too (the kernel maps
    up to 16 pages around each fault), so 32768 rows spread over a 3.4 GB store
    made the process 2.2 GB resident. A sparse sample is read row by row with
    ``pread``; a dense one block by block.

    Parameters
    ----------
    X : ndarray or numpy.memmap, shape (N, D)
        The rows to sample from.
    idx : array of int, shape (n,)
        Sorted row indices.

    Returns
    -------
    ndarray, float32, shape (n, D)
        The rows, in a new array.
    """
    idx = np.asarray(idx, dtype=np.int64)
    at = _mapped_at(X)
    if at is None:
        return np.asarray(X[idx], dtype=np.float32)
    import os

    name, base = X.filename, at[2]
    N, D = X.shape
    row = D * X.itemsize
    out = np.empty((idx.size, D), dtype=X.dtype)
    if idx.size == 0:
        return out.astype(np.float32, copy=False)
    if idx.size * 64 < N:                         # sparse: one read per row
        fd = os.open(name, os.O_RDONLY)
        try:
            flat = out.reshape(-1).view(np.uint8)
            for j, i in enumerate(idx.tolist()):
                flat[j * row:(j + 1) * row] = np.frombuffer(os.pread(fd, row, base + i * row),
                                                            np.uint8)
        finally:
            os.close(fd)
    else:                                         # dense: stream blocks, keep the rows
        step = block_rows(D)
        j = 0
        for a in range(0, N, step):
            b = min(N, a + step)
            k = int(np.searchsorted(idx, b))
            if k > j:
                blk = np.fromfile(name, dtype=X.dtype, count=(b - a) * D,
                                  offset=base + a * row).reshape(b - a, D)
                out[j:k] = blk[idx[j:k] - a]
                j = k
    return out.astype(np.float32, copy=False)


def block_rows(n_features: int) -> int:
    return max(1024, BLOCK_BYTES // (4 * max(1, n_features)))


def iter_blocks(X, *, check: bool = False, name: str = "X"):
    """Yield ``(start, block)`` contiguous float32 blocks; memmap blocks are checked on request."""
    n = X.shape[0]
    step = block_rows(X.shape[1])
    for start in range(0, n, step):
        block = X[start:start + step]
        if isinstance(block, np.memmap):
            block = np.array(block)     # a copy: the mapped pages are released below
            release_pages(X, start, start + block.shape[0])
            if check:
                check_finite_block(block, name=name, offset=start)
        if not block.flags.c_contiguous:
            block = np.ascontiguousarray(block)
        yield start, block


def sample_rows(X, n: int, rng: np.random.Generator, *, name: str = "X") -> np.ndarray:
    """``n`` distinct random rows in random order (all rows, shuffled, if n >= N).

    Rows are read in sorted order (friendly to memmaps) then shuffled in memory,
    so every prefix of the result is itself a uniform random sample.
    """
    N = X.shape[0]
    if n >= N:
        idx = np.arange(N)
    else:
        idx = np.sort(rng.choice(N, size=n, replace=False))
    out = take_rows(X, idx)
    if isinstance(X, np.memmap):
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if bad.size:   # name the row of X, not of the sample
            check_finite_block(out[bad], name=name, offset=int(idx[bad[0]]))
    return out[rng.permutation(out.shape[0])]


def check_k(K, N: int, *, name: str = "K") -> int:
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        if isinstance(K, numbers.Real) and float(K).is_integer():
            K = int(K)
        else:
            raise ParameterError(f"{name} (number of codes) must be an integer, got {K!r}")
    K = int(K)
    if K < 1:
        raise ParameterError(f"{name}={K} codes requested; a codebook needs at least 1 code")
    if K > N:
        raise ParameterError(
            f"{name}={K} codes requested but X has only {N} rows; a codebook cannot have more "
            f"codes than training vectors: use {name} <= {N} or more data"
        )
    return K
