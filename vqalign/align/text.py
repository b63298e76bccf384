"""Transcript text: reading files and turning text into the words an aligner speaks.

:func:`normalize_words` lower-cases, drops punctuation (keeping apostrophes inside
words, as in "it's" or "baker's"), splits hyphenated words and spells out digits in
English ("42" -> "forty two"). :func:`read_transcript` reads a UTF-8 ``.txt``/``.lab``
file and explains how to fix one that is not UTF-8.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from vqalign.exceptions import OOVWarning, ParameterError
from vqalign.io.transcripts import read_transcript  # noqa: F401 - the reader, named here too

UNITS = ("phones", "chars")

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                      "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}

# apostrophe look-alikes folded to "'" before tokenizing
_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u0060": "'", "\u00b4": "'"}
# symbols read aloud (English only)
_SPOKEN_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}

# a number token: 1,234,567 | 3.14 | 42 | 1st 2nd 3rd 4th
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:st|nd|rd|th)?", re.IGNORECASE)


def _check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ParameterError(f"unit={unit!r} is not supported; use unit='phones' (English, "
                             "CMUdict pronunciations) or unit='chars' (any language, one unit "
                             "per letter)")
    return unit


def number_to_words(n: int) -> str:
    """Cardinal English reading of a non-negative integer ("forty two")."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return (number_to_words(high) + " " + name
                    + ("" if rest == 0 else " " + number_to_words(rest)))
    raise AssertionError("unreachable")


def _year_to_words(n: int) -> str:
    """1100-1999 read as a year: 1984 -> "nineteen eighty four", 1905 -> "nineteen oh five"."""
    high, low = divmod(n, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    if low < 10:
        return number_to_words(high) + " oh " + _ONES[low]
    return number_to_words(high) + " " + number_to_words(low)


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return (head + " " + last) if head else last


def _spell_number(token: str) -> str:
    """Words for one number token matched by ``_NUMBER``."""
    low = token.lower()
    if low[-2:] in ("st", "nd", "rd", "th"):
        return _ordinal(number_to_words(int(low[:-2])))
    digits = low.replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return number_to_words(int(whole)) + " point " + " ".join(_ONES[int(d)] for d in frac)
    if len(digits) > 1 and digits.startswith("0"):
        # "007", "0800": read digit by digit
        return " ".join(_ONES[int(d)] for d in digits)
    n = int(digits)
    if len(digits) == 4 and "," not in token and 1100 <= n <= 1999:
        return _year_to_words(n)
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in digits)
    return number_to_words(n)


def _is_letter(ch: str) -> bool:
    # letters of any script and the combining marks that belong to them
    return unicodedata.category(ch)[0] in "LM"


def _has_non_latin_letters(text: str) -> bool:
    for ch in text:
        if unicodedata.category(ch)[0] == "L":
            try:
                name = unicodedata.name(ch)
            except ValueError:
                return True
            if "LATIN" not in name:
                return True
    return False


def _tokenize(text: str) -> list[str]:
    """Runs of letters (any script), apostrophes kept only between letters."""
    words: list[str] = []
    cur: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if _is_letter(ch):
            cur.append(ch)
        elif ch == "'" and cur and i + 1 < n and _is_letter(text[i + 1]):
            cur.append(ch)
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    return words


