"""Readers for the files that forced aligners write, detected by content and extension.

=====================  ====================================================================
format                 what is read
=====================  ====================================================================
TextGrid               Praat long and short text formats (UTF-8 or UTF-16), interval tiers.
                       Word tier ``words``/``word`` and phone tier ``phones``/``phone``/
                       ``phonemes``, optionally prefixed ``<speaker> - `` (MFA); several
                       speakers' tiers are merged. Empty labels are silence.
WhisperX JSON          ``segments[].words[]`` with ``start``, ``end``, ``word``, ``score``
                       (or ``word_segments[]``). Tokens without ``start``/``end`` (digits,
                       symbols) are kept untimed and counted.
CTM                    ``<utt> <channel> <start> <duration> <token> [<conf>]`` (Kaldi, NeMo
                       NFA, torchaudio scripts). Several utterances per file. Word level, or
                       token level: phones become the phone tier; SentencePiece pieces
                       (``▁``) and ``|``-separated characters are joined into words. NFA's
                       ``<b>`` is silence.
ctc-forced-aligner     ``postprocess_results``' list of ``{"start", "end", "text"}``
JSON                   (bare, or under ``word_timestamps`` / ``segments`` as flat items).
Gentle JSON            ``words[]`` with ``start``, ``end``, ``word`` / ``alignedWord``,
                       ``case``; words not ``success`` are untimed; ``phones[]``
                       (``phone`` = ``dh_B``, ``duration``) from the word's start.
aeneas JSON / SMIL     ``fragments[]`` with ``begin``, ``end``, ``lines``; SMIL ``<par>``
                       with ``<text src="page#id">`` and ``<audio clipBegin clipEnd>``
                       (labels from the page if it lies beside the SMIL file, else from the
                       reference when the counts agree, noted).
pocketsphinx JSON      ``pocketsphinx align`` output: one object per line, ``w[]`` of
                       ``{"b", "d", "t", "w": [phones]}``.
vqalign JSON           ``{"tiers": {"words": [[start, end, label, conf], ...], ...}}``.
=====================  ====================================================================

Every reader returns :class:`Hypothesis` objects; a file that cannot be read raises
:class:`~vqalign.exceptions.FormatError` (a :class:`~vqalign.exceptions.ParameterError`) naming the file and
line. :func:`check_tiers` rejects negative, reversed and overlapping intervals the same
way.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from vqalign.exceptions import FormatError
from vqalign.phones import ipa_to_arpabet, is_silence

EXTENSIONS = {".textgrid": "textgrid", ".json": "json", ".ctm": "ctm", ".smil": "smil",
              ".xml": "smil", ".jsonl": "json"}
_TIME_TOL = 1e-6
NAN = float("nan")


@dataclass
class Hypothesis:
    """One utterance's tiers as read from a file.

    ``tiers``: ``{"words": [(start_s, end_s, label), ...], "phones": [...]}`` (silences
    may be present; times NaN where the file gave none); ``lines``: the line of each
    interval in the file (same shape, ``None`` when unknown); ``format``: the detected
    format; ``notes``: things the reader had to assume, for the report.
    """

    tiers: dict
    format: str
    path: Path | None = None
    utterance: str | None = None
    lines: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    labels_from_reference: bool = False

    @property
    def n_untimed(self) -> int:
        return sum(1 for ivs in self.tiers.values() for s, e, _ in ivs
                   if not (s == s and e == e))


def _where(path, line) -> str:
    return f"{path}" + (f" line {line}" if line else "")


# ----------------------------------------------------------------------------- detection
def detect_format(path, text: str | None = None) -> str:
    """The format of an alignment file, from its content (the extension breaks ties).

    Parameters
    ----------
    path : str or Path
        The file.
    text : str, optional
        Its text, if already read.

    Returns
    -------
    str
        ``"textgrid"``, ``"json"``, ``"ctm"`` or ``"smil"``.

    Raises
    ------
    FormatError
        Neither the content nor the extension tells.
    """
    path = Path(path)
    if text is None:
        text = _read_text(path)
    head = text.lstrip("\ufeff \t\r\n")[:400]
    if "ooTextFile" in head[:120] or head.startswith('"ooTextFile"'):
        return "textgrid"
    if head.startswith(("{", "[")):
        return "json"
    if head.startswith("<"):
        if "<smil" in text[:2000].lower():
            return "smil"
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith(";;")), "")
    f = first.split()
    if len(f) >= 5 and _is_number(f[2]) and _is_number(f[3]):
        return "ctm"
    ext = EXTENSIONS.get(path.suffix.lower())
    hint = f" (its extension {path.suffix!r} suggests {ext}, but the content is not)" if ext else ""
    raise FormatError(f"{path} line 1: unknown alignment format{hint}: starts with "
                      f"{first[:60]!r}; expected a TextGrid, WhisperX/Gentle/aeneas/"
                      "ctc-forced-aligner/pocketsphinx/vqalign JSON, CTM or SMIL file")


def _is_number(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 or UTF-16 text ({exc})") from None


def read_hypotheses(path) -> list[Hypothesis]:
    """Every utterance in an alignment file (a CTM or JSON-lines file may hold several).

    Parameters
    ----------
    path : str or Path
        A file in any format of this module.

    Returns
    -------
    list of Hypothesis
        One per utterance: ``tiers`` ``{"words": [(start_s, end_s, label), ...],
        "phones": [...]}``, ``lines``, ``format``, ``notes``.

    Raises
    ------
    FormatError
        The content is no known format, or holds bad intervals (file and line named).
    """
    path = Path(path)
    text = _read_text(path)
    fmt = detect_format(path, text)
    if fmt == "textgrid":
        out = [read_textgrid_text(text, path)]
    elif fmt == "ctm":
        out = read_ctm_text(text, path)
    elif fmt == "smil":
        out = [read_smil_text(text, path)]
    else:
        out = read_json_text(text, path)
    for h in out:
        h.path = path
        check_tiers(h)
    return out


def read_hypothesis(path) -> Hypothesis:
    """The single utterance in an alignment file.

    Parameters
    ----------
    path : str or Path
        A file in any format of this module.

    Returns
    -------
    Hypothesis
        Its tiers (see :func:`read_hypotheses`).

    Raises
    ------
    FormatError
        Unreadable, or the file holds several utterances.
    """
    hs = read_hypotheses(path)
    if len(hs) != 1:
        raise FormatError(f"{path} holds {len(hs)} utterances "
                          f"({', '.join(str(h.utterance) for h in hs[:4])}...); "
                          "use read_hypotheses")
    return hs[0]


def check_tiers(h: Hypothesis) -> None:
    """Check every tier of ``h`` in place.

    Parameters
    ----------
    h : Hypothesis
        As read.

    Raises
    ------
    FormatError
        Negative, reversed or overlapping intervals (with the file's line).
    """
    for name, ivs in h.tiers.items():
        lines = h.lines.get(name) or [None] * len(ivs)
        prev_end, prev_line = -math.inf, None
        for (s, e, lab), ln in zip(ivs, lines):
            if (s == s and s < -_TIME_TOL) or (e == e and e < -_TIME_TOL):
                raise FormatError(f"{_where(h.path, ln)}: tier {name!r}: interval ({s}, {e}, "
                                  f"{lab!r}) has a negative time")
            if s == s and e == e and e < s - _TIME_TOL:
                raise FormatError(f"{_where(h.path, ln)}: tier {name!r}: interval ({s}, {e}, "
                                  f"{lab!r}) ends before it starts")
            if s == s:
                if s < prev_end - 1e-3:
                    where = f" (previous interval ends at {prev_end}" + (
                        f", line {prev_line})" if prev_line else ")")
                    raise FormatError(f"{_where(h.path, ln)}: tier {name!r}: interval ({s}, {e},"
                                      f" {lab!r}) overlaps the previous one{where}")
            if e == e:
                prev_end, prev_line = max(prev_end, e), ln


# ----------------------------------------------------------------------------- TextGrid
_TG_TOKEN = re.compile(r'"((?:[^"]|"")*)"|\[[^\]\n]*\]|<[a-z]+>|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)'
                       r'|(!)[^\n]*')
_WORD_TIER = re.compile(r"^(?:(.+?) - )?(words?|wrd)$", re.IGNORECASE)
_PHONE_TIER = re.compile(r"^(?:(.+?) - )?(phones?|phonemes?|phn|segments?)$", re.IGNORECASE)


def _tg_tokens(text: str):
    """(kind, value, line) for every string and number outside ``[...]``; both the long
    and the short text format reduce to the same stream."""
    line, pos = 1, 0
    for m in _TG_TOKEN.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if m.group(1) is not None:
            yield "s", m.group(1).replace('""', '"'), line
        elif m.group(2) is not None:
            yield "n", float(m.group(2)), line


def parse_textgrid(text: str, path=None) -> tuple[dict, dict]:
    """``({tier: [(start, end, label)]}, {tier: [line, ...]})`` of a TextGrid's text."""
    toks = list(_tg_tokens(text))
    k = 0

    def take(kind):
        nonlocal k
        if k >= len(toks):
            raise FormatError(f"{_where(path, toks[-1][2] if toks else 1)}: TextGrid ends early "
                              f"(expected a {'string' if kind == 's' else 'number'})")
        t = toks[k]
        if t[0] != kind:
            raise FormatError(f"{_where(path, t[2])}: TextGrid: expected a "
                              f"{'quoted string' if kind == 's' else 'number'}, found {t[1]!r}")
        k += 1
        return t[1], t[2]

    ftype, _ = take("s")
    cls, ln = take("s")
    if ftype != "ooTextFile" or cls != "TextGrid":
        raise FormatError(f"{_where(path, ln)}: not a TextGrid (File type {ftype!r}, "
                          f"Object class {cls!r})")
    take("n")
    take("n")
    n_tiers, _ = take("n")
    tiers, lines = {}, {}
    for _ in range(int(n_tiers)):
        kind, ln = take("s")
        name, _ = take("s")
        take("n")
        take("n")
        n, _ = take("n")
        ivs, lns = [], []
        for _ in range(int(n)):
            if kind == "IntervalTier":
                s, ln = take("n")
                e, _ = take("n")
                lab, _ = take("s")
            elif kind == "TextTier":
                s, ln = take("n")
                e = s
                lab, _ = take("s")
            else:
                raise FormatError(f"{_where(path, ln)}: TextGrid tier class {kind!r} is not "
                                  "IntervalTier or TextTier")
            ivs.append((float(s), float(e), lab.strip()))
            lns.append(ln)
        key = name
        while key in tiers:
            key += "'"
        tiers[key], lines[key] = ivs, lns
    return tiers, lines


def pick_tiers(tiers: dict, lines: dict | None = None, path=None) -> tuple[dict, dict]:
    """Words and phones tiers from a TextGrid's tiers (MFA ``<speaker> - words``, ``word``,
    ``phonemes``, ...); several speakers are merged in time order."""
    out, out_lines = {"words": [], "phones": []}, {"words": [], "phones": []}
    lines = lines or {}
    found = set()
    for name, ivs in tiers.items():
        base = name.rstrip("'")
        for key, rx in (("words", _WORD_TIER), ("phones", _PHONE_TIER)):
            if rx.match(base.strip()):
                found.add(key)
                lns = lines.get(name) or [None] * len(ivs)
                for iv, ln in zip(ivs, lns):
                    out[key].append(iv)
                    out_lines[key].append(ln)
    for key in ("words", "phones"):
        order = sorted(range(len(out[key])), key=lambda i: (out[key][i][0], out[key][i][1]))
        out[key] = [out[key][i] for i in order]
        out_lines[key] = [out_lines[key][i] for i in order]
    if not found:
        raise FormatError(f"{_where(path, None)}: no words or phones tier among "
                          f"{', '.join(repr(t) for t in tiers) or '(no tiers)'}; name them "
                          "'words' and 'phones' (MFA: '<speaker> - words')")
    return ({k: v for k, v in out.items() if k in found},
            {k: v for k, v in out_lines.items() if k in found})


def read_textgrid_text(text: str, path=None) -> Hypothesis:
    """A TextGrid's text (long or short format) as a :class:`Hypothesis` (words and
    phones tiers picked by :func:`pick_tiers`); ``path`` only names it in errors."""
    tiers, lines = parse_textgrid(text, path)
    t, ln = pick_tiers(tiers, lines, path)
    return Hypothesis(tiers=t, lines=ln, format="textgrid", path=path)


def read_reference(path) -> Hypothesis:
    """A reference TextGrid (the TextGrid reader; the words tier must be there).

    Parameters
    ----------
    path : str or Path
        The TextGrid.

    Returns
    -------
    Hypothesis
        Its ``words`` (and ``phones``, if any) tiers.

    Raises
    ------
    FormatError
        Unreadable, bad intervals, or no words tier.
    """
    path = Path(path)
    h = read_textgrid_text(_read_text(path), path)
    h.path = path
    if "words" not in h.tiers:
        raise FormatError(f"{path}: reference has no words tier (tiers: "
                          f"{', '.join(h.tiers)}); it needs 'words' (and 'phones' for phones)")
    check_tiers(h)
    return h


# ----------------------------------------------------------------------------- CTM
def _is_phone_label(lab: str) -> bool:
    return bool(re.fullmatch(r"[A-Z]{1,2}[0-2]?(_[BIES])?", lab)) or (
        not lab.isascii() and ipa_to_arpabet(lab) is not None)


def read_ctm_text(text: str, path=None) -> list[Hypothesis]:
    """A CTM's text as one :class:`Hypothesis` per utterance id (word or token level;
    see the module docstring); ``path`` only names it in errors."""
    rows: dict[str, list] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f or f[0].startswith(";;"):
            continue
        if len(f) < 5 or not (_is_number(f[2]) and _is_number(f[3])):
            raise FormatError(f"{_where(path, lineno)}: {line.strip()[:60]!r} is not a CTM line "
                              "'<utt> <channel> <start> <duration> <token> [<conf>]'")
        start, dur = float(f[2]), float(f[3])
        if dur < 0:
            raise FormatError(f"{_where(path, lineno)}: negative duration {dur} in CTM line")
        rows.setdefault(f[0], []).append((start, start + dur, f[4], lineno))
    if not rows:
        raise FormatError(f"{_where(path, 1)}: CTM file has no lines")
    out = []
    token_dir = path is not None and "token" in Path(path).parent.name.lower()
    all_speech = [x[2] for r in rows.values() for x in r
                  if x[2] not in ("<b>", "<blank>", "|") and not is_silence(x[2])]
    # a file of phones (Kaldi ali-to-phones, NFA tokens of a phone model): every label is a
    # phone and either the folder says tokens or there are several per utterance
    phones_file = bool(all_speech) and all(_is_phone_label(lab) for lab in all_speech) and (
        token_dir or len(all_speech) > len(rows))
    for utt, r in rows.items():
        r.sort(key=lambda x: (x[0], x[1]))
        labels = [x[2] for x in r if x[2] not in ("<b>", "<blank>", "|")]
        speech = [lab for lab in labels if not is_silence(lab)]
        notes = []
        if any(lab.startswith("\u2581") for lab in labels) or any(x[2] == "|" for x in r):
            words, lines = _join_tokens(r)
            tiers, lns = {"words": words}, {"words": lines}
            notes.append("sub-word tokens joined into words")
        elif speech and phones_file:
            tiers = {"phones": [(s, e, re.sub(r"_[BIES]$", "", lab)) for s, e, lab, _ in r
                                if lab not in ("<b>", "<blank>")]}
            lns = {"phones": [ln for _, _, lab, ln in r if lab not in ("<b>", "<blank>")]}
        else:
            tiers = {"words": [(s, e, "" if lab in ("<b>", "<blank>") else lab)
                               for s, e, lab, _ in r]}
            lns = {"words": [ln for *_, ln in r]}
        _snap(tiers)
        out.append(Hypothesis(tiers=tiers, lines=lns, format="ctm", path=path, utterance=utt,
                              notes=notes))
    return out


def _snap(tiers: dict) -> None:
    """Millisecond rounding in a CTM can leave a 1 ms overlap at a shared boundary."""
    for ivs in tiers.values():
        for k in range(1, len(ivs)):
            s, e, lab = ivs[k]
            ps, pe, plab = ivs[k - 1]
            if pe > s and pe - s < 0.0015:
                ivs[k - 1] = (ps, s, plab)


def _join_tokens(rows) -> tuple[list, list]:
    words, lines = [], []
    cur = None
    for s, e, lab, ln in rows:
        if lab in ("<b>", "<blank>"):
            continue
        if lab == "|":
            cur = None
            continue
        if lab.startswith("\u2581") or cur is None:
            cur = [s, e, lab.lstrip("\u2581"), ln]
            words.append(cur)
        else:
            cur[1] = e
            cur[2] += lab
    for w in words:
        lines.append(w[3])
    return [(w[0], w[1], w[2]) for w in words], lines


# ----------------------------------------------------------------------------- JSON
def read_json_text(text: str, path=None) -> list[Hypothesis]:
    """A JSON (or JSON-lines) document of WhisperX, Gentle, aeneas, ctc-forced-aligner,
    pocketsphinx or vqalign as :class:`Hypothesis` objects; ``path`` names it in errors."""
    stripped = text.strip()
    try:
        docs = [json.loads(stripped)]
    except json.JSONDecodeError as exc:
        # pocketsphinx writes one JSON object per line
        lines = [ln for ln in stripped.splitlines() if ln.strip()]
        try:
            docs = [json.loads(ln) for ln in lines]
        except json.JSONDecodeError:
            raise FormatError(f"{_where(path, exc.lineno)}: not valid JSON ({exc.msg}, column "
                              f"{exc.colno})") from None
        if not all(isinstance(d, dict) and "w" in d for d in docs):
            raise FormatError(f"{_where(path, exc.lineno)}: not valid JSON ({exc.msg})") from None
    out = []
    for doc in docs:
        out.append(_json_doc(doc, path))
    if len(out) > 1 and all(h.format == "pocketsphinx" for h in out):
        # pocketsphinx: one line per utterance in a batch; or several segments of one file
        utts = {h.utterance for h in out}
        if utts == {None}:
            merged = Hypothesis(tiers={"words": [], "phones": []}, format="pocketsphinx",
                                path=path)
            for h in out:
                for k in merged.tiers:
                    merged.tiers[k].extend(h.tiers.get(k, []))
            return [merged]
    return out


def _num(x, what, path):
    if x is None:
        return NAN
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise FormatError(f"{path}: {what} = {x!r} is not a number") from None
    return v


def _json_doc(doc, path) -> Hypothesis:
    if isinstance(doc, dict) and isinstance(doc.get("tiers"), dict):
        tiers = {}
        for name, ivs in doc["tiers"].items():
            tiers[name] = [(_num(iv[0], f"tiers.{name}[{i}][0]", path),
                            _num(iv[1], f"tiers.{name}[{i}][1]", path), str(iv[2]))
                           for i, iv in enumerate(ivs)]
        t = {k: v for k, v in tiers.items() if k in ("words", "phones")}
        if "phones" not in t and "chars" in tiers:
            t["chars"] = tiers["chars"]
        return Hypothesis(tiers=t, format="vqalign", path=path)
    if isinstance(doc, dict) and isinstance(doc.get("segments"), list) and any(
            isinstance(s, dict) and "words" in s for s in doc["segments"]):
        words = []
        for i, seg in enumerate(doc["segments"]):
            for j, w in enumerate(seg.get("words") or []):
                words.append((_num(w.get("start"), f"segments[{i}].words[{j}].start", path),
                              _num(w.get("end"), f"segments[{i}].words[{j}].end", path),
                              str(w.get("word", "")).strip()))
        return _untimed_note(Hypothesis(tiers={"words": words}, format="whisperx", path=path))
    if isinstance(doc, dict) and isinstance(doc.get("word_segments"), list):
        words = [(_num(w.get("start"), f"word_segments[{j}].start", path),
                  _num(w.get("end"), f"word_segments[{j}].end", path),
                  str(w.get("word", "")).strip()) for j, w in enumerate(doc["word_segments"])]
        return _untimed_note(Hypothesis(tiers={"words": words}, format="whisperx", path=path))
    if isinstance(doc, dict) and isinstance(doc.get("words"), list) and (
            "transcript" in doc or any(isinstance(w, dict) and ("case" in w or "alignedWord" in w)
                                       for w in doc["words"])):
        return _gentle(doc, path)
    if isinstance(doc, dict) and isinstance(doc.get("fragments"), list):
        words = []
        for i, fr in enumerate(doc["fragments"]):
            lab = " ".join(fr.get("lines") or [])
            words.append((_num(fr.get("begin"), f"fragments[{i}].begin", path),
                          _num(fr.get("end"), f"fragments[{i}].end", path), lab))
        return Hypothesis(tiers={"words": words}, format="aeneas", path=path)
    if isinstance(doc, dict) and isinstance(doc.get("w"), list) and "b" in doc:
        return _pocketsphinx(doc, path)
    items = None
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict):
        for key in ("word_timestamps", "segments", "words"):
            if isinstance(doc.get(key), list):
                items = doc[key]
                break
    if items is not None and all(isinstance(w, dict) and "text" in w and "start" in w
                                 for w in items):
        words = [(_num(w.get("start"), f"[{j}].start", path), _num(w.get("end"), f"[{j}].end",
                                                                    path),
                  str(w["text"]).strip()) for j, w in enumerate(items)]
        return Hypothesis(tiers={"words": words}, format="ctc-forced-aligner", path=path)
    keys = ", ".join(list(doc)[:6]) if isinstance(doc, dict) else type(doc).__name__
    raise FormatError(f"{_where(path, 1)}: JSON of an unknown alignment format (top level: "
                      f"{keys}); expected WhisperX, Gentle, aeneas, ctc-forced-aligner, "
                      "pocketsphinx or vqalign JSON")


