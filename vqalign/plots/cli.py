"""``vqalign plot alignment|history|codebook|observations``: diagnostic figures.

Every kind works without inputs, on built-in synthesized speech::

    vqalign plot alignment --out alignment.png
    vqalign plot alignment speech.wav speech.json --out alignment.png
    vqalign plot history run1.json run2.json --out history.png
    vqalign plot codebook feats.npy codebook.npy --out codebook.png
    vqalign plot observations speech.wav transcript.txt --out obs.png

The format follows the suffix of ``--out`` (.png, .pdf, .svg); an existing
file is kept unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", default=default_out, help="output figure (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--dpi", type=float, default=110, help="resolution (default: %(default)s)")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in data (default: 0)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    a = sub.add_parser("alignment", help="waveform, spectrogram and word/phone tiers",
                       description="Waveform, spectrogram (or MFCC) and the alignment's tiers. "
                       "Without inputs a synthesized utterance is aligned and drawn above the "
                       "synthesizer's exact tiers.")
    a.add_argument("audio", nargs="?", help="audio file (default: built-in synthesized speech)")
    a.add_argument("alignment", nargs="?", help=".json or .TextGrid written by vqalign")
    a.add_argument("--reference", help="a second .json/.TextGrid (e.g. the true times) "
                   "drawn below as 'ref' tiers")
    a.add_argument("--features", choices=("spectrogram", "mfcc", "none"), default="spectrogram")
    _common(a, "alignment.png")
    h = sub.add_parser("history", help="learning curves of one or several runs",
                       description="Loss, entropy vs log K, utilization and log-likelihood of "
                       "one or several runs. Inputs are History JSON files (History.to_json()), "
                       "alignment JSON files holding diagnostics.em_history, or codebooks saved "
                       "by `vqalign codebook --out x.npz`. Without inputs, "
                       "random init, minibatch Lloyd and LBG are trained on synthesized MFCCs.")
    h.add_argument("histories", nargs="*",
                   help="History JSON, alignment JSON or codebook .npz files")
    h.add_argument("--x", choices=("step", "samples_seen", "seconds"), default="step",
                   help="x axis of the curves (default: %(default)s)")
    h.add_argument("--n-codes", type=int, default=32, help="built-in runs: codebook size")
    _common(h, "history.png")
    c = sub.add_parser("codebook", help="data and codes (PCA) with the code-usage histogram",
                       description="Data and codes in a 2-D PCA projection beside the usage "
                       "histogram, dead codes marked. FEATURES: .npy (n_frames, D) or a feature "
                       "store folder; CODEBOOK: .npy (K, D) or .npz (array 'codebook'). "
                       "Without inputs an LBG codebook is trained on synthesized MFCCs.")
    c.add_argument("features", nargs="?", help=".npy frames or a feature store folder")
    c.add_argument("codebook", nargs="?", help=".npy or .npz codebook")
    c.add_argument("--n-codes", type=int, default=32, help="built-in codebook size")
    _common(c, "codebook.png")
    o = sub.add_parser("observations", help="state x frame log-likelihood map with the path",
                       description="The self-trained aligner's state x frame log-likelihood map "
                       "with its Viterbi path. TRANSCRIPT is a text file (or --text).")
    o.add_argument("audio", nargs="?", help="audio file (default: built-in synthesized speech)")
    o.add_argument("transcript", nargs="?", help="transcript text file")
    o.add_argument("--text", help="transcript given inline instead of a file")
    o.add_argument("--raw", action="store_true", help="raw log-likelihoods (default: each "
                   "frame relative to its best state)")
    _common(o, "observations.png")


def check_out(path, overwrite: bool, suffixes=FIGURE_SUFFIXES) -> Path:
    """Refuse a bad suffix or an existing file before any work is done."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ParameterError(f"--out {path}: unknown format {path.suffix!r}; "
                             f"use one of {', '.join(suffixes)}")
    if path.exists() and not overwrite:
        raise ParameterError(f"{path} exists; pass --overwrite to replace it")
    return path


