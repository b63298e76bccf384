"""Audio in which no speech stands out from the noise: a warning with its span, and no
word placed there with high confidence (vqalign.align.utterance.noise_only_db)."""

import warnings

import numpy as np
import pytest

from vqalign.align import Aligner
from vqalign.align.utterance import NOISE_ONLY_DB, noise_only_db
from vqalign.bench.timit import mix_at_snr
from vqalign.datasets.synth import synthesize_corpus
from vqalign.features.frontend import FEATURE_SR, frame_db


def _speech():
    return synthesize_corpus(n=1, seed=7)[0]


def test_noise_only_db_tells_noise_from_speech_in_noise():
    rng = np.random.default_rng(0)
    white = 0.1 * rng.standard_normal(3 * FEATURE_SR)
    got = noise_only_db(frame_db(white))
    assert got is not None and 0 < got < 2.0          # stationary noise: ~1 dB
    u = _speech()
    y = u.audio.astype(np.float64)
    assert noise_only_db(frame_db(y)) is None                    # clean speech: 20 dB and more
    noisy = mix_at_snr(y, rng.standard_normal(y.size), 0.0)
    assert noise_only_db(frame_db(noisy)) is None                # speech at 0 dB SNR still stands out
    buried = mix_at_snr(y, rng.standard_normal(y.size), -10.0)
    assert noise_only_db(frame_db(buried)) is not None           # at -10 dB it does not
    assert noise_only_db(frame_db(buried)) < NOISE_ONLY_DB


@pytest.mark.parametrize("reference", ["flat", "none"])
def test_noise_alone_is_aligned_with_a_warning_and_capped_confidence(reference):
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(3 * FEATURE_SR)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = Aligner(reference=reference).align(y, "hello there my friend", sr=FEATURE_SR)
    w = [x for x in a.diagnostics["warnings"] if x.startswith("no speech stands out")]
    assert len(w) == 1 and "0.00-3.00 s" in w[0]
    assert a.diagnostics["noise_only_db"] < NOISE_ONLY_DB
    conf = [s.confidence for tier in a.tiers.values() for s in tier]
    assert conf and max(conf) <= 0.02


def test_speech_in_noise_keeps_its_confidence():
    u = _speech()
    rng = np.random.default_rng(2)
    y = mix_at_snr(u.audio.astype(np.float64), rng.standard_normal(u.audio.size), 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = Aligner(reference="flat").align(y.astype(np.float32), u.text, sr=u.sr)
    assert "noise_only_db" not in a.diagnostics
    assert not any(x.startswith("no speech stands out") for x in a.diagnostics["warnings"])
    assert max(s.confidence for s in a.words) > 0.02
