"""Sphinx-model rows for ``vqalign bench align``: the CMU Sphinx model run by vqalign,
without and with adaptation to the corpus, scored against the reference TextGrids.

:func:`sphinx_rows` takes the ``data`` list that :mod:`vqalign.bench.align` loads (audio,
text and reference tiers per utterance) and returns flat JSON keys as ``bench align``'s
(``sphinx_word_mean_ms``, ``sphinx_word_within_20ms``, ``sphinx_adapted_word_mean_ms``,
``sphinx_adapted_word_within_20ms``, their phone figures, per-voice rows and timing);
scoring is :func:`vqalign.bench.align.score` (FA-Bench definition). The adapted row is
transductive, like vqalign's corpus mode: ``SphinxAligner.adapt`` runs EM on the very
utterances it then aligns (no held-out split), and its time includes the adaptation.

Run alone (the integrator wires it into ``bench align``)::

    python -m vqalign.bench.peers.sphinx_rows --corpus ../shared/devdata [--limit N]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from vqalign.exceptions import VQAlignError

__all__ = ["sphinx_rows"]


def _tiers(aln) -> dict:
    return {"words": aln.tier("words"), "phones": aln.tier("phones")}


def _align_all(aligner, data):
    hyps = []
    t0 = time.perf_counter()
    for d in data:
        try:
            hyps.append(_tiers(aligner.align(d["audio"], d["text"], sr=d["sr"])))
        except VQAlignError as exc:
            hyps.append(exc)
    return hyps, time.perf_counter() - t0


def sphinx_rows(data, *, model: str = "en-us", adapt: str | None = "weights",
                tau: float = 10.0, tau_means: float = 5.0, n_iter: int = 3) -> dict:
    """Score the Sphinx model ``model`` on ``data`` (bench align's loaded utterances),
    and, unless ``adapt`` is None, the model adapted (``"weights"`` or ``"means"``) to
    ``data`` by :meth:`vqalign.align.sphinx.SphinxAligner.adapt`.

    Returns flat keys ``sphinx_*`` and ``sphinx_adapted_*`` (see the module docstring),
    ``sphinx_by_voice`` / ``sphinx_adapted_by_voice`` (the scored rows per voice),
    ``sphinx_align_s``, ``sphinx_adapt_s``, ``sphinx_adapted_align_s``, ``sphinx_audio_s``
    and ``sphinx_adapt_history``. Both run on one thread; numba compilation and model
    loading are kept out of the times by an untimed warm-up on the shortest utterance.
    """
    from vqalign.align.sphinx import SphinxAligner
    from vqalign.bench.align import flat_figures, score

    if not data:
        raise VQAlignError("sphinx_rows needs at least one utterance")
    base = SphinxAligner(model)
    warm = min(data, key=lambda d: d["seconds"])
    out = {"sphinx_model": str(model), "sphinx_audio_s": float(sum(d["seconds"] for d in data)),
           "sphinx_threads": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            base.align(warm["audio"], warm["text"], sr=warm["sr"])
        except VQAlignError:
            pass
        hyps, out["sphinx_align_s"] = _align_all(base, data)
        s = score(data, hyps)
        out.update(flat_figures("sphinx", s["overall"]))
        out["sphinx_by_voice"] = {k: v for k, v in s.items() if k != "overall"}
        if adapt is not None:
            t0 = time.perf_counter()
            fitted = base.adapt([(d["audio"], d["sr"], d["text"]) for d in data],
                                update=adapt, tau=tau, tau_means=tau_means, n_iter=n_iter)
            out["sphinx_adapt_s"] = time.perf_counter() - t0
            hyps, out["sphinx_adapted_align_s"] = _align_all(fitted, data)
            s = score(data, hyps)
            out.update(flat_figures("sphinx_adapted", s["overall"]))
            out["sphinx_adapted_by_voice"] = {k: v for k, v in s.items() if k != "overall"}
            out["sphinx_adapt"] = {"update": adapt, "tau": tau, "tau_means": tau_means,
                                   "n_iter": n_iter,
                                   "corpus": "the scored utterances (transductive)",
                                   "n_failed": len(fitted.failures_)}
            out["sphinx_adapt_history"] = fitted.history_
    return out


def main(argv=None) -> int:
    from pathlib import Path

    from vqalign.bench.align import DEFAULT_CORPUS
    from vqalign.eval.corpus import find_utterances, load_utterances

    p = argparse.ArgumentParser(prog="python -m vqalign.bench.peers.sphinx_rows")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--adapt", choices=("weights", "means", "none"), default="weights")
    p.add_argument("--tau", type=float, default=10.0)
    p.add_argument("--tau-means", type=float, default=5.0)
    p.add_argument("--n-iter", type=int, default=3)
    args = p.parse_args(argv)
    items, _ = find_utterances(args.corpus, args.limit)
    res = sphinx_rows(load_utterances(items), adapt=None if args.adapt == "none" else args.adapt,
                      tau=args.tau, tau_means=args.tau_means, n_iter=args.n_iter)
    print(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
