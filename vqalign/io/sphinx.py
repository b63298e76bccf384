"""Readers for CMU Sphinx acoustic models (the ``en-us`` model in the pocketsphinx wheel).

A model directory holds:

``mdef``
    Model definition, text (``0.3`` header) or binary (``BMDF``): CI phones, triphones
    with their word position (``b``egin, ``e``nd, ``s``ingle, ``i``nternal), the senone
    of each emitting state and the transition matrix of each phone.
``means``, ``variances``
    Gaussian codebooks in the s3 binary format: a text header (``s3`` ... ``endhdr``),
    the byte-order magic ``0x11223344``, then int32 ``n_mgau n_feat n_density``, the
    vector length of each stream, an int32 element count and the float32 data, and a
    uint32 checksum when the header says ``chksum0``.
``mixture_weights`` or ``sendump``
    Senone mixture weights: float32 s3 array ``(n_sen, n_feat, n_density)``, or the
    quantized dump (uint8 ``-log_{1.0001}(w) >> 10`` per stream, codeword, senone).
``transition_matrices``
    s3 float32 ``(n_tmat, n_state, n_state + 1)``, normalized and floored on reading as
    pocketsphinx does (``tmatfloor`` 1e-4 on nonzero entries).
``feat.params``
    Front-end options, one ``-name value`` per line.
``noisedict``
    Filler words and their phones (``<sil> SIL``, ``[NOISE] +NSN+``).

Every reader raises :class:`~vqalign.exceptions.ParameterError` naming the file when it
is missing, truncated, has a bad checksum or an unexpected layout.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.features.sphinx import read_feat_params
from vqalign.io.sphinx_s3 import (
    LOG_SENDUMP_UNIT,
    MAX_NEG_MIXW,
    _err,
    _read_bytes,
    normalize_mixture_weights,
    read_gauden,
    read_mixture_weights,
    read_sendump,
    read_tmat,
    s3_checksum,
    write_gauden,
    write_mixture_weights,
)

__all__ = ["Mdef", "SphinxModel", "read_mdef", "read_gauden", "read_mixture_weights",
           "read_sendump", "read_tmat", "read_feat_params", "read_noisedict",
           "read_dictionary", "load_sphinx_model", "s3_checksum", "LOG_SENDUMP_UNIT",
           "WPOS", "write_gauden", "write_mixture_weights", "save_sphinx_model",
           "normalize_mixture_weights", "LazyDictionary"]

BIN_MDEF_MAGIC = 0x46444D42          # 'BMDF' read as a little-endian int32
WPOS = "ibesu"                       # internal, begin, end, single, undefined


# --------------------------------------------------------------------------- mdef

@dataclass
class Mdef:
    """A Sphinx model definition.

    Attributes
    ----------
    ciphones : list of str
        CI phone names (sorted, as Sphinx requires).
    filler : bool (n_ci,)
    n_emit_state, n_ci_sen, n_sen : int
    ci, lc, rc, wpos : int16 (n_phone,)
        Base phone, left and right context (-1 for CI phones) and word position
        (index into ``WPOS``; -1 for CI phones) of each phone.
    tmat : int32 (n_phone,)
    senones : int32 (n_phone, n_emit_state)
    """

    ciphones: list
    filler: np.ndarray
    n_emit_state: int
    n_ci_sen: int
    n_sen: int
    ci: np.ndarray
    lc: np.ndarray
    rc: np.ndarray
    wpos: np.ndarray
    tmat: np.ndarray
    senones: np.ndarray
    _keys: np.ndarray | None = field(default=None, repr=False)
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_ci(self) -> int:
        return len(self.ciphones)

    @property
    def n_phone(self) -> int:
        return int(self.ci.shape[0])

    @functools.cached_property
    def ci_index(self) -> dict:
        return {p: i for i, p in enumerate(self.ciphones)}

    @property
    def sil(self) -> int:
        return self.ci_index.get("SIL", -1)

    @functools.cached_property
    def sen2ci(self) -> np.ndarray:
        """CI phone (codebook of a PTM model) of every senone."""
        out = np.full(self.n_sen, -1, dtype=np.int32)
        for j in range(self.n_emit_state - 1, -1, -1):
            out[self.senones[::-1, j]] = self.ci[::-1]   # first phone wins
        return out

    def _key(self, ci, lc, rc, wpos):
        n = self.n_ci
        return ((np.int64(wpos) * n + ci) * n + lc) * n + rc

    def _index(self):
        if self._keys is None:
            cd = np.arange(self.n_ci, self.n_phone)
            keys = self._key(self.ci[cd].astype(np.int64), self.lc[cd].astype(np.int64),
                             self.rc[cd].astype(np.int64), self.wpos[cd].astype(np.int64))
            order = np.argsort(keys, kind="stable")
            self._keys, self._order = keys[order], cd[order]
        return self._keys, self._order

    def phone_id(self, ci: int, lc: int, rc: int, wpos: int) -> int:
        """Exact triphone id, or -1 (fillers in context map to SIL, as Sphinx does)."""
        sil = self.sil
        if sil >= 0:
            lc = sil if self.filler[lc] else lc
            rc = sil if self.filler[rc] else rc
        keys, order = self._index()
        k = self._key(ci, lc, rc, wpos)
        i = int(np.searchsorted(keys, k))
        return int(order[i]) if i < keys.size and keys[i] == k else -1

    def phone_ids(self, ci, lc, rc, wpos) -> np.ndarray:
        """Vectorized :meth:`phone_id_nearest` over arrays of phones."""
        ci, lc, rc, wpos = (np.asarray(a, dtype=np.int64) for a in (ci, lc, rc, wpos))
        out = np.array(ci, dtype=np.int64)
        ok = (lc >= 0) & (rc >= 0) & ~self.filler[ci]
        if not ok.any():
            return out
        sil = self.sil
        lcm = np.where(self.filler[lc] & (sil >= 0), sil, lc)
        rcm = np.where(self.filler[rc] & (sil >= 0), sil, rc)
        keys, order = self._index()
        k = self._key(ci, lcm, rcm, wpos)
        i = np.minimum(np.searchsorted(keys, k), keys.size - 1)
        hit = ok & (keys[i] == k)
        out[hit] = order[i[hit]]
        for j in np.flatnonzero(ok & ~hit):
            out[j] = self.phone_id_nearest(int(ci[j]), int(lc[j]), int(rc[j]), int(wpos[j]))
        return out

    def phone_id_nearest(self, ci: int, lc: int, rc: int, wpos: int) -> int:
        """Sphinx's ``bin_mdef_phone_id_nearest``: back off over word positions, then to
        silence context at word edges, then to the CI phone."""
        if lc < 0 or rc < 0 or self.filler[ci]:
            return ci
        p = self.phone_id(ci, lc, rc, wpos)
        if p >= 0:
            return p
        for w in range(len(WPOS)):
            if w != wpos:
                p = self.phone_id(ci, lc, rc, w)
                if p >= 0:
                    return p
        sil = self.sil
        if sil >= 0:
            nl = sil if (self.filler[lc] or wpos in (1, 3)) else lc
            nr = sil if (self.filler[rc] or wpos in (2, 3)) else rc
            if (nl, nr) != (lc, rc):
                for w in [wpos] + [w for w in range(len(WPOS)) if w != wpos]:
                    p = self.phone_id(ci, nl, nr, w)
                    if p >= 0:
                        return p
        return ci


def read_mdef(path) -> Mdef:
    """Read a model definition, binary (``BMDF``) or text (``0.3``)."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) >= 4 and int(np.frombuffer(data, "<u4", 1, 0)[0]) in (
            BIN_MDEF_MAGIC, 0x424D4446):
        return _read_bin_mdef(path, data)
    return _read_text_mdef(path, data)


