"""Animations of learning and feature extraction (matplotlib ``FuncAnimation``).

* :func:`animate_lbg`  -- LBG doublings: codes moving over the data (PCA),
  dead codes flagged, loss / entropy-vs-log K / utilization curves growing.
* :func:`animate_em`   -- an utterance's unit boundaries at each EM step beside
  the log-likelihood curve.
* :func:`animate_mfcc` -- waveform -> frame -> window -> power spectrum -> mel
  -> log -> DCT, frame by frame.
* :func:`save`         -- GIF (pillow) or MP4 (ffmpeg, via imageio-ffmpeg), atomically.

One figure is drawn per animation and its artists are updated in place; the
frames shown are a subsample of at most ``max_frames`` steps, so memory and
file size stay bounded however long the run was. GIF frames are kept as
8-bit palette images while writing (a quarter of the RGBA size).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vqalign._validation import check_audio, check_features, check_positive_int, check_sample_rate
from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR
from vqalign.plots.static import (
    COLORS,
    DEAD,
    _has,
    _history,
    _plt,
    as_tiers,
    nearest_codes,
    pca_basis,
)

DEFAULT_DPI = 72


# ----------------------------------------------------------------------------- saving

def _ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or installed without its binary
        return shutil.which("ffmpeg")


def _render_frames(anim, dpi):
    """Yield each frame of one of our animations as an (H, W, 3) uint8 array.

    The static parts (axes, ticks, labels, the data cloud) are drawn once; for
    each frame the background is restored and only the artists the update
    function returns are drawn on it (every axis limit is fixed up front, so
    nothing else changes between frames).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = anim._fig
    old_canvas, old_dpi = fig.canvas, fig.dpi
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    seen = []
    try:
        arts = anim.vq_update(anim.vq_frames[0]) or []
        for a in arts:
            a.set_animated(True)
        seen.extend(arts)
        canvas.draw()
        background = canvas.copy_from_bbox(fig.bbox)
        for d in anim.vq_frames:
            canvas.restore_region(background)
            arts = anim.vq_update(d) or []
            for a in arts:
                a.set_animated(True)
                fig.draw_artist(a)
            seen.extend(arts)
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        for a in seen:
            a.set_animated(False)
        fig.set_dpi(old_dpi)
        fig.set_canvas(old_canvas)
        anim._draw_was_started = True


def _write_gif(frames, path, fps):
    from PIL import Image

    # palette images: a quarter of the memory of RGBA frames
    images = [Image.fromarray(f).quantize(colors=256, method=Image.Quantize.FASTOCTREE)
              for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=max(20, int(round(1000.0 / fps))), loop=0)


def _write_mp4(frames, path, fps, exe):
    import subprocess

    proc = None
    try:
        for f in frames:
            if proc is None:
                h, w = f.shape[:2]
                cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                       "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-", "-vf",
                       "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt",
                       "yuv420p", "-f", "mp4", str(path)]
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            proc.stdin.write(np.ascontiguousarray(f).tobytes())
    finally:
        if proc is not None:
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0:
                raise ParameterError(f"ffmpeg ({exe}) failed to write {path}: {err.strip()[-400:]}")


