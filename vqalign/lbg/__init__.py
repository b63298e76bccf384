"""Vector-quantization codebooks: random, Lloyd, minibatch Lloyd (EMA), LBG, residual VQ.

Functions for scripts (each returns a (K, D) float32 codebook)::

    random_codebook(X, K, seed)            K distinct training vectors
    lloyd(X, K, init="random", n_iter=20)  full k-means over streamed blocks
    minibatch_lloyd(X, K, batch_size=4096, decay=0.9, n_steps=None)
    lbg(X, K)                              Linde-Buzo-Gray splitting from the mean

and the estimators ``VectorQuantizer`` (fit / encode / decode / score, with
``codebook_``, ``history_``, ``counts_``, ``n_iter_``, ``snapshots_``) and
``ResidualVQ``. ``encode(X, codebook)`` gives the nearest code of every row
(int32) without building an N x K distance matrix. X may be an array, a float32
memmap or a feature store (any object with ``.X`` and ``.settings``).
``take_rows`` / ``release_pages`` read rows of a corpus-sized memmap without making
the process resident in all of it (the feature store and the streamed EM use them).
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports
from vqalign.lbg._data import release_pages, take_rows
from vqalign.lbg.lbg import lbg
from vqalign.lbg.lloyd import lloyd, random_codebook
from vqalign.lbg.minibatch import minibatch_lloyd

# loaded on first use: the aligner's codebooks need lbg() alone
_LAZY = {
    "load_codebook": "vqalign.lbg.load",
    "decode": "vqalign.lbg.metrics",
    "encode": "vqalign.lbg.metrics",
    "mse": "vqalign.lbg.metrics",
    "usage": "vqalign.lbg.metrics",
    "VectorQuantizer": "vqalign.lbg.quantizer",
    "ResidualVQ": "vqalign.lbg.rvq",
}

__all__ = ["random_codebook", "lloyd", "minibatch_lloyd", "lbg", "encode", "decode", "mse",
           "usage", "VectorQuantizer", "ResidualVQ", "load_codebook", "take_rows", "release_pages"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
