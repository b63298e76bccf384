"""An English corpus model started from the Sphinx model's segmentation, and its
alignments taken as the median with two pretrained models.

A corpus model trained from a flat start on a few minutes of real speech loses its place
(the 40 TIMIT dev files, 2 minutes: 40.3 ms mean word-boundary error, the per-boundary
median with a Sphinx-seeded model of each file and the Sphinx model 18.0 ms). The same
recipe started from the Sphinx en-us model's phone segmentation of every utterance
(:func:`vqalign.align.second_opinion.segmentation_start` on the whole corpus) keeps it:
20.1 ms alone; on devdata's 200 synthetic utterances 13.5 -> 12.9 ms.

Its alignment of an utterance is then the per-boundary median of three
(:func:`vqalign.align.second_opinion.merge`, ``mode="corpus"``): the corpus model's,
vqalign's English prior's (:mod:`vqalign.align.prior`) and the Sphinx model's. Both
pretrained opinions are decodes, not training: about 100x real time, so every corpus size
gets them (before, a small corpus only, with a model self-trained per utterance). TIMIT dev
files: 17.3 ms (the corpus model, a Sphinx-seeded model per file and the Sphinx model:
18.0); devdata synth: 12.6 ms (12.9 alone). Where the prior cannot vote (the loudness
range under :data:`vqalign.align.second_opinion.PRIOR_MIN_RANGE_DB`, or it cannot align
the utterance) the self-trained Sphinx-seeded model takes its place, as before.

Measured with ``vqalign bench timit`` and ``vqalign bench align`` (scores only; nothing here
is fitted on TIMIT).
"""

from __future__ import annotations

import numpy as np

from vqalign.align import second_opinion as SO
from vqalign.exceptions import VQAlignError

#: the seed's name in the EM history
SEED_NAME = "Sphinx segmentation"


def wanted(aligner) -> bool:
    """Whether ``aligner``'s corpus model starts from the Sphinx segmentation: English
    phones, ``reference`` "auto" or "sphinx", pocketsphinx installed."""
    return (aligner.unit == "phones" and aligner.reference in ("auto", "sphinx")
            and SO.available())


def segments(utts, offs, hop_s, frames=None):
    """The Sphinx model's phone segmentation of every prepared utterance of ``utts``, in
    the frames of the corpus end to end (``offs``: their frame offsets): a list of (first
    frame, end frame, symbol), and how many utterances it could not segment (they start
    as silence). ``frames(u)``: the prepared utterance to segment in place of ``utts[u]``
    (one read from its audio file, for a store-backed corpus); its frame count must be
    the corpus's."""
    out, missed = [], 0
    for u, p in enumerate(utts):
        q = p if frames is None else frames(u)
        if q is None or q.X.shape[0] != offs[u + 1] - offs[u]:
            missed += 1
            continue
        try:
            _, segs = SO.sphinx_reference(q, hop_s)
        except VQAlignError:
            segs = None
        if not isinstance(segs, list):
            missed += 1
            continue
        o = int(offs[u])
        out.extend((a + o, b + o, s) for a, b, s in segs)
    return out, missed


def seed(segs):
    """``seed`` of :func:`vqalign.align.recipe.train`: the corpus model's weights and self
    loops from the segmentation ``segs`` (:func:`segments`)."""
    return (SEED_NAME, lambda m, sel: SO.segmentation_start(m, segs, sel))


def keywords(aligner, utts) -> dict:
    """``{"seed": ...}`` for :meth:`vqalign.align.Aligner.train_model` on the prepared
    utterances ``utts`` of a corpus when :func:`wanted`, else ``{}``."""
    if not wanted(aligner):
        return {}
    offs = np.concatenate([[0], np.cumsum([p.X.shape[0] for p in utts])])
    segs, _ = segments(utts, offs, aligner.hop_)
    return {"seed": seed(segs)} if segs else {}


def pretrained_opinions(helper, load):
    """``opinions(q) -> (second, reference)`` of
    :func:`vqalign.align.second_opinion.corpus_opinion` for a Sphinx-backed English
    corpus: the prior's alignment and the Sphinx model's; where the prior cannot vote,
    the helper's own (a Sphinx-seeded model self-trained on the utterance, and the
    Sphinx model's)."""
    from vqalign.align import prior  # noqa: PLC0415

    def opinions(q):
        if (not SO.available() or q.y16 is None
                or not SO.prior_may_vote(q.y16, getattr(q, "range_db", None))):
            return helper._opinions(q)
        # the prior first: where it fails, the helper's road aligns with the Sphinx
        # model itself (not twice)
        own, _ = prior.source(load)(q, helper.hop_)
        if own is None:
            return helper._opinions(q)
        ref, why = SO.sphinx_reference(q, helper.hop_)
        if ref is None:
            return None, why
        own.diagnostics["opinion"] = "prior"    # named so in the median's diagnostics
        return own, ref

    return opinions


__all__ = ["SEED_NAME", "keywords", "pretrained_opinions", "seed", "segments", "wanted"]
