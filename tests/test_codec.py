"""The codec: bitrate bookkeeping, shapes, round trips, determinism, save/load, bad input,
metrics against the peer packages, and a trained codec beating a trivial quantizer."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from vqalign.codec import Codec, CodecWarning, design, entropy_bits
from vqalign.codec import analysis as A
from vqalign.codec.codec import stack_frames
from vqalign.datasets.synth import synthesize_corpus
from vqalign.exceptions import ParameterError

pytest.importorskip("pyworld")

SR = 16000


# ------------------------------------------------------------------ bookkeeping
@pytest.mark.parametrize("bps", [700, 1200, 1500, 2400, 3200])
def test_design_spends_exactly_the_rate(bps):
    d = design(bps)
    assert d.nominal_bps == bps
    assert d.bits_per_token == bps / d.token_rate
    assert sum(d.stream_bits) == d.bits_per_token
    assert d.stream_sizes == [2 ** b for b in d.stream_bits]
    assert max(d.env_bits) <= 8 and len(d.stream_names) == len(d.stream_bits)


def test_every_multiple_of_the_step_is_reachable():
    for bps in range(700, 3201, 25):
        assert design(bps).nominal_bps == bps


@pytest.mark.parametrize("bps, near", [(1210, "1200 and 1225"), (1190, "1175 and 1200"),
                                       (100, "400"), (99999, "12800")])
def test_unreachable_rate_names_the_nearest(bps, near):
    with pytest.raises(ParameterError, match=f"nearest reachable rates are {near} bit/s"):
        design(bps)


def test_entropy_bits_matches_scipy(rng):
    from scipy.stats import entropy

    t = np.stack([rng.integers(0, 4, 500), rng.integers(0, 256, 500)], axis=1)
    want = sum(entropy(np.bincount(t[:, s]), base=2) for s in range(2))
    assert entropy_bits(t, [4, 256]) == pytest.approx(want)
    assert entropy_bits(np.zeros((10, 2), int), [4, 4]) == 0.0


# ------------------------------------------------------------------ a tiny trained codec
@pytest.fixture(scope="module")
def corpus():
    train = synthesize_corpus(seconds=14, seed=1, voices=["adam", "clara"])
    test = synthesize_corpus(n=2, seed=2, voices=["bruno", "dana"])
    return train, test


@pytest.fixture(scope="module")
def codec(corpus):
    train, _ = corpus
    return Codec(800, max_stage_bits=6, random_state=0).fit(train)


def test_shapes_rates_and_round_trip(codec, corpus):
    _, test = corpus
    y = test[0].audio
    tok = codec.encode(y, SR)
    d = codec.design_
    n_frames = A.frame_times(y.size, SR, d.frame_ms).size
    assert tok.dtype == np.int32
    assert tok.shape == (math.ceil(n_frames / d.frames_per_token), len(d.stream_bits))
    assert codec.nominal_bps_ == 800
    assert 0 < codec.entropy_bps(tok) <= 800
    out = codec.decode(tok, y.size)
    assert out.shape == y.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert codec.decode(tok).size == tok.shape[0] * d.frames_per_token * 160
    # the decoded speech keeps the original's loudness (within 6 dB)
    assert abs(20 * np.log10(np.std(out) / np.std(y))) < 6


def test_deterministic(codec, corpus):
    y = corpus[1][0].audio
    t1, t2 = codec.encode(y, SR), codec.encode(y, SR)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(codec.decode(t1), codec.decode(t2))
    again = Codec(800, max_stage_bits=6, random_state=0).fit(corpus[0])
    np.testing.assert_array_equal(again.encode(y, SR), t1)


def test_save_load_round_trip(codec, corpus, tmp_path):
    y = corpus[1][1].audio
    path = codec.save(tmp_path / "m.npz")
    with pytest.raises(ParameterError, match="exists"):
        codec.save(path)
    back = Codec.load(path)
    tok = codec.encode(y, SR)
    np.testing.assert_array_equal(back.encode(y, SR), tok)
    np.testing.assert_array_equal(back.decode(tok), codec.decode(tok))
    with np.load(path) as z:
        head = json.loads(str(z["header"]))
    assert head["sample_rate"] == SR and head["frame_rate"] == 100.0
    assert head["stream_sizes"] == codec.design_.stream_sizes and "version" in head
    assert head["postfilter_energy"] is True and back.postfilter == codec.postfilter
    # token files carry the model's id
    tp = codec.save_tokens(tmp_path / "t.npz", tok, n_samples=y.size)
    got, n = back.load_tokens(tp)
    np.testing.assert_array_equal(got, tok)
    assert n == y.size


def test_tokens_from_another_model_or_out_of_range(codec, corpus, tmp_path):
    y = corpus[1][0].audio
    tok = codec.encode(y, SR)
    other = Codec.load(codec.save(tmp_path / "m.npz"))
    other.voiced_ap_ = other.voiced_ap_ * np.float32(0.9)  # another model: other parameters
    other.model_id_ = other._model_id()
    tp = other.save_tokens(tmp_path / "o.npz", tok)
    with pytest.raises(ParameterError, match="encoded by model .* not this one"):
        codec.load_tokens(tp)
    bad = tok.copy()
    bad[0, 2] = codec.design_.stream_sizes[2]
    with pytest.raises(ParameterError, match="env_0.*codes 0..63"):
        codec.decode(bad)
    with pytest.raises(ParameterError, match="shape"):
        codec.decode(tok[:, :3])


def test_model_of_another_frame_rate(codec, corpus, tmp_path):
    y = corpus[1][0].audio
    tp = codec.save_tokens(tmp_path / "t.npz", codec.encode(y, SR))
    with np.load(tp) as z:
        head = json.loads(str(z["header"]))
        toks = z["tokens"]
    head["frame_ms"] = 20.0
    np.savez(tmp_path / "t20.npz", tokens=toks, header=np.array(json.dumps(head)))
    with pytest.raises(ParameterError, match="20.0 ms frames but this model runs at"):
        codec.load_tokens(tmp_path / "t20.npz")


def test_bad_audio(codec, corpus):
    y = corpus[1][0].audio
    with pytest.raises(ParameterError, match="silent"):
        codec.encode(np.zeros(16000, np.float32), SR)
    with pytest.raises(ParameterError, match="below the 8000 Hz minimum"):
        codec.encode(y[:4000], 4000)
    clipped = np.clip(y * 20, -1, 1).astype(np.float32)
    with pytest.warns(CodecWarning, match="clipped"):
        codec.encode(clipped, SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok = codec.encode(y, SR)
    # another sample rate is resampled: same number of tokens
    import soxr

    y22 = soxr.resample(y, SR, 22050).astype(np.float32)
    assert abs(codec.encode(y22, 22050).shape[0] - tok.shape[0]) <= 1
    with pytest.raises(ParameterError, match="not fitted"):
        Codec(800).encode(y, SR)


def test_unreachable_rate_at_fit(corpus):
    with pytest.raises(ParameterError, match="nearest reachable rates are 1200 and 1225"):
        Codec(1210).fit(corpus[0])


def test_codec_beats_a_trivial_quantizer(codec, corpus):
    """The LBG residual codebooks reconstruct held-out envelopes better than codebooks of
    random training vectors with the same bits (vqalign's own 'random' method)."""
    from vqalign.lbg import ResidualVQ

    train, test = corpus
    n = codec.design_.frames_per_token

    def rows(utts):
        return np.concatenate([stack_frames(A.analyze(u.audio, SR, frame_ms=10.0,
                                                      order=codec.order)[1], n)
                               for u in utts])

    E, H = rows(train), rows(test)
    bits = codec.design_.env_bits
    trivial = ResidualVQ(len(bits), 2 ** max(bits), "random", random_state=0).fit(E)
    mine = codec._decode_env(codec._encode_env(H))
    err = float(((H - mine) ** 2).mean())
    err_trivial = float(((H - trivial.decode(trivial.encode(H))) ** 2).mean())
    assert err < 0.8 * err_trivial


# ------------------------------------------------------------------ metrics
def test_metrics_against_the_packages(corpus):
    from pesq import pesq
    from pystoi import stoi

    from vqalign.eval import codec_metrics as M

    y = corpus[1][0].audio
    rng = np.random.default_rng(0)
    deg = (y + 0.02 * rng.standard_normal(y.size)).astype(np.float32)
    assert M.pesq_wb(y, deg) == pytest.approx(pesq(SR, y, deg, "wb"))
    assert M.stoi(y, deg) == pytest.approx(stoi(y.astype(np.float64), deg.astype(np.float64), SR))
    # PESQ-WB's ceiling (P.862.2 mapping of the best raw score) for identical signals
    assert M.pesq_wb(y, y) == pytest.approx(4.644, abs=2e-3)
    assert M.stoi(y, y) == pytest.approx(1.0, abs=1e-6)
    assert M.mcd_db(y, y) == 0.0
    assert M.mcd_db(y, deg) > 0.5
    # a delay is found by cross-correlation
    shifted = np.concatenate([np.zeros(37, np.float32), y])[: y.size]
    np.testing.assert_allclose(M.align_delay(y, shifted, max_lag=100)[:-37], y[:-37], atol=1e-6)


def test_mcd_against_its_definition(rng):
    """MCD from mel_cepstrum equals the textbook formula evaluated by hand."""
    from vqalign.eval import codec_metrics as M

    t = np.arange(SR) / SR
    a = (np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(SR)).astype(np.float32)
    b = (np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(SR)).astype(np.float32)
    ca, e = M.mel_cepstrum(a, SR)
    cb, _ = M.mel_cepstrum(b, SR)
    keep = e > e.max() - 4 * np.log(10)
    want = np.mean([10 / np.log(10) * math.sqrt(2 * sum((x - z) ** 2 for x, z in zip(p[1:], q[1:])))
                    for p, q in zip(ca[keep], cb[keep])])
    assert M.mcd_db(a, b, SR) == pytest.approx(want)


def test_f0_metrics_on_tones():
    from vqalign.eval import codec_metrics as M

    t = np.arange(SR) / SR
    a = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    b = (0.5 * np.sin(2 * np.pi * 210 * t)).astype(np.float32)
    fa, fb = M.f0_track(a, SR), M.f0_track(b, SR)
    assert 170 < np.median(fa[fa > 0]) < np.median(fb[fb > 0]) < 240
    both = (fa > 0) & (fb > 0)
    r = M.f0_metrics(a, b, SR)
    assert r["f0_rmse_hz"] == pytest.approx(np.sqrt(np.mean((fa[both] - fb[both]) ** 2)))
    assert r["voicing_error"] == pytest.approx(np.mean((fa > 0) != (fb > 0)))
    assert r["f0_rmse_cents"] > 0


def test_cli_encode_decode(codec, corpus, tmp_path, capsys):
    import soundfile as sf

    from vqalign.cli import main

    model = codec.save(tmp_path / "m.npz")
    wav = tmp_path / "in.wav"
    sf.write(wav, corpus[1][0].audio, SR)
    assert main(["codec", "encode", str(model), str(wav), "--out", str(tmp_path / "t.npz"),
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nominal_bps"] == 800 and 0 < info["entropy_bps"] <= 800
    assert info["seconds"] == pytest.approx(corpus[1][0].duration)
    assert main(["codec", "decode", str(model), str(tmp_path / "t.npz"), "--out",
                 str(tmp_path / "o.wav")]) == 0
    y, sr = sf.read(tmp_path / "o.wav")
    assert sr == SR and y.size == corpus[1][0].audio.size
    assert main(["codec", "decode", str(model), str(tmp_path / "t.npz"), "--out",
                 str(tmp_path / "o.wav")]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["codec", "train", str(tmp_path), "--bitrate", "1210", "--out",
                 str(tmp_path / "x.npz")]) == 2
    assert "nearest reachable rates are 1200 and 1225" in capsys.readouterr().err


def test_envelope_lag_and_shift(corpus):
    from vqalign.eval import codec_metrics as M

    y = corpus[1][0].audio
    for lag in (0, 45, -30):
        d = M.shift(y, -lag, y.size)  # delayed by lag samples
        assert M.envelope_lag(y, d, max_lag=200) == pytest.approx(lag, abs=2)
        back = M.shift(d, lag, y.size)
        n = y.size - abs(lag)
        np.testing.assert_allclose(back[max(0, -lag):n], y[max(0, -lag):n], atol=1e-6)


@pytest.mark.slow
def test_bench_codec_end_to_end(tmp_path, capsys):
    """bench codec on built-in synthesized speech at one rate: vqalign, the WORLD ceiling
    and Codec2 scored in one run (PESQ-WB and STOI in their ranges, the unquantized ceiling
    above the 1200 bit/s codec), the figure and the report written."""
    import json

    from vqalign.cli import main

    assert main(["bench", "codec", "--rates", "1200", "--max-test", "2", "--no-dnsmos",
                 "--out", str(tmp_path / "b"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    sys_ = res["systems"]
    assert {"world", "vqalign_1200"} <= set(sys_)
    assert {"codec2_1200", "codec2_3200"} <= set(sys_)      # the peer, same run
    for s in sys_.values():
        if s.get("pesq_wb") is not None:
            assert 1.0 <= s["pesq_wb"] <= 4.7 and 0.0 <= s["stoi"] <= 1.0
    assert sys_["world"]["pesq_wb"] > sys_["vqalign_1200"]["pesq_wb"]
    assert sys_["vqalign_1200"]["bitrate"] == 1200
    assert (tmp_path / "b" / "codec_rd.png").is_file()
    assert "<audio" in (tmp_path / "b" / "codec_report.html").read_text()
