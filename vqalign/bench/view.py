"""``vqalign view``: look at any alignment with its audio, in one self-contained HTML page.

Examples::

    vqalign view speech.wav speech.json --out speech.html
    vqalign view speech.wav speech.json pocketsphinx.json mfa/speech.TextGrid --out cmp.html
    vqalign view corpus/ aligned/ other_aligner/ --out all.html       # one page, every file
    vqalign view corpus/ aligned/ --out-dir pages/                     # one page per file

Each page holds the audio, its spectrogram and the stacked word and phone (or character)
tiers of every alignment file given, drawn over the same time axis; a segment's colour
shows its confidence where the file has one (vqalign JSON, WhisperX ``score``), and
clicking a segment plays that stretch. Files are read by :mod:`vqalign.io.formats`
(vqalign JSON, any TextGrid, CTM, WhisperX / Gentle / aeneas / pocketsphinx JSON). The
page needs no network and no files beside it.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import numpy as np

from vqalign.bench.report import _CSS, audio_block, write_page
from vqalign.exceptions import FormatError, ParameterError
from vqalign.features.frontend import FEATURE_SR
from vqalign.io.formats import read_hypotheses

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
ALIGNMENT_EXTENSIONS = (".json", ".textgrid", ".ctm", ".jsonl")
#: an alignment may end this much after the audio (rounding to frames, a final pad)
END_TOLERANCE_S = 0.25

_VIEW_CSS = """
.seg.conf{border-color:#333}
.legend{font-size:11px;color:#555;margin:4px 0 8px 150px}
.legend span{display:inline-block;width:40px;height:10px;vertical-align:middle}
"""


def _confidence_color(c: float) -> str:
    """Red (0) -> yellow (0.5) -> green (1), light enough to read labels on."""
    c = min(max(float(c), 0.0), 1.0)
    return f"hsl({int(round(120 * c))},70%,78%)"


def _confidences(path: Path, n_by_tier: dict) -> dict:
    """Per-tier confidences from a vqalign or WhisperX JSON file, or {} when it has none."""
    if path.suffix.lower() != ".json":
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    out = {}
    if isinstance(doc, dict) and isinstance(doc.get("tiers"), dict):
        for name, ivs in doc["tiers"].items():
            if name in n_by_tier and len(ivs) == n_by_tier[name]:
                out[name] = [float(iv[3]) if len(iv) > 3 and iv[3] is not None else None
                             for iv in ivs]
    elif isinstance(doc, dict) and isinstance(doc.get("segments"), list):
        scores = [w.get("score") for s in doc["segments"] for w in (s.get("words") or [])]
        if "words" in n_by_tier and len(scores) == n_by_tier["words"]:
            out["words"] = [float(s) if isinstance(s, (int, float)) else None for s in scores]
    return out


def read_view_tiers(path, duration: float | None = None) -> tuple[str, dict]:
    """Read one alignment file for the viewer.

    Parameters
    ----------
    path : str or Path
        vqalign JSON, TextGrid, CTM, WhisperX / Gentle / aeneas / pocketsphinx JSON.
    duration : float, optional
        The audio's length in seconds; an alignment that runs past it by more than
        ``END_TOLERANCE_S`` is refused (it belongs to another recording).

    Returns
    -------
    format : str
        The detected format.
    tiers : dict
        ``{tier: [[start_s, end_s, label, confidence or None], ...]}`` for the tiers
        ``words``, ``phones`` and ``chars`` present in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"alignment file {path} does not exist")
    hyps = read_hypotheses(path)
    if len(hyps) != 1:
        raise ParameterError(f"{path} holds {len(hyps)} utterances; give one file per "
                             "recording to view (split the CTM by utterance)")
    h = hyps[0]
    tiers = {k: v for k, v in h.tiers.items() if k in ("words", "phones", "chars")}
    if not tiers:
        raise ParameterError(f"{path} has no words, phones or chars tier to draw")
    conf = _confidences(path, {k: len(v) for k, v in tiers.items()})
    out = {}
    end = 0.0
    for name, ivs in tiers.items():
        cs = conf.get(name, [None] * len(ivs))
        rows = []
        for (s, e, lab), c in zip(ivs, cs):
            if not (s == s and e == e) or not str(lab).strip():
                continue
            rows.append([float(s), float(e), str(lab), c])
            end = max(end, float(e))
        out[name] = rows
    if duration is not None and end > duration + END_TOLERANCE_S:
        raise ParameterError(f"{path} has segments up to {end:.2f} s but the audio lasts "
                             f"{duration:.2f} s: it is the alignment of another recording "
                             "(check the file pairing)")
    return h.format, out


def write_view(path, pages: list, *, title: str = "vqalign view", overwrite: bool = False):
    """Write one self-contained HTML page for one or more recordings.

    Parameters
    ----------
    path : str or Path
        The page to write (atomically; an existing file needs ``overwrite=True``).
    pages : list of dict
        One per recording: ``{"id": str, "audio": float32 array (n,) or None, "sr": int,
        "alignments": [(name, {tier: [[start, end, label, conf], ...]}), ...]}``.
    title : str
        The page title.
    overwrite : bool
        Replace an existing page.

    Returns
    -------
    Path
        ``path``.
    """

    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}{_VIEW_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>{len(pages)} recording(s). Click a segment to play it. "
             "Colour: confidence where the file gives one (beige: the file has none).</p>",
             "<div class='legend'>confidence " + "".join(
                 f"<span style='background:{_confidence_color(c)}'></span>"
                 for c in (0.0, 0.25, 0.5, 0.75, 1.0)) + " 0 &rarr; 1</div>"]
    payload = []
    for k, page in enumerate(pages):
        y = page.get("audio")
        ends = [s[1] for _, tiers in page["alignments"] for ivs in tiers.values() for s in ivs]
        duration = y.size / page["sr"] if y is not None else max(ends or [1.0])
        rows = []
        for name, tiers in page["alignments"]:
            for tier in ("words", "phones", "chars"):
                if tier in tiers:
                    segs = [[s, e, lab, _confidence_color(c) if c is not None else None,
                             c] for s, e, lab, c in tiers[tier]]
                    rows.append({"name": f"{name} {tier}", "ref": False, "segs": segs})
        payload.append({"index": k, "id": str(page["id"]), "duration": duration,
                        "rows": rows})
        parts.append(f"<div class='utt' id='utt-{k}'><h3>{html.escape(str(page['id']))} "
                     f"<span class='note'>({duration:.2f} s)</span></h3>")
        if y is not None:
            parts.append(audio_block(k, np.asarray(y, dtype=np.float32), int(page["sr"])))
        parts.append(f"<div class='tiers' id='tiers-{k}'></div></div>")
    write_page(path, parts, payload, overwrite=overwrite)
    return Path(path)