def _read_bin_mdef(path, data) -> Mdef:
    e = "<" if int(np.frombuffer(data, "<u4", 1, 0)[0]) == BIN_MDEF_MAGIC else ">"
    pos = 4

    def take(dt, n):
        nonlocal pos
        dt = np.dtype(dt).newbyteorder(e) if np.dtype(dt).itemsize > 1 else np.dtype(dt)
        nb = dt.itemsize * n
        if pos + nb > len(data):
            raise _err(path, f"is truncated at byte {pos} (needs {nb} more bytes)")
        a = np.frombuffer(data, dt, n, pos).astype(dt.newbyteorder("="))
        pos += nb
        return a

    version, hlen = (int(v) for v in take("i4", 2))
    if version > 1:
        raise _err(path, f"is binary mdef version {version}; only version 1 is known")
    pos += hlen
    (n_ci, n_phone, n_emit, n_ci_sen, n_sen, n_tmat, n_sseq, n_ctx, n_tree,
     _sil) = (int(v) for v in take("i4", 10))
    if n_emit <= 0:
        raise _err(path, "has phones with different numbers of states (n_emit_state 0); only "
                         "homogeneous topologies are implemented")
    names = []
    for _ in range(n_ci):
        end = data.find(b"\0", pos)
        if end < 0:
            raise _err(path, "is truncated in its phone names")
        names.append(data[pos:end].decode("latin-1"))
        pos = end + 1
    pos = (pos + 3) & ~3
    pos += 8 * n_tree                                   # cd_tree (not needed: we index phones)
    rec = take("u1", 12 * n_phone).reshape(n_phone, 12)
    ssid = rec[:, 0:4].copy().view(e + "i4").ravel().astype(np.int32)
    tmat = rec[:, 4:8].copy().view(e + "i4").ravel().astype(np.int32)
    attr = rec[:, 8:12].astype(np.int16)
    (n_sseq_vals,) = (int(v) for v in take("i4", 1))
    if n_sseq_vals != n_sseq * n_emit:
        raise _err(path, f"has {n_sseq_vals} senone-sequence entries, expected "
                         f"{n_sseq} x {n_emit}")
    sseq = take("u2", n_sseq_vals).reshape(n_sseq, n_emit).astype(np.int32)
    if pos != len(data):
        raise _err(path, f"has {len(data) - pos} unexpected bytes at its end")
    if np.any(ssid < 0) or np.any(ssid >= n_sseq):
        raise _err(path, "refers to senone sequences it does not define")
    ci = np.arange(n_phone, dtype=np.int16)
    lc = np.full(n_phone, -1, np.int16)
    rc = np.full(n_phone, -1, np.int16)
    wpos = np.full(n_phone, -1, np.int16)
    cd = slice(n_ci, n_phone)
    wpos[cd], ci[cd], lc[cd], rc[cd] = attr[cd, 0], attr[cd, 1], attr[cd, 2], attr[cd, 3]
    filler = attr[:n_ci, 0].astype(bool)
    del n_ctx
    return _finish_mdef(path, names, filler, n_emit, n_ci_sen, n_sen, n_tmat, ci, lc, rc,
                        wpos, tmat, sseq[ssid])


