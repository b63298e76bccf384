"""Many files aligned independently, each by the single-file method, in worker processes.

``vqalign align a.wav b.wav ... --out-dir OUT``, ``vqalign align CORPUS/ --out-dir OUT`` or
``vqalign align files.list --out-dir OUT``: every audio file is aligned with its own
transcript exactly as ``vqalign align FILE TEXT`` would align it (no model is shared
between files; ``align-corpus`` is the method that trains one). Each worker process builds
one :class:`~vqalign.align.Aligner` and keeps it, so the lexicon, the Sphinx model and the
compiled kernels are loaded once per worker, not once per file.

Outputs go to ``OUT/<id>.<format>`` (the corpus tree mirrored), written atomically as
each file finishes. A file whose outputs all exist is kept and not aligned again unless
``overwrite``, so an interrupted run resumes. Audio without a transcript, transcripts
without audio, unreadable files and files that fail to align are listed at the end (and
in ``OUT/failures.tsv``); the others are aligned.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from vqalign.align.corpus import (
    AUDIO_EXTS,
    OUTPUT_FORMATS,
    TRANSCRIPT_EXTS,
    CorpusItem,
    Failure,
    pair_corpus,
    write_failures,
)
from vqalign.exceptions import ParameterError, VQAlignError

#: list files: one ``AUDIO [TRANSCRIPT]`` per line
LIST_EXTS = (".list", ".lst", ".scp", ".tsv")


@dataclass
class BatchReport:
    """What :func:`align_files` did.

    Attributes
    ----------
    aligned : list of str
        Ids aligned in this run.
    kept : list of str
        Ids whose outputs existed already (not aligned again).
    failures : list of Failure
        Pairing, reading and alignment failures, with the reason.
    seconds : float
        Wall time of the run.
    audio_seconds : float
        Seconds of audio aligned in this run.
    """

    aligned: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0


def _transcript_beside(audio: Path) -> Path | None:
    for ext in TRANSCRIPT_EXTS:
        t = audio.with_suffix(ext)
        if t.is_file():
            return t
    return None


def collect_inputs(paths) -> tuple[list[CorpusItem], list[Failure]]:
    """Audio files and their transcripts from files, folders and list files.

    Parameters
    ----------
    paths : list of str or Path
        Audio files (transcript ``x.txt`` / ``x.lab`` beside each), folders (searched
        recursively, as ``align-corpus`` pairs them) and list files (``.list``, ``.lst``,
        ``.scp``, ``.tsv``: one ``AUDIO [TRANSCRIPT]`` per line, paths relative to the
        list file; ``#`` starts a comment).

    Returns
    -------
    items : list of CorpusItem
        One per audio file with a transcript; ids are unique.
    failures : list of Failure
        Audio without a transcript, transcripts without audio, missing files.
    """
    items: list[CorpusItem] = []
    failures: list[Failure] = []

    def add_file(audio: Path, transcript: Path | None, uid: str):
        if not audio.is_file():
            failures.append(Failure(uid, str(audio), "pairing", "audio file does not exist"))
        elif transcript is None or not transcript.is_file():
            failures.append(Failure(uid, str(audio), "pairing",
                                    f"audio without a transcript (expected {audio.stem}.txt "
                                    f"or {audio.stem}.lab beside it)"
                                    if transcript is None else
                                    f"transcript {transcript} does not exist"))
        else:
            items.append(CorpusItem(uid, audio, transcript))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            got, bad = pair_corpus(p)
            items.extend(got)
            failures.extend(bad)
        elif p.suffix.lower() in AUDIO_EXTS:
            add_file(p, _transcript_beside(p), p.stem)
        elif p.suffix.lower() in LIST_EXTS and p.is_file():
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#")[0].strip()
                if not line:
                    continue
                fields = line.split("\t") if "\t" in line else line.split()
                if len(fields) > 2:
                    raise ParameterError(f"{p}:{n}: expected 'AUDIO [TRANSCRIPT]', got "
                                         f"{len(fields)} fields")
                audio = Path(fields[0]) if Path(fields[0]).is_absolute() else p.parent / fields[0]
                text = None
                if len(fields) == 2:
                    text = (Path(fields[1]) if Path(fields[1]).is_absolute()
                            else p.parent / fields[1])
                add_file(audio, text if text is not None else _transcript_beside(audio),
                         audio.stem)
        elif not p.exists():
            raise ParameterError(f"{p} does not exist; give audio files, folders of audio "
                                 "with .txt/.lab transcripts, or a list file")
        else:
            raise ParameterError(f"{p} is neither audio ({', '.join(AUDIO_EXTS)}), a folder, "
                                 f"nor a list file ({', '.join(LIST_EXTS)})")
    seen: dict = {}
    for it in items:
        if it.id in seen and seen[it.id] != it.audio.resolve():
            raise ParameterError(f"two inputs would write the same outputs {it.id}.*: "
                                 f"{seen[it.id]} and {it.audio}; rename one or align them "
                                 "into different --out-dir folders")
        seen[it.id] = it.audio.resolve()
    uniq = {it.id: it for it in items}
    return [uniq[k] for k in sorted(uniq)], failures


# --------------------------------------------------------------------------- workers
_WORKER = {}


def _worker_aligner(settings: dict):
    key = tuple(sorted(settings.items()))
    if _WORKER.get("key") != key:
        from vqalign.align import Aligner

        _WORKER["aligner"] = Aligner(**settings)
        _WORKER["key"] = key
    return _WORKER["aligner"]


def _align_task(task):
    """Align one file and write its outputs; returns (id, seconds of audio, error or None)."""
    uid, audio, transcript, outs, settings, overwrite, phoneset = task
    try:
        from vqalign.align.text import read_transcript
        from vqalign.io.audio import load_audio

        text = read_transcript(transcript)
        y, sr = load_audio(audio, 16000)
        aligner = _worker_aligner(settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aln = aligner.align(y, text, sr=sr, audio_name=str(audio))
        from vqalign.align.alignment import add_quality_warnings

        add_quality_warnings(aln)
        aln = aln.with_phoneset(phoneset)
        for out in outs:
            aln.write(out, overwrite=overwrite)
        return uid, y.size / sr, None
    except VQAlignError as exc:
        return uid, 0.0, f"{type(exc).__name__}: {exc}"
    except OSError as exc:
        return uid, 0.0, f"cannot read or write: {exc}"


def align_files(items, out_dir, *, formats=("json",), jobs: int = 2, overwrite: bool = False,
                settings: dict | None = None, progress: bool = True,
                phoneset: str = "arpabet") -> BatchReport:
    """Align every item by the single-file method and write its outputs.

    Parameters
    ----------
    items : list of CorpusItem
        From :func:`collect_inputs`.
    out_dir : str or Path
        Output folder; ``<id>.<format>`` per item and format.
    formats : sequence of str
        Any of ``"json"``, ``"textgrid"``, ``"ctm"``.
    jobs : int
        Worker processes (each runs one thread); 1 aligns in this process.
    overwrite : bool
        Align again and replace items whose outputs exist.
    settings : dict, optional
        Keyword arguments of :class:`~vqalign.align.Aligner` (unit, reference, lexicon...).
    progress : bool
        Show a progress bar on stderr.
    phoneset : {"arpabet", "ipa", "misaki"}
        The phone tier's labels (:meth:`~vqalign.align.alignment.Alignment.with_phoneset`).

    Returns
    -------
    BatchReport
    """
    from vqalign.pipeline.schedulers import get_scheduler

    settings = dict(settings or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = BatchReport()
    tasks = []
    for it in items:
        outs = [out_dir / (it.id + OUTPUT_FORMATS[f]) for f in formats]
        if not overwrite and all(o.exists() for o in outs):
            report.kept.append(it.id)
            continue
        for o in outs:
            o.parent.mkdir(parents=True, exist_ok=True)
        tasks.append((it.id, str(it.audio), str(it.transcript), [str(o) for o in outs],
                      settings, overwrite, phoneset))
    t0 = time.perf_counter()
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="file", desc="aligning", file=sys.stderr)
    by_id = {it.id: it for it in items}

    def on_result(_i, res):
        uid, secs, err = res
        if err is None:
            report.aligned.append(uid)
            report.audio_seconds += secs
        else:
            report.failures.append(Failure(uid, str(by_id[uid].audio), "alignment", err))
        if bar is not None:
            bar.update()

    if tasks:
        with get_scheduler("local", jobs=min(jobs, len(tasks))) as sched:
            sched.map(_align_task, tasks, on_result=on_result)
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - t0
    report.aligned.sort()
    return report


def run_batch(inputs, out_dir, *, formats=("json",), jobs: int = 2, overwrite: bool = False,
              settings: dict | None = None, quiet: bool = False,
              phoneset: str = "arpabet") -> int:
    """The ``vqalign align ... --out-dir`` verb: pair, align, report; returns the exit code
    (0 when every file was aligned or kept, 1 when some failed)."""
    items, failures = collect_inputs(inputs)
    if not items:
        lines = "; ".join(str(f) for f in failures[:5])
        raise ParameterError(f"nothing to align: no audio file with a transcript among the "
                             f"inputs{' (' + lines + ')' if lines else ''}")
    report = align_files(items, out_dir, formats=formats, jobs=jobs, overwrite=overwrite,
                         settings=settings, progress=not quiet, phoneset=phoneset)
    report.failures = failures + report.failures
    write_failures(out_dir, report.failures)
    xrt = report.audio_seconds / report.seconds if report.seconds > 0 else float("nan")
    print(f"aligned {len(report.aligned)}, kept {len(report.kept)} (outputs existed; "
          f"--overwrite redoes them), failed {len(report.failures)} -> {out_dir}"
          + (f"; {report.audio_seconds:.1f} s of audio in {report.seconds:.1f} s "
             f"({xrt:.1f}x real time, {jobs} job(s))" if report.aligned else ""))
    for f in report.failures[:20]:
        print(f"  failed: {f}", file=sys.stderr)
    if len(report.failures) > 20:
        print(f"  ... and {len(report.failures) - 20} more (see {Path(out_dir) / 'failures.tsv'})",
              file=sys.stderr)
    return 1 if report.failures else 0
