"""``vqalign animate lbg|em|mfcc [INPUT] --out x.gif|x.mp4``.

Every kind works without inputs, on built-in synthesized speech::

    vqalign animate lbg --out lbg.gif                  # LBG doublings on synthesized MFCCs
    vqalign animate lbg feats.npy --n-codes 64 --out lbg.mp4
    vqalign animate em --out em.gif                    # EM steps of a self-trained alignment
    vqalign animate em speech.wav transcript.txt --out em.gif
    vqalign animate mfcc speech.wav --out mfcc.gif

GIF is written with pillow, MP4 with ffmpeg (imageio-ffmpeg); an existing
``--out`` is kept unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vqalign.exceptions import ParameterError

ANIM_SUFFIXES = (".gif", ".mp4")


def _common(p, default_out: str, fps: float, max_frames: int) -> None:
    p.add_argument("--out", default=default_out, help="output .gif or .mp4 (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--fps", type=float, default=fps, help="frames per second (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=max_frames,
                   help="at most this many frames, spread over the run (default: %(default)s)")
    p.add_argument("--dpi", type=float, default=72, help="resolution (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the built-in data (default: 0)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    lb = sub.add_parser("lbg", help="LBG doublings: codes over the data, curves growing",
                        description="Train an LBG codebook and animate every refinement step "
                        "across the doublings. INPUT: .npy frames or a feature store folder "
                        "(default: MFCCs of built-in synthesized speech).")
    lb.add_argument("input", nargs="?", help=".npy (n_frames, D) or feature store folder")
    lb.add_argument("--n-codes", type=int, default=32, help="final codebook size (default: 32)")
    _common(lb, "lbg.gif", 4, 60)
    em = sub.add_parser("em", help="an utterance's alignment across EM steps",
                        description="Self-train the aligner on one utterance and animate its "
                        "boundaries at each EM step beside the log-likelihood. Without inputs a "
                        "synthesized utterance is used and its exact boundaries are shown.")
    em.add_argument("input", nargs="?", help="audio file (default: built-in synthesized speech)")
    em.add_argument("transcript", nargs="?", help="transcript text file")
    em.add_argument("--text", help="transcript given inline instead of a file")
    em.add_argument("--n-iter", type=int, default=30, help="EM steps (default: 30)")
    _common(em, "em.gif", 3, 31)
    mf = sub.add_parser("mfcc", help="MFCC extraction, frame by frame",
                        description="Waveform -> frame -> window -> power spectrum -> mel -> "
                        "log -> DCT, frame by frame (librosa convention of vqalign.features).")
    mf.add_argument("input", nargs="?", help="audio file (default: built-in synthesized speech)")
    mf.add_argument("--start", type=float, default=0.0, help="start of the excerpt (s)")
    mf.add_argument("--duration", type=float, default=None,
                    help="length of the excerpt (s; default: to the end)")
    _common(mf, "mfcc.gif", 6, 40)


def check_out(path, overwrite: bool) -> Path:
    path = Path(path)
    if path.suffix.lower() not in ANIM_SUFFIXES:
        raise ParameterError(f"--out {path}: animations are written as .gif or .mp4, "
                             f"not {path.suffix!r}")
    if path.exists() and not overwrite:
        raise ParameterError(f"{path} exists; pass --overwrite to replace it")
    if path.suffix.lower() == ".mp4":
        from vqalign.plots.animate import _ffmpeg_exe

        if _ffmpeg_exe() is None:
            raise ParameterError(f"cannot write {path}: MP4 needs ffmpeg; `pip install "
                                 "imageio-ffmpeg` (or put ffmpeg on PATH), or use --out x.gif")
    return path


def _say(msg: str) -> None:
    print(f"vqalign animate: {msg}")


def _lbg(args):
    from vqalign.plots import _data
    from vqalign.plots.animate import animate_lbg

    if args.input:
        from vqalign.plots.cli import load_features

        X = load_features(args.input)
        what = Path(args.input).name
    else:
        X = _data.demo_features(seed=args.seed)
        what = "synthesized MFCCs"
        _say(f"built-in data: {X.shape[0]} MFCC frames of synthesized speech")
    # the estimator keeps between half and all of keep_snapshots: ask for twice the frames
    vq = _data.demo_vq(X, n_codes=args.n_codes, keep_snapshots=2 * max(args.max_frames, 2),
                       seed=args.seed)
    _say(f"LBG to K={vq.codebook_.shape[0]}: {len(vq.history_)} steps, "
         f"{len(vq.snapshots_)} snapshots kept")
    return animate_lbg(vq, X, fps=args.fps, max_frames=args.max_frames,
                       title=f"LBG on {what}")


def _em(args):
    from vqalign.plots import _data
    from vqalign.plots.animate import animate_em

    reference = None
    if args.input:
        from vqalign.plots.cli import load_audio_arg, read_text

        y, sr = load_audio_arg(args.input)
        if args.text is not None:
            text = args.text
        elif args.transcript is not None:
            text = read_text(args.transcript)
        else:
            raise ParameterError("give a TRANSCRIPT file (or --text) with the audio INPUT")
        name = Path(args.input).name
    else:
        if args.text is not None:
            raise ParameterError("--text needs an audio file; without one the built-in "
                                 "synthesized utterance (and its own text) is used")
        utt = _data.demo_utterance(seed=args.seed)
        y, sr, text, name = utt.audio, utt.sr, utt.text, "synthesized speech"
        reference = _data.truth_tiers(utt)
        _say(f"built-in data: synthesized '{text}' ({utt.duration:.2f} s)")
    from vqalign.align import Aligner

    alignment = Aligner(n_iter=args.n_iter, keep_paths=True).align(y, text, sr=sr,
                                                                   audio_name=name)
    n_steps = len(alignment.diagnostics.get("em_paths") or [])
    _say(f"self-trained alignment: {n_steps} EM steps recorded")
    return animate_em(alignment, audio=y, sr=sr, reference=reference, fps=args.fps,
                      max_frames=args.max_frames, title=f"EM on {name}")


def _mfcc(args):
    from vqalign.plots import _data
    from vqalign.plots.animate import animate_mfcc

    if args.input:
        from vqalign.plots.cli import load_audio_arg

        y, sr = load_audio_arg(args.input)
    else:
        utt = _data.demo_utterance(seed=args.seed)
        y, sr = utt.audio, utt.sr
        _say(f"built-in data: synthesized '{utt.text}' ({utt.duration:.2f} s)")
    a = int(round(max(args.start, 0.0) * sr))
    b = y.size if args.duration is None else a + int(round(args.duration * sr))
    if a >= y.size or b <= a:
        raise ParameterError(f"--start {args.start} / --duration {args.duration} select no "
                             f"audio from a {y.size / sr:.2f} s file")
    return animate_mfcc(y[a:b], sr, fps=args.fps, max_frames=args.max_frames)


RUNNERS = {"lbg": _lbg, "em": _em, "mfcc": _mfcc}


def run(args) -> int:
    out = check_out(args.out, args.overwrite)
    if args.max_frames < 1:
        raise ParameterError(f"--max-frames {args.max_frames}: need at least 1")
    import matplotlib

    matplotlib.use("Agg")
    from vqalign.plots.animate import save_and_close

    anim = RUNNERS[args.kind](args)
    save_and_close(anim, out, fps=args.fps, dpi=args.dpi, overwrite=args.overwrite)
    _say(f"wrote {out} ({anim.vq_n_frames} frames at {args.fps:g} fps)")
    return 0
