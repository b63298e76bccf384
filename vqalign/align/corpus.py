"""Corpus runs: pairing audio with transcripts, failure records, resumable output.

A corpus is a folder tree where every audio file ``x.wav`` (or ``.flac``, ``.ogg``,
``.aiff``) has a transcript ``x.txt`` or ``x.lab`` beside it. :func:`pair_corpus`
returns the pairs and a :class:`Failure` for every audio file without a transcript and
every transcript without audio, so a run reports them instead of crashing (Kaldi's
``gmm-align-compiled``: "Done N, errors on M").

Outputs mirror the corpus tree under the output folder (``out/<sub>/x.TextGrid``);
an utterance whose outputs all exist is skipped on the next run (resume) unless
``overwrite``. ``failures.tsv`` in the output folder lists what failed and why.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR
from vqalign.io.atomic import atomic_write

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
TRANSCRIPT_EXTS = (".txt", ".lab")
OUTPUT_FORMATS = {"textgrid": ".TextGrid", "json": ".json", "ctm": ".ctm"}
FAILURES_FILE = "failures.tsv"


@dataclass
class CorpusItem:
    """One utterance of a corpus.

    Attributes
    ----------
    id : str
        Path relative to the corpus root without suffix, with "/" separators
        (``"spk1/utt3"``).
    audio, transcript : Path
    reference : Path or None
        A ``.TextGrid`` beside the audio (ground truth for benchmarks), if any.
    group : str
        The folder relative to the root (speaker or voice); "" at the root.
    """

    id: str
    audio: Path
    transcript: Path
    reference: Path | None = None
    group: str = ""


@dataclass
class Failure:
    """An utterance (or lone file) that could not be processed, and why."""

    id: str
    path: str
    stage: str      # "pairing", "reading", "training", "alignment" or "writing"
    reason: str

    def __str__(self) -> str:
        return f"{self.id}: {self.stage}: {self.reason}"


def _rel_id(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def pair_corpus(root, *, exclude=()) -> tuple[list[CorpusItem], list[Failure]]:
    """Find audio files and their transcripts under ``root`` (recursively).

    Parameters
    ----------
    root : str or Path
        Corpus folder.
    exclude : iterable of paths
        Folders to skip (e.g. the output folder when it lies inside the corpus).
        Hidden files and folders (starting with ".") are always skipped.

    Returns
    -------
    (items, failures)
        Items sorted by id; failures for audio without a transcript and transcripts
        without audio. When both ``x.txt`` and ``x.lab`` exist, ``x.txt`` is used.

    Raises
    ------
    ParameterError
        If ``root`` is not a folder, or holds neither audio nor transcripts.
    """
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"corpus folder {root} does not exist or is not a folder")
    excluded = [Path(e).resolve() for e in exclude]
    audio: dict[str, Path] = {}
    texts: dict[str, list[Path]] = {}
    grids: dict[str, Path] = {}
    dups: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".")
                             and (d / n).resolve() not in excluded)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = d / name
            suf = p.suffix.lower()
            key = _rel_id(p, root)
            if suf in AUDIO_EXTS:
                if key in audio:  # x.wav and x.flac: keep the first, report the other
                    dups.append(p)
                else:
                    audio[key] = p
            elif suf in TRANSCRIPT_EXTS:
                texts.setdefault(key, []).append(p)
            elif suf == ".textgrid":
                grids[key] = p
    if not audio and not texts:
        raise ParameterError(f"corpus folder {root} holds no audio ({', '.join(AUDIO_EXTS)}) "
                             f"and no transcripts ({', '.join(TRANSCRIPT_EXTS)})")
    items: list[CorpusItem] = []
    failures: list[Failure] = []
    for key in sorted(audio):
        cands = sorted(texts.get(key, []), key=lambda p: TRANSCRIPT_EXTS.index(p.suffix.lower()))
        if not cands:
            failures.append(Failure(key, str(audio[key]), "pairing",
                                    f"audio without a transcript (expected {key}.txt or "
                                    f"{key}.lab beside it)"))
            continue
        group = Path(key).parent.as_posix()
        items.append(CorpusItem(key, audio[key], cands[0], grids.get(key),
                                "" if group == "." else group))
    for key in sorted(set(texts) - set(audio)):
        for p in texts[key]:
            failures.append(Failure(key, str(p), "pairing",
                                    f"transcript without audio (expected {key}.wav or another "
                                    "audio file beside it)"))
    for p in dups:
        failures.append(Failure(_rel_id(p, root), str(p), "pairing",
                                "a second audio file with the same name; only one of them "
                                "is aligned"))
    return items, failures


def parse_formats(spec) -> list[str]:
    """``"TextGrid,json"`` -> ``["textgrid", "json"]`` (validated, order kept)."""
    parts = [s.strip().lower().lstrip(".") for s in (spec.split(",") if isinstance(spec, str)
                                                     else spec)]
    parts = [p for p in parts if p]
    bad = [p for p in parts if p not in OUTPUT_FORMATS]
    if bad or not parts:
        raise ParameterError(f"output format(s) {', '.join(bad) or '(none)'} not supported; use "
                             "a comma-separated list of TextGrid, json, ctm")
    return list(dict.fromkeys(parts))


def output_paths(item: CorpusItem, out_dir, formats) -> list[Path]:
    """Where ``item``'s outputs go: ``out_dir/<id><suffix>`` per format."""
    out_dir = Path(out_dir)
    return [out_dir / (item.id + OUTPUT_FORMATS[f]) for f in formats]


def load_item(item: CorpusItem, *, sr: int = FEATURE_SR):
    """``(audio float32, sr, text)`` of an item (ParameterError if unreadable)."""
    from vqalign.align.text import read_transcript
    from vqalign.io.audio import load_audio

    text = read_transcript(item.transcript)
    y, sr = load_audio(item.audio, sr)
    return y, sr, text


def write_failures(out_dir, failures: list[Failure]) -> Path | None:
    """Write ``failures.tsv`` (id, stage, path, reason) atomically; remove a stale one
    when there are no failures. Returns the path written, or None."""
    path = Path(out_dir) / FAILURES_FILE
    if not failures:
        if path.exists():
            path.unlink()
        return None
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["id", "stage", "path", "reason"])
    for f in failures:
        w.writerow([f.id, f.stage, f.path, " ".join(f.reason.split())])
    with atomic_write(path, "w", overwrite=True) as fh:
        fh.write(buf.getvalue())
    return path


def summarize_failures(failures: list[Failure], *, limit: int = 10) -> list[str]:
    """Lines for the end-of-run report: counts per stage, then the first failures."""
    if not failures:
        return []
    by_stage: dict[str, int] = {}
    for f in failures:
        by_stage[f.stage] = by_stage.get(f.stage, 0) + 1
    lines = ["  by stage: " + ", ".join(f"{k} {v}" for k, v in by_stage.items())]
    lines += [f"  {f}" for f in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more")
    return lines
