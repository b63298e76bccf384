"""Grapheme-to-phoneme conversion for words missing from the lexicon.

Two back ends give ARPAbet phones (CMUdict's 39, no stress), the set the aligner and
the synthesizer (:mod:`vqalign.datasets.synth`) use:

``"espeak"``
    eSpeak NG's English (``en-us``) pronunciation rules, from its ``espeak-ng`` program
    run in a child process (Debian/Ubuntu: ``apt-get install espeak-ng``; macOS: ``brew
    install espeak-ng``). Its IPA is mapped to ARPAbet by :data:`IPA_TO_ARPABET`. eSpeak NG's English comes from its authors' hand-written
    spelling rules (``en_rules``) and exception list (``en_list``); it was not trained
    on CMUdict, so its phone error rate against CMUdict (``vqalign bench g2p``) is a
    held-out figure.
``"rules"``
    vqalign's own small rule set (:func:`vqalign.align.letter_rules.rules_letter_to_sound`),
    used when eSpeak NG is not installed. It is about twice as far from
    CMUdict as eSpeak NG (``vqalign bench g2p`` prints both).

The back end is chosen once per process: ``"espeak"`` when ``espeak-ng`` runs, else
``"rules"``; the environment variable ``VQALIGN_G2P=espeak|rules`` forces one
(``espeak`` then fails with the install command when eSpeak NG is missing). Call
:func:`vqalign.align.lexicon.letter_to_sound` rather than this module: the aligner,
the synthesizer and the pocketsphinx runner all do, so they agree on every word.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
import unicodedata

from vqalign.exceptions import ParameterError
from vqalign.phones import ESPEAK_IPA_TO_ARPABET

BACKENDS = ("espeak", "rules")
ENV_VAR = "VQALIGN_G2P"

INSTALL_HINT = ("install eSpeak NG (Debian/Ubuntu: apt-get install espeak-ng; macOS: brew "
                "install espeak-ng; Windows: the espeak-ng installer, with espeak-ng on PATH)")

# eSpeak NG en-us IPA -> ARPAbet pronunciations: the table lives in vqalign.phones
IPA_TO_ARPABET = ESPEAK_IPA_TO_ARPABET
_FLAP = "ɾ"  # /t/ or /d/ in CMUdict: chosen from the spelling (see _flap)
_MODIFIERS = "ːˑʲʷˠ"  # length and secondary articulations: dropped when a symbol is unknown
_NASAL = "\u0303"      # nasalized vowel (French loans): vowel + N


def _flap(word: str) -> str:
    """CMUdict writes eSpeak's flap as T or D; the spelling tells which ("ladder": D)."""
    w = word.lower()
    return "D" if "d" in w and "t" not in w else "T"


def ipa_to_arpabet(phones, *, word: str = "") -> list[str]:
    """Map eSpeak NG IPA phonemes (one string each, stress marks allowed) to ARPAbet.

    Parameters
    ----------
    phones : iterable of str
        eSpeak NG phonemes, e.g. ``["h", "ə", "l", "oʊ"]``.
    word : str
        The word's spelling: eSpeak's flap ``ɾ`` becomes D if it holds a "d" and no
        "t", else T (CMUdict's "water" W AO T ER, "ladder" L AE D ER).

    Raises
    ------
    ParameterError
        For a symbol with no ARPAbet equivalent (its length/palatal marks removed and a
        nasal tilde read as a following N first).
    """
    out: list[str] = []
    for raw in phones:
        p = raw.replace("ˈ", "").replace("ˌ", "").strip()
        if not p:
            continue
        if p == _FLAP:
            out.append(_flap(word))
            continue
        mapped = IPA_TO_ARPABET.get(p)
        if mapped is None:
            nasal = _NASAL in unicodedata.normalize("NFD", p)
            base = "".join(c for c in unicodedata.normalize("NFD", p)
                           if not unicodedata.combining(c) and c not in _MODIFIERS)
            mapped = IPA_TO_ARPABET.get(base) or IPA_TO_ARPABET.get(base + "ː")
            if mapped is None:
                raise ParameterError(
                    f"eSpeak NG phoneme {raw!r} (in {word!r}) has no ARPAbet equivalent in "
                    "vqalign.align.g2p.IPA_TO_ARPABET; give the word's pronunciation in a "
                    "lexicon file (--lexicon FILE, lines 'WORD PH PH ...')")
            if nasal:
                mapped = tuple(mapped) + ("N",)
        out.extend(mapped)
    # eSpeak links an r-coloured vowel to a following vowel with an extra /r/ ("afterimage"
    # ɚ ɹ ɪ): CMUdict writes ER IH; and it never repeats a phone within a word ("bookkeeper")
    tidy: list[str] = []
    for ph in out:
        if tidy and (ph == tidy[-1] or (ph == "R" and tidy[-1] == "ER")):
            continue
        tidy.append(ph)
    return tidy


