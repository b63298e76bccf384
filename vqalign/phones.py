"""Every phone table and map of vqalign, once.

The aligner speaks ARPAbet without stress (CMUdict's set); every other phone set it meets
is mapped to it here:

* :data:`ARPABET`: the 39 phones of CMUdict (no stress digits);
* broad classes: :data:`PHONE_CLASS` (ARPAbet phone -> ``vowel``, ``stop``,
  ``fricative`` (affricates included), ``nasal``, ``approximant``), :data:`CLASSES` (those
  and ``silence``), and the sets built on them (:data:`VOWELS`, :data:`FRICATIVES`,
  :data:`VOWEL_LIKE`, :data:`LOW_TILT_FRICATIVES`);
* silence labels of the systems we compare (:data:`SILENCE_LABELS`, :func:`is_silence`);
* other phone sets -> ARPAbet: Festival's ``radio`` set (:data:`FESTIVAL_TO_ARPABET`),
  eSpeak NG mnemonics (:data:`ESPEAK_TO_ARPABET`), IPA and MFA's ``english_mfa`` set
  (:data:`IPA_TO_ARPABET`, one phone each, for scoring), and eSpeak NG's en-us IPA as a
  pronunciation (:data:`ESPEAK_IPA_TO_ARPABET`, one or two phones each, for G2P), and
  misaki's (Kokoro G2P) phonemes (:data:`MISAKI_TO_ARPABET`, :func:`misaki_to_arpabet`);
* phone-set detection and mapping for scoring: :func:`detect_phoneset` and
  :func:`to_arpabet` (IPA aware, FA-Bench scoring), and the older pair
  :func:`detect_phoneset_no_ipa` / :func:`map_phone` (``boundary_errors``); see
  :data:`PHONESETS` for why there are two.

Where a set distinguishes more than ARPAbet (aspiration, palatalization, length,
syllabic consonants, flaps, glottal stops) the scoring map folds to the nearest ARPAbet
phone the way CMUdict transcribes the same word (flap ``ɾ`` -> ``T``, as Festival's
``dx``; syllabic ``n̩`` -> ``N``; ``ʔ`` -> ``T``).

This module imports nothing from vqalign but :mod:`vqalign.exceptions`: every floor
(``io``, ``align``, ``eval``, ``bench``) may use it.
"""

from __future__ import annotations

import re
import unicodedata

from vqalign.exceptions import ParameterError

# ----------------------------------------------------------------------------- ARPAbet
#: the 39 ARPAbet phones of CMUdict, without stress digits
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH".split()
)

# ----------------------------------------------------------------------------- classes
#: broad classes of the frame class model and of the per-class error tables
CLASSES = ("vowel", "stop", "fricative", "nasal", "approximant", "silence")
#: ARPAbet phone -> broad class (affricates CH, JH count as fricatives)
PHONE_CLASS = {p: "vowel" for p in "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()}
PHONE_CLASS.update({p: "stop" for p in "B D G K P T".split()})
PHONE_CLASS.update({p: "fricative" for p in "CH JH DH F HH S SH TH V Z ZH".split()})
PHONE_CLASS.update({p: "nasal" for p in "M N NG".split()})
PHONE_CLASS.update({p: "approximant" for p in "L R W Y".split()})

#: the broad class ``fricative`` of :data:`PHONE_CLASS` (affricates and HH included)
FRICATIVES = frozenset(p for p, c in PHONE_CLASS.items() if c == "fricative")
#: vowel-like phones: the vowels and the approximants (L R W Y), whose frames look alike
#: to a flat start (the self-training broad-class seed groups them)
VOWEL_LIKE = frozenset(p for p, c in PHONE_CLASS.items() if c in ("vowel", "approximant"))
#: vowels (ARPAbet without stress, and the vowel letters of the scripts the chars mode
#: sees most: Latin and Cyrillic)
VOWELS = frozenset(p for p, c in PHONE_CLASS.items() if c == "vowel") | frozenset(
    "aeiouyаеиіоуяюєїыэё")
#: fricatives and affricates whose frames should have a low spectral tilt (c1): the
#: strident and labiodental ones (not DH, V or HH, which are often voiced or weak), and
#: the letters that spell them in Latin and Cyrillic (chars mode). Narrower than
#: :data:`FRICATIVES` on purpose: a confidence cue, not a class.
LOW_TILT_FRICATIVES = frozenset("S Z SH ZH F TH CH JH".split()) | frozenset("szfшжщчцсзф")


def phone_class(arpabet: str) -> str:
    """Broad class of an ARPAbet phone.

    Parameters
    ----------
    arpabet : str
        An ARPAbet phone without stress digit.

    Returns
    -------
    str
        Its class in :data:`PHONE_CLASS`, or ``"other"`` for unmapped labels.
    """
    return PHONE_CLASS.get(arpabet, "other")


# ----------------------------------------------------------------------------- silence
#: labels that mean "no speech" in the systems we compare
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "pau", "h#", "_", "<sil>", "<s>", "</s>",
                            "silence"})


