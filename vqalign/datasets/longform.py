"""Long multi-voice recordings with exact word times, built from a corpus of short ones.

The hard case for an aligner: utterances of several voices (and rates) one after the
other, shuffled, with pauses of random length between them, aligned as one file. Any
corpus of ``x.wav`` + ``x.TextGrid`` (a ``words`` tier; like ``../shared/devdata``)
serves as the source; the built-in synthesizer is the fallback when none is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.features.constants import FEATURE_SR

SR = FEATURE_SR


@dataclass
class LongRecording:
    """audio float32 (n,) at ``sr``; ``text``; ``words`` [(start_s, end_s, label)] exact;
    ``sources`` the utterance ids in order; ``word_source`` (n_words,) int the index into
    ``sources`` of every word; ``utterances`` {id: (audio (m,) float32, words)} the corpus
    utterances the recording was built from (their own times)."""

    audio: np.ndarray
    sr: int
    text: str
    words: list
    sources: list
    word_source: np.ndarray | None = None
    utterances: dict | None = None

    @property
    def duration(self) -> float:
        return self.audio.size / self.sr


def _read_corpus(corpus_dir):
    import soundfile as sf  # noqa: PLC0415

    from vqalign.io.textgrid import read_textgrid  # noqa: PLC0415
    root = Path(corpus_dir)
    if not root.is_dir():
        raise ParameterError(f"corpus folder {root} does not exist; give a folder of x.wav "
                             "files with x.TextGrid word tiers beside them")
    items = []
    for wav in sorted(root.rglob("*.wav")):
        tg = wav.with_suffix(".TextGrid")
        if not tg.is_file():
            continue
        tiers = read_textgrid(tg)
        if "words" not in tiers:
            raise ParameterError(f"{tg} has no 'words' tier; the long recording needs exact "
                                 "word times")
        y, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if sr != SR:
            import soxr  # noqa: PLC0415
            y = soxr.resample(y, sr, SR).astype(np.float32)
        words = [(s, e, lab) for s, e, lab in tiers["words"] if lab.strip()]
        if words:
            items.append((str(wav.relative_to(root).with_suffix("")), y, words))
    if not items:
        raise ParameterError(f"{root} holds no x.wav with an x.TextGrid words tier")
    return items


def _synth_corpus(seed):
    from vqalign.datasets import synth  # noqa: PLC0415
    utts = synth.synthesize_corpus(60, seed=seed)
    out = []
    for i, u in enumerate(utts):
        y = u.audio if u.sr == SR else None
        if y is None:
            import soxr  # noqa: PLC0415
            y = soxr.resample(u.audio, u.sr, SR).astype(np.float32)
        out.append((f"synth-{i}", y, [(s, e, lab) for s, e, lab in u.words if lab]))
    return out


def build_long_recording(minutes: float, corpus_dir=None, *, seed: int = 0,
                         pause=(0.2, 1.5), noise_db: float | None = None) -> LongRecording:
    """Concatenate shuffled utterances of ``corpus_dir`` (passes over the whole corpus,
    each in a new order) with pauses drawn uniformly from ``pause`` seconds until the
    recording lasts ``minutes``. Pauses are digital silence, or white noise at
    ``noise_db`` dBFS.
    """
    if not (isinstance(minutes, (int, float)) and 0 < minutes <= 600):
        raise ParameterError(f"minutes={minutes!r}; give a length in (0, 600] minutes")
    lo, hi = pause
    if not 0 <= lo <= hi:
        raise ParameterError(f"pause={pause!r}; give (shortest, longest) seconds")
    items = _read_corpus(corpus_dir) if corpus_dir is not None else _synth_corpus(seed)
    rng = np.random.default_rng(seed)
    target = int(minutes * 60 * SR)
    amp = 0.0 if noise_db is None else 10 ** (noise_db / 20)
    pieces, words, sources, word_source = [], [], [], []
    n = 0
    while n < target:
        for i in rng.permutation(len(items)):
            uid, y, ws = items[i]
            gap = int(rng.uniform(lo, hi) * SR)
            pieces.append((amp * rng.standard_normal(gap)).astype(np.float32))
            n += gap
            t0 = n / SR
            pieces.append(y)
            words.extend((t0 + s, t0 + e, lab) for s, e, lab in ws)
            word_source.extend([len(sources)] * len(ws))
            sources.append(uid)
            n += y.size
            if n >= target:
                break
    tail = int(rng.uniform(lo, hi) * SR)
    pieces.append((amp * rng.standard_normal(tail)).astype(np.float32))
    audio = np.concatenate(pieces).astype(np.float32)
    text = " ".join(lab for _, _, lab in words)
    return LongRecording(audio, SR, text, words, sources, np.asarray(word_source, np.int64),
                         {uid: (y, ws) for uid, y, ws in items})


#: kinds of non-speech audio :func:`gap_audio` makes
GAP_KINDS = ("music", "silence", "noise")


def gap_audio(kind: str, seconds: float, *, sr: int = SR, seed: int = 0,
              rms: float = 0.08) -> np.ndarray:
    """Minutes of audio that is not speech, to put inside a long recording.

    - ``"music"``: chords of three or four harmonic tones (eight partials, 1/k
      amplitudes, 5 Hz vibrato), a new chord every 0.25-1 s from a minor or major triad
      on a random root (110-440 Hz), and a beat: a decaying 60 Hz kick every 0.5 s and a
      hi-hat noise burst between them; loud (``rms``, about speech's) and tonal;
    - ``"silence"``: digital silence with a noise floor 80 dB under ``rms``;
    - ``"noise"``: stationary low-passed noise (a fan or an air conditioner) 8 dB under
      ``rms``.

    Parameters
    ----------
    kind : {"music", "silence", "noise"}
    seconds : float
    sr : int
    seed : int
    rms : float
        Root-mean-square level of the music (devdata synth's speech: 0.04-0.12).

    Returns
    -------
    ndarray, shape (round(seconds * sr),) float32
    """
    if kind not in GAP_KINDS:
        raise ParameterError(f"gap kind {kind!r}; give one of {', '.join(GAP_KINDS)}")
    if not seconds > 0:
        raise ParameterError(f"seconds={seconds!r}; give a positive length")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    if kind == "silence":
        return (rms * 1e-4 * rng.standard_normal(n)).astype(np.float32)
    if kind == "noise":
        white = rng.standard_normal(n + 64)
        y = np.convolve(white, np.hanning(16) / np.hanning(16).sum(), "same")[:n]
        return (y * (rms * 10 ** (-8 / 20)) / max(np.sqrt(np.mean(y ** 2)), 1e-12)
                ).astype(np.float32)
    # music: one chord at a time (a loop over chords, each synthesized whole)
    t_all = np.arange(n) / sr
    y = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(0.25, 1.0) * sr))
        root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        steps = (0, 4, 7) if rng.random() < 0.5 else (0, 3, 7)
        if rng.random() < 0.5:
            steps = (*steps, 12)
        t = t_all[:length]
        vib = 1 + 0.005 * np.sin(2 * np.pi * 5.0 * t + rng.uniform(0, 2 * np.pi))
        env = np.minimum(1.0, t / 0.02) * np.exp(-t / 1.5)
        seg = np.zeros(length)
        for s in steps:
            f0 = root * 2 ** (s / 12)
            phase = 2 * np.pi * np.cumsum(f0 * vib) / sr
            for k in range(1, 9):
                if f0 * k < sr / 2:
                    seg += np.sin(k * phase) / k
        y[pos:pos + length] = seg * env
        pos += length
    beat = int(0.5 * sr)
    kick_t = np.arange(int(0.15 * sr)) / sr
    kick = np.sin(2 * np.pi * 60.0 * kick_t) * np.exp(-kick_t / 0.04) * 3.0
    hat = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.008 * sr))
    for b0 in range(0, n, beat):       # one loop per beat
        k1 = min(n, b0 + kick.size)
        y[b0:k1] += kick[:k1 - b0]
        h0 = b0 + beat // 2
        if h0 < n:
            h1 = min(n, h0 + hat.size)
            y[h0:h1] += hat[:h1 - h0]
    return (y * rms / max(np.sqrt(np.mean(y ** 2)), 1e-12)).astype(np.float32)


def with_gap(rec: LongRecording, kind: str, seconds: float, *, at: float = 0.5,
             seed: int = 0) -> tuple[LongRecording, tuple[float, float]]:
    """``rec`` with ``seconds`` of :func:`gap_audio` of ``kind`` put in the pause between
    two utterances nearest ``at`` (a share of its length); the words after it moved by
    its length. Returns the recording and the gap's span (start_s, end_s)."""
    if not 0 < at < 1:
        raise ParameterError(f"at={at!r}; give a share of the recording in (0, 1)")
    ws = np.asarray(rec.word_source)
    # the pause after the last word of an utterance, the one nearest the middle
    ends = np.flatnonzero(np.diff(ws) != 0)
    if ends.size == 0:
        raise ParameterError("the recording has one utterance; a gap goes between two")
    want = at * rec.duration
    i = int(ends[np.argmin([abs(rec.words[j][1] - want) for j in ends])])
    t = 0.5 * (rec.words[i][1] + rec.words[i + 1][0])
    cut = int(round(t * rec.sr))
    g = gap_audio(kind, seconds, sr=rec.sr, seed=seed)
    audio = np.concatenate([rec.audio[:cut], g, rec.audio[cut:]])
    shift = g.size / rec.sr
    t0 = cut / rec.sr
    words = [(s + shift, e + shift, lab) if s >= t0 else (s, e, lab) for s, e, lab in rec.words]
    return (LongRecording(audio, rec.sr, rec.text, words, rec.sources, rec.word_source,
                          rec.utterances), (t0, t0 + shift))
