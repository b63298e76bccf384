"""Forced alignment: transcripts, lexicons, the tied-mixture HMM aligner, alignment files.

    from vqalign.align import align, Aligner
    result = align(y, "the cat sat on the mat", sr=16000)      # self-trained, one utterance
    aligner = Aligner(unit="phones").fit(corpus)               # shared model for a corpus
    results = aligner.align_many(corpus)

The road of one utterance: :func:`~vqalign.align.utterance.prepare` (checks, front end,
tokens) -> :mod:`~vqalign.align.recipe` (starts and EM on :mod:`vqalign.hmm`) ->
:mod:`~vqalign.align.decode` (Viterbi path -> segments -> Alignment), with the passes
:mod:`~vqalign.align.selftrain`, :mod:`~vqalign.align.coverage`,
:mod:`~vqalign.align.second_opinion`, :mod:`~vqalign.align.longform` and
:mod:`~vqalign.align.fitted`; :class:`Aligner` is the estimator that drives them.

Names are loaded on first use.
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports

_LAZY = {
    "Aligner": "vqalign.align.aligner",
    "align": "vqalign.align.aligner",
    "Utterance": "vqalign.align.utterance",
    "prepare": "vqalign.align.utterance",
    "Alignment": "vqalign.align.alignment",
    "Segment": "vqalign.align.alignment",
    "read_alignment": "vqalign.align.alignment",
    "add_quality_warnings": "vqalign.align.alignment",
    "Lexicon": "vqalign.align.lexicon",
    "letter_to_sound": "vqalign.align.lexicon",
    "tokenize_transcript": "vqalign.align.text",
    "normalize_words": "vqalign.align.text",
    "read_transcript": "vqalign.align.text",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