def is_silence(label: str) -> bool:
    """True for empty labels, silences (sil, sp, pau, <sil>, ...) and noise markers.

    Parameters
    ----------
    label : str
        One interval label (case and surrounding spaces are ignored).

    Returns
    -------
    bool
        Whether the label is in :data:`SILENCE_LABELS` or a ``+noise+`` / ``[noise]``
        marker.
    """
    low = label.strip().lower()
    return (low in SILENCE_LABELS or (low.startswith("+") and low.endswith("+"))
            or (low.startswith("[") and low.endswith("]")))


# ----------------------------------------------------------------------------- other sets
#: Festival "radio" phone set -> ARPAbet (devdata/phonesets/festival_radio_to_arpabet.tsv):
#: lower-case ARPAbet plus a few extras
FESTIVAL_TO_ARPABET = {
    "ax": "AH", "axr": "ER", "dx": "T", "el": "L", "em": "M", "en": "N", "hv": "HH",
    "nx": "N", "pau": "sil",
}
for _p in ("aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t "
           "th uh uw v w y z zh").split():
    FESTIVAL_TO_ARPABET[_p] = _p.upper()
del _p

#: eSpeak NG mnemonics (devdata/phonesets/espeak_mnemonic_to_ipa.tsv gives their IPA) ->
#: the nearest ARPAbet phone (r-coloured vowels and diphthongs with a schwa map to their
#: vowel; syllabic l to L, as Festival's el)
ESPEAK_TO_ARPABET = {
    "0": "AA", "3": "ER", "3:": "ER", "@": "AH", "@-": "AH", "@2": "AH", "@5": "AH",
    "@L": "L", "A:": "AA", "A@": "AA", "A#": "AA", "D": "DH", "E": "EH", "E2": "EH",
    "I": "IH", "I#": "IH", "I2": "IH", "N": "NG", "O": "AO", "O2": "AO", "O:": "AO",
    "O@": "AO", "OI": "OY", "S": "SH", "T": "TH", "U": "UH", "U@": "UH", "V": "AH",
    "VR": "ER", "Z": "ZH", "a": "AE", "a#": "AH", "aa": "AA", "aI": "AY", "aI2": "AY",
    "aI@": "AY", "aU": "AW", "b": "B", "d": "D", "dZ": "JH", "e": "EH", "e@": "EH",
    "eI": "EY", "f": "F", "g": "G", "h": "HH", "i": "IY", "i:": "IY", "i@": "IH",
    "i@3": "IH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N", "o@": "AO", "oU": "OW",
    "p": "P", "r": "R", "r-": "R", "s": "S", "t": "T", "t#": "T", "t2": "T", "tS": "CH",
    "u": "UW", "u:": "UW", "v": "V", "w": "W", "w#": "W", "x": "K", "z": "Z", ";": "sil",
}

#: IPA (and MFA's english_mfa set, which is IPA with a few ASCII diphthongs) -> one ARPAbet
#: phone, for scoring other aligners' phones. Keys are tried as written, then with stress
#: marks, length and the diacritics of ``_DIACRITICS`` removed (:func:`ipa_to_arpabet`).
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

