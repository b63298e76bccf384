"""``vqalign align``: align one audio file with its transcript, or many files each alone.

``vqalign align AUDIO TRANSCRIPT --out FILE``: TRANSCRIPT is a ``.txt``/``.lab`` file when
such a file exists, otherwise the literal text. Words missing from the lexicon are listed
before aligning; a one-line summary follows. The output format follows the suffix of
``--out`` (.TextGrid, .json, .ctm), is written atomically and never replaces an existing
file without ``--overwrite``.

``vqalign align INPUT... --out-dir DIR``: audio files (transcripts beside them), folders of
audio + transcript pairs, or list files; every file is aligned by the same single-file
method in ``--jobs`` worker processes (:mod:`vqalign.pipeline.batch`).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from vqalign.exceptions import ParameterError


def add_arguments(parser) -> None:
    parser.epilog = ("examples: vqalign align speech.wav speech.txt --out speech.json | "
                     "vqalign align corpus/ --out-dir aligned/ --jobs 2")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="with --out: AUDIO and TRANSCRIPT (a .txt/.lab file, or the text "
                             "itself, quoted); with --out-dir: audio files (x.txt/x.lab "
                             "beside each), folders of audio + transcript pairs, or list files "
                             "(.list/.scp/.tsv: 'AUDIO [TRANSCRIPT]' per line)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", "-o", type=Path,
                       help="output file for one recording: .TextGrid, .json or .ctm")
    where.add_argument("--out-dir", type=Path,
                       help="output folder for many recordings: <id>.<format> per file")
    parser.add_argument("--format", default="json",
                        help="with --out-dir: comma-separated TextGrid, json, ctm "
                             "(default json)")
    parser.add_argument("--phoneset", choices=("arpabet", "ipa", "misaki"), default="arpabet",
                        help="phone tier labels: ARPAbet (default), IPA (General American), or "
                             "misaki, the phonemes of Kokoro's G2P (for TTS fine-tuning)")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="with --out-dir: worker processes, one thread each (default 2)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="with --out-dir: no progress bar")
    parser.add_argument("--unit", choices=("phones", "chars"), default="phones",
                        help="phones (English, CMUdict) or chars (any language); default phones")
    parser.add_argument("--lexicon", type=Path, default=None,
                        help="pronunciation file, lines 'WORD PH PH ...' (merged over CMUdict)")
    parser.add_argument("--codebook", type=Path, default=None,
                        help="VQ codebook (.npz) to use instead of learning one from the audio")
    parser.add_argument("--model", default=None,
                        help="trained aligner (.npz from Aligner.save / align-corpus), or "
                             "sphinx:en-us (the CMU Sphinx model in the pocketsphinx wheel) "
                             "or sphinx:PATH / PATH (a Sphinx model folder, one holding an "
                             "mdef file)")
    parser.add_argument("--oov", choices=("g2p", "error"), default="g2p",
                        help="words missing from the lexicon: guess from spelling (g2p, "
                             "default) or stop with an error")
    parser.add_argument("--reference", choices=("auto", "sphinx", "none", "flat"),
                        default="auto",
                        help="self-training with phones (no --model / --codebook): also "
                             "align with a pretrained model and a model self-trained from "
                             "it, and take each boundary's median. sphinx: the CMU Sphinx "
                             "en-us model (pocketsphinx); none: no outside model, vqalign's "
                             "own English prior (trained on synthetic speech); auto "
                             "(default): sphinx when pocketsphinx is installed, else none; "
                             "flat: the flat-start self-trained model alone")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out file (with --out-dir: align again "
                             "and replace files aligned before; default: keep them)")


def resolve_transcript(arg: str) -> tuple[str, str]:
    """``(text, source)``: read ``arg`` if it names a file, else take it as the text."""
    from vqalign.align.text import read_transcript

    p = Path(arg)
    try:
        is_file = p.is_file()
    except OSError:  # e.g. a very long literal transcript
        is_file = False
    if is_file:
        return read_transcript(p), str(p)
    if p.suffix.lower() in (".txt", ".lab") and len(arg.split()) == 1:
        raise ParameterError(f"transcript file {arg} does not exist; pass an existing .txt/.lab "
                             "file or the text itself in quotes")
    return arg, "command line"


def report_oov(text: str, *, unit: str, lexicon, oov: str, stream=None) -> list[str]:
    """Tokenize once to list OOV words (printed) before any audio work; returns them."""
    from vqalign.align.text import tokenize_transcript

    stream = stream or sys.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = tokenize_transcript(text, unit=unit, lexicon=lexicon, oov=oov)
    if tr.oov:
        idx = {w: k for k, w in reversed(list(enumerate(tr.words)))}
        shown = ", ".join(f"{w} /{' '.join(tr.units[idx[w]])}/" for w in tr.oov[:30])
        more = f" and {len(tr.oov) - 30} more" if len(tr.oov) > 30 else ""
        from vqalign.align.g2p import describe

        print(f"{len(tr.oov)} word(s) not in the lexicon, pronounced by letter-to-sound rules "
              f"({describe()}): {shown}{more} (give exact pronunciations with --lexicon FILE)",
              file=stream)
    return tr.oov


def make_aligner(args):
    """An Aligner from ``--model`` or from the command-line settings."""
    from vqalign.align import Aligner

    if getattr(args, "model", None) is not None:
        spec = str(args.model)
        if spec.startswith("sphinx:"):
            return Aligner.from_sphinx(spec[len("sphinx:"):] or "en-us")
        if Path(spec).is_dir():
            if (Path(spec) / "mdef").is_file():      # a Sphinx model folder: as sphinx:DIR
                return Aligner.from_sphinx(spec)
            raise ParameterError(f"model {spec} is a folder without an mdef file, so it is "
                                 "not a Sphinx model folder; give an .npz written by "
                                 "Aligner.save / align-corpus, sphinx:en-us, or a Sphinx "
                                 "model folder (mdef, means, variances, ...)")
        if not Path(spec).is_file():
            raise ParameterError(f"model file {spec} does not exist; give an .npz written by "
                                 "Aligner.save / align-corpus, or sphinx:en-us")
        return Aligner.load(spec)
    kwargs = {"unit": args.unit, "oov": getattr(args, "oov", "g2p")}
    ref = getattr(args, "reference", "auto")
    kwargs["reference"] = ref
    if getattr(args, "lexicon", None) is not None:
        kwargs["lexicon"] = str(args.lexicon)
    if getattr(args, "codebook", None) is not None:
        if not args.codebook.is_file():
            raise ParameterError(f"codebook file {args.codebook} does not exist")
        kwargs["codebook"] = str(args.codebook)
    return Aligner(**kwargs)


def run(args) -> int:
    from vqalign.align.alignment import _format_of, add_quality_warnings
    from vqalign.align.lexicon import Lexicon

    if args.out_dir is not None:
        return _run_many(args)
    if len(args.inputs) != 2:
        raise ParameterError(f"with --out, give one AUDIO and its TRANSCRIPT (got "
                             f"{len(args.inputs)} inputs); for many files use --out-dir DIR")
    args.audio, args.transcript = Path(args.inputs[0]), args.inputs[1]
    out = Path(args.out)
    _format_of(out, None)  # unknown suffix: fail before any work
    if out.exists() and not args.overwrite:
        raise ParameterError(f"{out} exists; pass --overwrite to replace it")
    if args.lexicon is not None:
        Lexicon.from_file(args.lexicon)  # report a bad lexicon file before any audio work
    text, source = resolve_transcript(args.transcript)
    unit = args.unit
    report_oov(text, unit=unit, lexicon=args.lexicon, oov=args.oov)
    from vqalign.align.longfile import open_audio  # a long file is read block by block
    y, sr = open_audio(args.audio)
    aligner = make_aligner(args)
    with warnings.catch_warnings():
        # OOV words were reported above; the aligner's own tokenization would repeat them
        from vqalign.exceptions import OOVWarning
        warnings.simplefilter("ignore", OOVWarning)
        warnings.filterwarnings("ignore", message=".*letter-to-sound")
        # the path, not the samples: a long recording's samples are let go once its
        # features are made (3 hours at 16 kHz are 690 MB)
        del y
        alignment = aligner.align(args.audio, text, sr=sr, audio_name=str(args.audio))
    add_quality_warnings(alignment)
    alignment.with_phoneset(args.phoneset).write(out, overwrite=args.overwrite)
    for w in alignment.warnings[:10]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{alignment.summary()} (transcript from {source}) -> {out}")
    return 0


def _run_many(args) -> int:
    from vqalign.align.corpus import parse_formats
    from vqalign.pipeline.batch import run_batch

    if args.model is not None or args.codebook is not None:
        raise ParameterError("--out-dir aligns each file by the single-file method; --model "
                             "and --codebook are for one file (or use align-corpus)")
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    settings = {"unit": args.unit, "oov": args.oov,
                "reference": args.reference,
                "n_jobs": 1}
    if args.lexicon is not None:
        from vqalign.align.lexicon import Lexicon

        Lexicon.from_file(args.lexicon)  # a bad lexicon file fails before any audio work
        settings["lexicon"] = str(args.lexicon)
    return run_batch(args.inputs, args.out_dir, formats=parse_formats(args.format),
                     jobs=args.jobs, overwrite=args.overwrite, settings=settings,
                     quiet=args.quiet, phoneset=args.phoneset)
