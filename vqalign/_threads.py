"""BLAS held to one thread for a block of code (threadpoolctl, one controller per process).

Small products and eigen-decompositions (the MFCC's cepstral product, the Sphinx model's
frames x 26 x 128 GEMMs, residual VQ's 272 x 272 ``eigh``) run faster on one thread than
with OpenBLAS's threads: waking them costs more than the work, and on a 2-core machine they
keep spinning afterwards and take a core from numba's threads (measured: MFCC of 600 s of
audio 120 ms -> 72 ms; a Sphinx GEMM 15 ms -> 0.05 ms; the ``eigh`` 0.32 s -> 0.02 s).
"""

from __future__ import annotations

import contextlib

_CONTROLLER = None


def one_blas_thread():
    """A context manager limiting BLAS to one thread (a no-op without threadpoolctl)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER = ThreadpoolController()
        except Exception:  # pragma: no cover - threadpoolctl is a dependency
            _CONTROLLER = False
    if _CONTROLLER is False:  # pragma: no cover
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")
