"""``vqalign align-corpus DIR --out DIR``: train on a corpus, align every utterance.

Audio files are paired with ``.txt``/``.lab`` transcripts beside them; unpaired files,
unreadable audio and utterances that cannot be fitted become failure records
(``failures.tsv``), never crashes. The run is a sequence of resumable stages
(:mod:`vqalign.pipeline.corpus`): features into the memory-mapped store
``OUT/store``, an LBG codebook (``OUT/codebook.npz``), EM (``OUT/aligner.npz``) and
the alignment in chunks, each recorded in ``OUT/stages.json`` as it finishes. A run
killed at any point resumes at the last finished stage or chunk when re-run with the
same command; ``--from-stage NAME`` redoes a stage and what follows it; finished
alignments are never replaced without ``--overwrite``. ``--scheduler dask`` runs the
feature and alignment work on a Dask LocalCluster of ``--jobs`` workers, an address
(``tcp://host:8786``) on an existing cluster whose workers see the same paths.
Ends with "aligned N, failed M" and the reasons; the exit status is non-zero only when
every utterance failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vqalign.exceptions import ParameterError

MODEL_FILE = "aligner.npz"


def add_arguments(parser) -> None:
    parser.add_argument("corpus", type=Path, metavar="DIR",
                        help="folder of audio files with .txt/.lab transcripts beside them")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    parser.add_argument("--unit", choices=("phones", "chars"), default="phones",
                        help="phones (English, CMUdict) or chars (any language); default phones")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="worker processes (features, alignment) and EM threads "
                             "(default 2)")
    parser.add_argument("--scheduler", default="local", metavar="local|dask|ADDRESS",
                        help="where the work runs: local processes (default), a Dask "
                             "LocalCluster of --jobs workers (dask), or an existing Dask "
                             "cluster (tcp://host:8786; its workers must see the same paths)")
    parser.add_argument("--from-stage", choices=("features", "codebook", "em", "align"),
                        default=None,
                        help="redo this stage and every stage after it (with --overwrite "
                             "if that replaces finished alignments)")
    parser.add_argument("--store", type=Path, default=None,
                        help="feature store folder (default OUT/store)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo every stage and replace existing outputs (default: resume)")
    parser.add_argument("--lexicon", type=Path, default=None,
                        help="pronunciation file, lines 'WORD PH PH ...' (merged over CMUdict)")
    parser.add_argument("--oov", choices=("g2p", "error"), default="g2p",
                        help="words missing from the lexicon: guess from spelling (g2p) or "
                             "fail those utterances (error)")
    parser.add_argument("--format", default="TextGrid",
                        help="comma-separated output formats: TextGrid, json, ctm "
                             "(default TextGrid)")
    parser.add_argument("--n-codes", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--n-iter", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=32,
                        help="utterances per alignment task (default 32)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bars or stage lines (the final report stays)")


def run(args) -> int:
    from vqalign.align.corpus import summarize_failures
    from vqalign.pipeline.corpus import run_corpus

    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    rep = run_corpus(args.corpus, args.out, unit=args.unit, jobs=args.jobs,
                     scheduler=args.scheduler, overwrite=args.overwrite,
                     from_stage=args.from_stage, lexicon=args.lexicon, oov=args.oov,
                     formats=args.format, n_codes=args.n_codes, n_iter=args.n_iter,
                     store_dir=args.store, chunk_size=args.chunk,
                     progress=False if args.quiet else None, quiet=args.quiet)
    print(f"aligned {rep.aligned}, failed {len(rep.failures)}"
          + (f", skipped {rep.skipped} already aligned" if rep.skipped else "")
          + (f"; failures listed in {rep.failures_path}" if rep.failures_path else ""))
    for line in summarize_failures(rep.failures):
        print(line)
    sys.stdout.flush()
    if rep.aligned == 0 and not rep.skipped and rep.failures:
        return 1
    return 0
