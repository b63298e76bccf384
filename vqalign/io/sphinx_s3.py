"""The s3 binary files of a CMU Sphinx model: Gaussian codebooks (``means``,
``variances``), mixture weights (``mixture_weights`` or the quantized ``sendump``) and
transition matrices, read and written.

An s3 file is a text header (``s3`` ... ``endhdr``), the byte-order magic ``0x11223344``,
int32 dimensions, an int32 element count and float32 data, and a uint32 checksum when the
header says ``chksum0``. :mod:`vqalign.io.sphinx` (which re-exports these names) reads
the rest of a model directory and loads whole models.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.features.sphinx import MODEL_FILES

BYTE_ORDER_MAGIC = 0x11223344
#: natural-log value of one unit of a quantized sendump entry (log base 1.0001, >> 10)
LOG_SENDUMP_UNIT = 1024.0 * math.log(1.0001)
MAX_NEG_MIXW = 159


def _err(path, what: str) -> ParameterError:
    return ParameterError(f"Sphinx model file {path}: {what}")


def _read_bytes(path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"Sphinx model file {path} does not exist; a Sphinx model "
                             f"directory needs {MODEL_FILES}")
    return path.read_bytes()


# --------------------------------------------------------------------------- s3 binary

def s3_checksum(values: np.ndarray, chksum: int = 0) -> int:
    """Sphinx's running checksum over 4-byte elements: ``(c << 20 | c >> 12) + v`` mod 2^32."""
    v = np.ascontiguousarray(values).view(np.uint32).ravel()
    c = int(chksum) & 0xFFFFFFFF
    # vectorized in chunks: the recurrence is sequential, so loop in Python over a
    # uint64 array in blocks (the files are < 1 M elements)
    for x in v.tolist():
        c = (((c << 20) | (c >> 12)) + x) & 0xFFFFFFFF
    return c


@dataclass
class _S3:
    header: dict
    data: bytes
    pos: int
    endian: str          # "<" or ">"
    path: Path
    chksum: int = 0
    has_chksum: bool = False
    #: the file's bytes were verified before (a marker keyed by their SHA-256): the
    #: checksum at the end is skipped, not recomputed
    verified: str | None = None

    def ints(self, n: int) -> np.ndarray:
        return self._take(np.dtype(self.endian + "i4"), n, "int32 header fields")

    def floats(self, n: int) -> np.ndarray:
        return self._take(np.dtype(self.endian + "f4"), n, "float32 data")

    def _take(self, dt, n, what):
        nbytes = dt.itemsize * n
        if n < 0 or self.pos + nbytes > len(self.data):
            have = (len(self.data) - self.pos) // dt.itemsize
            raise _err(self.path, f"is truncated: expected {n} {what} at byte {self.pos}, "
                                  f"found {max(have, 0)}; the file is damaged or incomplete")
        a = np.frombuffer(self.data, dtype=dt, count=n, offset=self.pos)
        self.pos += nbytes
        a = a.astype(dt.newbyteorder("="))
        if self.has_chksum:
            self.chksum = s3_checksum(a, self.chksum)
        return a

    def finish(self):
        if self.has_chksum or self.verified:
            if self.pos + 4 > len(self.data):
                raise _err(self.path, "is truncated: the checksum at the end is missing")
            stored = int(np.frombuffer(self.data, dtype=self.endian + "u4", count=1,
                                       offset=self.pos)[0])
            self.pos += 4
            if self.has_chksum and stored != self.chksum:
                raise _err(self.path, f"checksum mismatch (file says {stored:08x}, data gives "
                                      f"{self.chksum:08x}); the file is damaged")
        if self.pos != len(self.data):
            raise _err(self.path, f"has {len(self.data) - self.pos} bytes after the end of "
                                  "its data; it is not the file its header describes")
        if self.has_chksum:
            _mark_verified(self.data)


def _verified_marker(data: bytes):
    """The cache file that says these exact bytes passed their checksum, or None."""
    import hashlib

    from vqalign.io.cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    return folder / "s3-verified" / hashlib.sha256(data).hexdigest()


def _mark_verified(data: bytes) -> None:
    marker = _verified_marker(data)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass


