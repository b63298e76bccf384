"""Built-in demo inputs for ``vqalign plot`` / ``vqalign animate`` and the notebooks.

Everything comes from the built-in synthesizer (:mod:`vqalign.datasets.synth`),
so the pictures need no user data and no network. Results are cached per
process (the CLI draws one figure per run; the notebooks reuse them).
"""

from __future__ import annotations

import functools

import numpy as np

DEMO_TEXT = "please leave the blue folder on the desk near the window"


@functools.lru_cache(maxsize=4)
def demo_utterance(text: str = DEMO_TEXT, *, seed: int = 0, voice=None):
    """One synthesized utterance (``vqalign.datasets.synth.Utterance``) with exact tiers."""
    from vqalign.datasets.synth import synthesize

    return synthesize(text, seed=seed, voice=voice)


def truth_tiers(utt) -> dict:
    """The synthesizer's exact word and phone tiers, silences dropped."""
    return {"words": [w for w in utt.words if w[2]],
            "phones": [p for p in utt.phones if p[2] != "sil"]}


@functools.lru_cache(maxsize=4)
def demo_features(n_utterances: int = 6, *, seed: int = 0) -> np.ndarray:
    """MFCCs (13, librosa convention) of a small synthesized corpus, (n_frames, 13) float32."""
    from vqalign.datasets.synth import synthesize_corpus
    from vqalign.features import mfcc

    utts = synthesize_corpus(n_utterances, seed=seed)
    X = np.concatenate([mfcc(u.audio, u.sr) for u in utts])
    return np.ascontiguousarray(X, dtype=np.float32)


def demo_vq(X, *, n_codes: int = 32, keep_snapshots: int = 60, seed: int = 0, method="lbg",
            **kwargs):
    """A fitted ``VectorQuantizer`` (LBG by default) keeping ``keep_snapshots`` snapshots."""
    from vqalign.lbg import VectorQuantizer

    return VectorQuantizer(method=method, n_codes=n_codes, keep_snapshots=keep_snapshots,
                           random_state=seed, **kwargs).fit(X)


def demo_alignment(utt, *, n_iter: int = 30, keep_paths: bool = True, unit: str = "phones",
                   **kwargs):
    """Self-trained alignment of one utterance (``Aligner(keep_paths=True).align``)."""
    from vqalign.align import Aligner

    aligner = Aligner(unit=unit, n_iter=n_iter, keep_paths=keep_paths, **kwargs)
    return aligner.align(utt.audio, utt.text, sr=utt.sr, audio_name=utt.id or "synth")
