"""Nearest-code search without an N x K matrix: fused numba kernel or BLAS tiles.

``assign`` is the one pass every algorithm uses: labels, squared distances and,
on request, per-code sums / counts / distortion for the centroid update (so a
Lloyd iteration reads X once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.lbg import _kernels
from vqalign.lbg._data import iter_blocks

#: features at and above which the BLAS-tiled path is used
BLAS_MIN_FEATURES = 64
# float32 elements in one BLAS distance tile (rows x codes): 4 MB
_TILE_ELEMS = 1 << 22
#: from this many codes on, bounded passes search a row among its code's nearest
#: codes first (exact: see _kernels.assign_bounded) instead of all K codes
NBR_MIN_CODES = 2048
#: codes in each code's neighbour list (itself included)
NBR_SIZE = 64
#: share of the codes searched to anchor a row that has no code yet
ANCHOR_SHARE = 1 / 16


@dataclass
class Prepared:
    """A codebook laid out for the kernels (shifted by ``shift``)."""

    codebook: np.ndarray  # (K, D) float32, unshifted
    shift: np.ndarray     # (D,) float32
    shifted: np.ndarray   # (K, D) float32
    CT: np.ndarray        # (Dp, K) float32, zero-padded transpose (fused path)
    cnorm: np.ndarray     # (K,) float32
    table: tuple | None = None  # cached neighbour table (nbr, rad, ST) for large K

    @property
    def K(self) -> int:
        return self.codebook.shape[0]

    @property
    def D(self) -> int:
        return self.codebook.shape[1]


def prepare(codebook: np.ndarray, shift: np.ndarray | None = None) -> Prepared:
    C = np.ascontiguousarray(codebook, dtype=np.float32)
    K, D = C.shape
    if shift is None:
        shift = C.mean(axis=0)
    shift = np.ascontiguousarray(shift, dtype=np.float32)
    S = C - shift
    Dp = 8 * ((D + 7) // 8)
    CT = np.zeros((Dp, K), dtype=np.float32)
    if D < BLAS_MIN_FEATURES:
        CT[:D] = S.T
    cnorm = np.einsum("kd,kd->k", S, S, dtype=np.float64).astype(np.float32)
    return Prepared(C, shift, S, CT, cnorm)


@dataclass
class Assignment:
    labels: np.ndarray | None  # (N,) int32
    mind: np.ndarray | None    # (N,) float32 squared distances
    sums: np.ndarray | None    # (K, D) float64, sums of shifted rows
    counts: np.ndarray         # (K,) int64
    sse: np.ndarray            # (K,) float64 per-code distortion
    total_sse: float
    n: int

    @property
    def mse(self) -> float:
        return self.total_sse / max(self.n, 1)


def _assign_block(block, P: Prepared, labels, mind, acc, sums, counts, sse):
    n = block.shape[0]
    D = P.D
    if D < BLAS_MIN_FEATURES:
        serial = n * P.K < _kernels.SERIAL_WORK
        kern = _kernels.assign_fused_serial if serial else _kernels.assign_fused
        if acc is None:
            # one row range per thread; the statistics arrays are not touched
            T = 1 if serial else max(1, min(numba.get_num_threads(), n // 256))
            tsums = np.zeros((T, 1, 1))
            tcounts = np.zeros((T, 1), np.int64)
            tsse = np.zeros((T, 1))
            kern(block, P.shift, P.CT, P.cnorm, labels, mind, tsums, tcounts, tsse, False)
        else:
            tsums, tcounts, tsse = acc
            if serial:
                tsums, tcounts, tsse = tsums[:1], tcounts[:1], tsse[:1]
            tsums[:] = 0
            tcounts[:] = 0
            tsse[:] = 0
            kern(block, P.shift, P.CT, P.cnorm, labels, mind, tsums, tcounts, tsse, True)
            sums += tsums.sum(axis=0)
            counts += tcounts.sum(axis=0)
            sse += tsse.sum(axis=0)
        return
    # BLAS path: G = (x - shift) . (c - shift) tile by tile, running argmin
    K = P.K
    # rows per tile: the distance tile and the shifted rows each stay within a few MB
    rows = max(64, min(n, _TILE_ELEMS // max(K, 1), (1 << 20) // max(D, 1)))
    kt = max(256, min(K, _TILE_ELEMS // rows))
    best = np.empty(rows, np.float32)
    bidx = np.empty(rows, np.int32)
    G = np.empty(rows * kt, np.float32)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        xs = block[r0:r1] - P.shift
        m = r1 - r0
        best[:m] = np.inf
        bidx[:m] = 0
        for k0 in range(0, K, kt):
            k1 = min(K, k0 + kt)
            g = G[:m * (k1 - k0)].reshape(m, k1 - k0)
            np.dot(xs, P.shifted[k0:k1].T, out=g)
            _kernels.argmin_tile(g, P.cnorm, k0, best[:m], bidx[:m])
        x2 = np.einsum("nd,nd->n", xs, xs)
        labels[r0:r1] = bidx[:m]
        np.maximum(x2 + best[:m], 0.0, out=mind[r0:r1])
    if acc is not None:
        # one (K, D) slice per thread while that stays under 64 MB
        T = max(1, min(numba.get_num_threads(), (1 << 23) // max(1, K * D), n // 256))
        tsums = np.zeros((T, K, D))
        _kernels.accumulate_sums(block, P.shift, labels, mind, tsums, counts, sse)
        sums += tsums.sum(axis=0)


class Bounds:
    """Per-row Hamerly bounds kept between Lloyd passes over the same rows.

    Call :meth:`moved` with the new codes after each update (it records how
    far every code moved) and :meth:`reset` when codes are added or replaced
    wholesale.
    """

    def __init__(self, n: int):
        self.labels = np.full(n, -1, np.int32)
        self.mind = np.zeros(n, np.float32)
        self.upper = np.zeros(n, np.float32)
        self.lower = np.zeros(n, np.float32)
        self.drift = None
        self.fresh = True
        self.searched = 0
        self.table = None  # (nbr, rad, codes) of the last neighbour table

    def reset(self):
        self.fresh = True
        self.drift = None

    def anchor(self, labels: np.ndarray):
        """Start from known codes for the first ``len(labels)`` rows (e.g. the previous
        LBG level's labels: split codes keep their index). Only a starting guess for the
        neighbour search; the pass still finds the exact nearest code."""
        self.reset()
        self.labels[:] = -1
        self.labels[:labels.shape[0]] = labels

    def moved(self, old: np.ndarray, new: np.ndarray):
        if old.shape != new.shape:
            self.reset()
            return
        self.drift = np.sqrt(((new - old) ** 2).sum(axis=1)).astype(np.float32) * 1.0001


def assign(X, P: Prepared, *, accumulate: bool = False, keep: bool = True,
           check: bool = False, name: str = "X", bounds: Bounds | None = None) -> Assignment:
    """Nearest codes of every row of X (array or memmap), streamed in blocks.

    keep=False drops the per-row labels/distances (only the per-code
    statistics are returned) to bound memory on huge memmaps. With many codes
    (``use_neighbours``) each row starts from its nearest among about sqrt(K)
    codes and searches that code's neighbour list (exact: a row the lists
    cannot settle is searched in full). With ``bounds``
    (and fewer than BLAS_MIN_FEATURES features) rows whose code provably did
    not change since the last pass skip the search (Hamerly's algorithm);
    accumulate is implied.
    """
    if bounds is not None and P.D < BLAS_MIN_FEATURES:
        return _assign_bounded(X, P, bounds, check=check, name=name)
    if use_neighbours(P.K, P.D) and X.shape[0] * P.K >= _kernels.SERIAL_WORK:
        return _assign_neighbours(X, P, keep=keep, accumulate=accumulate, check=check,
                                  name=name)
    N, D = X.shape
    if D != P.D:
        raise ParameterError(
            f"{name} has {D} features per row but the codebook has {P.D}; "
            "use features computed with the same settings as the codebook"
        )
    K = P.K
    labels_all = np.empty(N, np.int32) if keep else None
    mind_all = np.empty(N, np.float32) if keep else None
    counts = np.zeros(K, np.int64)
    sse = np.zeros(K, np.float64)
    sums = np.zeros((K, D), np.float64) if accumulate else None
    acc = None
    if accumulate:
        if D < BLAS_MIN_FEATURES:
            T = numba.get_num_threads()
            acc = (np.zeros((T, K, D)), np.zeros((T, K), np.int64), np.zeros((T, K)))
        else:
            acc = ()
    total = 0.0
    for start, block in iter_blocks(X, check=check, name=name):
        n = block.shape[0]
        if keep:
            lab = labels_all[start:start + n]
            md = mind_all[start:start + n]
        else:
            lab = np.empty(n, np.int32)
            md = np.empty(n, np.float32)
        if accumulate:
            _assign_block(block, P, lab, md, acc, sums, counts, sse)
        else:
            _assign_block(block, P, lab, md, None, None, None, None)
            counts += np.bincount(lab, minlength=K)
        total += float(md.sum(dtype=np.float64))
    if not accumulate:
        sse = None
    return Assignment(labels_all, mind_all, sums, counts, sse, total, N)


def _neighbour_table(P: Prepared, b: Bounds | None):
    """(nbr, rad, ST) for the neighbour search: each code's NBR_SIZE nearest codes.

    The table is rebuilt unless ``b`` holds one built on codes that have since
    moved by less than a tenth of the median list radius; then the radii are
    lowered by the codes' movement (a code c outside k's list is now at least
    ``rad[k] - moved[k] - max(moved)`` from k), so the bound stays valid.
    """
    K = P.K
    if b is None and P.table is not None:
        return P.table
    ST = np.ascontiguousarray(P.CT.T)
    if b is not None and b.table is not None and b.table[2].shape == P.codebook.shape:
        nbr, rad, built = b.table
        moved = np.sqrt(((P.codebook - built) ** 2).sum(axis=1, dtype=np.float64))
        top = float(moved.max()) if K else 0.0
        if top < 0.1 * float(np.median(rad)):
            return nbr, (rad - moved - top).astype(np.float32) * np.float32(0.9999), ST
    if P.table is not None:
        nbr, rad, ST = P.table
    else:
        nbr = np.empty((K, min(NBR_SIZE, K)), np.int32)
        rad = np.empty(K, np.float32)
        _kernels.code_neighbours(P.CT, P.shifted, P.cnorm, nbr, rad)
    if b is not None:
        b.table = (nbr, rad, P.codebook.copy())
    P.table = (nbr, rad, ST)  # the codes of P never change: later calls reuse it
    return nbr, rad, ST


def code_neighbours(P: Prepared, n_neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Each code's ``n_neighbours`` nearest codes (itself first) and the radius of that list.

    Parameters
    ----------
    P : Prepared
        The codebook, from :func:`prepare`.
    n_neighbours : int
        List length M (at most the number of codes K).

    Returns
    -------
    nbr : ndarray, int32, shape (K, M)
        Indices of each code's nearest codes, nearest first.
    rad : ndarray, float32, shape (K,)
        Distance from each code to the last code of its list: every code outside the
        list is at least this far.
    """
    nbr = np.empty((P.K, n_neighbours), np.int32)
    rad = np.empty(P.K, np.float32)
    _kernels.code_neighbours(P.CT, P.shifted, P.cnorm, nbr, rad)
    return nbr, rad


