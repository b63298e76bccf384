"""Alignment results: tiers of timed segments, their files (TextGrid, JSON, CTM), warnings.

An :class:`Alignment` holds tiers ``"words"`` and ``"phones"`` (or ``"chars"``) of
:class:`Segment` objects in seconds. Silence is not a segment: gaps between segments
are allowed and become empty intervals in a TextGrid.

JSON format (DESIGN.md)::

    {"audio": "a.wav", "sample_rate": 16000, "duration": 3.2,
     "tiers": {"words": [[start_s, end_s, label, confidence], ...], "phones": [...]},
     "diagnostics": {...}}

Confidences that are unknown are NaN in Python and ``null`` in JSON.

Confidence
----------
The confidence of a word or phone (character) segment made by :class:`vqalign.align.Aligner`
is a calibrated probability: **P(its start and its end are both within 50 ms of the
truth)**: of the words given about 0.7, about 7 in 10 are within 50 ms. Measured on
held-out synthesized speech (60 utterances, self-trained one at a time): words given
0.6-0.8 were within 50 ms 77 % of the time, 0.8-1.0: 93 %, 0.0-0.2: 17 %; the
reliability table of ``vqalign bench align`` shows it on any corpus with reference
timings. It combines, in a logistic model fitted by
``python -m vqalign.eval.calibrate`` (:mod:`vqalign.align.confidence`): the posterior
mass of each boundary within +-50 ms of where the aligner put it (forward-backward around
the Viterbi path), the posterior spread of the boundary, the frame likelihood ratio,
duration against the model's expectation and the utterance's pace, loudness against the
recording's noise floor, and the spectral change at the boundaries. A word lying over
near-silence (most of its frames near the noise floor) gets at most 0.02 and a warning
with its time span. ``diagnostics["confidence"]`` holds the 20 ms variant and the cues::

    "confidence": {"meaning": "...", "calibration": "<command that fitted the model>",
                   "words_20ms": [p, ...], "phones_20ms": [p, ...],
                   "features": [names], "word_features": [[...], ...],
                   "phones_features": [[...], ...]}

(``chars_20ms`` / ``chars_features`` with characters). The cues let a user re-fit the
model on their own data (``python -m vqalign.eval.calibrate``). ``"mode"`` says which
model: ``"corpus"`` (a fitted aligner), ``"self"`` (self-trained on the file), or
``"combined"``: a self-trained English file whose boundaries are the median of three
alignments (:mod:`vqalign.align.second_opinion`); its confidences come from the two
self-trained models' and the spread of the three estimates, given as
``"combined_features"``, ``"combined_word_features"`` and ``"combined_phones_features"``
(the other cues are the flat-start model's), and ``diagnostics["reference"]`` holds the
three alignments' word spans::

    "reference": {"method": "...", "words": {"flat": [[s, e], ...], "seeded": [...],
                                             "sphinx": [...]}, "seeded_em_history": {...}}
:func:`add_quality_warnings` warns about words whose confidence is below 0.5 (more
likely off by over 50 ms than not).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR
from vqalign.io.atomic import atomic_write

FORMATS = {".textgrid": "textgrid", ".json": "json", ".ctm": "ctm"}
_TIME_TOL = 1e-6  # seconds: TextGrids round times to the microsecond


@dataclass
class Segment:
    """One labelled interval ``[start, end)`` in seconds, with an optional confidence."""

    start: float
    end: float
    label: str
    confidence: float = math.nan

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_tuple(self) -> tuple[float, float, str]:
        """``(start, end, label)``, the form :mod:`vqalign.eval.boundaries` compares."""
        return (self.start, self.end, self.label)

    def to_list(self) -> list:
        conf = None if math.isnan(self.confidence) else round(float(self.confidence), 6)
        return [round(float(self.start), 6), round(float(self.end), 6), self.label, conf]


def _as_segment(item, tier: str, k: int) -> Segment:
    if isinstance(item, Segment):
        seg = item
    elif isinstance(item, (list, tuple)) and len(item) in (3, 4):
        conf = item[3] if len(item) == 4 and item[3] is not None else math.nan
        seg = Segment(float(item[0]), float(item[1]), str(item[2]), float(conf))
    else:
        raise ParameterError(f"tier {tier!r} item {k} must be a Segment or "
                             f"[start, end, label(, confidence)], got {item!r:.80}")
    return seg


@dataclass
class Alignment:
    """Timed tiers for one utterance.

    Attributes
    ----------
    tiers : dict of str to list of Segment
        ``"words"`` and ``"phones"`` or ``"chars"``, each sorted and non-overlapping.
    audio : str or None
        The audio file (or name) aligned.
    sample_rate : int
    duration : float
        Length of the audio in seconds (default: the last segment's end).
    diagnostics : dict
        JSON-serializable extras: ``"frame_loglik"``, ``"em_history"`` (History.to_dict()),
        ``"warnings"`` (list of str), ``"hop_s"``, ...
    """

    tiers: dict[str, list[Segment]]
    audio: str | None = None
    sample_rate: int = FEATURE_SR
    duration: float | None = None
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.tiers, dict) or not self.tiers:
            raise ParameterError("an Alignment needs a dict of tiers, e.g. {'words': [...], "
                                 f"'phones': [...]}}, got {self.tiers!r:.80}")
        clean = {}
        for name, segs in self.tiers.items():
            out = [_as_segment(s, name, k) for k, s in enumerate(segs)]
            for k, s in enumerate(out):
                if not (math.isfinite(s.start) and math.isfinite(s.end)) or s.end < s.start:
                    raise ParameterError(f"tier {name!r} segment {k} ({s.label!r}) has start "
                                         f"{s.start} and end {s.end}; need 0 <= start <= end")
                if s.start < -_TIME_TOL:
                    raise ParameterError(f"tier {name!r} segment {k} ({s.label!r}) starts at "
                                         f"{s.start} s, before the audio")
                if k and s.start < out[k - 1].end - _TIME_TOL:
                    raise ParameterError(
                        f"tier {name!r} segments {k - 1} ({out[k - 1].label!r}, ends "
                        f"{out[k - 1].end:.6f} s) and {k} ({s.label!r}, starts {s.start:.6f} s) "
                        "overlap or are out of order")
            clean[str(name)] = out
        self.tiers = clean
        last = max((segs[-1].end for segs in clean.values() if segs), default=0.0)
        if self.duration is None:
            self.duration = last
        self.duration = float(self.duration)
        if self.duration < last - _TIME_TOL:
            raise ParameterError(f"alignment duration {self.duration:.6f} s is shorter than its "
                                 f"last segment's end {last:.6f} s")
        if self.audio is not None:
            self.audio = str(self.audio)
        self.sample_rate = int(self.sample_rate)
        if self.diagnostics is None:
            self.diagnostics = {}

    # --- access -------------------------------------------------------------------
    @property
    def words(self) -> list[Segment]:
        return self.tiers.get("words", [])

    @property
    def unit_tier(self) -> str:
        """Name of the sub-word tier ("phones" or "chars"), or "" if there is none."""
        for name in ("phones", "chars"):
            if name in self.tiers:
                return name
        return next((n for n in self.tiers if n != "words"), "")

    def tier(self, name: str) -> list[tuple[float, float, str]]:
        """``[(start, end, label), ...]`` of one tier."""
        if name not in self.tiers:
            raise ParameterError(f"the alignment has no tier {name!r}; it has "
                                 f"{', '.join(self.tiers)}")
        return [s.as_tuple() for s in self.tiers[name]]

    @property
    def warnings(self) -> list[str]:
        return list(self.diagnostics.get("warnings", []))

    def summary(self) -> str:
        """One line: counts, duration, mean confidence and number of warnings."""
        parts = [f"{len(segs)} {name}" for name, segs in self.tiers.items()]
        confs = [s.confidence for s in self.words if not math.isnan(s.confidence)]
        conf = f"; mean word confidence {np.mean(confs):.2f}" if confs else ""
        n_warn = len(self.diagnostics.get("warnings", []))
        name = f"{self.audio}: " if self.audio else ""
        return (f"{name}{', '.join(parts)} over {self.duration:.2f} s{conf}; "
                f"{n_warn} warning{'s' if n_warn != 1 else ''}")

    # --- dict / JSON ---------------------------------------------------------------
    def with_phoneset(self, phoneset: str) -> Alignment:
        """A copy whose ``phones`` tier is written in another phone set.

        Parameters
        ----------
        phoneset : {"arpabet", "ipa", "misaki"}
            ARPAbet as aligned, IPA (General American), or the phonemes of Kokoro's G2P
            (misaki), so a phone tier can feed TTS fine-tuning directly.

        Returns
        -------
        Alignment
            Times and confidences unchanged; ``diagnostics["phoneset"]`` records the set.
        """
        from vqalign.phones import arpabet_to

        arpabet_to("AA", phoneset)   # an unknown set fails here, with the choices
        if phoneset == "arpabet" or "phones" not in self.tiers:
            return self
        tiers = dict(self.tiers)
        tiers["phones"] = [Segment(s.start, s.end, arpabet_to(s.label, phoneset), s.confidence)
                           for s in self.tiers["phones"]]
        return Alignment(tiers=tiers, audio=self.audio, sample_rate=self.sample_rate,
                         duration=self.duration,
                         diagnostics={**self.diagnostics, "phoneset": phoneset})

    def to_dict(self) -> dict:
        """The JSON-ready dict of DESIGN.md (NaN -> None, numpy -> lists)."""
        return {
            "audio": self.audio,
            "sample_rate": self.sample_rate,
            "duration": round(self.duration, 6),
            "tiers": {name: [s.to_list() for s in segs] for name, segs in self.tiers.items()},
            "diagnostics": _jsonable(self.diagnostics),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Alignment:
        if not isinstance(d, dict) or "tiers" not in d:
            raise ParameterError("an alignment dict needs a 'tiers' key "
                                 "({'tiers': {'words': [[start, end, label, conf], ...]}})")
        return cls(tiers=dict(d["tiers"]), audio=d.get("audio"),
                   sample_rate=d.get("sample_rate") or FEATURE_SR, duration=d.get("duration"),
                   diagnostics=dict(d.get("diagnostics") or {}))

    def to_json(self, *, indent: int | None = 1) -> str:
        if indent is None:
            return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)
        return dumps_indented(self.to_dict(), indent)

    # --- files ----------------------------------------------------------------------
    def textgrid_tiers(self) -> dict[str, list[tuple[float, float, str]]]:
        """Tiers covering ``[0, duration]`` without gaps; gaps become empty labels."""
        out = {}
        for name, segs in self.tiers.items():
            filled: list[tuple[float, float, str]] = []
            t = 0.0
            for s in segs:
                if s.start > t + _TIME_TOL:
                    filled.append((t, s.start, ""))
                start = max(s.start, t) if filled else s.start
                if s.end > start:
                    filled.append((start, s.end, s.label))
                t = max(t, s.end)
            if self.duration > t + _TIME_TOL:
                filled.append((t, self.duration, ""))
            out[name] = filled
        return out

    def to_ctm(self, *, tier: str = "words", utterance: str | None = None) -> str:
        """Kaldi CTM lines ``<utt> 1 <start> <dur> <label> [<conf>]`` for one tier.

        The confidence column is written only for segments whose confidence is known.
        """
        utt = utterance or (Path(self.audio).stem if self.audio else "utt")
        utt = "_".join(utt.split()) or "utt"
        if tier not in self.tiers:
            self.tier(tier)  # raises, naming the tiers there are
        lines = []
        for s in self.tiers[tier]:
            conf = "" if math.isnan(s.confidence) else f" {s.confidence:.3f}"
            # round both ends first so that shared boundaries stay shared in the file
            start, end = round(s.start, 3), round(s.end, 3)
            lines.append(f"{utt} 1 {start:.3f} {end - start:.3f} {s.label}{conf}")
        return "\n".join(lines) + ("\n" if lines else "")

    def write(self, path, *, overwrite: bool = False, format: str | None = None,
              tier: str = "words") -> Path:
        """Write the alignment atomically; the format follows the suffix by default.

        Parameters
        ----------
        path : str or Path
            ``.TextGrid``, ``.json`` or ``.ctm``.
        overwrite : bool
            An existing file is replaced only with ``overwrite=True``.
        format : {"TextGrid", "json", "ctm"}, optional
            Overrides the suffix.
        tier : str
            Tier written to a CTM file (``"words"`` by default).

        Returns
        -------
        Path
            The written path.
        """
        path = Path(path)
        fmt = _format_of(path, format)
        if not overwrite and path.exists():
            raise ParameterError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to "
                                 "replace it")
        if fmt == "json":
            parts = _json_parts(self.to_dict(), 1)
            with atomic_write(path, "w", overwrite=overwrite) as fh:
                fh.writelines(parts)
                fh.write("\n")
        elif fmt == "ctm":
            text = self.to_ctm(tier=tier)
            with atomic_write(path, "w", overwrite=overwrite) as fh:
                fh.write(text)
        else:
            _write_textgrid_atomic(path, self.textgrid_tiers(), self.duration,
                                   overwrite=overwrite)
        return path


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        key = format.lower().lstrip(".")
        if key not in ("textgrid", "json", "ctm"):
            raise ParameterError(f"format={format!r} is not supported; use 'TextGrid', 'json' "
                                 "or 'ctm'")
        return key
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ParameterError(f"cannot tell the format of {path} from its suffix "
                             f"{path.suffix or '(none)'!r}; use .TextGrid, .json or .ctm")
    return fmt


def _write_textgrid_atomic(path: Path, tiers, duration: float, *, overwrite: bool) -> None:
    """vqalign.io.textgrid.write_textgrid writes through a temporary file (atomic)."""
    from vqalign.io.textgrid import write_textgrid

    if not duration > 0:
        raise ParameterError(f"cannot write a TextGrid for an alignment of duration {duration} s")
    write_textgrid(path, tiers, duration, overwrite=overwrite)


def read_alignment(path) -> Alignment:
    """Read an alignment written by :meth:`Alignment.write` (``.json``, ``.TextGrid``, ``.ctm``).

    TextGrid empty intervals are gaps (not segments); confidences are NaN. A CTM file
    gives a ``words`` tier (the utterance column is kept as ``audio``).
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"alignment file {path} does not exist")
    fmt = _format_of(path, None)
    if fmt == "json":
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParameterError(f"{path} is not a valid alignment JSON file: {exc}") from None
        a = Alignment.from_dict(d)
        return a
    if fmt == "ctm":
        segs, utt = [], None
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            f = line.split()
            if not f or f[0].startswith(";;"):
                continue
            if len(f) < 5:
                raise ParameterError(f"{path} line {lineno}: {line!r} is not "
                                     "'<utt> <channel> <start> <dur> <word> [<conf>]'")
            utt = f[0]
            start, dur = float(f[2]), float(f[3])
            conf = float(f[5]) if len(f) > 5 else math.nan
            segs.append(Segment(start, start + dur, f[4], conf))
        segs.sort(key=lambda s: s.start)
        for a, b in zip(segs[:-1], segs[1:]):
            if a.end > b.start and a.end - b.start < 0.0015:  # millisecond rounding in the file
                a.end = b.start
        return Alignment(tiers={"words": segs}, audio=utt)
    from vqalign.io.textgrid import read_textgrid

    full = read_textgrid(path, include_empty=True)
    duration = max((ivs[-1][1] for ivs in full.values() if ivs), default=0.0)
    tiers = {name: [Segment(float(s), float(e), lab) for s, e, lab in ivs if lab.strip()]
             for name, ivs in full.items()}
    return Alignment(tiers=tiers, audio=None, duration=duration)