def _untimed_note(h: Hypothesis) -> Hypothesis:
    n = h.n_untimed
    if n:
        h.notes.append(f"{n} token(s) without timings (kept, counted, not scored)")
    return h


def _gentle(doc, path) -> Hypothesis:
    words, phones = [], []
    for j, w in enumerate(doc["words"]):
        label = str(w.get("word") or w.get("alignedWord") or "")
        if w.get("case", "success") != "success" or "start" not in w:
            words.append((NAN, NAN, label))
            continue
        s = _num(w.get("start"), f"words[{j}].start", path)
        e = _num(w.get("end"), f"words[{j}].end", path)
        words.append((s, e, label))
        t = s
        for k, p in enumerate(w.get("phones") or []):
            d = _num(p.get("duration"), f"words[{j}].phones[{k}].duration", path)
            lab = re.sub(r"_[BIES]$", "", str(p.get("phone", ""))).upper()
            phones.append((t, t + d, lab))
            t += d
    tiers = {"words": words}
    if phones:
        tiers["phones"] = phones
    return _untimed_note(Hypothesis(tiers=tiers, format="gentle", path=path))


def _pocketsphinx(doc, path) -> Hypothesis:
    words, phones = [], []
    for j, w in enumerate(doc["w"]):
        s = _num(w.get("b"), f"w[{j}].b", path)
        d = _num(w.get("d"), f"w[{j}].d", path)
        words.append((s, s + d, re.sub(r"\(\d+\)$", "", str(w.get("t", "")))))
        for k, p in enumerate(w.get("w") or []):
            ps = _num(p.get("b"), f"w[{j}].w[{k}].b", path)
            pd_ = _num(p.get("d"), f"w[{j}].w[{k}].d", path)
            phones.append((ps, ps + pd_, str(p.get("t", ""))))
    tiers = {"words": words}
    if phones:
        tiers["phones"] = phones
    return Hypothesis(tiers=tiers, format="pocketsphinx", path=path)


