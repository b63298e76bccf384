"""A fitted model's road: one batched decode, the coverage check, the second opinion.

:func:`align_fitted` decodes prepared utterances with a corpus-trained model in one
batch (:func:`vqalign.align.decode.decode`), checks each alignment for speech the
transcript lacks (:func:`vqalign.align.coverage.check_fitted`), moves it back onto the
whole recording and, when no such speech was found, hands it to ``opinion`` (a small
corpus's second opinion, :func:`vqalign.align.second_opinion.corpus_opinion`). It
receives the functions it needs and knows no Aligner.
"""

from __future__ import annotations

from vqalign.align.coverage import check_fitted
from vqalign.align.decode import restore_span
from vqalign.align.refine import refine_prepared
from vqalign.align.utterance import frames


def align_fitted(prepared, *, model, hop_s, dither, decode, length_error, opinion):
    """Align prepared utterances with a fitted model.

    Parameters
    ----------
    prepared : list of vqalign.align.utterance.Utterance
    model : vqalign.hmm.TiedMixtureHMM
        The fitted model (symbols it never saw get generic models, reported).
    hop_s : float
        Frame hop (s).
    dither : float
        Dither of features made again (the coverage cuts).
    decode : callable
        ``decode(utts, X, frame_off, selection, *, history=None, warn_extra=None)`` with
        the fitted model.
    length_error : callable
        ``length_error(p) -> Exception or None``.
    opinion : callable
        ``opinion(p, alignment, warnings) -> alignment``: the second opinion (or the
        alignment unchanged).

    Returns
    -------
    list
        Per utterance an Alignment (on the whole recording) or its exception.
    """
    new = model.add_symbols(sorted({u for p in prepared for w in p.tokens.units
                                    for u in w}))
    out = [length_error(p) for p in prepared]
    keep = [i for i, e in enumerate(out) if e is None]
    if keep:
        sub = [prepared[i] for i in keep]
        X, _, offs = frames(sub)
        sel = model.select(X)
        extra = ([f"units never seen in training were given generic models: "
                  f"{', '.join(new)}"] if new else None)
        res = decode(sub, X, offs, sel, history=None, warn_extra=extra)
        for i, r, p in zip(keep, res, sub):
            r, gaps = check_fitted(p, r, extra, decode=decode, select=model.select,
                                   hop_s=hop_s, dither=dither)  # untranscribed speech
            r = restore_span(r, p, (extra or []) + gaps)
            out[i] = r if gaps else refine_prepared(
                opinion(p, r, list(p.warnings) + (extra or [])), p)
    return out