#: eSpeak NG en-us IPA (espeak-ng --ipa, stress removed) -> an ARPAbet pronunciation, for
#: G2P (:mod:`vqalign.align.g2p`). Every symbol eSpeak NG 1.51 prints for the 126k words
#: of CMUdict is listed; r-coloured vowels and syllabic consonants that eSpeak prints as
#: one phoneme become two ARPAbet phones, as in CMUdict ("əl" -> AH L: CMUdict's "little"
#: is L IH T AH L). Not :data:`IPA_TO_ARPABET`: a pronunciation keeps both phones where
#: scoring folds to one.
ESPEAK_IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "ɡ": ("G",), "g": ("G",),
    "f": ("F",), "v": ("V",), "θ": ("TH",), "ð": ("DH",), "s": ("S",), "z": ("Z",),
    "ʃ": ("SH",), "ʒ": ("ZH",), "h": ("HH",), "tʃ": ("CH",), "dʒ": ("JH",),
    "m": ("M",), "n": ("N",), "ŋ": ("NG",), "l": ("L",), "ɫ": ("L",), "ɬ": ("L",),
    "ɹ": ("R",), "r": ("R",), "w": ("W",), "j": ("Y",), "x": ("K",),
    "ʔ": ("T",),                       # glottal stop: a /t/ in CMUdict ("button")
    # monophthongs
    "iː": ("IY",), "i": ("IY",), "ɪ": ("IH",), "ᵻ": ("IH",), "ɛ": ("EH",), "e": ("EY",),
    "æ": ("AE",), "a": ("AA",), "ɑː": ("AA",), "ɑ": ("AA",), "ɔː": ("AO",), "ɔ": ("AO",),
    "oː": ("AO",), "o": ("OW",), "ʊ": ("UH",), "uː": ("UW",), "u": ("UW",), "ʌ": ("AH",),
    "ə": ("AH",), "ɐ": ("AH",), "ɚ": ("ER",), "ɝ": ("ER",), "ɜː": ("ER",), "ɜ": ("ER",),
    # diphthongs
    "eɪ": ("EY",), "aɪ": ("AY",), "aʊ": ("AW",), "ɔɪ": ("OY",), "oʊ": ("OW",),
    # eSpeak's compound phonemes
    "əl": ("AH", "L"), "n̩": ("AH", "N"), "l̩": ("AH", "L"), "m̩": ("AH", "M"),
    "ɑːɹ": ("AA", "R"), "oːɹ": ("AO", "R"), "ɔːɹ": ("AO", "R"), "ɛɹ": ("EH", "R"),
    "ɪɹ": ("IH", "R"), "ʊɹ": ("UH", "R"), "aɪɚ": ("AY", "ER"), "aɪə": ("AY", "AH"),
    "iə": ("IY", "AH"),
}


#: misaki (Kokoro's G2P) English phonemes -> one ARPAbet phone each. misaki writes one
#: character per phoneme: IPA letters, ``ʤ``/``ʧ`` for the affricates, capitals for the
#: diphthongs (``A`` eɪ, ``I`` aɪ, ``W`` aʊ, ``Y`` ɔɪ, American ``O`` oʊ, British ``Q`` əʊ),
#: ``ᵊ`` (a reduced schwa), ``ᵻ`` (between ə and ɪ), ``ɾ`` (flap), British ``a`` (the vowel of
#: "ash", so AE, not IPA's AA) and ``ɒ``; stress marks and ``ː`` are not phonemes
#: (:func:`misaki_to_arpabet` drops them). misaki's "her" is ``hɜɹ``: ``ɜ`` maps to ER and
#: the ``ɹ`` after it to R, one phone more than CMUdict's HH ER.
MISAKI_TO_ARPABET = {
    "b": "B", "d": "D", "f": "F", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M",
    "n": "N", "p": "P", "s": "S", "t": "T", "v": "V", "w": "W", "z": "Z", "ɡ": "G",
    "ŋ": "NG", "ɹ": "R", "ʃ": "SH", "ʒ": "ZH", "ð": "DH", "θ": "TH", "ʤ": "JH", "ʧ": "CH",
    "ɾ": "T",
    "ə": "AH", "ᵊ": "AH", "i": "IY", "u": "UW", "ɑ": "AA", "ɔ": "AO", "ɛ": "EH", "ɜ": "ER",
    "ɪ": "IH", "ᵻ": "IH", "ʊ": "UH", "ʌ": "AH", "æ": "AE", "a": "AE", "ɒ": "AA",
    "A": "EY", "I": "AY", "W": "AW", "Y": "OY", "O": "OW", "Q": "OW",
}
_MISAKI_MARKS = "ˈˌː"