# ----------------------------------------------------------------------------- SMIL
def _clock(value: str, path) -> float:
    v = value.strip()
    try:
        if v.endswith("ms"):
            return float(v[:-2]) / 1000.0
        if v.endswith("s") and not v.endswith("ms"):
            return float(v[:-1])
        parts = v.split(":")
        total = 0.0
        for p in parts:
            total = total * 60.0 + float(p)
        return total
    except ValueError:
        raise FormatError(f"{path}: SMIL clock value {value!r} is not HH:MM:SS.mmm or N s"
                          ) from None


def read_smil_text(text: str, path=None) -> Hypothesis:
    """An aeneas SMIL file's text as a :class:`Hypothesis` (labels from the XHTML page
    beside ``path`` when there, else taken from the reference later)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise FormatError(f"{_where(path, exc.position[0])}: not well-formed SMIL/XML "
                          f"({exc})") from None
    words, refs = [], []
    for par in root.iter():
        if not par.tag.endswith("par"):
            continue
        txt = next((c for c in par if c.tag.endswith("text")), None)
        aud = next((c for c in par if c.tag.endswith("audio")), None)
        if aud is None:
            continue
        s = _clock(aud.get("clipBegin", "0"), path)
        e = _clock(aud.get("clipEnd", "0"), path)
        words.append([s, e, None])
        refs.append(txt.get("src", "") if txt is not None else "")
    h = Hypothesis(tiers={"words": []}, format="smil", path=path)
    pages: dict[str, dict] = {}
    for w, src in zip(words, refs):
        page, _, frag = src.partition("#")
        if path is not None and page:
            pfile = Path(path).parent / page
            if page not in pages:
                pages[page] = _xhtml_ids(pfile) if pfile.is_file() else {}
            w[2] = pages[page].get(frag)
    if words and all(w[2] is not None for w in words):
        h.tiers["words"] = [tuple(w) for w in words]
    else:
        # labels resolved later from the reference (bench score), in order
        h.tiers["words"] = [(w[0], w[1], w[2] if w[2] is not None else "") for w in words]
        h.labels_from_reference = True
        h.notes.append("SMIL text page not found beside the file: labels taken from the "
                       "reference in order")
    return h


def _xhtml_ids(path: Path) -> dict:
    try:
        root = ET.fromstring(path.read_text(encoding="utf-8"))
    except (ET.ParseError, UnicodeDecodeError):
        return {}
    return {el.get("id"): "".join(el.itertext()).strip() for el in root.iter() if el.get("id")}
