"""vqalign: classical speech alignment and vector quantization.

MFCC features, LBG / minibatch-Lloyd codebooks with dead-code handling,
residual VQ, and tied-mixture GMM-HMM forced alignment, JIT-compiled with Numba.

The names most users want are importable from the top level and loaded on
first use (so ``import vqalign`` stays cheap)::

    from vqalign import mfcc, lbg, ResidualVQ, align
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports

__version__ = "0.2.0"

_LAZY = {
    "mfcc": "vqalign.features",
    "delta": "vqalign.features",
    "cmvn": "vqalign.features",
    "load_audio": "vqalign.io",
    "lbg": "vqalign.lbg",
    "VectorQuantizer": "vqalign.lbg",
    "ResidualVQ": "vqalign.lbg",
    "align": "vqalign.align",
    "Aligner": "vqalign.align",
    "History": "vqalign.history",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