def _open_s3(path) -> _S3:
    path = Path(path)
    data = _read_bytes(path)
    if not data.startswith(b"s3\n"):
        raise _err(path, "is not an s3 binary file (it does not start with 's3'); "
                         "expected a Sphinx means/variances/mixture_weights/"
                         "transition_matrices file")
    end = data.find(b"endhdr\n")
    if end < 0:
        raise _err(path, "has no 'endhdr' line: the header is truncated")
    header = {}
    for line in data[3:end].decode("latin-1").splitlines():
        f = line.split()
        if len(f) >= 2 and not f[0].startswith("#"):
            header[f[0]] = f[1]
    pos = end + len(b"endhdr\n")
    if pos + 4 > len(data):
        raise _err(path, "is truncated after its header (no byte-order marker)")
    magic_le = int(np.frombuffer(data, "<u4", 1, pos)[0])
    if magic_le == BYTE_ORDER_MAGIC:
        endian = "<"
    elif int(np.frombuffer(data, ">u4", 1, pos)[0]) == BYTE_ORDER_MAGIC:
        endian = ">"
    else:
        raise _err(path, f"has a bad byte-order marker {magic_le:08x} (expected 11223344)")
    chk = "chksum0" in header
    # Sphinx's checksum is a sequential recurrence (a Python loop over every element: 0.1-0.3
    # s for the en-us model); bytes that passed it once are not checked again
    marker = _verified_marker(data) if chk else None
    seen = marker is not None and marker.is_file()
    return _S3(header, data, pos + 4, endian, path, has_chksum=chk and not seen,
               verified=str(marker) if seen else None)


def read_gauden(path) -> list[np.ndarray]:
    """Means or variances: one float32 array ``(n_mgau, n_density, veclen)`` per stream."""
    s = _open_s3(path)
    n_mgau, n_feat, n_density = (int(v) for v in s.ints(3))
    if min(n_mgau, n_feat, n_density) <= 0 or n_feat > 64:
        raise _err(path, f"has implausible sizes n_mgau={n_mgau} n_feat={n_feat} "
                         f"n_density={n_density}")
    veclen = [int(v) for v in s.ints(n_feat)]
    (n,) = (int(v) for v in s.ints(1))
    if n != n_mgau * n_density * sum(veclen):
        raise _err(path, f"holds {n} values but its header gives {n_mgau} x {n_density} x "
                         f"{sum(veclen)}")
    flat = s.floats(n)
    s.finish()
    out, off = [], 0
    # layout: for each mgau, for each stream, n_density x veclen[f]
    per_mgau = n_density * sum(veclen)
    arr = flat.reshape(n_mgau, per_mgau)
    for L in veclen:
        out.append(np.ascontiguousarray(
            arr[:, off:off + n_density * L].reshape(n_mgau, n_density, L)))
        off += n_density * L
    return out


def read_mixture_weights(path, *, floor: float = 1e-7) -> np.ndarray:
    """Float s3 mixture weights normalized and floored: ``(n_sen, n_feat, n_density)`` float32."""
    s = _open_s3(path)
    n_sen, n_feat, n_comp, n = (int(v) for v in s.ints(4))
    if n != n_sen * n_feat * n_comp or min(n_sen, n_feat, n_comp) <= 0:
        raise _err(path, f"holds {n} values but its header gives {n_sen} x {n_feat} x {n_comp}")
    w = s.floats(n).reshape(n_sen, n_feat, n_comp)
    s.finish()
    return normalize_mixture_weights(w, floor=floor)


def normalize_mixture_weights(w, *, floor: float = 1e-7) -> np.ndarray:
    """What :func:`read_mixture_weights` makes of raw weights ``(..., n_density)``: each
    distribution normalized (uniform if it sums to 0), floored at ``floor``, normalized
    again; float32."""
    w = np.asarray(w, dtype=np.float32).astype(np.float64)
    n_comp = w.shape[-1]
    tot = w.sum(axis=-1, keepdims=True)
    w = np.where(tot > 0, w / np.where(tot > 0, tot, 1), 1.0 / n_comp)
    w = np.maximum(w, floor)
    w /= w.sum(axis=-1, keepdims=True)
    return w.astype(np.float32)


def read_tmat(path, *, floor: float = 1e-4) -> np.ndarray:
    """Transition matrices ``(n_tmat, n_state, n_state + 1)`` float64, rows normalized.

    As pocketsphinx's ``tmat_init``: each row is normalized, nonzero entries below
    ``floor`` are raised to it and the row normalized again. The last column is the
    non-emitting exit state.
    """
    s = _open_s3(path)
    n_tmat, n_src, n_dst, n = (int(v) for v in s.ints(4))
    if n_dst != n_src + 1:
        raise _err(path, f"has {n_src} source and {n_dst} target states; Sphinx transition "
                         "matrices have one more target (the exit) than sources")
    if n != n_tmat * n_src * n_dst or n_tmat <= 0:
        raise _err(path, f"holds {n} values but its header gives {n_tmat} x {n_src} x {n_dst}")
    t = s.floats(n).reshape(n_tmat, n_src, n_dst).astype(np.float64)
    s.finish()
    for _ in range(1):
        tot = t.sum(axis=2, keepdims=True)
        if np.any(tot <= 0):
            i, j = np.argwhere(tot[..., 0] <= 0)[0]
            raise _err(path, f"transition matrix {i} row {j} sums to 0")
        t = t / tot
        t = np.where((t > 0) & (t < floor), floor, t)
        t = t / t.sum(axis=2, keepdims=True)
    for i in range(n_tmat):
        if np.any(np.tril(t[i][:, :n_src], -1) > 0):
            raise _err(path, f"transition matrix {i} has backward transitions; only "
                             "left-to-right (Bakis) topologies are supported")
        for j in range(n_src):
            if np.any(t[i, j, j + 3:] > 0):
                raise _err(path, f"transition matrix {i} jumps more than one state from "
                                 f"state {j}; only skips of one state are supported")
    return t


