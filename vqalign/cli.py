"""``vqalign <verb>``: the command-line interface.

Each verb lives in its own module, imported only when that verb runs, so
``vqalign --help`` is instant and one stage's import cost never slows another.
A verb module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import os
import sys
import threading

from vqalign import __version__
from vqalign.exceptions import VQAlignError

# verb -> (module, one-line help)
VERBS = {
    "demo": ("vqalign.demo", "run the whole pipeline on built-in synthesized speech"),
    "features": ("vqalign.commands.features", "compute MFCCs for a corpus into a memory-mapped store"),
    "codebook": ("vqalign.lbg.cli", "train a VQ codebook (LBG, minibatch Lloyd, Lloyd, random)"),
    "align": ("vqalign.align.cli", "align one audio file with its transcript"),
    "align-corpus": ("vqalign.align.cli_corpus", "train on a corpus and align every utterance"),
    "view": ("vqalign.bench.view", "one HTML page: audio, spectrogram and any alignments' tiers"),
    "plot": ("vqalign.plots.cli", "draw a diagnostic figure (PNG/PDF/SVG)"),
    "animate": ("vqalign.plots.cli_animate", "animate LBG, EM or MFCC extraction (GIF/MP4)"),
    "codec": ("vqalign.codec.cli", "speech codec: train at a bit rate, encode to tokens, decode"),
}

# bench sub-verb -> (module, one-line help)
BENCH = {
    "features": ("vqalign.bench.features", "MFCC speed and agreement vs librosa and others"),
    "codebook": ("vqalign.bench.codebook", "codebook speed and MSE vs faiss and scikit-learn"),
    "hmm": ("vqalign.bench.hmm", "forward-backward speed vs hmmlearn"),
    "align": ("vqalign.bench.align", "alignment accuracy and speed vs pocketsphinx and other aligners"),
    "score": ("vqalign.bench.score", "score any aligners' output files against reference TextGrids"),
    "long": ("vqalign.bench.long", "one long multi-voice recording aligned as one file"),
    "scale": ("vqalign.bench.scale", "align-corpus wall time, memory and accuracy vs corpus size"),
    "agree": ("vqalign.bench.agree", "agreement with pocketsphinx on real recordings"),
    "rvq": ("vqalign.bench.rvq", "residual VQ vs faiss ResidualQuantizer"),
    "g2p": ("vqalign.bench.g2p", "OOV pronunciation: phone error rate against CMUdict"),
    "batch": ("vqalign.bench.batch", "many files, one command (vqalign align --out-dir) vs pocketsphinx"),
    "codec": ("vqalign.bench.codec", "codec at 0.7-3.2 kbit/s vs Codec2 and Opus (PESQ, STOI, ...)"),
    "units": ("vqalign.bench.units", "discrete units vs phone labels: PNMI, purity, bits"),
    "timit": ("vqalign.bench.timit", "every alignment mode against hand-labelled real speech"),
}


# verb (or "bench VERB") -> an example for its --help (a verb module may set a longer epilog)
EXAMPLES = {
    "demo": "vqalign demo --out demo_out --n-utts 12",
    "features": "vqalign features corpus/ feats/ --jobs 2",
    "codebook": "vqalign codebook feats/ -K 1024 --method lbg --out cb.npz",
    "align": "vqalign align speech.wav speech.txt --out speech.json",
    "align-corpus": "vqalign align-corpus corpus/ --out aligned/ --jobs 2",
    "view": "vqalign view speech.wav speech.json --out speech.html",
    "plot": "vqalign plot alignment speech.wav speech.json --out alignment.png",
    "animate": "vqalign animate lbg --out lbg.gif",
    "codec": "vqalign codec train corpus/ --bitrate 1200 --out codec.npz; vqalign codec encode "
             "codec.npz speech.wav --out speech.tokens.npz --json; vqalign codec decode codec.npz "
             "speech.tokens.npz --out speech.1200.wav",
    "bench features": "vqalign bench features --seconds 600 --json",
    "bench codebook": "vqalign bench codebook --n 1000000 --k 1024 --json",
    "bench hmm": "vqalign bench hmm --T 10000 --S 500 --json",
    "bench align": "vqalign bench align --corpus ../shared/devdata --json",
    "bench score": "vqalign bench score --ref refs/ --hyp mfa=mfa_out/ --hyp mine=aligned/ --json",
    "bench long": "vqalign bench long --minutes 35 --json",
    "bench scale": "vqalign bench scale --hours 1 --json",
    "bench agree": "vqalign bench agree --corpus /usr/share/pocketsphinx/test/data --peer pocketsphinx",
    "bench rvq": "vqalign bench rvq --d 2048 --json",
    "bench g2p": "vqalign bench g2p --n 2000 --json",
    "bench batch": "vqalign bench batch --corpus ../shared/devdata/timit --jobs 2 --json",
    "bench codec": "vqalign bench codec --train train_speakers/ --test other_speakers/ --out codec_bench/",
    "bench units": "vqalign bench units --corpus ../shared/devdata/timit --json",
    "bench timit": "vqalign bench timit --corpus ../shared/devdata/timit --report timit.html",
}


def _add_verb(sub, name, module, help_text, key=None):
    p = sub.add_parser(name, help=help_text, description=help_text)
    mod = importlib.import_module(module)
    mod.add_arguments(p)
    if not p.epilog and (key or name) in EXAMPLES:
        p.epilog = f"example: {EXAMPLES[key or name]}"
    p.set_defaults(_run=mod.run)
    return p


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; only the verb named in ``argv`` (if any) is imported."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="vqalign",
        description="Classical speech alignment and vector quantization toolkit.",
    )
    parser.add_argument("--version", action="version", version=f"vqalign {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in VERBS.items():
        if name == chosen:
            _add_verb(sub, name, module, help_text)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    bench = sub.add_parser("bench", help="benchmarks against peer libraries, measured in one run",
                           description="Benchmarks against peer libraries, measured in one run.")
    bsub = bench.add_subparsers(dest="bench_verb", metavar="WHAT")
    bchosen = None
    if chosen == "bench":
        rest = argv[argv.index("bench") + 1:]
        bchosen = next((a for a in rest if not a.startswith("-")), None)
    for name, (module, help_text) in BENCH.items():
        if name == bchosen:
            _add_verb(bsub, name, module, help_text, key=f"bench {name}")
        else:
            bsub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        if args.verb == "bench":
            parser.parse_args(["bench", "--help"])
        parser.print_help()
        return 2 if args.verb is None else 0
    try:
        return int(run(args) or 0)
    except VQAlignError as exc:
        print(f"vqalign {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vqalign {args.verb}: interrupted; finished outputs are kept", file=sys.stderr)
        return 130


#: the console command's first-generation GC threshold (CPython's default is 700)
GC_YOUNG_THRESHOLD = 10_000


#: name prefixes of the worker threads of vqalign's shared pools: every task given to them
#: has been waited for when ``main`` returns, so they are idle then and do not stop the
#: fast exit (an English file of a few seconds computes its 5 ms features on two MFCC
#: threads, whose idle pool kept the slow exit since the prior joined the default median)
IDLE_POOL_PREFIXES = ("vqalign-mfcc",)


def _live_threads() -> list:
    """The Python threads other than the main one and vqalign's idle pool workers."""
    main_thread = threading.main_thread()
    return [t for t in threading.enumerate()
            if t is not main_thread and not t.name.startswith(IDLE_POOL_PREFIXES)]


def console() -> None:
    """The ``vqalign`` command (and ``python -m vqalign``): :func:`main`, then exit at once.

    A process that has aligned a file holds some 750 modules and numba's loaded kernels;
    the interpreter's teardown (module clean-up and its garbage collections) cost
    0.15-0.4 s, up to a third of a short file's whole run, and does nothing a finished
    command needs. So once ``main`` has returned, exit handlers run and the output
    streams are flushed, then the process ends without the teardown. While another
    Python thread is still alive (other than the idle workers of vqalign's own shared
    pools, :data:`IDLE_POOL_PREFIXES`), or an exception escapes ``main``, the exit is
    the normal one.

    The garbage collector's first generation is collected every 10,000 net allocations
    instead of every 700: importing the ~750 modules of an alignment allocates objects
    that all survive, and the frequent young collections (about 200 per short file)
    cost 5-8 % of the run's CPU.
    """
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    code = main()
    if not _live_threads():
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):   # e.g. a closed pipe: report it the usual way
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