def _anchor_rows(block, P: Prepared, labels):
    """Labels of the rows without one (-1): their nearest among the first codes only.

    A cheap starting point for the neighbour search (ANCHOR_SHARE of the codes
    are searched); the bounded kernel then finds the exact nearest code.
    """
    miss = np.flatnonzero(labels < 0)
    if miss.size == 0:
        return
    k0 = min(P.K, max(64, int(ANCHOR_SHARE * P.K)))
    sub = Prepared(P.codebook[:k0], P.shift, P.shifted[:k0], np.ascontiguousarray(P.CT[:, :k0]),
                   P.cnorm[:k0])
    rows = np.ascontiguousarray(block[miss])
    lab = np.empty(miss.size, np.int32)
    md = np.empty(miss.size, np.float32)
    _assign_block(rows, sub, lab, md, None, None, None, None)
    labels[miss] = lab


def use_neighbours(K: int, D: int) -> bool:
    """Whether passes over K codes of D features use the neighbour search."""
    return K >= NBR_MIN_CODES and D < BLAS_MIN_FEATURES


def _assign_bounded(X, P: Prepared, b: Bounds, *, check: bool, name: str) -> Assignment:
    N, D = X.shape
    if D != P.D:
        raise ParameterError(
            f"{name} has {D} features per row but the codebook has {P.D}; "
            "use features computed with the same settings as the codebook"
        )
    K = P.K
    serial = N * K < _kernels.SERIAL_WORK
    kern = _kernels.assign_bounded_serial if serial else _kernels.assign_bounded
    T = 1 if serial else numba.get_num_threads()
    tsums = np.zeros((T, K, D))
    tcounts = np.zeros((T, K), np.int64)
    tsse = np.zeros((T, K))
    fresh = b.fresh or b.drift is None
    drift = np.zeros(K, np.float32) if fresh else b.drift
    use_nbr = use_neighbours(K, D)
    jumped = np.zeros(0, np.int64)
    if not fresh and K >= 64:
        # the K/64 codes that moved most (re-seeded ones) are measured exactly per row
        # instead of loosening every row's bound by their drift; with the neighbour
        # search only codes that jumped far (10x the median drift), often none
        nj = K // 64
        if use_nbr:
            nj = min(nj, int((drift > 10.0 * float(np.median(drift))).sum()))
        if nj > 0:
            jumped = np.argpartition(-drift, nj - 1)[:nj].astype(np.int64)
    if use_nbr:
        nbr, rad, ST = _neighbour_table(P, b)
    else:
        nbr = np.zeros((1, 1), np.int32)
        rad = np.zeros(1, np.float32)
        ST = np.zeros((1, 1), np.float32)
    searched = 0
    for start, block in iter_blocks(X, check=check, name=name):
        n = block.shape[0]
        sl = slice(start, start + n)
        if use_nbr and fresh:
            _anchor_rows(block, P, b.labels[sl])
        searched += int(kern(
            block, P.shift, P.CT, P.shifted, P.cnorm, b.labels[sl], b.mind[sl], b.upper[sl],
            b.lower[sl], drift, jumped, fresh, tsums, tcounts, tsse, nbr, rad, use_nbr, ST,
            True))
    b.fresh = False
    b.searched = searched
    sums = tsums.sum(axis=0)
    counts = tcounts.sum(axis=0)
    sse = tsse.sum(axis=0)
    return Assignment(b.labels, b.mind, sums, counts, sse, float(b.mind.sum(dtype=np.float64)), N)


