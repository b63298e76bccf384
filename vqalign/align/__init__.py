"""Forced alignment: transcripts, lexicons, the tied-mixture HMM aligner, alignment files.

    from vqalign.align import align, Aligner
    result = align(y, "the cat sat on the mat", sr=16000)      # self-trained, one utterance
    aligner = Aligner(unit="phones").fit(corpus)               # shared model for a corpus
    results = aligner.align_many(corpus)

Names are loaded on first use.
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports

_LAZY = {
    "Aligner": "vqalign.align.aligner",
    "align": "vqalign.align.aligner",
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

