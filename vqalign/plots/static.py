"""Static diagnostic figures (matplotlib), in the style of ``librosa.display``.

Every function takes ``ax=None`` and returns what it drew. Single-panel
functions (:func:`plot_observations`, :func:`plot_posteriors`, :func:`plot_tier`,
:func:`plot_waveform`) return their main artist. Multi-panel functions
(:func:`plot_alignment`, :func:`plot_codebook`, :func:`plot_history`) accept
``ax=None`` (a new figure is laid out), or a sequence with one Axes per panel,
and return a dict ``{panel name: main artist}``; ``artist.axes`` and
``artist.figure`` reach the rest.

The inputs are the objects the other stages produce: a
``vqalign.align.Alignment`` (or its ``to_dict()``, or a plain dict of tiers), the
``vqalign.history.History`` every learning loop keeps (or its ``to_dict()``),
codebooks as ``(K, D)`` arrays and frame matrices as ``(n_frames, D)`` arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vqalign._validation import check_audio, check_features, check_sample_rate
from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR
from vqalign.history import History

# one palette everywhere: runs, tiers, codes
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2")
TIER_FILL = "#dfe8f3"
SILENCE_LABELS = ("sil", "sp", "spn", "<sil>", "<eps>", "#")
DEAD = "#d62728"


# ----------------------------------------------------------------------------- helpers

def _plt():
    import matplotlib.pyplot as plt

    return plt


def _axes_list(ax, n: int, *, figsize, height_ratios=None, sharex=True, ncols=1):
    """``n`` axes: the ones given, or a new figure laid out in a column (or grid)."""
    if ax is None:
        plt = _plt()
        nrows = math.ceil(n / ncols)
        fig, axs = plt.subplots(nrows, ncols, figsize=figsize, sharex=sharex if ncols == 1 else False,
                                gridspec_kw={"height_ratios": height_ratios} if height_ratios
                                else None, squeeze=False, layout="constrained")
        axs = list(axs.ravel())
        for extra in axs[n:]:
            extra.remove()
        return axs[:n]
    if hasattr(ax, "plot"):  # a single Axes
        ax = [ax]
    ax = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(ax) < n:
        raise ParameterError(f"this figure has {n} panels but {len(ax)} Axes were given; pass "
                             f"{n} Axes (e.g. plt.subplots({n}, 1)[1]) or ax=None")
    return ax[:n]


def _history(h, i: int = 0) -> History:
    if isinstance(h, History):
        return h
    if hasattr(h, "history_"):
        return _history(h.history_, i)
    if isinstance(h, Mapping):
        if "columns" in h:
            return History.from_dict(h)
        if "em_history" in h:
            return _history(h["em_history"], i)
        if "diagnostics" in h and isinstance(h["diagnostics"], Mapping) \
                and "em_history" in h["diagnostics"]:
            return _history(h["diagnostics"]["em_history"], i)
    if hasattr(h, "diagnostics") and isinstance(h.diagnostics, Mapping) \
            and "em_history" in h.diagnostics:
        return _history(h.diagnostics["em_history"], i)
    raise ParameterError(
        f"history #{i} is a {type(h).__name__}; pass a vqalign.history.History, its to_dict(), "
        "a fitted estimator with history_, or an alignment whose diagnostics hold 'em_history'")


def as_histories(histories, labels=None) -> list[tuple[str, History]]:
    """Normalise one or several histories (objects, dicts, {name: history}) to (label, History)."""
    if isinstance(histories, Mapping) and "columns" not in histories \
            and "diagnostics" not in histories and "em_history" not in histories:
        items = list(histories.items())
    elif isinstance(histories, (list, tuple)):
        items = [(None, h) for h in histories]
    else:
        items = [(None, histories)]
    if not items:
        raise ParameterError("no history to plot: pass at least one History")
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(items):
            raise ParameterError(f"{len(labels)} labels for {len(items)} histories")
    out = []
    for i, (name, h) in enumerate(items):
        hist = _history(h, i)
        label = labels[i] if labels is not None else (name or hist.name or f"run {i + 1}")
        out.append((str(label), hist))
    return out


def as_tiers(alignment) -> tuple[dict[str, list[tuple[float, float, str, float]]], float | None]:
    """Tiers as ``{name: [(start, end, label, confidence), ...]}`` plus the duration if known.

    Accepts a ``vqalign.align.Alignment``, its ``to_dict()`` (the DESIGN.md JSON
    format), a plain ``{tier: [(start, end, label[, confidence]), ...]}`` dict,
    or a path to a ``.json`` / ``.TextGrid`` file written by vqalign.
    Empty labels (silences in TextGrids) are dropped.
    """
    duration = None
    if isinstance(alignment, (str, Path)):
        return read_tiers(alignment)
    if hasattr(alignment, "tiers") and not isinstance(alignment, Mapping):
        raw = alignment.tiers
        duration = getattr(alignment, "duration", None)
    elif isinstance(alignment, Mapping) and "tiers" in alignment:
        raw = alignment["tiers"]
        duration = alignment.get("duration")
    elif isinstance(alignment, Mapping):
        raw = alignment
    else:
        raise ParameterError(
            f"alignment is a {type(alignment).__name__}; pass a vqalign.align.Alignment, its "
            "to_dict(), a dict {tier: [(start, end, label), ...]} or a .json/.TextGrid path")
    tiers: dict[str, list[tuple[float, float, str, float]]] = {}
    for name, segs in raw.items():
        rows = []
        for j, seg in enumerate(segs):
            if hasattr(seg, "start"):
                s, e, lab = seg.start, seg.end, seg.label
                conf = getattr(seg, "confidence", math.nan)
            else:
                seg = list(seg)
                if len(seg) < 3:
                    raise ParameterError(f"tier {name!r} item {j} is {seg!r}; expected "
                                         "(start, end, label) or (start, end, label, confidence)")
                s, e, lab = seg[:3]
                conf = seg[3] if len(seg) > 3 else math.nan
            conf = math.nan if conf is None else float(conf)
            if not (math.isfinite(float(s)) and math.isfinite(float(e))) or float(e) < float(s):
                raise ParameterError(f"tier {name!r} item {j} has start={s}, end={e}; "
                                     "segments need finite times with start <= end")
            if str(lab).strip() == "":
                continue
            rows.append((float(s), float(e), str(lab), conf))
        tiers[str(name)] = rows
    if duration is None:
        ends = [r[1] for rows in tiers.values() for r in rows]
        duration = max(ends) if ends else None
    return tiers, (None if duration is None else float(duration))


def read_tiers(path) -> tuple[dict, float | None]:
    """Read tiers from a vqalign alignment ``.json`` or a ``.TextGrid``."""
    import json

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"alignment file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            d = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParameterError(f"{path} is not a vqalign alignment JSON file ({exc})") from None
        if not isinstance(d, dict) or "tiers" not in d:
            raise ParameterError(f"{path} has no 'tiers' key; expected the JSON written by "
                                 "vqalign align (Alignment.write)")
        return as_tiers(d)
    if suffix == ".textgrid":
        from vqalign.io.textgrid import read_textgrid

        tiers = read_textgrid(path)
        ends = [float(r[1]) for rows in tiers.values() for r in rows]
        t, _ = as_tiers(tiers)
        return t, (max(ends) if ends else None)
    raise ParameterError(f"{path}: unknown alignment format {path.suffix!r}; "
                         "use a .json or .TextGrid file written by vqalign")


def _order_tiers(tiers: dict, which) -> list[str]:
    if which is not None:
        missing = [w for w in which if w not in tiers]
        if missing:
            raise ParameterError(f"tier(s) {missing} not in the alignment; it has {list(tiers)}")
        return list(which)
    rank = {"words": 0, "phones": 1, "chars": 1}
    return sorted(tiers, key=lambda k: (rank.get(k, 2), k))


def pca_basis(X: np.ndarray, *, max_points: int = 20000, seed: int = 0):
    """Mean ``(D,)`` and the two leading principal axes ``(2, D)`` of ``X`` (subsampled)."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] > max_points:
        idx = np.random.default_rng(seed).choice(X.shape[0], max_points, replace=False)
        X = X[np.sort(idx)]
    mean = X.mean(axis=0)
    comps = np.zeros((2, X.shape[1]))
    if X.shape[1] == 1:
        comps[0, 0] = 1.0
        return mean, comps
    _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
    n = min(2, vt.shape[0])
    comps[:n] = vt[:n]
    # a deterministic sign: the largest loading of each axis is positive
    signs = np.sign(comps[np.arange(2), np.argmax(np.abs(comps), axis=1)])
    signs[signs == 0] = 1.0
    return mean, comps * signs[:, None]