def _read_text_mdef(path, data) -> Mdef:
    try:
        text = data.decode("latin-1")
    except Exception:  # pragma: no cover - latin-1 decodes any bytes
        raise _err(path, "is neither a binary nor a text mdef") from None
    lines = [ln.split() for ln in text.splitlines()]
    lines = [f for f in lines if f and not f[0].startswith("#")]
    if not lines or lines[0][0] != "0.3":
        raise _err(path, "is neither a binary mdef (BMDF) nor a text mdef (first line '0.3')")
    counts = {}
    k = 1
    while k < len(lines) and len(lines[k]) == 2 and lines[k][1].startswith("n_"):
        counts[lines[k][1]] = int(lines[k][0])
        k += 1
    try:
        n_base, n_tri = counts["n_base"], counts["n_tri"]
        n_state_map, n_sen = counts["n_state_map"], counts["n_tied_state"]
        n_ci_sen, n_tmat = counts["n_tied_ci_state"], counts["n_tied_tmat"]
    except KeyError as exc:
        raise _err(path, f"lacks the header count {exc.args[0]}") from None
    n_phone = n_base + n_tri
    rows = lines[k:k + n_phone]
    if len(rows) != n_phone:
        raise _err(path, f"is truncated: its header promises {n_phone} phones, it has "
                         f"{len(rows)}")
    n_emit = n_state_map // n_phone - 1
    if n_emit <= 0 or n_state_map != n_phone * (n_emit + 1):
        raise _err(path, "has phones with different numbers of states; only homogeneous "
                         "topologies are implemented")
    names = [r[0] for r in rows[:n_base]]
    idx = {p: i for i, p in enumerate(names)}
    ci = np.empty(n_phone, np.int16)
    lc = np.full(n_phone, -1, np.int16)
    rc = np.full(n_phone, -1, np.int16)
    wpos = np.full(n_phone, -1, np.int16)
    tmat = np.empty(n_phone, np.int32)
    sen = np.empty((n_phone, n_emit), np.int32)
    filler = np.zeros(n_base, bool)
    for p, r in enumerate(rows):
        if len(r) != 6 + n_emit + 1 or r[-1] != "N":
            raise _err(path, f"phone line {' '.join(r)!r} does not have base, left, right, "
                             f"position, attribute, tmat, {n_emit} senones and 'N'")
        try:
            ci[p] = idx[r[0]]
            if p >= n_base:
                lc[p], rc[p] = idx[r[1]], idx[r[2]]
                wpos[p] = WPOS.index(r[3])
            elif r[4] == "filler":
                filler[p] = True
            tmat[p] = int(r[5])
            sen[p] = [int(x) for x in r[6:6 + n_emit]]
        except (KeyError, ValueError):
            raise _err(path, f"phone line {' '.join(r)!r} names an unknown phone or has a "
                             "non-numeric field") from None
    return _finish_mdef(path, names, filler, n_emit, n_ci_sen, n_sen, n_tmat, ci, lc, rc,
                        wpos, tmat, sen)