def save_figure(fig, path, *, overwrite: bool = False, dpi: float = 110) -> Path:
    """Write a figure atomically (format from the suffix) and close it."""
    from vqalign.io.atomic import atomic_write

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as fh:
            fig.savefig(fh, format="jpeg" if fmt == "jpg" else fmt, dpi=dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def load_features(path) -> np.ndarray:
    """Frames from a ``.npy`` file or a feature store folder."""
    path = Path(path)
    if path.is_dir():
        from vqalign.io.store import open_store

        return open_store(path).X
    if not path.is_file():
        raise ParameterError(f"features file {path} does not exist")
    if path.suffix.lower() == ".npy":
        return np.load(path, mmap_mode="r")
    if path.suffix.lower() == ".npz":
        with np.load(path) as z:
            key = "X" if "X" in z else z.files[0]
            return z[key]
    raise ParameterError(f"{path}: features must be a .npy (n_frames, D) file or a feature "
                         "store folder written by `vqalign features`")


def load_codebook(path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"codebook file {path} does not exist")
    if path.suffix.lower() == ".npy":
        return np.load(path)
    if path.suffix.lower() == ".npz":
        model = _load_model(path)
        if model is not None:
            return np.asarray(model.codebook_)
        with np.load(path) as z:
            for key in ("codebook", "codebook_", "codes", "C"):
                if key in z:
                    return z[key]
            two_d = [k for k in z.files if z[k].ndim == 2]
            if len(two_d) == 1:
                return z[two_d[0]]
            raise ParameterError(f"{path} holds {z.files}; expected an array named 'codebook'")
    raise ParameterError(f"{path}: a codebook must be a .npy (K, D) or .npz file")


def _load_model(path):
    """A VectorQuantizer saved by ``vqalign codebook --out`` (None if the file is another .npz)."""
    from vqalign.lbg import load_codebook as load_model

    try:
        return load_model(path)
    except Exception:  # not a vqalign model file: fall back to plain arrays
        return None


def load_audio_arg(path):
    from vqalign.io.audio import load_audio

    return load_audio(path, sr=FEATURE_SR)


def read_text(path) -> str:
    from vqalign.align.text import read_transcript

    return read_transcript(path)


def _needs_pair(args, a: str, b: str) -> bool:
    """True when inputs are given; both of a pair or neither."""
    va, vb = getattr(args, a), getattr(args, b)
    if (va is None) != (vb is None):
        raise ParameterError(f"give both {a.upper()} and {b.upper()}, or neither to use the "
                             "built-in synthesized data")
    return va is not None


def _say(msg: str) -> None:
    print(f"vqalign plot: {msg}")


def _run_alignment(args) -> object:
    from vqalign.plots import _data
    from vqalign.plots.static import plot_alignment, read_tiers

    reference = read_tiers(args.reference)[0] if args.reference else None
    if _needs_pair(args, "audio", "alignment"):
        y, sr = load_audio_arg(args.audio)
        alignment = read_tiers(args.alignment)[0]
        title = args.title or f"{Path(args.audio).name}: {Path(args.alignment).name}"
    else:
        utt = _data.demo_utterance(seed=args.seed)
        y, sr = utt.audio, utt.sr
        _say(f"built-in data: synthesized '{utt.text}' ({utt.duration:.2f} s); aligning it")
        alignment = _data.demo_alignment(utt, keep_paths=False)
        if reference is None:
            reference = _data.truth_tiers(utt)
        title = args.title or "self-trained alignment of synthesized speech (ref = exact times)"
    features = None if args.features == "none" else args.features
    out = plot_alignment(y, sr, alignment, features=features, reference=reference, title=title)
    return next(iter(out.values())).figure


def _run_history(args):
    from vqalign.plots import _data
    from vqalign.plots.static import plot_history

    if args.histories:
        runs = {}
        for f in args.histories:
            p = Path(f)
            if not p.is_file():
                raise ParameterError(f"history file {p} does not exist")
            if p.suffix.lower() == ".npz":
                model = _load_model(p)
                if model is None or getattr(model, "history_", None) is None:
                    raise ParameterError(f"{p} is not a codebook saved by vqalign (no history)")
                runs[p.stem] = model.history_
                continue
            try:
                runs[p.stem] = json.loads(p.read_text(encoding="utf-8-sig"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ParameterError(f"{p} is not JSON ({exc}); pass History.to_json() output, "
                                     "an alignment .json or a codebook .npz") from None
    else:
        X = _data.demo_features(seed=args.seed)
        _say(f"built-in data: {X.shape[0]} MFCC frames of synthesized speech; training K="
             f"{args.n_codes} codebooks with random init, minibatch Lloyd and LBG")
        runs = {}
        for label, method in (("random + Lloyd", "lloyd"), ("minibatch Lloyd", "minibatch"),
                              ("LBG", "lbg")):
            vq = _data.demo_vq(X, n_codes=args.n_codes, keep_snapshots=0, seed=args.seed,
                               method=method)
            runs[label] = vq.history_
    out = plot_history(runs, x=args.x, title=args.title)
    return next(iter(out.values()))[0].figure


def _run_codebook(args):
    from vqalign.plots import _data
    from vqalign.plots.static import plot_codebook

    if _needs_pair(args, "features", "codebook"):
        X = load_features(args.features)
        C = load_codebook(args.codebook)
        title = args.title or f"{Path(args.codebook).name} on {Path(args.features).name}"
    else:
        X = _data.demo_features(seed=args.seed)
        _say(f"built-in data: {X.shape[0]} MFCC frames of synthesized speech; LBG K={args.n_codes}")
        C = _data.demo_vq(X, n_codes=args.n_codes, keep_snapshots=0, seed=args.seed).codebook_
        title = args.title or f"LBG codebook, K={C.shape[0]}, on synthesized MFCCs"
    out = plot_codebook(X, C, title=title)
    return out["data"].figure


def _run_observations(args):
    from vqalign.align import Aligner
    from vqalign.plots import _data
    from vqalign.plots.static import plot_observations

    if args.audio is not None:
        y, sr = load_audio_arg(args.audio)
        if args.text is not None:
            text = args.text
        elif args.transcript is not None:
            text = read_text(args.transcript)
        else:
            raise ParameterError("give a TRANSCRIPT file (or --text) with the AUDIO")
    else:
        if args.text is not None:
            raise ParameterError("--text needs an audio file; without one the built-in "
                                 "synthesized utterance (and its own text) is used")
        utt = _data.demo_utterance(seed=args.seed)
        y, sr, text = utt.audio, utt.sr, utt.text
        _say(f"built-in data: synthesized '{text}' ({utt.duration:.2f} s)")
    obs = Aligner().observations(y, text, sr=sr)
    img = plot_observations(obs, normalize=None if args.raw else "frame", title=args.title)
    return img.figure


RUNNERS = {"alignment": _run_alignment, "history": _run_history, "codebook": _run_codebook,
           "observations": _run_observations}


def run(args) -> int:
    out = check_out(args.out, args.overwrite)
    import matplotlib

    matplotlib.use("Agg")
    fig = RUNNERS[args.kind](args)
    save_figure(fig, out, overwrite=args.overwrite, dpi=args.dpi)
    _say(f"wrote {out}")
    return 0
