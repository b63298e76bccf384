"""Readers of other aligners' files, on sample files written by hand from each format's
documentation (tests/data/bench/), and the phone-set tables."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from vqalign.exceptions import FormatError
from vqalign.io.formats import (
    detect_format,
    read_hypotheses,
    read_hypothesis,
    read_reference,
)
from vqalign.phones import detect_phoneset, ipa_to_arpabet, to_arpabet

DATA = Path(__file__).parent / "data" / "bench"


def speech(ivs):
    return [(round(s, 6), round(e, 6), lab) if s == s else (None, None, lab)
            for s, e, lab in ivs if lab.strip() and lab.lower() not in ("sil", "<sil>")]


def test_reference_long_textgrid():
    ref = read_reference(DATA / "ref.TextGrid")
    assert speech(ref.tiers["words"]) == [(0.3, 0.62, "hello"), (0.62, 1.05, "world"),
                                          (1.2, 1.41, "it's"), (1.41, 1.8, "forty"),
                                          (1.8, 2.1, "two")]
    assert len(ref.tiers["phones"]) == 21 and ref.tiers["phones"][16] == (1.7, 1.74, "dx")
    # line numbers of each interval (for messages): "intervals [2]:" block starts line 19
    assert ref.lines["words"][1] == 20


def test_mfa_short_textgrid_speaker_tiers_and_stress():
    h = read_hypothesis(DATA / "mfa_short.TextGrid")
    assert h.format == "textgrid"
    assert speech(h.tiers["words"]) == [(0.31, 0.6, "hello"), (0.6, 1.07, "world"),
                                        (1.22, 2.1, "it's 42")]
    assert [lab for _, _, lab in h.tiers["phones"]] == ["sil", "HH", "AH0", "L", "OW1"]


def test_bfa_ipa_textgrid():
    h = read_hypothesis(DATA / "bfa_ipa.TextGrid")
    labs = [lab for _, _, lab in h.tiers["phones"]]
    assert labs == ["h", "ə", "ɫ", "oʊ"]
    assert detect_phoneset(labs) == "ipa"
    assert [to_arpabet(x, "ipa") for x in labs] == ["HH", "AH", "L", "OW"]


def test_whisperx_untimed_tokens_are_kept_and_counted():
    h = read_hypothesis(DATA / "whisperx.json")
    assert h.format == "whisperx"
    words = h.tiers["words"]
    assert [w[2] for w in words] == ["Hello,", "world!", "It's", "42."]
    assert words[0][:2] == (0.29, 0.6)
    assert math.isnan(words[3][0]) and math.isnan(words[3][1])
    assert h.n_untimed == 1 and "without timings" in h.notes[0]


def test_ctm_word_token_and_phone_level():
    h = read_hypothesis(DATA / "nfa_words.ctm")
    assert h.format == "ctm" and h.utterance == "sample"
    assert speech(h.tiers["words"])[:2] == [(0.32, 0.6, "hello"), (0.6, 1.05, "world")]
    t = read_hypothesis(DATA / "nfa_tokens.ctm")   # SentencePiece pieces joined
    assert speech(t.tiers["words"]) == [(0.3, 0.62, "hello"), (0.62, 1.05, "world")]
    both = read_hypotheses(DATA / "kaldi_phones.ctm")   # two utterances, phone level
    assert [x.utterance for x in both] == ["sample", "other"]
    assert [lab for _, _, lab in both[0].tiers["phones"]] == ["SIL", "HH", "AH0", "L", "OW1"]
    assert "words" not in both[0].tiers


def test_ctc_forced_aligner_gentle_aeneas_pocketsphinx_vqalign():
    c = read_hypothesis(DATA / "ctc_forced_aligner.json")
    assert c.format == "ctc-forced-aligner"
    assert c.tiers["words"] == [(0.3, 0.62, "hello"), (0.62, 1.02, "world")]
    g = read_hypothesis(DATA / "gentle.json")
    assert g.format == "gentle"
    assert [w[2] for w in g.tiers["words"]] == ["hello", "world", "it's", "forty", "two"]
    assert math.isnan(g.tiers["words"][2][0]) and g.n_untimed == 1   # not-found-in-audio
    # phones follow each other from the word's start, position suffixes removed
    assert [(round(s, 6), round(e, 6), p) for s, e, p in g.tiers["phones"][:2]] == [
        (0.3, 0.38, "HH"), (0.38, 0.45, "AH")]
    a = read_hypothesis(DATA / "aeneas.json")
    assert a.format == "aeneas" and a.tiers["words"] == [(0.0, 0.64, "hello"),
                                                          (0.64, 1.1, "world")]
    s = read_hypothesis(DATA / "aeneas.smil")       # labels from the XHTML page beside it
    assert s.format == "smil" and not s.labels_from_reference
    assert s.tiers["words"] == [(0.3, 0.62, "hello"), (0.62, 1.05, "world")]
    p = read_hypothesis(DATA / "pocketsphinx.json")
    assert p.format == "pocketsphinx"
    assert speech(p.tiers["words"]) == [(0.3, 0.62, "hello"), (0.62, 1.1, "world")]
    assert [x[2] for x in p.tiers["phones"]][:3] == ["SIL", "HH", "AH"]
    v = read_hypothesis(DATA / "vqalign.json")
    assert v.format == "vqalign" and v.tiers["phones"] == [(0.3, 0.38, "HH"), (0.38, 0.45, "AH")]


def test_smil_without_page_takes_labels_from_reference(tmp_path):
    shutil.copy(DATA / "aeneas.smil", tmp_path / "x.smil")
    s = read_hypothesis(tmp_path / "x.smil")
    assert s.labels_from_reference and "labels taken from the reference" in s.notes[0]


def test_detection_by_content_not_extension(tmp_path):
    # a TextGrid and a WhisperX file under misleading names are still recognized
    (tmp_path / "a.json").write_text((DATA / "mfa_short.TextGrid").read_text())
    (tmp_path / "b.out").write_text((DATA / "whisperx.json").read_text())
    (tmp_path / "c.TextGrid").write_text((DATA / "nfa_words.ctm").read_text())
    assert detect_format(tmp_path / "a.json") == "textgrid"
    assert read_hypothesis(tmp_path / "b.out").format == "whisperx"
    assert read_hypothesis(tmp_path / "c.TextGrid").format == "ctm"


def test_utf16_textgrid(tmp_path):
    text = (DATA / "bfa_ipa.TextGrid").read_text(encoding="utf-8")
    (tmp_path / "u16.TextGrid").write_bytes(text.encode("utf-16"))
    assert [x[2] for x in read_hypothesis(tmp_path / "u16.TextGrid").tiers["phones"]][1] == "ə"


def test_bad_files_name_file_and_line(tmp_path):
    with pytest.raises(FormatError, match=r"unknown\.align line 1: unknown alignment format"):
        read_hypothesis(DATA / "unknown.align")
    with pytest.raises(FormatError, match=r"overlap\.ctm line 2: .*overlaps the previous one.*"
                                          r"line 1"):
        read_hypothesis(DATA / "overlap.ctm")
    with pytest.raises(FormatError, match=r"ref_no_words\.TextGrid: reference has no words tier"):
        read_reference(DATA / "ref_no_words.TextGrid")
    bad = (DATA / "ref.TextGrid").read_text().replace("xmin = 1.41 ", "xmin = -1.41 ")
    (tmp_path / "neg.TextGrid").write_text(bad)
    with pytest.raises(FormatError, match=r"neg\.TextGrid line \d+: tier 'words'.*negative"):
        read_hypothesis(tmp_path / "neg.TextGrid")
    cut = "\n".join((DATA / "ref.TextGrid").read_text().splitlines()[:40])
    (tmp_path / "cut.TextGrid").write_text(cut)
    with pytest.raises(FormatError, match=r"cut\.TextGrid line \d+: TextGrid ends early"):
        read_hypothesis(tmp_path / "cut.TextGrid")
    (tmp_path / "bad.json").write_text('{"segments": [1, 2')
    with pytest.raises(FormatError, match=r"bad\.json line 1: not valid JSON"):
        read_hypothesis(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text('{"foo": []}')
    with pytest.raises(FormatError, match=r"JSON of an unknown alignment format.*foo"):
        read_hypothesis(tmp_path / "odd.json")


def test_phone_tables():
    assert to_arpabet("AH0", "arpabet") == "AH" and to_arpabet("sil", "arpabet") == "sil"
    # MFA english_mfa symbols
    for mfa, arpa in [("aj", "AY"), ("ow", "OW"), ("tʰ", "T"), ("ɾ", "T"), ("ɹ", "R"),
                      ("ɚ", "ER"), ("dʒ", "JH"), ("tʃ", "CH"), ("n̩", "N"), ("iː", "IY"),
                      ("ɐ", "AH"), ("ʔ", "T"), ("kʷ", "K"), ("vʲ", "V")]:
        assert ipa_to_arpabet(mfa) == arpa, mfa
    # IPA with stress marks (eSpeak --ipa, BFA)
    assert to_arpabet("ˈæ", "ipa") == "AE" and to_arpabet("ˌoʊ", "ipa") == "OW"
    assert to_arpabet("dx", "festival") == "T" and to_arpabet("@2", "espeak") == "AH"
    # unknown symbols never pair with a real phone
    assert to_arpabet("Q", "arpabet") == "?Q" and to_arpabet("ʘ", "ipa") == "?ʘ"
    assert detect_phoneset(["aj", "ow", "tʰ"]) == "ipa"
    assert detect_phoneset(["AY1", "OW0", "T"]) == "arpabet"
