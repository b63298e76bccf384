"""The public scoring library: how far an alignment lies from a reference.

Usable without the benchmark verbs::

    from vqalign.eval import score, boundary_errors, compare_tier
    result = score("ref_textgrids/", {"mfa": "mfa_out/", "vqalign": "ours/"})

* :mod:`vqalign.eval.boundaries`: boundary errors of one utterance (:func:`boundary_errors`
  against exact truth; :func:`compare_tier` / :func:`summarize_tier`, the FA-Bench / MFA
  evaluation definition that pairs identical labels by edit distance);
* :mod:`vqalign.eval.reliability`: how well confidences predict those errors (ROC AUC,
  reliability curve, ECE);
* :mod:`vqalign.eval.folders`: :func:`score`, folders of any aligner's files (read by
  :mod:`vqalign.io.formats`) against reference TextGrids;
* :mod:`vqalign.eval.corpus`: utterances with reference TextGrids (:func:`find_utterances`,
  :func:`load_utterances`);
* :mod:`vqalign.eval.calibrate`: fits the confidence model of
  :mod:`vqalign.align.confidence` (``python -m vqalign.eval.calibrate``);
* :mod:`vqalign.eval.units`: discrete units against frame-level phone labels (phone
  purity, cluster purity, PNMI, bits);
* :mod:`vqalign.eval.codec_metrics`: decoded speech against the original (PESQ-WB, STOI,
  mel-cepstral distortion, F0 RMSE, voicing error, DNSMOS).

Phone sets are mapped to ARPAbet by :mod:`vqalign.phones`. Names load on first use.
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports

_LAZY = {
    "score": "vqalign.eval.folders",
    "boundary_errors": "vqalign.eval.boundaries",
    "compare_tier": "vqalign.eval.boundaries",
    "summarize_tier": "vqalign.eval.boundaries",
    "summarize_errors": "vqalign.eval.boundaries",
    "match_phones": "vqalign.eval.boundaries",
    "fold_word": "vqalign.eval.boundaries",
    "segment_errors": "vqalign.eval.reliability",
    "confidence_scores": "vqalign.eval.reliability",
    "roc_auc": "vqalign.eval.reliability",
    "reliability_curve": "vqalign.eval.reliability",
    "expected_calibration_error": "vqalign.eval.reliability",
    "find_utterances": "vqalign.eval.corpus",
    "load_utterances": "vqalign.eval.corpus",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