def _finish_mdef(path, names, filler, n_emit, n_ci_sen, n_sen, n_tmat, ci, lc, rc, wpos,
                 tmat, sen) -> Mdef:
    if list(names) != sorted(names):
        raise _err(path, "lists its CI phones out of sorted order (Sphinx requires sorted "
                         "phone names)")
    if sen.size and (sen.min() < 0 or sen.max() >= n_sen):
        raise _err(path, f"uses senone {int(sen.max())} but defines {n_sen}")
    if tmat.size and (tmat.min() < 0 or tmat.max() >= n_tmat):
        raise _err(path, f"uses transition matrix {int(tmat.max())} but defines {n_tmat}")
    return Mdef(ciphones=list(names), filler=np.asarray(filler, bool), n_emit_state=int(n_emit),
                n_ci_sen=int(n_ci_sen), n_sen=int(n_sen), ci=ci, lc=lc, rc=rc, wpos=wpos,
                tmat=tmat, senones=np.ascontiguousarray(sen, dtype=np.int32))


# --------------------------------------------------------------------------- text files

def read_noisedict(path) -> dict:
    """Filler dictionary ``{"<sil>": ["SIL"], "[NOISE]": ["+NSN+"], ...}``."""
    return read_dictionary(path, name="noise dictionary")


def read_dictionary(path, *, name: str = "dictionary") -> dict:
    """A Sphinx pronunciation dictionary: ``{word: [[phone, ...], ...]}``.

    ``word(2)`` lines are alternates of ``word``; text after ``#`` is a comment.
    """
    path = Path(path)
    text = _read_bytes(path).decode("utf-8", errors="replace")
    out: dict = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0] if "#" in line and not line.startswith("#") else line
        f = line.split()
        if not f or f[0].startswith("#") or f[0].startswith(";;"):
            continue
        if len(f) < 2:
            raise _err(path, f"{name} line {lineno} {line.strip()!r} has a word but no phones")
        w = f[0]
        if w.endswith(")") and "(" in w:
            w = w[:w.rindex("(")]
        out.setdefault(w, []).append(f[1:])
    if not out:
        raise _err(path, f"{name} holds no entries")
    return out


#: bump when :func:`_dictionary_index` changes: cached indexes are keyed by it
DICTIONARY_INDEX_VERSION = 1


def _dictionary_index(data: bytes) -> dict:
    """The line index of a Sphinx dictionary's bytes: ``words`` (sorted, unique; the first
    token of each entry line, ``(2)`` alternates folded), ``rows`` (line numbers grouped by
    word, in file order), ``first`` ((n_words + 1,) into ``rows``) and ``starts`` (each
    line's byte offset, plus one past the end), so a word's lines are found by binary
    search without splitting the file."""
    lines = data.split(b"\n")
    index: dict = {}
    for n, ln in enumerate(lines):
        head = ln.split(None, 1)
        if not head:
            continue
        w = head[0]
        if w.startswith((b"#", b";;")):
            continue
        if w.endswith(b")") and b"(" in w:
            w = w[:w.rindex(b"(")]
        index.setdefault(w, []).append(n)
    words = sorted(index)
    counts = np.array([len(index[w]) for w in words], dtype=np.int64)
    first = np.zeros(len(words) + 1, np.int64)
    np.cumsum(counts, out=first[1:])
    rows = np.array([n for w in words for n in index[w]], dtype=np.int64)
    starts = np.zeros(len(lines) + 1, np.int64)
    np.cumsum([len(ln) + 1 for ln in lines], out=starts[1:])
    return {"words": np.array(words, dtype=bytes) if words else np.zeros(0, "S1"),
            "first": first, "rows": rows, "starts": starts}