def misaki_to_arpabet(phonemes: str) -> list[str]:
    """A misaki (Kokoro G2P) English phoneme string as ARPAbet phones.

    Parameters
    ----------
    phonemes : str
        misaki's output for one or more words, e.g. ``"kˈOkəɹO"``; stress marks, length
        marks and spaces are skipped.

    Returns
    -------
    list of str
        One ARPAbet phone per misaki phoneme (``["K", "OW", "K", "AH", "R", "OW"]``).

    Raises
    ------
    ParameterError
        A character that is not a misaki English phoneme (punctuation included).
    """
    out = []
    for k, ch in enumerate(phonemes):
        if ch in _MISAKI_MARKS or ch.isspace():
            continue
        arpa = MISAKI_TO_ARPABET.get(ch)
        if arpa is None:
            raise ParameterError(f"{phonemes!r}: character {k} {ch!r} is not a misaki English "
                                 "phoneme; pass the phonemes of words only (no punctuation)")
        out.append(arpa)
    return out


# ----------------------------------------------------------------------------- output sets
#: ARPAbet -> IPA (General American) for phone tiers written in IPA. Stress is not kept by
#: the aligner's lexicon, so AH and ER take their unstressed forms (ə, ɚ), the more frequent
#: in CMUdict (AH0 and ER0 outnumber AH1 and ER1).
ARPABET_TO_IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ə", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ", "ER": "ɚ",
    "EY": "eɪ", "IH": "ɪ", "IY": "i", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ", "UW": "u",
    "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
    "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}
#: ARPAbet -> misaki (Kokoro's G2P, American English): its one-letter diphthongs (A I W Y O)
#: and tie-less affricates (ʤ ʧ); AH and ER unstressed as above (ə, əɹ). The inverse of
#: :data:`MISAKI_TO_ARPABET` on the phones both have.
ARPABET_TO_MISAKI = {
    **{k: v for k, v in ARPABET_TO_IPA.items() if len(v) == 1},
    "AH": "ə", "ER": "əɹ", "AW": "W", "AY": "I", "EY": "A", "OW": "O", "OY": "Y",
    "CH": "ʧ", "JH": "ʤ",
}
#: the phone sets a phone tier can be written in
OUTPUT_PHONESETS = ("arpabet", "ipa", "misaki")


def arpabet_to(label: str, phoneset: str) -> str:
    """One ARPAbet phone (stress digits allowed) in an output phone set.

    Parameters
    ----------
    label : str
        ARPAbet phone; silence labels and labels that are not ARPAbet are returned as given.
    phoneset : {"arpabet", "ipa", "misaki"}

    Returns
    -------
    str
    """
    if phoneset not in OUTPUT_PHONESETS:
        raise ParameterError(f"phone set {phoneset!r} is not one of {', '.join(OUTPUT_PHONESETS)}")
    if phoneset == "arpabet":
        return label
    table = ARPABET_TO_IPA if phoneset == "ipa" else ARPABET_TO_MISAKI
    return table.get(label.rstrip("012").upper(), label)


def _strip_ipa(label: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", label)
                   if ch not in _DIACRITICS and unicodedata.category(ch) != "Mn"
                   or ch == "\u0361")


def ipa_to_arpabet(label: str) -> str | None:
    """One IPA (or MFA english_mfa) phone in ARPAbet, for scoring.

    Parameters
    ----------
    label : str
        One phone label; stress marks, length and diacritics are removed if the label as
        written is not in :data:`IPA_TO_ARPABET`.

    Returns
    -------
    str or None
        The ARPAbet phone, or ``None`` if it has no mapping.
    """
    lab = unicodedata.normalize("NFC", label.strip())
    if lab in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[lab]
    bare = unicodedata.normalize("NFC", _strip_ipa(lab)).replace("\u0361", "")
    if bare in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[bare]
    return None


# ----------------------------------------------------------------------------- phone sets
#: Phone sets that :func:`detect_phoneset` / :func:`to_arpabet` know (FA-Bench scoring of
#: ``compare_tier``, ``vqalign bench score``). There are two detectors, and they are kept
#: apart on purpose: the older :func:`detect_phoneset_no_ipa` / :func:`map_phone` pair
#: (:data:`PHONESETS_NO_IPA`, used by ``boundary_errors``) has no IPA set, so eSpeak
#: mnemonics made only of IPA-looking ASCII letters ("b", "a", "e") stay eSpeak there
#: ("a" -> AE) where the IPA-aware detector reads them as IPA ("a" -> AA), and it keeps an
#: unknown label as itself (upper-cased) where :func:`to_arpabet` marks it ``?label``.
#: Merging them would change the figures of one scorer or the other.
PHONESETS = ("auto", "arpabet", "ipa", "festival", "espeak")
#: phone sets of :func:`detect_phoneset_no_ipa` / :func:`map_phone` (see :data:`PHONESETS`)
PHONESETS_NO_IPA = ("auto", "arpabet", "festival", "espeak")