def read_sendump(path, *, n_sen: int | None = None) -> np.ndarray:
    """Quantized senone weights: uint8 ``(n_feat, n_density, n_sen)``.

    Entry ``q`` stands for the weight ``exp(-q * LOG_SENDUMP_UNIT)``. Only the 8-bit,
    unclustered layout (``cluster_count 0``) is read; a 4-bit clustered dump raises.
    """
    path = Path(path)
    data = _read_bytes(path)
    pos = 0

    def i32():
        nonlocal pos
        if pos + 4 > len(data):
            raise _err(path, "is truncated in its header")
        v = int(np.frombuffer(data, endian + "i4", 1, pos)[0])
        pos += 4
        return v

    def string(n, *, nul=False):
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise _err(path, "is truncated in its header strings")
        s = data[pos:pos + n]
        pos += n
        if nul and not s.endswith(b"\0"):
            raise _err(path, "has a title or header string that is not NUL-terminated")
        return s.rstrip(b"\0").decode("latin-1")

    endian = "<"
    n = int(np.frombuffer(data, "<i4", 1, 0)[0]) if len(data) >= 4 else -1
    if not 1 <= n <= 999:
        endian = ">"
        n = int(np.frombuffer(data, ">i4", 1, 0)[0]) if len(data) >= 4 else -1
        if not 1 <= n <= 999:
            raise _err(path, "is not a sendump file (bad title length)")
    pos = 4
    string(n, nul=True)                         # title
    string(i32(), nul=True)                     # header
    info = {}
    while True:
        k = i32()
        if k == 0:
            break
        line = string(k)
        f = line.split()
        if len(f) == 2:
            info[f[0]] = f[1]
    n_clust = int(info.get("cluster_count", 0))
    n_bits = int(info.get("cluster_bits", 8))
    n_feat = int(info.get("feature_count", 0))
    if n_clust != 0 or n_bits != 8:
        raise _err(path, f"is a clustered {n_bits}-bit sendump (cluster_count {n_clust}); only "
                         "8-bit unclustered dumps are implemented")
    rows = i32()
    cols = i32()
    if n_sen is not None and cols != n_sen:
        raise _err(path, f"has weights for {cols} senones but the mdef defines {n_sen}")
    if n_feat <= 0:
        raise _err(path, "does not give its feature_count")
    need = n_feat * rows * cols
    if pos + need > len(data):
        raise _err(path, f"is truncated: {n_feat} x {rows} x {cols} weights need {need} bytes, "
                         f"{len(data) - pos} remain")
    if pos + need != len(data):
        raise _err(path, f"has {len(data) - pos - need} bytes after its weights")
    return np.frombuffer(data, np.uint8, need, pos).reshape(n_feat, rows, cols).copy()


# --------------------------------------------------------------------------- writers

def _write_s3(path, ints, floats, *, checksum: bool) -> None:
    """An s3 binary file (little-endian), written to a temporary name then renamed."""
    path = Path(path)
    fl = np.ascontiguousarray(floats, dtype="<f4").ravel()
    ints = np.asarray(ints, dtype="<i4")
    head = b"s3\nversion 1.0\n" + (b"chksum0 yes\n" if checksum else b"") + b"endhdr\n"
    body = [head, np.array([BYTE_ORDER_MAGIC], "<u4").tobytes(), ints.tobytes(), fl.tobytes()]
    if checksum:
        c = s3_checksum(fl, s3_checksum(ints))
        body.append(np.array([c], "<u4").tobytes())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(body))
    os.replace(tmp, path)


def write_gauden(path, arrays) -> None:
    """Means or variances (one ``(n_mgau, n_density, veclen)`` array per stream), as
    :func:`read_gauden` reads them, with a checksum."""
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    n_mgau, n_density = arrays[0].shape[:2]
    veclen = [a.shape[2] for a in arrays]
    flat = np.concatenate([a.reshape(n_mgau, -1) for a in arrays], axis=1)
    _write_s3(path, [n_mgau, len(arrays), n_density, *veclen, flat.size], flat, checksum=True)


def write_mixture_weights(path, log_mixw) -> None:
    """Mixture weights from log weights ``(n_feat, n_density, n_sen)``, as
    :func:`read_mixture_weights` reads them ``(n_sen, n_feat, n_density)``; no checksum
    (the pure-Python checksum of 2 M values would cost seconds at every load)."""
    w = np.exp(np.asarray(log_mixw, dtype=np.float64)).transpose(2, 0, 1)
    n_sen, n_feat, n_density = w.shape
    _write_s3(path, [n_sen, n_feat, n_density, w.size], w, checksum=False)