def save(anim, path, *, fps: float | None = None, dpi: float | None = None,
         overwrite: bool = False) -> Path:
    """Write an animation to ``path``: ``.gif`` with pillow, ``.mp4`` with ffmpeg.

    The writer is chosen by suffix. MP4 needs an ffmpeg binary (``pip install
    imageio-ffmpeg``, or ffmpeg on PATH). The file is written beside ``path``
    and renamed into place only when complete; an existing ``path`` is kept
    unless ``overwrite=True``. Animations made by this module are rendered with
    one draw per frame; any other ``FuncAnimation`` goes through matplotlib's
    writers. Returns the path.
    """
    from vqalign.io.atomic import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    fps = float(fps or getattr(anim, "vq_fps", None) or 5)
    if not (fps > 0 and math.isfinite(fps)):
        raise ParameterError(f"fps={fps} must be a positive number of frames per second")
    dpi = float(dpi or getattr(anim, "vq_dpi", None) or DEFAULT_DPI)
    exe = None
    if suffix == ".mp4":
        exe = _ffmpeg_exe()
        if exe is None:
            raise ParameterError(
                f"cannot write {path}: MP4 needs ffmpeg, which was not found; install it with "
                "`pip install imageio-ffmpeg` (or put ffmpeg on PATH), or save as .gif")
    elif suffix != ".gif":
        raise ParameterError(f"cannot write {path}: unknown animation format {path.suffix!r}; "
                             "use .gif (pillow) or .mp4 (ffmpeg)")
    if path.exists() and not overwrite:
        raise ParameterError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vqalign-anim-", dir=path.parent) as tmp:
        tmp_file = Path(tmp) / f"anim{suffix}"
        if hasattr(anim, "vq_frames"):
            frames = _render_frames(anim, dpi)
            if suffix == ".gif":
                _write_gif(frames, tmp_file, fps)
            else:
                _write_mp4(frames, tmp_file, fps, exe)
        else:
            from matplotlib.animation import FFMpegWriter, PillowWriter

            if suffix == ".gif":
                writer = PillowWriter(fps=fps)
            else:
                import matplotlib as mpl

                mpl.rcParams["animation.ffmpeg_path"] = exe
                writer = FFMpegWriter(fps=fps, extra_args=["-pix_fmt", "yuv420p"])
            anim.save(str(tmp_file), writer=writer, dpi=dpi)
        with open(tmp_file, "rb") as src, atomic_write(path, "wb", overwrite=overwrite) as dst:
            shutil.copyfileobj(src, dst)
    return path


def _finish(fig, update, frames, fps, dpi=DEFAULT_DPI):
    from matplotlib.animation import FuncAnimation

    fps = float(fps)
    if not (fps > 0 and math.isfinite(fps)):
        raise ParameterError(f"fps={fps} must be a positive number of frames per second")
    frames = [int(f) for f in frames]
    # lay the figure out once, on its first frame, then freeze the layout: a
    # constrained layout recomputed for every frame costs more than the drawing
    update(frames[0])
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    fig.set_layout_engine("none")
    anim = FuncAnimation(fig, update, frames=frames, interval=1000.0 / fps, blit=False,
                         repeat=True, cache_frame_data=False)
    anim._draw_was_started = True  # the first frame was drawn above
    anim.vq_fps = fps
    anim.vq_dpi = dpi
    anim.vq_frames = frames
    anim.vq_update = update
    anim.vq_n_frames = len(frames)
    return anim


def pick_frames(n: int, max_frames: int, keep: Sequence[int] = ()) -> np.ndarray:
    """At most ``max_frames`` indices of ``range(n)``: first, last, ``keep`` (if room), evenly."""
    max_frames = check_positive_int(max_frames, "max_frames")
    if n <= max_frames:
        return np.arange(n)
    keep = sorted({0, n - 1, *[int(k) for k in keep if 0 <= k < n]})
    if len(keep) >= max_frames:
        sel = np.asarray(keep)[np.unique(np.linspace(0, len(keep) - 1, max_frames).round()
                                         .astype(int))]
        return np.asarray(sel)
    rest = max_frames - len(keep)
    others = np.setdiff1d(np.arange(n), keep)
    extra = others[np.unique(np.linspace(0, others.size - 1, rest).round().astype(int))]
    return np.union1d(keep, extra)


# ----------------------------------------------------------------------------- LBG

def _snapshots_and_history(model, history):
    if hasattr(model, "snapshots_"):
        snaps = model.snapshots_
        history = getattr(model, "history_", None) if history is None else history
    elif isinstance(model, Mapping) and "snapshots" in model:
        snaps = model["snapshots"]
        history = model.get("history") if history is None else history
    else:
        snaps = model
    if snaps is None or len(snaps) == 0:
        raise ParameterError(
            "no codebook snapshots to animate; fit with snapshots kept, e.g. "
            "VectorQuantizer(method='lbg', keep_snapshots=60).fit(X), and pass that model")
    out = []
    for i, s in enumerate(snaps):
        if isinstance(s, Mapping):
            step, level, cb = s.get("step", i), s.get("level", 0), s.get("codebook")
        else:
            try:
                step, level, cb = s
            except (TypeError, ValueError):
                raise ParameterError(f"snapshot {i} is not a (step, level, codebook) triple") from None
        cb = np.asarray(cb, dtype=np.float32)
        if cb.ndim != 2:
            raise ParameterError(f"snapshot {i} holds a codebook of shape {cb.shape}; expected (K, D)")
        out.append((int(step), int(level), cb))
    hist = _history(history) if history is not None else None
    return out, hist