_ARPABET_LABEL = re.compile(r"[A-Z]+[0-2]?")


#: TIMIT's glottal stop label
GLOTTAL_STOP = "q"


def detect_phoneset(labels) -> str:
    """Guess the phone set of a list of labels (IPA aware).

    Parameters
    ----------
    labels : iterable of str
        Phone labels of one utterance or file; silences are ignored.

    Returns
    -------
    str
        ``"arpabet"`` (upper case, optional stress digit), ``"festival"`` (Festival's
        lower-case radio set), ``"ipa"`` (IPA or MFA's english_mfa set: any non-ASCII
        symbol, or every label in :data:`IPA_TO_ARPABET`), else ``"espeak"`` (eSpeak
        mnemonics).
    """
    labs = [lab.strip() for lab in labels if not is_silence(lab)]
    if not labs:
        return "arpabet"
    if all(_ARPABET_LABEL.fullmatch(lab) for lab in labs):
        return "arpabet"
    # TIMIT's glottal stop "q" (kept by the TIMIT-to-ARPAbet tiers, CMUdict has none) is a
    # lower-case ASCII label of no other set: it must not send a lower-case ARPAbet tier to
    # eSpeak (it then pairs as "?q", unmatched)
    if all(lab in FESTIVAL_TO_ARPABET or lab == GLOTTAL_STOP for lab in labs):
        return "festival"
    if any(not lab.isascii() for lab in labs) or all(ipa_to_arpabet(lab) for lab in labs):
        return "ipa"
    return "espeak"


def to_arpabet(label: str, phoneset: str) -> str:
    """One phone label in ARPAbet without stress (IPA aware; FA-Bench scoring).

    Parameters
    ----------
    label : str
        One phone label.
    phoneset : {"arpabet", "ipa", "festival", "espeak"}
        Its phone set (:func:`detect_phoneset`).

    Returns
    -------
    str
        The ARPAbet phone; ``"sil"`` for silences; ``"?<label>"`` for a label that the
        table does not know, so that it never pairs with a real phone by accident (it is
        counted as unmatched).
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


def detect_phoneset_no_ipa(labels) -> str:
    """Guess a phone set without IPA (``boundary_errors``; see :data:`PHONESETS`).

    Parameters
    ----------
    labels : iterable of str
        Phone labels; silences are ignored.

    Returns
    -------
    str
        ``"arpabet"`` (upper case, optional stress digits), ``"festival"`` (lower-case
        radio set) or ``"espeak"`` (mnemonics).
    """
    labs = [lab for lab in labels if not is_silence(lab)]
    if not labs:
        return "arpabet"
    if all(_ARPABET_LABEL.fullmatch(lab) for lab in labs):
        return "arpabet"
    if all(lab in FESTIVAL_TO_ARPABET for lab in labs):
        return "festival"
    return "espeak"


def map_phone(label: str, phoneset: str) -> str:
    """One phone label in ARPAbet (upper case, no stress), without IPA.

    Parameters
    ----------
    label : str
        One phone label.
    phoneset : {"arpabet", "festival", "espeak"}
        Its phone set (:func:`detect_phoneset_no_ipa`).

    Returns
    -------
    str
        The ARPAbet phone, ``"sil"`` for silences, or the label itself (upper-cased for
        ARPAbet and Festival) when the table does not know it.
    """
    if is_silence(label):
        return "sil"
    if phoneset == "arpabet":
        return label.strip().rstrip("012").upper()
    if phoneset == "festival":
        return FESTIVAL_TO_ARPABET.get(label.strip().lower(), label.strip().upper())
    if phoneset == "espeak":
        lab = label.strip()
        return ESPEAK_TO_ARPABET.get(lab, ESPEAK_TO_ARPABET.get(lab.rstrip("012"), lab))
    raise ParameterError(f"phoneset={phoneset!r} is not one of {', '.join(PHONESETS_NO_IPA)}")