def normalize_words(text: str, *, unit: str = "phones", language: str | None = None) -> list[str]:
    """Split a transcript into lower-case words.

    Parameters
    ----------
    text : str
        The transcript.
    unit : {"phones", "chars"}
        ``"phones"``: English; digits are spelled out ("42" -> "forty two", "3rd" ->
        "third", "1984" -> "nineteen eighty four", "3.5" -> "three point five"),
        "%" and "&" are read as "percent" and "and". ``"chars"``: letters of any script
        are kept as they are; digits are spelled out only when the text is English.
    language : str, optional
        ``"en"`` or another language code. By default a text whose letters are all
        Latin is taken as English, any other as not English (only used for digits).

    Returns
    -------
    list of str
        Words in order; apostrophes inside words are kept ("it's", "baker's"),
        hyphens and other punctuation separate words and are dropped.

    Raises
    ------
    ParameterError
        If ``text`` is not a string, or holds digits in a non-English ``chars``
        transcript (write the numbers out as words).
    """
    _check_unit(unit)
    if not isinstance(text, str):
        raise ParameterError(f"transcript must be a str, got {type(text).__name__}; "
                             "read files with vqalign.align.text.read_transcript(path)")
    text = unicodedata.normalize("NFC", text)
    for k, v in _APOSTROPHES.items():
        text = text.replace(k, v)
    text = text.lower()
    if language is None:
        english = not _has_non_latin_letters(text)
    else:
        english = language.lower().split("-")[0].split("_")[0] == "en"
    if any(ch.isdigit() for ch in text):
        if english:
            text = _NUMBER.sub(lambda m: " " + _spell_number(m.group(0)) + " ", text)
            # any digits left (other scripts' digits, e.g. Arabic-Indic): spell by value
            text = "".join(f" {_ONES[unicodedata.digit(ch)]} " if ch.isdigit() else ch
                           for ch in text)
        else:
            numbers = re.findall(r"\d+(?:[.,]\d+)*", text)
            raise ParameterError(
                f"the transcript holds numbers written with digits ({', '.join(numbers[:10])}) "
                f"but is not English (language={language or 'detected from its letters'}), so "
                "they cannot be spelled out automatically; write them as words in the transcript"
            )
    if english:
        for k, v in _SPOKEN_SYMBOLS.items():
            text = text.replace(k, v)
    return _tokenize(text)


# ----------------------------------------------------------------------------------------
# Transcript -> units
# ----------------------------------------------------------------------------------------
@dataclass
class Transcript:
    """A transcript ready for alignment.

    Attributes
    ----------
    words : list of str
        Normalized words (see :func:`normalize_words`).
    units : list of list of str
        Per word, its phones (``unit="phones"``) or its characters (``unit="chars"``).
    unit : {"phones", "chars"}
    oov : list of str
        Words missing from the lexicon and pronounced by letter-to-sound rules.
    """

    words: list[str]
    units: list[list[str]]
    unit: str = "phones"
    oov: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        """Total number of units (phones or characters) over all words."""
        return sum(len(u) for u in self.units)

    @property
    def flat_units(self) -> list[str]:
        """All units in order."""
        return [u for word in self.units for u in word]

    @property
    def word_index(self) -> list[int]:
        """Per unit of :attr:`flat_units`, the index of its word."""
        return [k for k, word in enumerate(self.units) for _ in word]


def _graphemes(word: str) -> list[str]:
    """Letters of a word, each with its combining marks (so "é" in NFD or Devanagari
    vowel signs stay with their base letter); apostrophes are not units."""
    out: list[str] = []
    for ch in word:
        if ch == "'":
            continue
        if out and unicodedata.category(ch)[0] == "M":
            out[-1] += ch
        else:
            out.append(ch)
    return out