def animate_lbg(model, X, *, history=None, fps: float = 4, max_frames: int = 60,
                max_points: int = 3000, seed: int = 0, figsize=(11, 6),
                dpi: int = DEFAULT_DPI, title: str = "LBG"):
    """Animate LBG: one frame per refinement step across the doublings.

    ``model`` is a fitted ``VectorQuantizer(method="lbg", keep_snapshots=N)``
    (its ``snapshots_`` ``[(step, level, codebook)]`` and ``history_`` are read),
    or the snapshot list itself (then pass ``history=``). ``X`` (N, D) is the
    training data, shown in its 2-D PCA projection (``max_points`` of it drawn;
    code usage is counted on up to 20,000 rows). Dead codes (used by no row)
    are red crosses. At most ``max_frames`` snapshots are shown, keeping the
    first of each doubling level when possible. Returns the ``FuncAnimation``.
    """
    snaps, hist = _snapshots_and_history(model, history)
    X = check_features(X, name="X", n_features=snaps[0][2].shape[1])
    plt = _plt()
    mean, comps = pca_basis(X, seed=seed)
    rng = np.random.default_rng(seed)
    show = X if X.shape[0] <= max_points else X[np.sort(rng.choice(X.shape[0], max_points,
                                                                     replace=False))]
    count_rows = X if X.shape[0] <= 20000 else X[np.sort(rng.choice(X.shape[0], 20000,
                                                                      replace=False))]
    P = (show - mean) @ comps.T
    level_starts = [i for i in range(len(snaps)) if i == 0 or snaps[i][1] != snaps[i - 1][1]]
    frames = pick_frames(len(snaps), max_frames, keep=level_starts)
    # everything a frame needs, computed once (frames are few)
    proj, counts = {}, {}
    for i in frames:
        cb = snaps[i][2]
        proj[i] = (cb - mean) @ comps.T
        counts[i] = np.bincount(nearest_codes(count_rows, cb), minlength=cb.shape[0])
    allq = np.concatenate([proj[i] for i in frames] + [P])
    lo, hi = np.percentile(allq, [0.5, 99.5], axis=0)
    pad = 0.08 * (hi - lo + 1e-9)

    fig = plt.figure(figsize=figsize, layout="constrained")
    curves = []
    if hist is not None:
        curves = [m for m in ("loss", "entropy", "utilization") if _has(hist, m)]
    n_right = max(len(curves), 1)
    gs = fig.add_gridspec(n_right, 2, width_ratios=[1.35, 1])
    ax = fig.add_subplot(gs[:, 0])
    ax.scatter(P[:, 0], P[:, 1], s=5, c="#7f8ea3", alpha=0.45, lw=0, rasterized=True,
               label=f"data ({X.shape[0]} frames)")
    ghost = ax.scatter([], [], s=22, facecolors="none", edgecolors="#1f77b4", alpha=0.6,
                       linewidths=0.8, label="codes one frame earlier")
    live = ax.scatter([], [], s=30, c=COLORS[0], edgecolors="white", linewidths=0.6,
                      label="codes (size ~ usage)")
    dead = ax.scatter([], [], s=50, marker="x", c=DEAD, linewidths=1.8, label="dead codes")
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    head = ax.set_title(title)

    right = {}
    if hist is not None and curves:
        steps = hist["step"]
        for r, m in enumerate(curves):
            a = fig.add_subplot(gs[r, 1])
            y = hist[m]
            xs = hist["log_k"] if m == "entropy" and _has(hist, "log_k") else steps
            a.plot(xs, y, color="#cccccc", lw=1.0)  # the whole run, faint
            (grow,) = a.plot([], [], color=COLORS[r + 1 if r else 0], lw=1.8,
                             marker="o" if m == "entropy" else None, ms=3)
            (dot,) = a.plot([], [], "o", color="black", ms=5)
            if m == "entropy":
                lk = xs[np.isfinite(xs)]
                if lk.size:
                    a.plot([lk.min(), lk.max()], [lk.min(), lk.max()], "--", color="#777777",
                           lw=0.8, label="H = log K")
                    a.legend(fontsize=7, loc="upper left")
                a.set_xlabel("log K (nats)")
                a.set_ylabel("entropy (nats)")
            else:
                a.set_xlabel("step")
                a.set_ylabel({"loss": "loss (MSE)", "utilization": "codes used"}[m])
                if m == "loss":
                    fin = y[np.isfinite(y)]
                    if fin.size and fin.min() > 0 and fin.max() / fin.min() > 8:
                        a.set_yscale("log")
                if m == "utilization":
                    a.set_ylim(0, 1.05)
            a.grid(alpha=0.3)
            right[m] = (grow, dot, xs, y, steps)
    elif hist is None:
        a = fig.add_subplot(gs[0, 1])
        a.text(0.5, 0.5, "no history given", ha="center", va="center", transform=a.transAxes)
        a.set_axis_off()
    # the codes of the previously shown frame, whatever order frames are drawn in
    before = {int(f): (int(frames[j - 1]) if j else None) for j, f in enumerate(frames)}

    def update(i):
        step, level, cb = snaps[i]
        q = proj[i]
        c = counts[i]
        is_dead = c == 0
        size = 14 + 90 * np.sqrt(c / max(c.max(), 1))
        b = before.get(int(i))
        ghost.set_offsets(proj[b] if b is not None else np.empty((0, 2)))
        live.set_offsets(q[~is_dead])
        live.set_sizes(size[~is_dead])
        dead.set_offsets(q[is_dead] if is_dead.any() else np.empty((0, 2)))
        k = cb.shape[0]
        head.set_text(f"{title}: level {level}, K = {k}, step {step}"
                      f"  |  dead codes: {int(is_dead.sum())}")
        for grow, dot, xs, y, steps in right.values():
            m = steps <= step
            grow.set_data(xs[m], y[m])
            if m.any():
                j = np.flatnonzero(m)[-1]
                dot.set_data([xs[j]], [y[j]])
        return [ghost, live, dead, head] + [a for g, d, *_ in right.values() for a in (g, d)]

    return _finish(fig, update, frames, fps, dpi)


