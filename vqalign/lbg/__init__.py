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

from vqalign.lbg._data import release_pages, take_rows
from vqalign.lbg.lbg import lbg
from vqalign.lbg.lloyd import lloyd, random_codebook
from vqalign.lbg.load import load_codebook
from vqalign.lbg.metrics import decode, encode, mse, usage
from vqalign.lbg.minibatch import minibatch_lloyd
from vqalign.lbg.quantizer import VectorQuantizer
from vqalign.lbg.rvq import ResidualVQ

__all__ = ["random_codebook", "lloyd", "minibatch_lloyd", "lbg", "encode", "decode", "mse",
           "usage", "VectorQuantizer", "ResidualVQ", "load_codebook", "take_rows", "release_pages"]
