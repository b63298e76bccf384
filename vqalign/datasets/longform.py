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
