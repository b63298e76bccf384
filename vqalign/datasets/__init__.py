"""vqalign.datasets: built-in synthesized speech with exact phone and word times."""

from vqalign.datasets.synth import (
    SENTENCES,
    VOICES,
    Utterance,
    synthesize,
    synthesize_corpus,
    write_corpus,
)

__all__ = ["SENTENCES", "VOICES", "Utterance", "synthesize", "synthesize_corpus", "write_corpus"]