def add_quality_warnings(alignment: Alignment, *, min_segment_s: float = 0.02,
                         low_confidence: float = 0.5, max_gap_s: float = 1.0,
                         max_unit_s: float = 0.4, max_median_unit_s: float = 0.18) -> list[str]:
    """Add warnings about suspicious segments to ``alignment.diagnostics["warnings"]``.

    Flags segments shorter than ``min_segment_s`` (a unit squeezed into too few frames),
    words whose confidence (calibrated P(both boundaries within 50 ms), see the module
    docstring) is below ``low_confidence``, gaps (silences) in the words
    tier longer than ``max_gap_s`` (speech missing from the transcript, or a long pause),
    and stretched units: a phone/character longer than ``max_unit_s``, or a median unit
    longer than ``max_median_unit_s`` (in speech the median phone lasts 50-120 ms; a
    transcript that lacks words gets its units stretched over the untranscribed speech).

    Returns
    -------
    list of str
        The warnings added (those already present are not repeated).
    """
    if not isinstance(alignment, Alignment):
        raise ParameterError(f"add_quality_warnings takes an Alignment, got "
                             f"{type(alignment).__name__}")
    new = _quality_warnings(alignment, min_segment_s=min_segment_s,
                            low_confidence=low_confidence, max_gap_s=max_gap_s,
                            max_unit_s=max_unit_s, max_median_unit_s=max_median_unit_s)
    have = alignment.diagnostics.setdefault("warnings", [])
    added = [w for w in new if w not in have]
    have.extend(added)
    return added