def nearest_codes(X: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest code of each row (:func:`vqalign.lbg.encode`: blocked, never
    N x K at once).

    Parameters
    ----------
    X : ndarray, shape (N, D)
        Rows to encode.
    codebook : ndarray, shape (K, D)
        The codes.

    Returns
    -------
    ndarray, int32, shape (N,)
        The nearest code of each row.
    """
    from vqalign.lbg import encode

    return np.asarray(encode(np.ascontiguousarray(X, dtype=np.float32),
                             np.ascontiguousarray(codebook, dtype=np.float32)), dtype=np.int32)


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


MAX_IMAGE_COLUMNS = 6000  # frames drawn per image; longer inputs are max-pooled in time


def _pool_frames(M: np.ndarray, max_cols: int) -> np.ndarray:
    """Max-pool the rows (frames) of ``M`` so that at most ``max_cols`` remain."""
    n = M.shape[0]
    if n <= max_cols:
        return M
    edges = np.linspace(0, n, max_cols + 1).astype(np.int64)
    return np.maximum.reduceat(M, edges[:-1], axis=0)


# ----------------------------------------------------------------------------- waveform

def plot_waveform(audio, sr: int = FEATURE_SR, *, ax=None, color="#4c72b0", max_points: int = 4000,
                  offset: float = 0.0):
    """Waveform against time (s); long audio is drawn as its min/max envelope.

    Returns the ``PolyCollection`` (envelope) or the ``Line2D``.
    """
    y = check_audio(audio, sr, allow_silent=True)
    sr = check_sample_rate(sr)
    if ax is None:
        ax = _plt().subplots(figsize=(10, 2), layout="constrained")[1]
    if y.size <= max_points:
        t = offset + np.arange(y.size) / sr
        (art,) = ax.plot(t, y, color=color, lw=0.8)
    else:
        n_cols = max_points // 2
        edges = np.linspace(0, y.size, n_cols + 1).astype(np.int64)
        lo = np.minimum.reduceat(y, edges[:-1])
        hi = np.maximum.reduceat(y, edges[:-1])
        t = offset + (edges[:-1] + edges[1:]) / (2.0 * sr)
        art = ax.fill_between(t, lo, hi, color=color, lw=0.4)
    peak = float(np.max(np.abs(y))) or 1.0
    ax.set_ylim(-1.05 * peak, 1.05 * peak)
    ax.set_xlim(offset, offset + y.size / sr)
    ax.set_ylabel("amplitude")
    return art


# ----------------------------------------------------------------------------- tiers

def plot_tier(segments, *, ax=None, name: str | None = None, confidence: bool = True,
              cmap="RdYlGn", duration: float | None = None, fontsize: float | None = None,
              color: str = TIER_FILL):
    """One annotation tier as labelled boxes (Praat style); returns the ``BarContainer``.

    ``segments`` is ``[(start, end, label[, confidence]), ...]`` or ``Segment``s.
    With ``confidence=True`` boxes are coloured by confidence (``cmap``, 0 = red,
    1 = green); segments without a confidence (NaN) use the neutral fill.
    """
    plt = _plt()
    rows, _ = as_tiers({name or "tier": segments})
    rows = rows[name or "tier"]
    if ax is None:
        ax = plt.subplots(figsize=(10, 0.8), layout="constrained")[1]
    starts = np.array([r[0] for r in rows], dtype=float)
    ends = np.array([r[1] for r in rows], dtype=float)
    conf = np.array([r[3] for r in rows], dtype=float)
    cm = plt.get_cmap(cmap)
    colors = [cm(float(np.clip(c, 0, 1))) if confidence and np.isfinite(c) else color
              for c in conf]
    bars = ax.barh(0.5, ends - starts, left=starts, height=1.0, color=colors,
                   edgecolor="#333333", linewidth=0.6, alpha=0.85 if confidence else 1.0)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    if name:
        ax.set_ylabel(name, rotation=0, ha="right", va="center", labelpad=8)
    if duration is not None:
        ax.set_xlim(0, duration)
    _label_tier(ax, rows, fontsize)
    return bars


def _label_tier(ax, rows, fontsize=None):
    """Centre labels in their boxes, skipping those too narrow for their text."""
    if not rows:
        return
    fig = ax.figure
    x0, x1 = ax.get_xlim()
    if x1 <= x0:
        x0, x1 = min(r[0] for r in rows), max(r[1] for r in rows)
    width_px = ax.get_position().width * fig.get_figwidth() * fig.dpi
    px_per_s = width_px / max(x1 - x0, 1e-9)
    fs = fontsize or 8.5
    char_px = 0.62 * fs * fig.dpi / 72.0
    for s, e, lab, _ in rows:
        if (e - s) * px_per_s >= char_px * (len(lab) + 0.4):
            ax.text((s + e) / 2.0, 0.5, lab, ha="center", va="center", fontsize=fs,
                    clip_on=True)
        elif (e - s) * px_per_s >= char_px * 1.2:
            ax.text((s + e) / 2.0, 0.5, lab[0] + "·" if len(lab) > 1 else lab, ha="center",
                    va="center", fontsize=fs * 0.85, clip_on=True)


# ----------------------------------------------------------------------------- alignment

def plot_alignment(audio, sr: int, alignment, *, features: str | None = "spectrogram",
                   tiers: Sequence[str] | None = None, reference=None, confidence: bool = True,
                   boundaries: bool = True, fmax: float | None = None, n_mfcc: int = 13,
                   title: str | None = None, ax=None, figsize=(11, 6)):
    """Waveform, spectrogram (or MFCC) and the alignment's tiers on one time axis.

    Parameters
    ----------
    audio, sr : mono float waveform and its sample rate.
    alignment : ``vqalign.align.Alignment``, its ``to_dict()``, ``{tier: [(start,
        end, label[, confidence]), ...]}``, or a ``.json``/``.TextGrid`` path.
    features : ``"spectrogram"`` (power in dB), ``"mfcc"`` or ``None``.
    tiers : tier names to draw, in order (default: words, then phones/chars, then others).
    reference : optional second alignment (e.g. the synthesizer's exact times);
        its tiers are drawn below, prefixed ``ref ``, without confidence colours and
        with silence labels (``sil``, ``sp``, ...) left as gaps.
    confidence : colour boxes by segment confidence (red = low, green = high).
    boundaries : draw the last tier's boundaries over the spectrogram.
    ax : None, or one Axes per panel (waveform, features if any, each tier).

    Returns
    -------
    dict ``{"waveform": artist, "spectrogram"|"mfcc": AxesImage, <tier>: BarContainer}``.
    """
    y = check_audio(audio, sr, allow_silent=True)
    sr = check_sample_rate(sr)
    tier_rows, _ = as_tiers(alignment)
    names = _order_tiers(tier_rows, tiers)
    ref_rows = {}
    if reference is not None:
        r, _ = as_tiers(reference)
        # silences are gaps, as in vqalign's own alignments (the synthesizer labels them)
        ref_rows = {f"ref {k}": [x for x in r[k] if x[2].lower() not in SILENCE_LABELS]
                    for k in _order_tiers(r, None)}
    if features not in (None, "spectrogram", "mfcc"):
        raise ParameterError(f"features={features!r}; use 'spectrogram', 'mfcc' or None")
    panels = ["waveform"] + ([features] if features else []) + names + list(ref_rows)
    ratios = [1.3] + ([3.2] if features else []) + [0.55] * (len(names) + len(ref_rows))
    axs = _axes_list(ax, len(panels), figsize=figsize, height_ratios=ratios)
    dur = y.size / sr
    out = {}
    out["waveform"] = plot_waveform(y, sr, ax=axs[0])
    axs[0].set_ylabel("wave")
    i = 1
    if features:
        from vqalign.plots._stages import power_db

        hop_s = 0.010
        if features == "spectrogram":
            db, freqs = power_db(y, sr, hop_length=hop_s)
            fmax_v = sr / 2 if fmax is None else float(fmax)
            keep = freqs <= fmax_v
            img = _pool_frames(db[:, keep], MAX_IMAGE_COLUMNS)
            mesh = axs[i].imshow(img.T, origin="lower", aspect="auto", cmap="magma",
                                 interpolation="nearest",
                                 extent=(-0.5 * hop_s, (db.shape[0] - 0.5) * hop_s,
                                         0.0, freqs[keep][-1] / 1000.0))
            axs[i].set_ylabel("kHz")
        else:
            from vqalign.features import mfcc as _mfcc

            M = _mfcc(y, sr, n_mfcc=n_mfcc, hop_length=hop_s)
            img = _pool_frames(M, MAX_IMAGE_COLUMNS)
            body = M[:, 1:] if M.shape[1] > 1 else M
            lim = float(np.percentile(np.abs(body), 99)) or 1.0
            mesh = axs[i].imshow(img.T, origin="lower", aspect="auto", cmap="coolwarm",
                                 vmin=-lim, vmax=lim, interpolation="nearest",
                                 extent=(-0.5 * hop_s, (M.shape[0] - 0.5) * hop_s,
                                         -0.5, M.shape[1] - 0.5))
            axs[i].set_ylabel("MFCC")
        out[features] = mesh
        if boundaries and names:
            edges = sorted({r[0] for r in tier_rows[names[-1]]} | {r[1] for r in tier_rows[names[-1]]})
            axs[i].vlines(edges, *axs[i].get_ylim(), colors="white", linewidth=0.6, alpha=0.55)
        i += 1
    for name in names + list(ref_rows):
        rows = tier_rows.get(name, ref_rows.get(name))
        axs[i].set_xlim(0, dur)
        out[name] = plot_tier(rows, ax=axs[i], name=name,
                              confidence=confidence and name in tier_rows, duration=dur,
                              color=TIER_FILL if name in tier_rows else "#eeeeee")
        i += 1
    for a in axs:
        a.set_xlim(0, dur)
    for a in axs[:-1]:
        a.tick_params(labelbottom=False)
    shaded = confidence and any(math.isfinite(r[3]) for k in names for r in tier_rows[k])
    axs[-1].set_xlabel("time (s)" + ("        box colour = confidence: red 0 … yellow 0.5 … "
                                     "green 1" if shaded else ""))
    if title:
        axs[0].set_title(title)
    return out


# ----------------------------------------------------------------------------- HMM maps

def _state_labels(labels, n_states: int):
    if labels is None:
        return None
    labels = [str(x) for x in labels]
    if len(labels) != n_states:
        raise ParameterError(f"{len(labels)} state labels for {n_states} states; pass one "
                             "label per state (or None)")
    return labels


def _state_axis(ax, labels, n_states: int, max_ticks: int = 40):
    if labels is None:
        ax.set_ylabel("HMM state")
        return
    # one tick per run of states of one unit ("AH.0", "AH.1", "AH.2" -> "AH"), at its middle
    labels = [lab.rsplit(".", 1)[0] if lab.rsplit(".", 1)[-1].isdigit() else lab
              for lab in labels]
    change = np.flatnonzero(np.r_[True, np.array(labels[1:]) != np.array(labels[:-1])])
    ends = np.r_[change[1:], n_states]
    mids = (change + ends - 1) / 2.0
    step = max(1, math.ceil(len(change) / max_ticks))
    ax.set_yticks(mids[::step])
    ax.set_yticklabels([labels[c] for c in change[::step]], fontsize=7)
    ax.set_ylabel("state (unit)")


def _observation_input(log_emit, path, labels, hop_s):
    if isinstance(log_emit, Mapping):
        d = log_emit
        log_emit = d.get("log_emit")
        path = d.get("path") if path is None else path
        labels = d.get("labels") if labels is None else labels
        hop_s = d.get("hop_s", hop_s) if hop_s is None else hop_s
        if log_emit is None:
            raise ParameterError("the observations dict has no 'log_emit' (T, S) array; pass "
                                 "the dict returned by Aligner.observations(audio, transcript)")
    return log_emit, path, labels, (0.010 if hop_s is None else float(hop_s))


def _check_map(M, name):
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.size == 0:
        raise ParameterError(f"{name} must be a 2-D (n_frames, n_states) array, got shape {M.shape}")
    return M


def _check_path(path, T, S):
    if path is None:
        return None
    p = np.asarray(path)
    if p.ndim != 1 or p.shape[0] != T:
        raise ParameterError(f"path has shape {p.shape} but the map has {T} frames; pass one "
                             "state index per frame")
    if p.size and (p.min() < 0 or p.max() >= S):
        raise ParameterError(f"path holds state indices {p.min()}..{p.max()} outside 0..{S - 1}")
    return p.astype(np.int64)


def plot_observations(log_emit, path=None, *, labels=None, hop_s: float | None = None,
                      normalize: str | None = "frame", floor: float = -40.0, ax=None,
                      cmap="viridis", path_color="#ff3b3b", title=None):
    """The state x frame log-likelihood map with the Viterbi path drawn on it.

    ``log_emit`` is ``(T, S)`` (frames x states) or the dict from
    ``Aligner.observations(audio, transcript)`` (keys ``log_emit``, ``path``,
    ``labels``, ``hop_s``). ``normalize="frame"`` subtracts each frame's best
    state (so loud and quiet frames share one scale) and clips at ``floor``;
    ``None`` shows raw values. Returns the ``AxesImage``.
    """
    log_emit, path, labels, hop_s = _observation_input(log_emit, path, labels, hop_s)
    M = _check_map(log_emit, "log_emit")
    T, S = M.shape
    p = _check_path(path, T, S)
    labels = _state_labels(labels, S)
    if normalize not in (None, "frame"):
        raise ParameterError(f"normalize={normalize!r}; use 'frame' or None")
    finite = np.isfinite(M)
    if not finite.any():
        raise ParameterError("log_emit has no finite value to show")
    M = np.where(finite, M, np.nanmin(np.where(finite, M, np.nan)))
    if normalize == "frame":
        M = np.maximum(M - M.max(axis=1, keepdims=True), floor)
        clabel = "log-likelihood − frame max"
    else:
        clabel = "log-likelihood"
    if ax is None:
        ax = _plt().subplots(figsize=(10, 4.5), layout="constrained")[1]
    img = ax.imshow(M.T, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest",
                    extent=(-0.5 * hop_s, (T - 0.5) * hop_s, -0.5, S - 0.5))
    if p is not None:
        ax.plot(np.arange(T) * hop_s, p, color=path_color, lw=1.4, drawstyle="steps-mid",
                label="Viterbi path")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    _state_axis(ax, labels, S)
    ax.set_xlabel("time (s)")
    ax.figure.colorbar(img, ax=ax, label=clabel, pad=0.01)
    ax.set_title(title or "observation log-likelihoods")
    return img


def plot_posteriors(posteriors, path=None, *, labels=None, hop_s: float = 0.010, ax=None,
                    cmap="Greys", path_color="#ff3b3b", title=None):
    """State occupation posteriors ``gamma`` (T, S) in [0, 1], optionally with a path.

    Returns the ``AxesImage``.
    """
    G = _check_map(posteriors, "posteriors")
    T, S = G.shape
    if np.nanmin(G) < -1e-6 or np.nanmax(G) > 1 + 1e-6:
        raise ParameterError(f"posteriors range {np.nanmin(G):.3g}..{np.nanmax(G):.3g} is not "
                             "within [0, 1]; pass probabilities (exp of log-posteriors)")
    p = _check_path(path, T, S)
    labels = _state_labels(labels, S)
    if ax is None:
        ax = _plt().subplots(figsize=(10, 4.5), layout="constrained")[1]
    img = ax.imshow(G.T, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=1,
                    interpolation="nearest",
                    extent=(-0.5 * hop_s, (T - 0.5) * hop_s, -0.5, S - 0.5))
    if p is not None:
        ax.plot(np.arange(T) * hop_s, p, color=path_color, lw=1.0, alpha=0.8,
                drawstyle="steps-mid", label="Viterbi path")
        ax.legend(loc="upper left", fontsize=8)
    _state_axis(ax, labels, S)
    ax.set_xlabel("time (s)")
    ax.figure.colorbar(img, ax=ax, label="posterior P(state | audio)", pad=0.01)
    ax.set_title(title or "state posteriors")
    return img


# ----------------------------------------------------------------------------- codebooks

def plot_codebook(X, codebook, *, counts=None, ax=None, max_points: int = 5000, seed: int = 0,
                  title: str | None = None, figsize=(11, 4.5)):
    """Data and codes in the data's 2-D PCA projection, beside the code-usage histogram.

    ``X`` (N, D) frames, ``codebook`` (K, D). ``counts`` (K,) code usage; if
    omitted it is computed from the nearest code of every row of ``X`` (blocked,
    via ``vqalign.lbg.encode`` when available). Codes used by no row are dead:
    red crosses in the projection, red bars in the histogram.

    Returns ``{"data": PathCollection, "codes": PathCollection, "usage": BarContainer}``
    (plus ``"dead"`` when some codes are dead).
    """
    X = check_features(X, name="X")
    C = check_features(codebook, name="codebook", n_features=X.shape[1])
    K = C.shape[0]
    if counts is None:
        counts = np.bincount(nearest_codes(X, C), minlength=K)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (K,):
        raise ParameterError(f"counts has shape {counts.shape} but the codebook has {K} codes")
    axs = _axes_list(ax, 2, figsize=figsize, ncols=2)
    mean, comps = pca_basis(X, seed=seed)
    idx = _subsample(X.shape[0], max_points, seed)
    P = (X[idx] - mean) @ comps.T
    Q = (C - mean) @ comps.T
    dead = counts == 0
    out = {}
    out["data"] = axs[0].scatter(P[:, 0], P[:, 1], s=3, c="#9aa7b8", alpha=0.35, lw=0,
                                 rasterized=True, label=f"data ({X.shape[0]} frames)")
    size = 12 + 80 * np.sqrt(counts / max(counts.max(), 1.0))
    live = ~dead
    out["codes"] = axs[0].scatter(Q[live, 0], Q[live, 1], s=size[live], c=COLORS[0],
                                  edgecolors="white", linewidths=0.6,
                                  label=f"codes (K={K}, size ~ usage)")
    if dead.any():
        out["dead"] = axs[0].scatter(Q[dead, 0], Q[dead, 1], s=45, marker="x", c=DEAD,
                                     linewidths=1.6, label=f"dead codes ({int(dead.sum())})")
    axs[0].set_xlabel("PC 1")
    axs[0].set_ylabel("PC 2")
    axs[0].legend(loc="best", fontsize=8, framealpha=0.85)
    axs[0].set_title("data and codes (PCA)")
    order = np.argsort(-counts, kind="stable")
    share = counts[order] / max(counts.sum(), 1.0)
    cols = np.where(dead[order], DEAD, COLORS[0])
    out["usage"] = axs[1].bar(np.arange(K), share, width=1.0, color=cols, lw=0)
    if dead.any():
        axs[1].bar(np.flatnonzero(dead[order]), np.full(int(dead.sum()), share.max() * 0.02),
                   width=1.0, color=DEAD, lw=0)
    from vqalign.history import code_usage_stats

    st = code_usage_stats(counts)
    axs[1].axhline(1.0 / K, color="#555555", ls="--", lw=0.8, label="uniform 1/K")
    axs[1].set_xlabel("codes, most used first")
    axs[1].set_ylabel("share of frames")
    axs[1].set_xlim(-0.5, K - 0.5)
    axs[1].set_title(f"usage: entropy {st['entropy']:.2f} / log K {st['log_k']:.2f} nats, "
                     f"{100 * st['utilization']:.0f}% used", fontsize=10)
    axs[1].legend(loc="upper right", fontsize=8)
    if title:
        axs[0].figure.suptitle(title)
    return out


# ----------------------------------------------------------------------------- histories

HISTORY_METRICS = ("loss", "entropy", "utilization", "log_likelihood")
_YLABEL = {"loss": "loss (MSE / −log-lik per frame)", "entropy": "code entropy (nats)",
           "utilization": "codes used", "log_likelihood": "log-likelihood per frame",
           "perplexity": "perplexity", "dead_reseeded": "dead codes re-seeded"}


def _has(h: History, col: str) -> bool:
    if col not in h.columns or len(h) == 0:
        return False
    v = h[col]
    return v.dtype != object and bool(np.isfinite(v).any())


def _loss_is_neg_ll(h: History) -> bool:
    if not (_has(h, "loss") and _has(h, "log_likelihood")):
        return False
    loss, ll = h["loss"], h["log_likelihood"]
    ok = np.isfinite(loss) & np.isfinite(ll)
    return bool(ok.any()) and np.allclose(loss[ok], -ll[ok], rtol=1e-6, atol=1e-9)


def plot_history(histories, *, metrics: Sequence[str] | None = None, labels=None,
                 x: str = "step", ax=None, logy: bool | None = None, figsize=None,
                 title: str | None = None):
    """Learning curves of one or several runs on one figure.

    ``histories``: a ``History``, its ``to_dict()``, a fitted estimator with
    ``history_``, an alignment holding ``diagnostics["em_history"]``, or a list /
    ``{label: history}`` dict of those. ``metrics`` defaults to those among
    loss, entropy, utilization and log_likelihood that any run recorded.
    A loss that is only the negative log-likelihood (EM) is not drawn twice.
    Entropy is drawn against log K when K changes (the dashed diagonal is
    uniform use of all codes), else against the steps with log K dashed; the
    others against ``x`` (``"step"``, ``"samples_seen"`` or ``"seconds"``).
    Returns ``{metric: [Line2D per run]}``.
    """
    runs = as_histories(histories, labels)
    if metrics is None:
        # EM's loss is its negative log-likelihood: one panel is enough
        metrics = [m for m in HISTORY_METRICS
                   if any(_has(h, m) and not (m == "loss" and _loss_is_neg_ll(h))
                          for _, h in runs)]
        if not metrics:
            raise ParameterError("none of the histories recorded loss, entropy, utilization "
                                 f"or log_likelihood; columns: {runs[0][1].columns}")
    else:
        metrics = list(metrics)
        for m in metrics:
            if not any(_has(h, m) for _, h in runs):
                raise ParameterError(f"no history recorded {m!r}; recorded columns: "
                                     f"{[c for c in runs[0][1].columns if _has(runs[0][1], c)]}")
    for _, h in runs:
        if x not in h.columns:
            raise ParameterError(f"x={x!r} is not a history column; use 'step', "
                                 "'samples_seen' or 'seconds'")
    n = len(metrics)
    ncols = n if n <= 3 else 2
    if figsize is None:
        figsize = (5.5 * ncols if ncols < 3 else 15, 3.8 * math.ceil(n / ncols))
    axs = _axes_list(ax, n, figsize=figsize, ncols=ncols, sharex=False)
    out: dict[str, list] = {}
    xlabel = {"step": "step", "samples_seen": "training samples seen",
              "seconds": "seconds"}.get(x, x)
    lk = np.concatenate([h["log_k"] for _, h in runs if _has(h, "log_k")] or [np.empty(0)])
    lk = lk[np.isfinite(lk)]
    # entropy against log K when K changes (LBG doublings); otherwise against the steps
    vs_log_k = bool(lk.size) and np.unique(lk).size > 1
    for a, m in zip(axs, metrics):
        lines = []
        for j, (label, h) in enumerate(runs):
            if not _has(h, m):
                continue
            color = COLORS[j % len(COLORS)]
            y = h[m]
            if m == "entropy" and vs_log_k:
                xs = h["log_k"] if _has(h, "log_k") else np.full(len(h), np.nan)
                ln, = a.plot(xs, y, "o-", color=color, ms=3.5, lw=1.2, label=label)
            else:
                xs = h[x]
                ln, = a.plot(xs, y, "-", color=color, lw=1.5, label=label,
                             marker="o" if len(y) <= 40 else None, ms=3)
            lines.append(ln)
        if m == "entropy" and vs_log_k:
            lo, hi = float(lk.min()), float(lk.max())
            a.plot([lo, hi], [lo, hi], ls="--", color="#555555", lw=0.9,
                   label="H = log K (uniform use)")
            a.set_xlabel("log K (nats)")
        else:
            if m == "entropy" and lk.size:
                for v in np.unique(lk):
                    a.axhline(v, ls="--", color="#555555", lw=0.9)
                a.plot([], [], ls="--", color="#555555", lw=0.9, label="log K (uniform use)")
            a.set_xlabel(xlabel)
            if x == "samples_seen":
                a.set_xscale("log")
        if m == "utilization":
            a.set_ylim(0, 1.05)
            a.yaxis.set_major_formatter(_plt().FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
        if m == "loss":
            vals = np.concatenate([h["loss"][np.isfinite(h["loss"])] for _, h in runs
                                   if _has(h, "loss")])
            use_log = logy if logy is not None else bool(vals.size and vals.min() > 0
                                                         and vals.max() / vals.min() > 8)
            if use_log:
                a.set_yscale("log")
        a.set_ylabel(_YLABEL.get(m, m))
        a.grid(alpha=0.3)
        if len(runs) > 1 or m == "entropy":
            a.legend(fontsize=8)
        out[m] = lines
    if title:
        axs[0].figure.suptitle(title)
    return out
