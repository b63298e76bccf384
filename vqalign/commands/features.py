"""``vqalign features AUDIO_DIR_OR_LIST OUT``: MFCCs of a corpus into a memory-mapped store."""

from __future__ import annotations

import sys

from vqalign.features.frontend import FEATURE_SR


def add_arguments(parser):
    parser.add_argument("sources", metavar="AUDIO_DIR_OR_LIST",
                        help="a folder (searched recursively for *.wav, *.flac, *.ogg) or a "
                             "text file with one audio path per line")
    parser.add_argument("out", metavar="OUT", help="store folder (created; re-running resumes)")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="worker processes, or Dask workers with --scheduler dask "
                             "(default 2)")
    parser.add_argument("--scheduler", default="local", metavar="local|dask|ADDRESS",
                        help="where the work runs: local processes (default), a Dask "
                             "LocalCluster of --jobs workers, or an existing Dask cluster "
                             "(tcp://host:8786; its workers must see the same paths)")
    parser.add_argument("--recipe", choices=("mfcc", "aligner"), default="mfcc",
                        help="mfcc: the settings below (default); aligner: the aligner's own "
                             "39-D front end at --hop (what align-corpus trains on)")
    parser.add_argument("--hop", type=float, default=0.010,
                        help="frame hop in seconds (default 0.010)")
    parser.add_argument("--sr", type=int, default=FEATURE_SR,
                        help=f"resample to this rate ({FEATURE_SR})")
    parser.add_argument("--n-mfcc", type=int, default=13, help="cepstral coefficients (13)")
    parser.add_argument("--n-mels", type=int, default=None,
                        help="mel bands (default 40 librosa, 23 kaldi)")
    parser.add_argument("--convention", choices=("librosa", "kaldi"), default="librosa",
                        help="MFCC convention (default librosa)")
    parser.add_argument("--deltas", type=int, nargs="?", const=2, default=0, metavar="ORDER",
                        help="append deltas up to ORDER (flag alone: 2 = deltas + delta-deltas)")
    parser.add_argument("--cmvn", nargs="?", const="utterance", default=None,
                        metavar="utterance|FRAMES",
                        help="mean/variance normalization per utterance (flag alone) or over "
                             "a sliding window of FRAMES frames")
    parser.add_argument("--no-resume", action="store_true",
                        help="recompute every shard instead of reusing finished ones")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args) -> int:
    import time

    from vqalign.io.store import write_store
    from vqalign.pipeline.schedulers import get_scheduler

    t0 = time.perf_counter()
    with get_scheduler(args.scheduler, args.jobs) as sched:
        store = write_store(args.sources, args.out, sr=args.sr, n_mfcc=args.n_mfcc,
                            n_mels=args.n_mels, convention=args.convention,
                            deltas=args.deltas, cmvn=args.cmvn, jobs=args.jobs,
                            resume=not args.no_resume, progress=False if args.quiet else None,
                            recipe=args.recipe, hop_length=args.hop, scheduler=sched)
    print(f"features: {time.perf_counter() - t0:.1f} s on {sched.describe()}", file=sys.stderr)
    print(f"computed {store.n_computed}, reused {store.n_reused}, failed {len(store.failed)}"
          + (":" if store.failed else ""))
    for path, reason in store.failed:
        print(f"  {path}: {reason}")
    print(f"{store.path}: {len(store)} utterances, {store.n_frames} frames x {store.dim} "
          f"features ({store.n_frames * store.dim * 4 / 1e6:.1f} MB)", file=sys.stdout)
    return 0