def _quality_warnings(alignment, *, min_segment_s=0.02, low_confidence=0.5, max_gap_s=1.0,
                      max_unit_s=0.4, max_median_unit_s=0.18) -> list[str]:
    """The warnings :func:`add_quality_warnings` gives ``alignment`` as it is now (nothing
    added to it)."""
    for name, v in (("min_segment_s", min_segment_s), ("max_gap_s", max_gap_s),
                    ("max_unit_s", max_unit_s), ("max_median_unit_s", max_median_unit_s)):
        if not isinstance(v, numbers.Real) or not v >= 0:
            raise ParameterError(f"{name} must be a duration in seconds >= 0, got {v!r}")
    new: list[str] = []
    for name, segs in alignment.tiers.items():
        short = [s for s in segs if s.duration < min_segment_s]
        for s in short[:10]:
            new.append(f"{name}: {s.label!r} at {s.start:.3f} s lasts {1000 * s.duration:.0f} ms "
                       f"(< {1000 * min_segment_s:.0f} ms); its boundaries are unreliable")
        if len(short) > 10:
            new.append(f"{name}: {len(short) - 10} more segments shorter than "
                       f"{1000 * min_segment_s:.0f} ms")
        if name != "words":
            continue  # phones: one warning per word is enough (a word holds ~4 phones)
        low = [s for s in segs if not math.isnan(s.confidence) and s.confidence < low_confidence]
        for s in low[:10]:
            new.append(f"{name}: {s.label!r} at {s.start:.3f}-{s.end:.3f} s has low confidence "
                       f"{s.confidence:.2f} (< {low_confidence:g}: its boundaries are more "
                       "likely than not off by over 50 ms); check the audio and transcript "
                       "there")
        if len(low) > 10:
            new.append(f"{name}: {len(low) - 10} more segments with confidence < "
                       f"{low_confidence:g}")
    unit = alignment.unit_tier
    units = alignment.tiers.get(unit, []) if unit else []
    if units:
        long = [s for s in units if s.duration > max_unit_s]
        for s in long[:10]:
            new.append(f"{unit}: {s.label!r} at {s.start:.3f} s lasts {1000 * s.duration:.0f} ms "
                       f"(> {1000 * max_unit_s:.0f} ms); speech there may be missing from the "
                       "transcript")
        med = float(np.median([s.duration for s in units]))
        if med > max_median_unit_s:
            new.append(f"{unit}: the median {unit[:-1]} lasts {1000 * med:.0f} ms (> "
                       f"{1000 * max_median_unit_s:.0f} ms; speech is usually 50-120 ms); the "
                       "transcript may lack words that were spoken, or belong to other audio")
    words = alignment.words
    if words:
        edges = [(0.0, words[0].start, "before the first word")]
        edges += [(a.end, b.start, f"between {a.label!r} and {b.label!r}")
                  for a, b in zip(words[:-1], words[1:])]
        edges.append((words[-1].end, alignment.duration, "after the last word"))
        for start, end, where in edges:
            if end - start > max_gap_s:
                new.append(f"words: {end - start:.2f} s of silence {where} ({start:.2f}-{end:.2f} s)"
                           "; speech missing from the transcript ends up there")
    return new


