"""Corpus stages (features, codebook, EM, align), their records and resume; schedulers.

This package owns where corpus work runs (:mod:`.schedulers`: local processes or
Dask) and what a run has finished (:mod:`.records`: ``stages.json``); the numerical
code it calls never knows which scheduler runs it. :func:`run_corpus` is
``vqalign align-corpus``.
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports

_LAZY = {
    "run_corpus": "vqalign.pipeline.corpus",
    "STAGES": "vqalign.pipeline.corpus",
    "get_scheduler": "vqalign.pipeline.schedulers",
    "LocalScheduler": "vqalign.pipeline.schedulers",
    "DaskScheduler": "vqalign.pipeline.schedulers",
    "StageRecords": "vqalign.pipeline.records",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