def _assign_neighbours(X, P: Prepared, *, keep: bool, accumulate: bool, check: bool,
                       name: str, exact: bool = True) -> Assignment:
    """Exact nearest codes for many codes: coarse anchor, then the neighbour lists.

    ``exact=False`` skips the full search of rows the lists cannot settle and
    keeps the best code the walk found (see :func:`near_codes`)."""
    N, D = X.shape
    if D != P.D:
        raise ParameterError(
            f"{name} has {D} features per row but the codebook has {P.D}; "
            "use features computed with the same settings as the codebook"
        )
    K = P.K
    T = numba.get_num_threads()
    tsums = np.zeros((T, K, D))
    tcounts = np.zeros((T, K), np.int64)
    tsse = np.zeros((T, K))
    nbr, rad, ST = _neighbour_table(P, None)
    labels_all = np.empty(N, np.int32) if keep else None
    mind_all = np.empty(N, np.float32) if keep else None
    drift = np.zeros(K, np.float32)
    jumped = np.zeros(0, np.int64)
    total = 0.0
    for start, block in iter_blocks(X, check=check, name=name):
        n = block.shape[0]
        b = Bounds(n)
        _anchor_rows(block, P, b.labels)
        _kernels.assign_bounded(block, P.shift, P.CT, P.shifted, P.cnorm, b.labels, b.mind,
                                b.upper, b.lower, drift, jumped, True, tsums, tcounts, tsse,
                                nbr, rad, True, ST, exact)
        if keep:
            labels_all[start:start + n] = b.labels
            mind_all[start:start + n] = b.mind
        total += float(b.mind.sum(dtype=np.float64))
    counts = tcounts.sum(axis=0)
    sse = tsse.sum(axis=0)
    sums = tsums.sum(axis=0) if accumulate else None
    return Assignment(labels_all, mind_all, sums, counts, sse if accumulate else None, total, N)


def near_codes(X, P: Prepared) -> np.ndarray:
    """(N,) int32 codes near each row, cheaper than the exact nearest for large K.

    For K >= NBR_MIN_CODES (and narrow rows) each row walks the codes'
    neighbour lists from its nearest among ANCHOR_SHARE of the codes and keeps
    the best code it found: the exact nearest whenever the lists can prove it,
    otherwise the best code of the walk, without the full search (usually the
    nearest too, but a row whose anchor lies in another well-separated cluster
    can stay there). Smaller codebooks get the exact nearest code. Meant for
    Gaussian selection.
    """
    if use_neighbours(P.K, P.D) and X.shape[0] * P.K >= _kernels.SERIAL_WORK:
        return _assign_neighbours(X, P, keep=True, accumulate=False, check=False, name="X",
                                  exact=False).labels
    return assign(X, P).labels