_NUMBERS = frozenset((int, float))
_SCALARS = frozenset((int, float, str, bool, type(None)))


def dumps_indented(obj, indent: int = 1) -> str:
    """``json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)``, the same
    text, with every list of scalars written by json's C encoder (with ``indent`` json
    writes everything with its Python encoder: 2.9 s of the 3.2 s a 35-minute recording's
    12.8 MB alignment took; dicts with other keys than str are left to json.dumps)."""
    return "".join(_json_parts(obj, indent))


def _json_parts(obj, indent: int) -> list:
    """:func:`_indented_parts`, or json.dumps's whole text for a dict with a key that is
    not a str."""
    try:
        return _indented_parts(obj, indent)
    except TypeError:
        return [json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)]


def _indented_parts(obj, indent: int) -> list:
    """The pieces of :func:`dumps_indented`'s text, in order (one per list of scalars:
    written one by one, a long recording's text is never whole in memory); a TypeError
    for a key that is not a str."""
    flat = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
    rows = {}   # the encoder of the lists of scalars at each depth
    parts = []

    def walk(o, level):
        if isinstance(o, dict):
            if not o:
                parts.append("{}")
                return
            inner = "\n" + " " * (indent * (level + 1))
            sep = "{"
            for k, v in o.items():
                if not isinstance(k, str):
                    raise TypeError
                parts.append(sep + inner + flat.encode(k) + ": ")
                sep = ","
                walk(v, level + 1)
            parts.append("\n" + " " * (indent * level) + "}")
        elif isinstance(o, (list, tuple)):
            if not o:
                parts.append("[]")
                return
            inner = "\n" + " " * (indent * (level + 1))
            close = "\n" + " " * (indent * level) + "]"
            types = set(map(type, o))
            body = None
            if types <= _NUMBERS:      # json writes them as repr does (nan, inf: refused)
                body = ("," + inner).join(map(repr, o))
                if "n" in body:
                    body = None
            if body is None and types <= _SCALARS:
                if level not in rows:
                    rows[level] = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                                                   separators=("," + inner, ": "))
                body = rows[level].encode(o)[1:-1]
            if body is not None:
                parts.append("[" + inner + body + close)
                return
            sep = "["
            for v in o:
                parts.append(sep + inner)
                sep = ","
                walk(v, level + 1)
            parts.append(close)
        else:
            parts.append(flat.encode(o))

    walk(obj, 0)
    return parts


def _jsonable(obj):
    """Convert numpy values, NaN and tuples so that ``json.dumps(allow_nan=False)`` works."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if all(type(v) is float for v in obj):   # the long rows of numbers, at once
            return [v if math.isfinite(v) else None for v in obj]
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if obj is None or isinstance(obj, (str, int)):
        return obj
    return str(obj)
