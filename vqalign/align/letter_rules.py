"""vqalign's own letter-to-sound rules: the fallback G2P when eSpeak NG is missing.

:func:`rules_letter_to_sound` turns a word into ARPAbet phones with a small rule set
(digraphs, silent final e, magic e, soft c/g, -ed/-es/-tion endings, r-coloured vowels);
:func:`latin_letters` folds a word's accented Latin letters to ASCII for it and for the
eSpeak NG path (:mod:`vqalign.align.g2p`). Below both :mod:`vqalign.align.lexicon` and
:mod:`vqalign.align.g2p`, which import it.
"""

from __future__ import annotations

import unicodedata

from vqalign.exceptions import ParameterError

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


def latin_letters(word, func: str) -> tuple[str, str]:
    """``(word folded to ASCII letters and apostrophes, its letters alone)``; a
    ParameterError naming ``func`` when it has no Latin letter."""
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
    w, letters = latin_letters(word, "rules_letter_to_sound")
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
