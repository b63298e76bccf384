"""``vqalign align-corpus DIR --out DIR``: train on a corpus, align every utterance.

Audio files are paired with ``.txt``/``.lab`` transcripts beside them; unpaired files
and unreadable utterances become failure records (``failures.tsv``), never crashes.
The aligner is trained once on every readable utterance (corpus mode) and saved as
``aligner.npz`` in the output folder; a second run reuses it and skips utterances whose
outputs already exist (resume), unless ``--overwrite``. Outputs are written atomically
as soon as each batch is aligned, so an interrupted run loses nothing finished.
Ends with "aligned N, failed M" and the reasons; the exit status is non-zero only when
every utterance failed.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from vqalign.exceptions import ParameterError, VQAlignError

MODEL_FILE = "aligner.npz"


def add_arguments(parser) -> None:
    parser.add_argument("corpus", type=Path, metavar="DIR",
                        help="folder of audio files with .txt/.lab transcripts beside them")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    parser.add_argument("--unit", choices=("phones", "chars"), default="phones",
                        help="phones (English, CMUdict) or chars (any language); default phones")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="worker threads for training and alignment (default 2)")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-train and replace existing outputs (default: resume)")
    parser.add_argument("--lexicon", type=Path, default=None,
                        help="pronunciation file, lines 'WORD PH PH ...' (merged over CMUdict)")
    parser.add_argument("--oov", choices=("g2p", "error"), default="g2p",
                        help="words missing from the lexicon: guess from spelling (g2p) or "
                             "fail those utterances (error)")
    parser.add_argument("--format", default="TextGrid",
                        help="comma-separated output formats: TextGrid, json, ctm "
                             "(default TextGrid)")
    parser.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)


def _tokenize_all(loaded, *, unit, lexicon, oov, failures):
    """Check every transcript (OOV report, --oov error) before training."""
    from vqalign.align.corpus import Failure
    from vqalign.align.text import tokenize_transcript

    ok, oov_words = [], {}
    for item, y, sr, text in loaded:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tr = tokenize_transcript(text, unit=unit, lexicon=lexicon, oov=oov)
        except VQAlignError as exc:
            failures.append(Failure(item.id, str(item.transcript), "transcript", str(exc)))
            continue
        for w in tr.oov:
            oov_words.setdefault(w, tr.units[tr.words.index(w)])
        ok.append((item, y, sr, text))
    return ok, oov_words


def run(args) -> int:
    from tqdm import tqdm

    from vqalign.align import Aligner
    from vqalign.align.alignment import add_quality_warnings
    from vqalign.align.corpus import (
        Failure,
        load_item,
        output_paths,
        pair_corpus,
        parse_formats,
        split_done,
        summarize_failures,
        write_failures,
    )
    from vqalign.align.lexicon import Lexicon, OOVWarning

    formats = parse_formats(args.format)
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    if args.lexicon is not None:
        Lexicon.from_file(args.lexicon)  # a bad lexicon stops the run before any work
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"--out {out_dir} exists and is not a folder")
    items, failures = pair_corpus(args.corpus, exclude=[out_dir])
    todo, done = split_done(items, out_dir, formats, overwrite=args.overwrite)
    model_path = out_dir / MODEL_FILE
    print(f"{len(items)} utterance(s) paired under {args.corpus}"
          + (f", {len(done)} already aligned (skipped; --overwrite to redo)" if done else "")
          + (f", {len(failures)} unpaired file(s)" if failures else ""), file=sys.stderr)

    aligned = 0
    if todo:
        resume = model_path.is_file() and not args.overwrite
        # training needs every readable utterance; a resumed run only needs the rest
        need = todo if resume else items
        loaded = []
        for it in tqdm(need, desc="reading", unit="utt", file=sys.stderr, leave=False):
            try:
                y, sr, text = load_item(it)
            except VQAlignError as exc:
                failures.append(Failure(it.id, str(it.audio), "reading", str(exc)))
                continue
            loaded.append((it, y, sr, text))
        loaded, oov_words = _tokenize_all(loaded, unit=args.unit, lexicon=args.lexicon,
                                          oov=args.oov, failures=failures)
        if oov_words:
            shown = ", ".join(f"{w} /{' '.join(p)}/" for w, p in list(oov_words.items())[:30])
            more = f" and {len(oov_words) - 30} more" if len(oov_words) > 30 else ""
            print(f"{len(oov_words)} word(s) not in the lexicon, pronounced by letter-to-sound "
                  f"rules: {shown}{more} (give exact pronunciations with --lexicon FILE)",
                  file=sys.stderr)
        aligner = None
        if loaded:
            with warnings.catch_warnings():
                # OOV words were listed above; don't repeat them
                warnings.simplefilter("ignore", OOVWarning)
                warnings.filterwarnings("ignore", message=".*letter-to-sound")
                try:
                    if resume:
                        aligner = Aligner.load(model_path)
                        print(f"resuming with the aligner saved in {model_path}", file=sys.stderr)
                    else:
                        kwargs = {"unit": args.unit, "n_jobs": args.jobs, "oov": args.oov}
                        if args.lexicon is not None:
                            kwargs["lexicon"] = str(args.lexicon)
                        print(f"training on {len(loaded)} utterance(s) ...", file=sys.stderr)
                        aligner = Aligner(**kwargs).fit([(y, sr, t) for _, y, sr, t in loaded])
                        out_dir.mkdir(parents=True, exist_ok=True)
                        aligner.save(model_path, overwrite=True)
                except VQAlignError as exc:
                    for it, *_ in loaded:
                        failures.append(Failure(it.id, str(it.audio), "training", str(exc)))
                    loaded = []
        todo_ids = {it.id for it in todo}
        work = [x for x in loaded if x[0].id in todo_ids]
        batch = max(1, int(args.batch))
        with tqdm(total=len(work), desc="aligning", unit="utt", file=sys.stderr) as bar:
            for start in range(0, len(work), batch):
                chunk = work[start:start + batch]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", OOVWarning)
                    warnings.filterwarnings("ignore", message=".*letter-to-sound")
                    results = aligner.align_many([(y, sr, t) for _, y, sr, t in chunk],
                                                 n_jobs=args.jobs)
                for (it, *_), res in zip(chunk, results):
                    if isinstance(res, BaseException):
                        failures.append(Failure(it.id, str(it.audio), "alignment",
                                                f"{type(res).__name__}: {res}"))
                        continue
                    res.audio = str(it.audio)
                    add_quality_warnings(res)
                    try:
                        for path, fmt in zip(output_paths(it, out_dir, formats), formats):
                            res.write(path, overwrite=True, format=fmt)
                    except (OSError, VQAlignError) as exc:
                        failures.append(Failure(it.id, str(it.audio), "writing", str(exc)))
                        continue
                    aligned += 1
                bar.update(len(chunk))

    if out_dir.is_dir() or failures:
        report = write_failures(out_dir, failures)
    else:
        report = None
    print(f"aligned {aligned}, failed {len(failures)}"
          + (f", skipped {len(done)} already aligned" if done else "")
          + (f"; failures listed in {report}" if report else ""))
    for line in summarize_failures(failures):
        print(line)
    if aligned == 0 and not done and failures:
        return 1
    return 0