class LazyDictionary:
    """A Sphinx pronunciation dictionary indexed by word, its pronunciations parsed on
    demand with the rules of :func:`read_dictionary` (``word(2)`` lines are alternates,
    text after ``#`` a comment). An aligner needs a few dozen of the 126,000 words of
    cmudict-en-us.dict: indexing the first token of every line takes a tenth of the time
    of parsing every line, once per process."""

    def __init__(self, path, *, name: str = "dictionary"):
        from vqalign.io.cache import cached, file_digest

        self.path = Path(path)
        self.name = name
        self._data = _read_bytes(self.path)
        # the file's digest (remembered per unchanged file), the SHA-256 of these bytes
        try:
            digest = file_digest(self.path)
        except OSError:
            digest = hashlib.sha256(self._data).hexdigest()
        key = f"sphinx-dict-v{DICTIONARY_INDEX_VERSION}-{digest}"
        ix = cached("sphinx-dict", key, lambda: _dictionary_index(self._data))
        if ix["words"].size == 0:
            raise _err(self.path, f"{name} holds no entries")
        self._words, self._first, self._rows = ix["words"], ix["first"], ix["rows"]
        self._starts = ix["starts"]
        self._cache: dict = {}

    def _line(self, n: int) -> bytes:
        return self._data[self._starts[n]:self._starts[n + 1] - 1]

    def _find(self, word: str):
        if word in self._cache:
            return self._cache[word]
        k = word.encode("utf-8", errors="replace")
        i = int(np.searchsorted(self._words, k))
        prons = None
        if i < self._words.size and self._words[i] == k:
            prons = []
            for n in self._rows[self._first[i]:self._first[i + 1]]:
                line = self._line(int(n)).decode("utf-8", errors="replace")
                line = line.split("#", 1)[0] if "#" in line else line
                f = line.split()
                if len(f) < 2:
                    raise _err(self.path, f"{self.name} line {int(n) + 1} {line.strip()!r} has "
                                          "a word but no phones")
                prons.append(f[1:])
        self._cache[word] = prons
        return prons

    def __contains__(self, word) -> bool:
        return isinstance(word, str) and self._find(word) is not None

    def __getitem__(self, word):
        prons = self._find(word) if isinstance(word, str) else None
        if prons is None:
            raise KeyError(word)
        return prons

    def get(self, word, default=None):
        return self[word] if word in self else default

    def __len__(self) -> int:
        return int(self._words.size)


# --------------------------------------------------------------------------- writers

ADAPTED_HEADER = "vqalign.json"
ADAPTED_FORMAT = "vqalign.sphinx-adapted"


def save_sphinx_model(model, out_dir, *, header: dict, overwrite: bool = False) -> Path:
    """Write ``model`` (a :class:`SphinxModel`, e.g. adapted) as a Sphinx model folder that
    :func:`load_sphinx_model` (and pocketsphinx) read: ``means``, ``mixture_weights``
    written, ``mdef``, ``variances``, ``transition_matrices``, ``feat.params`` and
    ``noisedict`` copied from the model it came from; plus ``vqalign.json``: ``header``
    with the feature settings (``feat_params``) the model was estimated with, which
    loading checks against ``feat.params``. An existing non-empty folder is refused
    unless ``overwrite``."""
    import json
    import shutil

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ParameterError(f"{out} exists and is not empty; choose another folder or pass "
                             "overwrite=True (--overwrite) to replace the model in it")
    out.mkdir(parents=True, exist_ok=True)
    src = Path(model.path)
    for name in ("mdef", "variances", "transition_matrices", "feat.params", "noisedict"):
        if (src / name).is_file():
            if (src / name).resolve() != (out / name).resolve():
                shutil.copyfile(src / name, out / name)
        elif name not in ("feat.params", "noisedict"):
            raise ParameterError(f"cannot copy {src / name}: it does not exist")
    write_gauden(out / "means", model.means)
    write_mixture_weights(out / "mixture_weights", model.log_mixw)
    if (out / "sendump").exists():
        (out / "sendump").unlink()        # the weights are in mixture_weights now
    head = {"format": ADAPTED_FORMAT, "version": 1, "feat_params": dict(model.feat_params),
            "dictionary": str(model.dictionary_path) if model.dictionary_path else None,
            **header}
    tmp = out / (ADAPTED_HEADER + ".tmp")
    tmp.write_text(json.dumps(head, indent=1, default=float))
    os.replace(tmp, out / ADAPTED_HEADER)
    _load_cached.cache_clear()
    return out