# ----------------------------------------------------------------------------- EM

def _em_input(em, history):
    diag = None
    tiers = None
    if hasattr(em, "diagnostics") and not isinstance(em, Mapping):
        diag = em.diagnostics
        tiers, _ = as_tiers(em)
    elif isinstance(em, Mapping) and "diagnostics" in em:
        diag = em["diagnostics"]
        tiers, _ = as_tiers(em) if "tiers" in em else (None, None)
    elif isinstance(em, Mapping) and "em_paths" in em:
        diag = em
    step_labels = None
    if diag is not None:
        paths = diag.get("em_paths")
        step_labels = diag.get("em_labels")
        if history is None:
            history = diag.get("em_history")
    else:
        paths = em
    if paths is None or len(paths) == 0:
        raise ParameterError(
            "no EM paths to animate; align with Aligner(keep_paths=True) so that "
            "alignment.diagnostics['em_paths'] holds each EM step's boundaries")
    if step_labels is None or len(step_labels) != len(paths):
        step_labels = [p.get("labels") if isinstance(p, Mapping) else None for p in paths]
    return paths, history, tiers, step_labels


def _edges_of(step_path, duration):
    """Unit edges (0 ... duration) of one EM step's boundary list."""
    if isinstance(step_path, Mapping):
        b = step_path.get("boundaries", step_path.get("times"))
    else:
        b = step_path
    b = np.sort(np.asarray(b, dtype=float).ravel())
    b = b[np.isfinite(b)]
    if b.size == 0 or b[0] > 1e-6:
        b = np.r_[0.0, b]
    if duration is not None and b[-1] < duration - 1e-6:
        b = np.r_[b, duration]
    return b


