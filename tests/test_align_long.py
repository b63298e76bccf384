"""Long recordings: a 30-minute input aligned in anchored windows, without drift, and clear
failures when the transcript and the audio do not match."""

from __future__ import annotations

import numpy as np
import pytest

from tests.naive import word_errors_ms
from vqalign.align import Aligner
from vqalign.datasets import synth
from vqalign.exceptions import AlignmentError


@pytest.fixture(scope="module")
def base():
    return synth.synthesize_corpus(24, seed=11)


@pytest.fixture(scope="module")
def fitted(base):
    return Aligner(unit="phones", n_iter=12).fit([(u.audio, u.sr, u.text) for u in base])


def _tile(base, seconds, seed=0):
    """Concatenate synth utterances (random order) to ``seconds``; exact word times."""
    rng = np.random.default_rng(seed)
    audio, texts, words = [], [], []
    off = 0.0
    while off < seconds:
        u = base[int(rng.integers(len(base)))]
        audio.append(u.audio)
        texts.append(u.text)
        words += [(s + off, e + off, lab) for s, e, lab in u.words if lab]
        off += u.duration
    return np.concatenate(audio), " ".join(texts), words


def _errors_ms(aln, words):
    """(start errors, end errors) in ms."""
    err = word_errors_ms(aln.tiers["words"], words)
    return err[: err.size // 2], err[err.size // 2:]


@pytest.mark.slow
def test_thirty_minutes_align_without_drift(fitted, base):
    y, text, words = _tile(base, 30 * 60)
    assert y.size / 16000 >= 1800
    aln = fitted.align(y, text, sr=16000)
    s, e = _errors_ms(aln, words)
    err = np.concatenate([s, e])
    assert np.mean(err) < 25.0
    assert np.mean(err < 20) > 0.8
    # no drift: the last tenth of the words is as precise as the first tenth
    n = len(words) // 10
    assert np.mean(e[-n:]) < 30.0 and np.mean(e[:n]) < 30.0
    assert abs(aln.tiers["words"][-1].end - words[-1][1]) < 0.05
    long = aln.diagnostics["long_audio"]
    assert long["method"] == "global beam Viterbi"
    # the beam keeps a band, not the whole chain (about 100,000 states here)
    assert long["mean_active_states"] < 2000


def test_transcript_with_text_missing_from_audio_fails_clearly(fitted, base):
    y, text, _ = _tile(base, 100, seed=1)
    extra = " ".join(base[0].text.split() * 6)
    with pytest.raises(AlignmentError, match="does not match the audio|not in the recording"):
        fitted.align(y, text + " " + extra, sr=16000)


def test_speech_after_the_last_word_is_reported(fitted, base):
    y, text, words = _tile(base, 100, seed=2)
    tail = np.concatenate([base[3].audio, base[4].audio])
    aln = fitted.align(np.concatenate([y, tail]), text, sr=16000)
    assert any("after the last word" in w for w in aln.diagnostics["warnings"])
    s, e = _errors_ms(aln, words)
    assert np.median(np.concatenate([s, e])) < 20.0


def test_long_recording_self_trained(base, tmp_path, monkeypatch):
    """An unfitted Aligner trains on pieces cut at pauses, then re-trains on the chunks of
    its global path; the finished alignment leaves nothing in the resume folder (the
    extent search's result is kept there while it runs)."""
    monkeypatch.setenv("VQALIGN_RESUME_DIR", str(tmp_path))
    y, text, words = _tile(base, 100, seed=3)
    aln = Aligner(unit="phones").align(y, text, sr=16000)
    assert not list(tmp_path.rglob("*.pkl"))
    s, e = _errors_ms(aln, words)
    err = np.concatenate([s, e])
    assert np.median(err) < 20.0 and np.mean(err) < 40.0
    assert aln.diagnostics["em_history"]["columns"]["log_likelihood"]


def self_trained_devdata_recording(devdata, minutes, seed):
    """(recording, alignment) of devdata's synthetic voices shuffled to ``minutes``
    (``seed``), aligned as one file by an unfitted Aligner; every word matched, and the
    words within 25 ms mean, 50 ms p90 and 10 ms drift of the exact truth."""
    from vqalign.bench.long import summarize
    from vqalign.datasets.longform import build_long_recording
    rec = build_long_recording(minutes, devdata / "synth", seed=seed)  # not the TIMIT files
    aln = Aligner(unit="phones").align(rec.audio, rec.text, sr=rec.sr)
    pred = [(w.start, w.end, w.label) for w in aln.tiers["words"]]
    r = summarize(pred, rec.words)
    print({k: round(v, 1) for k, v in r.items()})
    assert r["n_matched"] == r["n_words"]
    assert r["word_mean_ms"] < 25.0 and r["word_p90_ms"] < 50.0
    assert abs(r["drift_ms"]) < 10.0
    return rec, aln


def test_multi_voice_recording_from_devdata_self_trained(devdata):
    """The hard case (vqalign bench long at full size): devdata's five voices shuffled,
    0.2-1.5 s pauses, aligned as one file by an unfitted Aligner, exact truth."""
    rec, aln = self_trained_devdata_recording(devdata, 3.0, seed=7)
    assert rec.duration > 180 and len({s.split("/")[0] for s in rec.sources}) == 5
    assert aln.diagnostics["long_audio"]["method"] == "global beam Viterbi"


def test_bench_long_verb_runs_vqalign_align_in_a_child(devdata, tmp_path, capsys):
    import json

    from vqalign.cli import main
    assert main(["bench", "long", "--minutes", "1.7", "--seed", "4", "--json", "--single", "3",
                 "--corpus", str(devdata / "synth"), "--keep", str(tmp_path)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (tmp_path / "long.wav").is_file() and (tmp_path / "long.json").is_file()
    assert r["minutes"] > 1.6 and r["n_matched"] == r["n_words"] > 100
    for key in ("word_mean_ms", "word_p90_ms", "drift_ms", "x_real_time", "peak_rss_mb"):
        assert np.isfinite(r[key])
    assert r["word_mean_ms"] < 30.0 and r["peak_rss_mb"] > 50
    # the peer: utterances aligned one at a time
    assert r["single_utterances"] == 3 and r["long_same_words_n"] >= r["single_words"] > 0
    assert np.isclose(r["mean_ratio_long_vs_single"],
                      r["long_same_words_mean_ms"] / r["single_word_mean_ms"])