def _check_adapted_header(d: Path, feat_params: dict) -> dict | None:
    """The ``vqalign.json`` of an adapted model, its feature settings checked against the
    folder's ``feat.params``; None for a plain Sphinx model."""
    import json

    p = d / ADAPTED_HEADER
    if not p.is_file():
        return None
    try:
        head = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise _err(p, f"is not readable JSON ({exc}); the model folder is damaged") from None
    if head.get("format") != ADAPTED_FORMAT:
        raise _err(p, f"is not a vqalign adapted-model header (format {head.get('format')!r})")
    if head.get("version", 0) > 1:
        raise _err(p, f"was written by a newer vqalign (version {head['version']}); upgrade")
    rec = {str(k): str(v) for k, v in (head.get("feat_params") or {}).items()}
    if rec != feat_params:
        diff = sorted(k for k in set(rec) | set(feat_params) if rec.get(k) != feat_params.get(k))
        raise ParameterError(
            f"the model in {d} was adapted on features made with "
            + ", ".join(f"-{k} {rec.get(k, '(unset)')}" for k in diff)
            + f" ({p.name}) but its feat.params asks for "
            + ", ".join(f"-{k} {feat_params.get(k, '(unset)')}" for k in diff)
            + "; the weights would meet features they were not estimated on: restore the "
              "feat.params it was written with, or adapt again")
    return head


# --------------------------------------------------------------------------- model

@dataclass
class SphinxModel:
    """Every part of a Sphinx model directory, read and checked against each other."""

    path: Path
    mdef: Mdef
    means: list
    variances: list
    log_mixw: np.ndarray          # float32 (n_feat, n_density, n_sen): log weights
    tmat: np.ndarray              # (n_tmat, n_state, n_state + 1)
    feat_params: dict
    noisedict: dict
    dictionary_path: Path | None = None
    adapted: dict | None = None       # vqalign.json of an adapted model

    @property
    def n_feat(self) -> int:
        return len(self.means)

    @property
    def n_density(self) -> int:
        return int(self.means[0].shape[1])

    @property
    def veclen(self) -> list:
        return [int(m.shape[2]) for m in self.means]


def _find_dictionary(model_dir: Path) -> Path | None:
    for cand in (model_dir / "dict", model_dir.parent / "cmudict-en-us.dict",
                 *sorted(model_dir.glob("*.dict")), *sorted(model_dir.parent.glob("*.dict"))):
        if cand.is_file():
            return cand
    return None


def _pocketsphinx_model_dir(name: str) -> Path:
    try:
        import pocketsphinx
    except ImportError:
        raise ParameterError(
            f"the Sphinx model {name!r} ships in the pocketsphinx package, which is not "
            'installed; pip install pocketsphinx (or pass the path of a Sphinx model '
            "directory)") from None
    d = Path(pocketsphinx.get_model_path()) / name / name
    if not d.is_dir():
        d = Path(pocketsphinx.get_model_path()) / name
    if not d.is_dir():
        avail = sorted(p.name for p in Path(pocketsphinx.get_model_path()).iterdir() if p.is_dir())
        raise ParameterError(f"pocketsphinx has no model {name!r}; it ships {avail}; or pass "
                             "the path of a Sphinx model directory")
    return d


