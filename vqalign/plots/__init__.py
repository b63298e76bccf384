"""vqalign.plots: diagnostic figures and animations (matplotlib).

Static figures (``ax=None``, return what was drawn; see :mod:`vqalign.plots.static`)::

    plot_alignment(audio, sr, alignment)      # waveform, spectrogram, word + phone tiers
    plot_observations(aligner.observations(audio, text))   # state x frame map + Viterbi path
    plot_posteriors(gamma, path)
    plot_codebook(X, codebook)                # PCA projection + usage histogram, dead codes
    plot_history([vq1, vq2, alignment])       # loss, entropy vs log K, utilization, log-lik

Animations (``FuncAnimation``; :func:`save` writes GIF or MP4)::

    save(animate_lbg(vq, X), "lbg.gif")       # VectorQuantizer(method="lbg", keep_snapshots=60)
    save(animate_em(alignment, audio=y), "em.gif")   # Aligner(keep_paths=True).align(...)
    save(animate_mfcc(y, sr), "mfcc.mp4")

Names load on first use, so ``import vqalign.plots`` does not import matplotlib.
"""

from __future__ import annotations

from pathlib import Path

from vqalign._lazy import lazy_exports

_LAZY = {
    "plot_alignment": "vqalign.plots.static",
    "plot_observations": "vqalign.plots.static",
    "plot_posteriors": "vqalign.plots.static",
    "plot_codebook": "vqalign.plots.static",
    "plot_history": "vqalign.plots.static",
    "plot_tier": "vqalign.plots.static",
    "plot_waveform": "vqalign.plots.static",
    "animate_lbg": "vqalign.plots.animate",
    "animate_em": "vqalign.plots.animate",
    "animate_mfcc": "vqalign.plots.animate",
    "save": "vqalign.plots.animate",
    "save_and_close": "vqalign.plots.animate",
}

__all__ = [*_LAZY, "demo_figures"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())



def demo_figures(out_dir, *, audio, sr, alignment, vq=None, X=None, reference=None,
                 overwrite: bool = False, max_frames: int = 40) -> list[Path]:
    """Write the demo's pictures into ``out_dir`` and return their paths.

    * ``alignment.png``: waveform, spectrogram and tiers of ``alignment`` over
      ``audio`` (``reference`` tiers, e.g. the synthesizer's exact times, below);
    * ``lbg.gif``: when ``vq`` is a fitted VectorQuantizer with ``snapshots_``;
      the data drawn is ``X``, or else the MFCCs of ``audio`` when their width
      matches the codebook's;
    * ``em.gif``: when ``alignment.diagnostics`` holds ``em_paths``
      (``Aligner(keep_paths=True)``).

    Existing files are kept unless ``overwrite=True`` (then a ParameterError
    names the first one).
    """
    import numpy as np

    from vqalign.exceptions import ParameterError
    from vqalign.plots.animate import animate_em, animate_lbg, save_and_close
    from vqalign.plots.cli import save_figure
    from vqalign.plots.static import plot_alignment

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    png = out_dir / "alignment.png"
    if png.exists() and not overwrite:
        raise ParameterError(f"{png} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    arts = plot_alignment(audio, sr, alignment, reference=reference,
                          title="alignment" + (" (ref = reference tiers)" if reference else ""))
    written.append(save_figure(next(iter(arts.values())).figure, png, overwrite=overwrite))
    snaps = getattr(vq, "snapshots_", None) if vq is not None else None
    if snaps:
        data = X
        if data is None:
            from vqalign.features import mfcc

            D = int(np.asarray(snaps[0][2]).shape[1])
            feats = mfcc(np.asarray(audio, dtype=np.float32), sr)
            if feats.shape[1] != D:
                raise ParameterError(
                    f"the codebook has {D} dimensions but the MFCCs of the audio have "
                    f"{feats.shape[1]}; pass X= (the frames the codebook was trained on)")
            data = feats
        anim = animate_lbg(vq, data, max_frames=max_frames)
        written.append(save_and_close(anim, out_dir / "lbg.gif", overwrite=overwrite))
    diag = getattr(alignment, "diagnostics", None)
    if diag is None and isinstance(alignment, dict):
        diag = alignment.get("diagnostics")
    if diag and diag.get("em_paths"):
        anim = animate_em(alignment, audio=audio, sr=sr, reference=reference,
                          max_frames=max_frames)
        written.append(save_and_close(anim, out_dir / "em.gif", overwrite=overwrite))
    return written
