"""Phone sets of the aligners we compare, mapped to one set (ARPAbet, no stress).

Every system writes phones its own way: CMUdict ARPAbet with stress digits
(pocketsphinx, viter with a CMUdict dictionary, MFA's ``english_us_arpa``), MFA's
IPA-like ``english_mfa`` set (``aj``, ``ow``, ``tʰ``, ``ɫ``, ``ɾ``, ...), plain IPA (BFA,
eSpeak's ``--ipa``), Festival's lower-case ``radio`` set and eSpeak NG mnemonics
(the dev set's references). Boundaries can only be paired between equal labels, so
both sides are first mapped to ARPAbet without stress with :func:`to_arpabet`.

Tables (dicts below) are the package's mapping tables; the Festival and eSpeak ones
live in :mod:`vqalign.bench.metrics` (they were there first) and are re-exported here.
Where a set distinguishes more than ARPAbet (aspiration, palatalization, length,
syllabic consonants, flaps, glottal stops) the mapping folds to the nearest ARPAbet
phone the way CMUdict transcribes the same word (flap ``ɾ`` -> ``T``, as Festival's
``dx``; syllabic ``n̩`` -> ``N``; ``ʔ`` -> ``T``).

:data:`PHONE_CLASS` gives each ARPAbet phone its class for the per-class error table:
vowel, stop, fricative (affricates ``CH``/``JH`` included), nasal, approximant
(``L R W Y``). A boundary next to silence is classed ``silence`` by the scorer.
"""

from __future__ import annotations

import re
import unicodedata

from vqalign.bench.metrics import ESPEAK_TO_ARPABET, FESTIVAL_TO_ARPABET, is_silence
from vqalign.exceptions import ParameterError

ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH "
           "T TH UH UW V W Y Z ZH").split()

PHONE_CLASS = {p: "vowel" for p in "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()}
PHONE_CLASS.update({p: "stop" for p in "B D G K P T".split()})
PHONE_CLASS.update({p: "fricative" for p in "CH JH DH F HH S SH TH V Z ZH".split()})
PHONE_CLASS.update({p: "nasal" for p in "M N NG".split()})
PHONE_CLASS.update({p: "approximant" for p in "L R W Y".split()})
CLASSES = ("vowel", "stop", "fricative", "nasal", "approximant", "silence")

# IPA (and MFA's english_mfa set, which is IPA with a few ASCII diphthongs) -> ARPAbet.
# Keys are tried as written, then with stress marks, length and the diacritics in
# _DIACRITICS removed.
IPA_TO_ARPABET = {
    # vowels
    "ɑ": "AA", "ɒ": "AA", "a": "AA", "ɑː": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ᵻ": "IH", "ɨ": "IH", "ɔ": "AO", "ɔː": "AO", "aʊ": "AW", "aw": "AW", "aɪ": "AY",
    "aj": "AY", "ɑɪ": "AY", "ɛ": "EH", "e": "EY", "eɪ": "EY", "ej": "EY", "ɝ": "ER",
    "ɚ": "ER", "ɜ": "ER", "ɜː": "ER", "ɜɹ": "ER", "əɹ": "ER", "ɪ": "IH", "i": "IY",
    "iː": "IY", "oʊ": "OW", "ow": "OW", "o": "OW", "əʊ": "OW", "ɔɪ": "OY", "ɔj": "OY",
    "ʊ": "UH", "u": "UW", "uː": "UW", "ʉ": "UW", "ʉː": "UW", "ɪə": "IH", "ɛə": "EH",
    "eə": "EH", "ʊə": "UH",
    # consonants
    "b": "B", "tʃ": "CH", "t͡ʃ": "CH", "ʧ": "CH", "d": "D", "ð": "DH", "f": "F", "ɡ": "G",
    "g": "G", "h": "HH", "ɦ": "HH", "dʒ": "JH", "d͡ʒ": "JH", "ʤ": "JH", "k": "K", "l": "L",
    "ɫ": "L", "m": "M", "ɱ": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R",
    "ɾ": "T", "ɾ̃": "N", "ʔ": "T", "s": "S", "ʃ": "SH", "t": "T", "θ": "TH", "v": "V",
    "w": "W", "ʍ": "W", "j": "Y", "z": "Z", "ʒ": "ZH", "c": "K", "ɟ": "G", "ç": "HH",
    "ʎ": "L", "ɲ": "N", "x": "K",
}
# stress, length, aspiration, labialization, palatalization, syllabicity, ties
_DIACRITICS = "ˈˌːˑʰʷʲ\u0329\u030d\u0361\u035c\u0303\u02de"

PHONESETS = ("auto", "arpabet", "ipa", "festival", "espeak")


def _strip_ipa(label: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", label)
                   if ch not in _DIACRITICS and unicodedata.category(ch) != "Mn"
                   or ch == "\u0361")


def ipa_to_arpabet(label: str) -> str | None:
    """One IPA (or MFA english_mfa) phone in ARPAbet, or ``None`` if it has no mapping."""
    lab = unicodedata.normalize("NFC", label.strip())
    if lab in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[lab]
    bare = unicodedata.normalize("NFC", _strip_ipa(lab)).replace("\u0361", "")
    if bare in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[bare]
    return None


def detect_phoneset(labels) -> str:
    """Guess the phone set of a list of labels.

    ``"arpabet"`` (upper case, optional stress digit), ``"festival"`` (Festival's lower-case
    radio set), ``"ipa"`` (IPA or MFA's english_mfa set: any non-ASCII symbol, or every
    label in :data:`IPA_TO_ARPABET`), else ``"espeak"`` (eSpeak mnemonics).
    """
    labs = [lab.strip() for lab in labels if not is_silence(lab)]
    if not labs:
        return "arpabet"
    if all(re.fullmatch(r"[A-Z]+[0-2]?", lab) for lab in labs):
        return "arpabet"
    if all(lab in FESTIVAL_TO_ARPABET for lab in labs):
        return "festival"
    if any(not lab.isascii() for lab in labs) or all(ipa_to_arpabet(lab) for lab in labs):
        return "ipa"
    return "espeak"


def to_arpabet(label: str, phoneset: str) -> str:
    """``label`` in ARPAbet without stress; ``"sil"`` for silences.

    A label that the table does not know is returned as ``"?<label>"`` so that it never
    pairs with a real phone by accident (it is counted as unmatched).
    """
    if is_silence(label):
        return "sil"
    lab = label.strip()
    if phoneset == "arpabet":
        up = lab.upper().rstrip("012")
        return up if up in PHONE_CLASS else f"?{lab}"
    if phoneset == "festival":
        out = FESTIVAL_TO_ARPABET.get(lab.lower())
    elif phoneset == "espeak":
        out = ESPEAK_TO_ARPABET.get(lab, ESPEAK_TO_ARPABET.get(lab.rstrip("012")))
    elif phoneset == "ipa":
        out = ipa_to_arpabet(lab)
    else:
        raise ParameterError(f"phoneset={phoneset!r} is not one of {', '.join(PHONESETS)}")
    if out == "sil":
        return "sil"
    return out if out in PHONE_CLASS else f"?{lab}"


def phone_class(arpabet: str) -> str:
    """Class of an ARPAbet phone (``"other"`` for unmapped labels)."""
    return PHONE_CLASS.get(arpabet, "other")