class EspeakG2P:
    """eSpeak NG as an ARPAbet G2P, run as a separate program (``espeak-ng --ipa``).

    Words go to one ``espeak-ng -q --ipa --sep=' ' -v en-us`` process per batch, one
    word per line; the output must have one line per word (else each word is asked
    alone). Results are cached per word. Running the program (rather than loading the
    library into this process) keeps eSpeak NG (GPL-3) a separate program beside
    vqalign (BSD-3) and needs no Python package.

    Parameters
    ----------
    language : str
        eSpeak NG voice; ``"en-us"`` matches CMUdict's American English.
    executable : str, optional
        The ``espeak-ng`` program (default: found on ``PATH``).

    Attributes
    ----------
    version : str
        eSpeak NG's version, e.g. ``"1.51"``.
    fallback_words_ : dict of str to str
        Words whose eSpeak output could not be mapped (they got the rules' guess), with
        the reason.

    Raises
    ------
    ParameterError
        If ``espeak-ng`` is not installed or does not run (the message says how to
        install it).
    """

    BATCH = 1000   # words per espeak-ng run

    def __init__(self, language: str = "en-us", *, executable: str | None = None):
        self.language = language
        exe = executable or shutil.which("espeak-ng")
        if exe is None:
            raise ParameterError(f"the eSpeak NG program (espeak-ng) is not on PATH; "
                                 f"{INSTALL_HINT}")
        self.executable = exe
        try:
            proc = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ParameterError(f"the eSpeak NG program {exe} does not run ({exc}); "
                                 f"{INSTALL_HINT}") from None
        m = re.search(r"eSpeak NG[^:]*:\s*([0-9][0-9.]*)", proc.stdout)
        if proc.returncode != 0 or m is None:
            raise ParameterError(f"{exe} --version did not print an eSpeak NG version "
                                 f"({(proc.stdout + proc.stderr).strip()[:200]!r}); "
                                 f"{INSTALL_HINT}")
        self.version = m.group(1).rstrip(".")
        self._lock = threading.Lock()
        self._cache: dict[str, list[str]] = {}
        self.fallback_words_: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"EspeakG2P(language={self.language!r}, eSpeak NG {self.version})"

    def _run(self, lines: list[str]) -> list[str]:
        cmd = [self.executable, "-q", "--ipa", "--sep= ", "-v", self.language]
        try:
            proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True,
                                  text=True, encoding="utf-8", timeout=60 + len(lines) // 20)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ParameterError(f"eSpeak NG failed ({' '.join(cmd)}): {exc}") from None
        if proc.returncode != 0:
            raise ParameterError(f"eSpeak NG failed ({' '.join(cmd)}, exit {proc.returncode}): "
                                 f"{proc.stderr.strip()[:300]}")
        return proc.stdout.splitlines()

    def _ipa(self, words: list[str]) -> list[list[str]]:
        """eSpeak NG's IPA phonemes (stress marks kept) of each word."""
        out: list[list[str]] = []
        with self._lock:
            for k in range(0, len(words), self.BATCH):
                chunk = words[k:k + self.BATCH]
                lines = self._run(chunk)
                if len(lines) != len(chunk):      # never pair a word with another's line
                    lines = [" ".join(self._run([w])) for w in chunk]
                out.extend(line.split() for line in lines)
        return out

    def many(self, words) -> dict[str, list[str]]:
        """``{word: ARPAbet phones}`` for many words, one eSpeak NG run per batch (cached)."""
        from vqalign.align.letter_rules import rules_letter_to_sound

        words = list(dict.fromkeys(words))
        bad = [w for w in words if not isinstance(w, str) or "\n" in w or "\r" in w]
        if bad:
            raise ParameterError(f"G2P takes single words (str without line breaks), got "
                                 f"{bad[0]!r}")
        todo = [w for w in words if w not in self._cache]
        if todo:
            for w, ipa in zip(todo, self._ipa(todo)):
                try:
                    ph = ipa_to_arpabet(ipa, word=w)
                except ParameterError as exc:
                    ph = []
                    self.fallback_words_[w] = str(exc)
                if not ph:
                    self.fallback_words_.setdefault(w, "eSpeak NG gave no phones")
                    ph = rules_letter_to_sound(w)
                self._cache[w] = ph
        return {w: list(self._cache[w]) for w in words}

    def __call__(self, word: str) -> list[str]:
        """ARPAbet phones of one word."""
        return self.many([word])[word]


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _espeak(language: str = "en-us") -> EspeakG2P:
    with _LOCK:
        return EspeakG2P(language)


def espeak_g2p() -> EspeakG2P:
    """The process's eSpeak NG G2P (created on first use); ParameterError if missing."""
    return _espeak("en-us")


@functools.lru_cache(maxsize=1)
def espeak_available() -> bool:
    """True if the ``espeak-ng`` program runs on this machine."""
    try:
        espeak_g2p()
    except ParameterError:
        return False
    return True


def default_backend() -> str:
    """``"espeak"`` or ``"rules"``: ``$VQALIGN_G2P`` if set, else eSpeak NG when available."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise ParameterError(f"{ENV_VAR}={forced!r} is not a G2P back end; use "
                                 f"{ENV_VAR}=espeak or {ENV_VAR}=rules (or unset it)")
        return forced
    return "espeak" if espeak_available() else "rules"


def check_backend(backend) -> str:
    """Resolve ``None``/``"auto"`` and validate a back-end name."""
    if backend is None or backend == "auto":
        return default_backend()
    if backend not in BACKENDS:
        raise ParameterError(f"g2p backend {backend!r} is unknown; use 'espeak' (eSpeak NG), "
                             "'rules' (vqalign's letter-to-sound rules) or 'auto'")
    return backend


def describe(backend=None) -> str:
    """A short name of the G2P in use, for messages and reports."""
    b = check_backend(backend)
    if b == "espeak":
        return f"eSpeak NG {espeak_g2p().version} (en-us)"
    why = "" if os.environ.get(ENV_VAR) else f"; eSpeak NG not found: {INSTALL_HINT}"
    return f"vqalign's fallback rules{why}"
