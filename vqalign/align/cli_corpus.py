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
    parser.add_argument("--model", default=None, metavar="sphinx:NAME",
                        help="with --adapt: the CMU Sphinx model to adapt (sphinx:en-us, the "
                             "model in the pocketsphinx wheel, or sphinx:DIR)")
    parser.add_argument("--adapt", nargs="?", const="weights", choices=("weights", "means"),
                        default=None,
                        help="adapt --model sphinx:... to the corpus by MAP EM "
                             "(SphinxAligner.adapt: senone mixture weights; 'means': the "
                             "Gaussian means too), write it to OUT/sphinx_adapted (a Sphinx "
                             "model folder: vqalign align --model sphinx:OUT/sphinx_adapted) "
                             "and align every utterance with it")
    parser.add_argument("--tau", type=float, default=10.0,
                        help="with --adapt: weight of the Sphinx model as a prior, in frames "
                             "(default 10: a senone seen 10 frames moves half way to its counts)")
    parser.add_argument("--tau-means", type=float, default=5.0,
                        help="with --adapt means: prior weight of the Sphinx means, in frames "
                             "(default 5)")
    parser.add_argument("--adapt-iter", type=int, default=3,
                        help="with --adapt: EM steps (default 3)")


def run_sphinx_adapt(args) -> int:
    """``--model sphinx:... --adapt``: adapt the Sphinx model to the corpus, save it, align."""
    import json

    from vqalign.align.corpus import Failure, load_item, pair_corpus, summarize_failures
    from vqalign.align.sphinx import SphinxAligner
    from vqalign.exceptions import VQAlignError

    spec = str(args.model or "")
    if not spec.startswith("sphinx:"):
        raise ParameterError("--adapt adapts a CMU Sphinx model: give --model sphinx:en-us "
                             "(or sphinx:DIR); vqalign's own models are trained by "
                             "align-corpus without --adapt")
    if not Path(args.corpus).is_dir():
        raise ParameterError(f"corpus folder {args.corpus} does not exist")
    out = Path(args.out)
    model_dir = out / "sphinx_adapted"
    formats = [f.strip() for f in str(args.format).split(",") if f.strip()]
    suffix = {"textgrid": ".TextGrid", "json": ".json", "ctm": ".ctm"}
    bad = [f for f in formats if f.lower() not in suffix]
    if bad or not formats:
        raise ParameterError(f"--format {args.format!r}: use TextGrid, json and/or ctm")
    items, failures = pair_corpus(args.corpus)
    if not items:
        raise ParameterError(f"the corpus {args.corpus} has no audio file with a .txt/.lab "
                             "transcript beside it: nothing to adapt to")
    base = SphinxAligner(spec[len("sphinx:"):] or "en-us")
    sr = int(base.front_end_.samprate)
    corpus, kept = [], []
    for it in items:
        try:
            y, s_r, text = load_item(it, sr=sr)
        except VQAlignError as exc:
            failures.append(Failure(it.id, str(it.audio), "reading", str(exc)))
            continue
        corpus.append((y, s_r, text))
        kept.append(it)
    if not corpus:
        raise ParameterError(f"no utterance of {args.corpus} could be read; see the reasons "
                             "above" if failures else f"no utterance in {args.corpus}")
    if not args.quiet:
        print(f"adapting {spec} to {len(corpus)} utterance(s) ({args.adapt}, tau={args.tau:g}, "
              f"{args.adapt_iter} EM steps)")
    fitted = base.adapt(corpus, update=args.adapt, tau=args.tau, tau_means=args.tau_means,
                        n_iter=args.adapt_iter)
    for name, why in fitted.failures_:
        k = int(name.split()[-1]) if name.startswith("item ") else None
        it = kept[k] if k is not None else None
        failures.append(Failure(it.id if it else name, str(it.audio) if it else name,
                                "training", why))
    fitted.save(model_dir, overwrite=args.overwrite)
    h = fitted.history_
    if not args.quiet:
        print(f"data log-likelihood per frame {h[0]['frame_loglik']:.3f} -> "
              f"{h[-1]['frame_loglik']:.3f}; model written to {model_dir} "
              f"(vqalign align AUDIO TEXT --model sphinx:{model_dir})")
    aligned = skipped = 0
    for it, (y, s_r, text) in zip(kept, corpus):
        targets = [out / (it.id + suffix[f.lower()]) for f in formats]
        if all(t.exists() for t in targets) and not args.overwrite:
            skipped += 1
            continue
        try:
            aln = fitted.align(y, text, sr=s_r, audio_name=str(it.audio))
        except VQAlignError as exc:
            failures.append(Failure(it.id, str(it.audio), "alignment", str(exc)))
            continue
        try:
            for f, t in zip(formats, targets):
                t.parent.mkdir(parents=True, exist_ok=True)
                aln.write(t, format=f, overwrite=args.overwrite)
        except (VQAlignError, OSError) as exc:
            failures.append(Failure(it.id, str(it.audio), "writing", str(exc)))
            continue
        aligned += 1
    fail_path = None
    if failures:
        fail_path = out / "failures.tsv"
        fail_path.write_text("id\tpath\tstage\treason\n" + "".join(
            f"{f.id}\t{f.path}\t{f.stage}\t{' '.join(f.reason.split())}\n" for f in failures))
    (out / "adapt_history.json").write_text(json.dumps(h, indent=1))
    print(f"aligned {aligned}, failed {len(failures)}"
          + (f", skipped {skipped} already aligned" if skipped else "")
          + (f"; failures listed in {fail_path}" if fail_path else ""))
    for line in summarize_failures(failures):
        print(line)
    sys.stdout.flush()
    return 1 if aligned == 0 and not skipped else 0


def run(args) -> int:
    from vqalign.align.corpus import summarize_failures
    from vqalign.pipeline.corpus import run_corpus

    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    if getattr(args, "adapt", None):
        return run_sphinx_adapt(args)
    if getattr(args, "model", None) is not None:
        raise ParameterError("align-corpus --model is for adapting a Sphinx model: add "
                             "--adapt (vqalign align-corpus DIR --model sphinx:en-us --adapt)")
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