def _load(path: Path):
    from vqalign.io.audio import load_audio

    y, sr = load_audio(path, FEATURE_SR)
    return np.asarray(y, dtype=np.float32), sr


def _pairs_from_folders(audio_dir: Path, folders: list[Path]):
    """(audio file, [alignment file per folder, or None]) for every audio file in audio_dir."""
    audios = sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not audios:
        raise ParameterError(f"{audio_dir} holds no audio file "
                             f"({', '.join(AUDIO_EXTENSIONS)})")
    index = []
    for folder in folders:
        if not folder.is_dir():
            raise ParameterError(f"alignment folder {folder} does not exist")
        by_stem: dict = {}
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() in ALIGNMENT_EXTENSIONS and not p.name.endswith(".tiers.json"):
                by_stem.setdefault(p.stem, p)
        index.append(by_stem)
    return [(a, [ix.get(a.stem) for ix in index]) for a in audios]


def add_arguments(p) -> None:
    p.epilog = ("example: vqalign view speech.wav speech.json pocketsphinx.json "
                "--out speech.html")
    p.add_argument("audio", type=Path, help="an audio file, or a folder of audio files")
    p.add_argument("alignments", type=Path, nargs="*", metavar="ALIGNMENT",
                   help="alignment files of that audio (vqalign JSON, TextGrid, CTM, "
                        "WhisperX JSON, ...); with a folder of audio: folders holding "
                        "<id>.json/.TextGrid/.ctm (default: the audio folder itself)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", "-o", type=Path, help="one HTML page with every recording")
    out.add_argument("--out-dir", type=Path, help="one HTML page per recording, <id>.html")
    p.add_argument("--names", help="comma-separated row names, one per alignment argument "
                                   "(default: the file or folder names)")
    p.add_argument("--overwrite", action="store_true", help="replace existing pages")


def run(args) -> int:
    audio = Path(args.audio)
    if not audio.exists():
        raise ParameterError(f"audio {audio} does not exist")
    names = args.names.split(",") if args.names else None
    if audio.is_dir():
        folders = [Path(a) for a in args.alignments] or [audio]
        if names and len(names) != len(folders):
            raise ParameterError(f"--names gives {len(names)} names for {len(folders)} "
                                 "alignment folders")
        names = names or [f.name or str(f) for f in folders]
        pairs = _pairs_from_folders(audio, folders)
    else:
        if not args.alignments:
            raise ParameterError("give at least one alignment file to draw after the audio, "
                                 "e.g. vqalign view a.wav a.json --out a.html")
        if names and len(names) != len(args.alignments):
            raise ParameterError(f"--names gives {len(names)} names for "
                                 f"{len(args.alignments)} alignment files")
        names = names or [a.name for a in args.alignments]
        pairs = [(audio, list(args.alignments))]
    pages, missing, failed = [], [], []
    for a, files in pairs:
        if all(f is None for f in files):
            missing.append(a)
            continue
        y, sr = _load(a)
        aligns = []
        for name, f in zip(names, files):
            if f is None:
                continue
            try:
                _, tiers = read_view_tiers(f, y.size / sr)
            except (ParameterError, FormatError) as exc:
                if audio.is_dir():
                    failed.append(str(exc))
                    continue
                raise
            aligns.append((name, tiers))
        if aligns:
            pages.append({"id": a.stem, "audio": y, "sr": sr, "alignments": aligns})
    if not pages:
        raise ParameterError(f"no alignment found for any audio file under {audio}; "
                             "alignment files must share the audio's name (<id>.json, "
                             "<id>.TextGrid, ...)")
    if args.out is not None:
        write_view(args.out, pages, overwrite=args.overwrite)
        written = [args.out]
    else:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        clash = [args.out_dir / f"{p['id']}.html" for p in pages
                 if (args.out_dir / f"{p['id']}.html").exists()]
        if clash and not args.overwrite:
            raise ParameterError(f"{len(clash)} page(s) exist already in {args.out_dir} "
                                 f"(e.g. {clash[0].name}); pass --overwrite to replace them")
        written = [write_view(args.out_dir / f"{p['id']}.html", [p], title=p["id"],
                              overwrite=args.overwrite) for p in pages]
    for a in missing[:20]:
        print(f"no alignment for {a}", file=sys.stderr)
    for msg in failed[:20]:
        print(f"skipped: {msg}", file=sys.stderr)
    print(f"{len(pages)} recording(s) drawn -> "
          f"{written[0] if len(written) == 1 else args.out_dir}"
          + (f"; {len(missing)} audio file(s) without alignment" if missing else "")
          + (f"; {len(failed)} alignment file(s) skipped" if failed else ""))
    return 0
