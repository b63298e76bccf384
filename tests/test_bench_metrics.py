"""Boundary-error metrics on small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.eval.boundaries import boundary_errors, match_phones, summarize_errors
from vqalign.exceptions import ParameterError
from vqalign.phones import detect_phoneset_no_ipa, map_phone

REF_WORDS = [(0.0, 0.2, ""), (0.2, 0.5, "hello"), (0.5, 0.6, ""), (0.6, 1.0, "world"),
             (1.0, 1.2, "")]


def test_words_hand_computed():
    hyp = [(0.21, 0.47, "HELLO"), (0.63, 1.0, "world(2)")]   # case and alternates folded
    r = boundary_errors(hyp, REF_WORDS)
    # boundaries: |0.21-0.2|=10 ms, |0.47-0.5|=30 ms, |0.63-0.6|=30 ms, |1.0-1.0|=0 ms
    np.testing.assert_allclose(r["errors"], [0.01, 0.03, 0.03, 0.0], atol=1e-12)
    assert r["n"] == 4 and r["n_words"] == 2
    assert r["mean_ms"] == pytest.approx(17.5)
    assert r["median_ms"] == pytest.approx(20.0)
    assert r["within_10"] == pytest.approx(0.5)     # 10 ms counts as within 10 ms
    assert r["within_20"] == pytest.approx(0.5)
    assert r["within_25"] == pytest.approx(0.5)
    assert r["within_50"] == pytest.approx(1.0)


def test_words_silences_and_markers_dropped():
    hyp = [(0.0, 0.2, "<s>"), (0.2, 0.5, "hello"), (0.5, 0.6, "<sil>"), (0.6, 0.95, "world"),
           (0.95, 1.0, "[NOISE]"), (1.0, 1.2, "</s>")]
    r = boundary_errors(hyp, REF_WORDS)
    np.testing.assert_allclose(r["errors"], [0, 0, 0, 0.05], atol=1e-12)
    assert r["within_50"] == pytest.approx(1.0) and r["within_25"] == pytest.approx(0.75)


def test_words_must_match():
    with pytest.raises(ParameterError, match=r"first difference at word 1: 'word' vs 'world'"):
        boundary_errors([(0.2, 0.5, "hello"), (0.6, 1.0, "word")], REF_WORDS)
    with pytest.raises(ParameterError, match=r"hypothesis has 1 words, reference 2.*'\(end\)'"):
        boundary_errors([(0.2, 0.5, "hello")], REF_WORDS)


def test_bad_inputs():
    with pytest.raises(ParameterError, match="end before start"):
        boundary_errors([(0.5, 0.2, "a")], [(0.2, 0.5, "a")])
    with pytest.raises(ParameterError, match=r"hyp\[0\].*not \(start_s, end_s, label\)"):
        boundary_errors([(0.5,)], [(0.2, 0.5, "a")])
    with pytest.raises(ParameterError, match="tier='syllables'"):
        boundary_errors([], [], tier="syllables")
    with pytest.raises(ParameterError, match="ref_phoneset='ipa'"):
        boundary_errors([], [], tier="phones", ref_phoneset="ipa")


def test_summary_of_nothing_is_nan():
    s = summarize_errors([])
    assert s["n"] == 0 and np.isnan(s["mean_ms"]) and np.isnan(s["within_20"])


def test_phone_maps():
    assert map_phone("ax", "festival") == "AH" and map_phone("dx", "festival") == "T"
    assert map_phone("pau", "festival") == "sil" and map_phone("hh", "festival") == "HH"
    assert map_phone("AH0", "arpabet") == "AH" and map_phone("SIL", "arpabet") == "sil"
    assert map_phone("D", "espeak") == "DH" and map_phone("tS", "espeak") == "CH"
    assert map_phone("@2", "espeak") == "AH" and map_phone("oU", "espeak") == "OW"
    assert detect_phoneset_no_ipa(["SIL", "HH", "AH0", "L"]) == "arpabet"
    assert detect_phoneset_no_ipa(["pau", "hh", "ax", "l", "ow"]) == "festival"
    assert detect_phoneset_no_ipa(["_", "h", "@", "l", "oU"]) == "espeak"


def test_phones_festival_reference_hand_computed():
    # reference in Festival's radio set; hypothesis in ARPAbet with one extra phone (T)
    ref = [(0.0, 0.1, "pau"), (0.1, 0.2, "hh"), (0.2, 0.3, "ax"), (0.3, 0.4, "l"),
           (0.4, 0.6, "ow"), (0.6, 0.8, "pau")]
    hyp = [(0.0, 0.11, "SIL"), (0.11, 0.19, "HH"), (0.19, 0.32, "AH0"), (0.32, 0.37, "T"),
           (0.37, 0.42, "L"), (0.42, 0.6, "OW1")]
    r = boundary_errors(hyp, ref, tier="phones")
    assert r["ref_phoneset"] == "festival" and r["hyp_phoneset"] == "arpabet"
    assert r["n_matched"] == 4 and r["n_hyp"] == 5 and r["n_ref"] == 4 and r["n"] == 8
    # HH: 10, 10 ms; AH: 10, 20 ms; L: 70, 20 ms; OW: 20, 0 ms
    np.testing.assert_allclose(r["errors"], [0.01, 0.01, 0.01, 0.02, 0.07, 0.02, 0.02, 0.0],
                               atol=1e-12)
    assert r["mean_ms"] == pytest.approx(20.0)
    assert r["within_20"] == pytest.approx(7 / 8)


def test_phones_espeak_reference():
    ref = [(0.0, 0.1, "_"), (0.1, 0.2, "D"), (0.2, 0.3, "@"), (0.3, 0.5, "k"), (0.5, 0.7, "aI")]
    hyp = [(0.1, 0.21, "DH"), (0.21, 0.3, "IY"), (0.3, 0.52, "K"), (0.52, 0.7, "AY")]
    r = boundary_errors(hyp, ref, tier="phones")
    assert r["ref_phoneset"] == "espeak"
    # IY vs @ (AH) differ: unmatched; DH, K, AY matched
    assert r["n_matched"] == 3
    np.testing.assert_allclose(r["errors"], [0, 0.01, 0, 0.02, 0.02, 0], atol=1e-12)


def test_match_phones_prefers_closer_in_time():
    # one hyp "AH" could pair with either ref "AH": the one nearer in time is chosen
    pairs = match_phones(["AH"], [0.75], ["AH", "AH"], [0.2, 0.8])
    assert pairs == [(0, 1)]
    pairs = match_phones(["AH"], [0.25], ["AH", "AH"], [0.2, 0.8])
    assert pairs == [(0, 0)]
    # substitutions are never paired, insertions/deletions skipped, order kept
    assert match_phones(["A", "X", "B", "C"], [0, 1, 2, 3], ["A", "B", "Y", "C"], [0, 2, 2.5, 3]) \
        == [(0, 0), (2, 1), (3, 3)]
    assert match_phones([], [], ["A"], [0.0]) == []


def test_phone_matching_against_brute_force(rng):
    # maximum number of equal-label pairs in an order-preserving matching = LCS length
    def lcs(a, b):
        d = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i, j] = d[i - 1, j - 1] + 1 if a[i - 1] == b[j - 1] else max(d[i - 1, j],
                                                                                 d[i, j - 1])
        return d[-1, -1]

    for _ in range(30):
        a = list(rng.choice(list("ABCD"), rng.integers(0, 12)))
        b = list(rng.choice(list("ABCD"), rng.integers(0, 12)))
        pairs = match_phones(a, np.arange(len(a)), b, np.arange(len(b)))
        assert len(pairs) == lcs(a, b)
        assert all(a[i] == b[j] for i, j in pairs)
        assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]))


def test_pocketsphinx_adapter_on_devdata(devdata):
    # the peer runs with PEERS.md settings and lands near the dev set's ground truth
    pytest.importorskip("pocketsphinx")
    import soundfile as sf

    from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
    from vqalign.io.textgrid import read_textgrid

    ps = PocketsphinxAligner()
    for rel in ("synth/kal_diphone/kal-d002", "synth/espeak_en-us_m7/esp-en-us_m7-d033"):
        y, sr = sf.read(devdata / f"{rel}.wav", dtype="float32")
        text = (devdata / f"{rel}.txt").read_text(encoding="utf-8")
        out = ps.align(y, text, sr=sr)
        ref = read_textgrid(devdata / f"{rel}.TextGrid")
        words = boundary_errors(out["words"], ref["words"])
        assert words["n_words"] == len(text.split())
        assert words["mean_ms"] < 40 and words["within_50"] > 0.8
        phones = boundary_errors(out["phones"], ref["phones"], tier="phones")
        assert phones["n_matched"] >= 0.8 * phones["n_ref"]
        assert phones["mean_ms"] < 40


# ----------------------------------------------------------------------------- FA-Bench
def test_fold_word_normalization():
    from vqalign.eval.boundaries import fold_word

    assert fold_word("Hello,") == ["hello"] and fold_word("It\u2019s") == ["its"]
    assert fold_word("world(2)") == ["world"] and fold_word("um") == []
    assert fold_word("<sil>") == [] and fold_word("") == [] and fold_word("[NOISE]") == []
    assert fold_word("42") == ["forty", "two"]
    # NFC: a decomposed e + combining acute equals the composed letter
    assert fold_word("cafe\u0301") == fold_word("caf\u00e9") == ["caf\u00e9"]


def test_compare_words_hand_computed_with_differences():
    from vqalign.eval.boundaries import compare_tier, summarize_tier

    ref = [(0.0, 0.2, ""), (0.2, 0.5, "hello"), (0.5, 0.6, "uh"), (0.6, 1.0, "world"),
           (1.0, 1.4, "again")]
    hyp = [(0.21, 0.47, "Hello!"), (0.63, 1.0, "world"), (1.0, 1.3, "gain")]
    r = compare_tier(hyp, ref)
    # pairs hello (+10, -30 ms), world (+30, 0 ms); "again" missing, "gain" inserted
    np.testing.assert_allclose(r["onset"], [0.01, 0.03], atol=1e-12)
    np.testing.assert_allclose(r["offset"], [-0.03, 0.0], atol=1e-12)
    assert r["missing"] == ["again"] and r["inserted"] == ["gain"]
    assert r["missing_src"] == [4] and r["inserted_src"] == [2]
    s = summarize_tier([r])
    assert s["n_boundaries"] == 4 and s["mean_ms"] == pytest.approx(17.5)
    assert s["median_ms"] == pytest.approx(20.0) and s["p90_ms"] == pytest.approx(30.0)
    assert s["pct_within_ms"] == {"10": 50.0, "20": 50.0, "25": 50.0, "50": 100.0}
    assert s["bias_onset_ms"] == pytest.approx(20.0) and s["bias_offset_ms"] == pytest.approx(-15)
    assert s["n_unmatched"] == 2 and s["n_missing"] == 1 and s["n_inserted"] == 1


def test_shared_boundary_counts_twice_and_untimed_tokens():
    from vqalign.eval.boundaries import compare_tier, summarize_tier

    ref = [(0.0, 0.5, "a"), (0.5, 1.0, "b")]
    hyp = [(0.0, 0.52, "a"), (0.52, 1.0, "b"), (float("nan"), float("nan"), "c")]
    r = compare_tier(hyp, ref)
    s = summarize_tier([r])
    # the shared boundary 0.5 -> 0.52 is the end of "a" and the start of "b": two errors
    assert s["n_boundaries"] == 4 and s["mean_ms"] == pytest.approx(10.0)
    # a token without times is paired in order but never scored
    r2 = compare_tier([(0.0, 0.5, "a"), (float("nan"), float("nan"), "b")], ref)
    assert r2["n_untimed"] == 2 and r2["missing"] == [] and summarize_tier([r2])["n_boundaries"] == 2


def test_phone_classes_and_silence_boundaries():
    from vqalign.eval.boundaries import compare_tier, summarize_tier

    ref = [(0.0, 0.1, "pau"), (0.1, 0.2, "s"), (0.2, 0.3, "iy"), (0.3, 0.4, "t"),
           (0.4, 0.5, "pau")]
    hyp = [(0.11, 0.2, "S"), (0.2, 0.32, "IY1"), (0.32, 0.4, "T")]
    s = summarize_tier([compare_tier(hyp, ref, tier="phones")])
    by = s["by_class"]
    # s: onset after silence (10 ms) -> silence, offset -> fricative (0); iy: onset vowel (0),
    # offset vowel (20); t: onset stop (20), offset before silence -> silence (0)
    assert by["silence"]["n_boundaries"] == 2 and by["silence"]["mean_ms"] == pytest.approx(5)
    assert by["fricative"]["mean_ms"] == pytest.approx(0) and by["stop"]["mean_ms"] == \
        pytest.approx(20)
    assert by["vowel"]["n_boundaries"] == 2 and by["vowel"]["mean_ms"] == pytest.approx(10)
    assert by["nasal"]["n_boundaries"] == 0