def animate_em(em, *, audio=None, sr: int = FEATURE_SR, history=None, reference=None,
               labels: Sequence[str] | None = None, fps: float = 3, max_frames: int = 30,
               figsize=(11, 6), dpi: int = DEFAULT_DPI, title: str = "EM"):
    """Animate an utterance's alignment across EM steps beside the log-likelihood.

    ``em`` is an ``Alignment`` made with ``Aligner(keep_paths=True)`` (or its
    ``to_dict()``, or its ``diagnostics`` dict), whose ``diagnostics["em_paths"]``
    holds per EM step the unit boundary times (s) and ``["em_history"]`` the
    History (and, if present, ``["em_labels"]`` the unit labels of each step);
    or the list of per-step boundary lists itself. With ``audio`` the
    boundaries are drawn on its spectrogram. Each frame shows the current path
    (unit index against time) over the first step's path and the final one;
    ``reference`` (tiers, e.g. the synthesizer's exact phones) adds the true
    boundaries. Returns the ``FuncAnimation``.
    """
    paths, history, tiers, step_labels = _em_input(em, history)
    hist = _history(history) if history is not None else None
    duration = None
    if audio is not None:
        y = check_audio(audio, sr, allow_silent=True)
        sr = check_sample_rate(sr)
        duration = y.size / sr
    elif tiers:
        duration = max((r[1] for rows in tiers.values() for r in rows), default=None)
    edges = [_edges_of(p, duration) for p in paths]
    if duration is None:
        duration = max(float(e[-1]) for e in edges)
        edges = [_edges_of(p, duration) for p in paths]
    n_units = len(edges[-1]) - 1
    if labels is None:
        if step_labels[-1] is not None:
            labels = list(step_labels[-1])
        elif tiers:
            unit_tier = next((tiers[k] for k in ("phones", "chars") if k in tiers), None)
            if unit_tier is not None and len(unit_tier) == n_units:
                labels = [r[2] for r in unit_tier]
    if labels is not None and len(labels) != n_units:
        labels = None
    # per step: its own labels (diagnostics["em_labels"] or {"labels": ...}), else the
    # common ones when that step has as many units
    frame_labels = []
    for e, lab in zip(edges, step_labels):
        if lab is not None and len(lab) == len(e) - 1:
            frame_labels.append([str(x) for x in lab])
        elif labels is not None and len(labels) == len(e) - 1:
            frame_labels.append(list(labels))
        else:
            frame_labels.append(None)
    frames = pick_frames(len(edges), max_frames)
    plt = _plt()
    fig = plt.figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=[2.6, 1], height_ratios=[1, 1.25])
    ax_top = fig.add_subplot(gs[0, :])
    ax_path = fig.add_subplot(gs[1, 0], sharex=ax_top)
    ax_ll = fig.add_subplot(gs[1, 1])
    if audio is not None:
        from vqalign.plots._stages import power_db

        db, freqs = power_db(y, sr)
        ax_top.imshow(db.T, origin="lower", aspect="auto", cmap="magma",
                      extent=(0, db.shape[0] * 0.010, 0, freqs[-1] / 1000.0))
        ax_top.set_ylabel("kHz")
        line_color = "white"
    else:
        ax_top.set_yticks([])
        line_color = "#1f77b4"
    top_lim = ax_top.get_ylim()
    ax_top.set_ylim(*top_lim)  # fixed limits: frames are drawn over a static background
    if reference is not None:
        ref, _ = as_tiers(reference)
        unit_ref = next((ref[k] for k in ("phones", "chars") if k in ref), next(iter(ref.values())))
        rb = sorted({r[0] for r in unit_ref} | {r[1] for r in unit_ref})
        ax_top.vlines(rb, top_lim[0], top_lim[0] + 0.12 * (top_lim[1] - top_lim[0]),
                      colors="#39ff14", lw=1.5, label="true boundaries")
        ax_top.legend(loc="upper right", fontsize=7)
    bound_lines = ax_top.vlines([], *top_lim, colors=line_color, lw=1.0)
    label_texts = []
    ax_top.set_xlim(0, duration)
    head = ax_top.set_title(title)

    def stairs(e):
        # unit index against time: a staircase through the unit edges
        xs = np.repeat(e, 2)[1:-1]
        ys = np.repeat(np.arange(len(e) - 1), 2)
        return xs, ys

    x0, y0 = stairs(edges[0])
    xf, yf = stairs(edges[-1])
    ax_path.plot(x0, y0, "--", color="#999999", lw=1.0, label="first EM step")
    ax_path.plot(xf, yf, color="#2ca02c", lw=1.0, alpha=0.5, label="final step")
    (cur,) = ax_path.plot([], [], color="#d62728", lw=2.0, label="this step")
    ax_path.set_xlim(0, duration)
    ax_path.set_ylim(-0.5, max(len(e) - 1 for e in edges) - 0.5)
    ax_path.set_xlabel("time (s)")
    ax_path.set_ylabel("unit index")
    if labels is not None and n_units <= 60:
        stride = max(1, math.ceil(n_units / 30))
        ax_path.set_yticks(np.arange(0, n_units, stride))
        ax_path.set_yticklabels(labels[::stride], fontsize=6)
    ax_path.legend(loc="upper left", fontsize=7)
    ax_path.grid(alpha=0.25)
    shift_txt = ax_path.text(0.99, 0.03, "", transform=ax_path.transAxes, ha="right",
                             fontsize=8, bbox={"fc": "white", "alpha": 0.8, "lw": 0})
    ll = None
    if hist is not None and (_has(hist, "log_likelihood") or _has(hist, "loss")):
        col = "log_likelihood" if _has(hist, "log_likelihood") else "loss"
        ll = hist[col]
        ax_ll.plot(np.arange(ll.size), ll, color="#cccccc", lw=1.0)
        (ll_grow,) = ax_ll.plot([], [], color="#1f77b4", lw=1.8)
        (ll_dot,) = ax_ll.plot([], [], "o", color="black", ms=5)
        ax_ll.set_xlabel("EM step")
        ax_ll.set_ylabel("log-likelihood / frame" if col == "log_likelihood" else "loss")
        ax_ll.grid(alpha=0.3)
    else:
        ax_ll.text(0.5, 0.5, "no EM history", ha="center", va="center",
                   transform=ax_ll.transAxes)
        ax_ll.set_axis_off()

    def update(i):
        nonlocal bound_lines
        e = edges[i]
        bound_lines.remove()
        bound_lines = ax_top.vlines(e[1:-1], *top_lim, colors=line_color, lw=1.0, alpha=0.9)
        for t in label_texts:
            t.remove()
        label_texts.clear()
        if frame_labels[i] is not None:
            width_px = ax_top.get_position().width * fig.get_figwidth() * fig.dpi
            for a, b, lab in zip(e[:-1], e[1:], frame_labels[i]):
                if (b - a) / duration * width_px > 7 * len(lab):
                    label_texts.append(ax_top.text((a + b) / 2, top_lim[1] - 0.06 * (
                        top_lim[1] - top_lim[0]), lab, ha="center", va="top", fontsize=7,
                        color=line_color, clip_on=True))
        xs, ys = stairs(e)
        cur.set_data(xs, ys)
        if i > 0 and len(edges[i - 1]) == len(e):
            d = 1000 * np.abs(e - edges[i - 1]).mean()
            shift_txt.set_text(f"mean boundary move vs step {i - 1}: {d:.1f} ms")
        else:
            shift_txt.set_text("")
        extra = ""
        if ll is not None:
            j = min(i, ll.size - 1)
            ll_grow.set_data(np.arange(j + 1), ll[:j + 1])
            ll_dot.set_data([j], [ll[j]])
            if np.isfinite(ll[j]):
                extra = f"  |  log-lik/frame {ll[j]:.3f}"
        head.set_text(f"{title}: step {i} of {len(edges) - 1}{extra}")
        return [bound_lines, *label_texts, cur, shift_txt, head] + ([ll_grow, ll_dot] if ll is not None else [])

    return _finish(fig, update, frames, fps, dpi)