def tokenize_transcript(text: str, *, unit: str = "phones", lexicon=None,
                        oov: str = "g2p") -> Transcript:
    """Normalize a transcript and look up its units.

    Parameters
    ----------
    text : str
        The transcript (use :func:`read_transcript` for a file).
    unit : {"phones", "chars"}
        ``"phones"``: each word's CMUdict (or ``lexicon``) pronunciation; ``"chars"``:
        each word's letters (apostrophes are not units).
    lexicon : Lexicon, str or Path, optional
        A :class:`~vqalign.align.lexicon.Lexicon` or a lexicon file; its entries are
        merged over CMUdict (they win). Ignored for ``unit="chars"``.
    oov : {"g2p", "error"}
        Words missing from the lexicon: ``"g2p"`` pronounces them with
        :func:`~vqalign.align.lexicon.letter_to_sound` and warns (``OOVWarning``) naming
        them; ``"error"`` raises a ParameterError listing every one.

    Raises
    ------
    ParameterError
        Empty transcript (no letters), unknown ``unit``/``oov``, OOV words with
        ``oov="error"``, or non-Latin words with ``unit="phones"``.
    """
    import warnings

    from vqalign.align.lexicon import Lexicon, letter_to_sound_many

    _check_unit(unit)
    if oov not in ("g2p", "error"):
        raise ParameterError(f"oov={oov!r} is not supported; use oov='g2p' (guess pronunciations "
                             "from spelling) or oov='error' (refuse unknown words)")
    words = normalize_words(text, unit=unit)
    if not words:
        shown = repr(text[:60]) + ("..." if isinstance(text, str) and len(text) > 60 else "")
        raise ParameterError(f"the transcript {shown} has no words (no letters) to align; "
                             "check that the right transcript file was given")
    if unit == "chars":
        units = [_graphemes(w) for w in words]
        return Transcript(words=words, units=units, unit="chars", oov=[])
    lex = Lexicon.cmudict() if lexicon is None else _merged_with_cmudict(lexicon)
    missing = lex.oov(words)
    non_latin = [w for w in missing if not any("a" <= c <= "z" for c in
                                               unicodedata.normalize("NFKD", w))]
    if non_latin:
        raise ParameterError(
            f"{len(non_latin)} word(s) are not English and have no pronunciation: "
            f"{', '.join(non_latin[:20])}; align with unit='chars' (CLI: --unit chars) or give "
            "their pronunciations in a lexicon file (--lexicon FILE)"
        )
    if missing and oov == "error":
        raise ParameterError(
            f"{len(missing)} word(s) are not in the lexicon ({lex.name}): {', '.join(missing)}; "
            "add them to a lexicon file (lines 'WORD PH PH ...') and pass --lexicon FILE "
            "(lexicon=...), or pass oov='g2p' (CLI: --oov g2p) to guess them from spelling"
        )
    guessed = letter_to_sound_many(missing)
    if missing:
        from vqalign.align.g2p import describe

        shown = "; ".join(f"{w} /{' '.join(guessed[w])}/" for w in missing[:20])
        more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
        warnings.warn(
            f"{len(missing)} word(s) not in the lexicon ({lex.name}) are pronounced by "
            f"letter-to-sound rules ({describe()}): {shown}{more}; pass --lexicon FILE to give exact "
            "pronunciations", OOVWarning, stacklevel=2)
    units = [guessed[w] if w in guessed else lex.pronounce(w) for w in words]
    return Transcript(words=words, units=units, unit="phones", oov=missing)


# the last user lexicon merged over CMUdict: (source, its key, merged); a corpus passes the
# same lexicon for every utterance, and merging copies ~135k entries
_LAST_MERGE: list = []


def _merged_with_cmudict(lexicon):
    """CMUdict with ``lexicon`` (a Lexicon or a file) merged over it, reused across calls."""
    from vqalign.align.lexicon import Lexicon

    if isinstance(lexicon, Lexicon):
        key = ("lexicon", len(lexicon))
    else:
        path = Path(lexicon)
        try:
            st = path.stat()
            key = ("file", str(path.resolve()), st.st_mtime_ns, st.st_size)
        except OSError:
            key = None  # let Lexicon.from_file name the problem
    if key is not None and _LAST_MERGE:
        source, last_key, merged = _LAST_MERGE
        same = source is lexicon if isinstance(lexicon, Lexicon) else True
        if same and last_key == key:
            return merged
    user = lexicon if isinstance(lexicon, Lexicon) else Lexicon.from_file(lexicon)
    merged = Lexicon.cmudict().merged(user)
    if key is not None:
        _LAST_MERGE[:] = [lexicon, key, merged]
    return merged