def model_dir(spec) -> Path:
    """``"en-us"`` (the pocketsphinx wheel's model) or a directory path -> the directory."""
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if p.is_dir():
            return p
        if isinstance(spec, str) and os.sep not in spec and not p.exists():
            return _pocketsphinx_model_dir(spec)
        raise ParameterError(f"Sphinx model directory {p} does not exist")
    raise ParameterError(f"a Sphinx model is 'en-us' or a directory path, got {spec!r:.80}")


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> SphinxModel:
    d = Path(path)
    mdef = read_mdef(d / "mdef")
    means = read_gauden(d / "means")
    variances = read_gauden(d / "variances")
    for f, (m, v) in enumerate(zip(means, variances)):
        if m.shape != v.shape:
            raise _err(d / "variances", f"stream {f} has shape {v.shape} but the means have "
                                        f"{m.shape}")
    fp = read_feat_params(d / "feat.params") if (d / "feat.params").is_file() else {}
    varfloor = 1e-4
    variances = [np.maximum(v, np.float32(varfloor)) for v in variances]
    n_feat, n_density = len(means), int(means[0].shape[1])
    if (d / "sendump").is_file():
        q = read_sendump(d / "sendump", n_sen=mdef.n_sen)
        if q.shape[:2] != (n_feat, n_density):
            raise _err(d / "sendump", f"has {q.shape[0]} streams x {q.shape[1]} codewords but "
                                      f"the means have {n_feat} x {n_density}")
        log_mixw = (-LOG_SENDUMP_UNIT * np.minimum(q, MAX_NEG_MIXW)).astype(np.float32)
    elif (d / "mixture_weights").is_file():
        w = read_mixture_weights(d / "mixture_weights")
        if w.shape != (mdef.n_sen, n_feat, n_density):
            raise _err(d / "mixture_weights", f"has shape {w.shape}, expected "
                                              f"{(mdef.n_sen, n_feat, n_density)}")
        log_mixw = np.ascontiguousarray(np.log(w).transpose(1, 2, 0), dtype=np.float32)
    else:
        raise ParameterError(f"Sphinx model directory {d} has neither sendump nor "
                             "mixture_weights")
    n_mgau = means[0].shape[0]
    if n_mgau not in (1, mdef.n_ci, mdef.n_sen):
        raise _err(d / "means", f"has {n_mgau} codebooks; expected 1 (semi-continuous), "
                                f"{mdef.n_ci} (PTM) or {mdef.n_sen} (continuous)")
    tmat = read_tmat(d / "transition_matrices")
    if tmat.shape[1] != mdef.n_emit_state:
        raise _err(d / "transition_matrices", f"has {tmat.shape[1]}-state matrices but the "
                                              f"mdef's phones have {mdef.n_emit_state} states")
    if int(mdef.tmat.max()) >= tmat.shape[0]:
        raise _err(d / "transition_matrices", f"has {tmat.shape[0]} matrices; the mdef uses "
                                              f"{int(mdef.tmat.max()) + 1}")
    noise = read_noisedict(d / "noisedict") if (d / "noisedict").is_file() else {"<sil>": [["SIL"]]}
    for w, prons in noise.items():
        for p in prons:
            for ph in p:
                if ph not in mdef.ci_index:
                    raise _err(d / "noisedict", f"word {w!r} uses phone {ph!r} that the mdef "
                                                "does not define")
    head = _check_adapted_header(d, fp)
    dictionary = _find_dictionary(d)
    if head is not None:
        n_mixw = log_mixw.shape[2]
        if n_mixw != mdef.n_sen:
            raise _err(d / "mixture_weights", f"has {n_mixw} senones but the mdef {mdef.n_sen}")
        if head.get("dictionary") and Path(head["dictionary"]).is_file():
            dictionary = Path(head["dictionary"])
    return SphinxModel(path=d, mdef=mdef, means=means, variances=variances, log_mixw=log_mixw,
                       tmat=tmat, feat_params=fp, noisedict=noise,
                       dictionary_path=dictionary, adapted=head)


def load_sphinx_model(spec="en-us") -> SphinxModel:
    """Read a Sphinx acoustic model: ``"en-us"`` (from the pocketsphinx wheel) or a directory."""
    d = model_dir(spec)
    mdef = d / "mdef"
    return _load_cached(str(d.resolve()), mdef.stat().st_mtime if mdef.exists() else 0.0)