# ----------------------------------------------------------------------------- MFCC

def animate_mfcc(audio, sr: int = FEATURE_SR, *, n_mfcc: int = 13, n_mels: int = 40,
                 win_length: float = 0.025, hop_length: float = 0.010,
                 n_fft: int | None = None, fmin: float = 0.0, fmax: float | None = None,
                 fps: float = 6, max_frames: int = 40, figsize=(11, 8),
                 dpi: int = DEFAULT_DPI):
    """Animate MFCC extraction frame by frame.

    Panels: the waveform with the current analysis frame; the raw frame with
    the Hann window; the windowed frame; its power spectrum (dB) over the mel
    filters; the mel filter-bank energies; their log (dB); the DCT coefficients;
    and the MFCC matrix filling up. The stages are computed with numpy in the
    librosa convention of ``vqalign.features.mfcc`` (see
    :func:`vqalign.plots._stages.mfcc_stages`). ``max_frames`` analysis frames,
    evenly spread over the utterance, are shown. Returns the ``FuncAnimation``.
    """
    from vqalign.plots._stages import mfcc_stages

    st = mfcc_stages(audio, sr, n_mfcc=n_mfcc, n_mels=n_mels, win_length=win_length,
                     hop_length=hop_length, n_fft=n_fft, fmin=fmin, fmax=fmax)
    frames = pick_frames(st.n_frames, max_frames)
    plt = _plt()
    fig = plt.figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(4, 3, height_ratios=[0.8, 1, 1, 1.1])
    y = st.audio
    sr = st.sr
    t = np.arange(y.size) / sr
    ax_w = fig.add_subplot(gs[0, :])
    step = max(1, y.size // 6000)
    ax_w.plot(t[::step], y[::step], color="#4c72b0", lw=0.6)
    ax_w.set_xlim(0, y.size / sr)
    ax_w.set_ylabel("waveform")
    span = ax_w.axvspan(0, st.n_fft / sr, color="#ff7f0e", alpha=0.35)
    ax_w.set_xlabel("time (s)", labelpad=0)
    head = ax_w.set_title("MFCC")

    peak = float(np.max(np.abs(y))) or 1.0
    n = np.arange(st.n_fft)
    ax_f = fig.add_subplot(gs[1, 0])
    (l_frame,) = ax_f.plot(n, np.zeros(st.n_fft), color="#4c72b0", lw=0.7)
    ax_f.plot(n, st.window * peak, "--", color="#ff7f0e", lw=1.0, label="Hann window")
    ax_f.set_ylim(-1.05 * peak, 1.05 * peak)
    ax_f.set_title("1. frame and window", fontsize=9)
    ax_f.set_xlabel("sample")
    ax_f.legend(fontsize=7, loc="lower right")
    ax_x = fig.add_subplot(gs[1, 1])
    (l_win,) = ax_x.plot(n, np.zeros(st.n_fft), color="#4c72b0", lw=0.7)
    ax_x.set_ylim(-1.05 * peak, 1.05 * peak)
    ax_x.set_title("2. windowed frame", fontsize=9)
    ax_x.set_xlabel("sample")

    freqs = np.linspace(0, sr / 2, st.power.shape[1]) / 1000.0
    pdb = 10 * np.log10(np.maximum(st.power, 1e-10))
    top = float(pdb.max())
    ax_p = fig.add_subplot(gs[1, 2])
    fb = st.mel_fb / st.mel_fb.max(axis=1, keepdims=True)
    for row in fb:
        ax_p.plot(freqs, top - 80 + 25 * row, color="#bbbbbb", lw=0.5)
    (l_pow,) = ax_p.plot(freqs, np.full(freqs.size, top - 80), color="#d62728", lw=0.8)
    ax_p.set_ylim(top - 82, top + 3)
    ax_p.set_title("3. power spectrum (dB) and mel filters", fontsize=9)
    ax_p.set_xlabel("kHz")

    mel_x = np.arange(st.mel.shape[1])
    ax_m = fig.add_subplot(gs[2, 0])
    # one StepPatch per panel (not one Rectangle per band): far fewer artists to draw
    edges = np.arange(mel_x.size + 1) - 0.5
    bars_m = ax_m.stairs(np.zeros(mel_x.size), edges, fill=True, color="#9467bd")
    ax_m.set_ylim(0, float(st.mel.max()) * 1.05 or 1.0)
    ax_m.set_title("4. mel filter-bank energies", fontsize=9)
    ax_m.set_xlabel("mel band")
    ax_l = fig.add_subplot(gs[2, 1])
    lm_lo = float(st.log_mel.min())
    bars_l = ax_l.stairs(np.full(mel_x.size, lm_lo), edges, fill=True, color="#2ca02c",
                         baseline=lm_lo)
    ax_l.set_ylim(lm_lo, float(st.log_mel.max()) + 3)
    ax_l.set_title("5. log (dB, 80 dB floor)", fontsize=9)
    ax_l.set_xlabel("mel band")
    ax_d = fig.add_subplot(gs[2, 2])
    k = np.arange(1, st.mfcc.shape[1])
    lim = float(np.abs(st.mfcc[:, 1:]).max()) * 1.05 if st.mfcc.shape[1] > 1 else 1.0
    bars_d = ax_d.stairs(np.zeros(k.size), np.arange(k.size + 1) + 0.5, fill=True,
                         color="#17becf", baseline=0.0)
    ax_d.set_ylim(-lim, lim)
    ax_d.axhline(0, color="#555555", lw=0.6)
    ax_d.set_title("6. DCT -> MFCC (c1..)", fontsize=9)
    ax_d.set_xlabel("coefficient")
    c0_txt = ax_d.text(0.98, 0.95, "", transform=ax_d.transAxes, ha="right", va="top",
                       fontsize=8)

    ax_c = fig.add_subplot(gs[3, :])
    M = st.mfcc.T.astype(float)
    body = M[1:] if M.shape[0] > 1 else M
    vlim = float(np.percentile(np.abs(body), 99)) or 1.0
    hop_s = st.hop / sr
    img = ax_c.imshow(np.ma.masked_array(np.zeros(body.shape), mask=True), origin="lower", aspect="auto",
                      cmap="coolwarm", vmin=-vlim, vmax=vlim, interpolation="nearest",
                      extent=(-0.5 * hop_s, (st.n_frames - 0.5) * hop_s,
                              0.5 if M.shape[0] > 1 else -0.5, M.shape[0] - 0.5))
    cursor = ax_c.axvline(0, color="black", lw=1.0)
    ax_c.set_xlim(0, y.size / sr)
    ax_c.set_xlabel("time (s)")
    ax_c.set_ylabel("MFCC c1..")
    from matplotlib.ticker import MaxNLocator

    ax_c.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_c.set_title("7. MFCC matrix (frames so far)", fontsize=9)

    def update(i):
        t0 = float(st.frame_start(i))
        span.set_x(t0)
        l_frame.set_ydata(st.frames[i])
        l_win.set_ydata(st.windowed[i])
        l_pow.set_ydata(np.maximum(pdb[i], top - 82))
        bars_m.set_data(st.mel[i])
        bars_l.set_data(st.log_mel[i])
        bars_d.set_data(st.mfcc[i, 1:])
        c0_txt.set_text(f"c0 = {st.mfcc[i, 0]:.1f}")
        mask = np.zeros(body.shape, dtype=bool)
        mask[:, i + 1:] = True
        shown = np.ma.masked_array(body, mask=mask)
        img.set_data(shown)
        cursor.set_xdata([i * hop_s, i * hop_s])
        head.set_text(f"MFCC extraction: frame {i + 1} of {st.n_frames} "
                      f"(t = {i * hop_s:.2f} s, {st.win} samples windowed in n_fft = {st.n_fft})")
        return [span, l_frame, l_win, l_pow, bars_m, bars_l, bars_d, c0_txt, img, cursor, head]

    return _finish(fig, update, frames, fps, dpi)


def _close(anim) -> None:
    """Close an animation's figure (after saving) so long scripts do not pile figures up."""
    _plt().close(anim._fig)


def save_and_close(anim, path, **kwargs) -> Path:
    """:func:`save`, then close the figure."""
    try:
        return save(anim, path, **kwargs)
    finally:
        _close(anim)


__all__ = ["animate_lbg", "animate_em", "animate_mfcc", "save", "save_and_close", "pick_frames"]

