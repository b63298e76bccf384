"""How many threads the engine's parallel kernels use, set for a block of code."""

from __future__ import annotations

import numba


class threads:
    """Context manager: run the engine's kernels on ``n`` threads inside the block
    (at most numba's configured maximum), then restore the previous setting."""

    def __init__(self, n: int):
        self.n = int(n)

    def __enter__(self):
        self.old = numba.get_num_threads()
        numba.set_num_threads(max(1, min(self.n, numba.config.NUMBA_NUM_THREADS)))
        return self

    def __exit__(self, *exc):
        numba.set_num_threads(self.old)
        return False


def current() -> int:
    """How many threads the engine's parallel kernels use here now (``--jobs`` /
    ``n_jobs`` as set by :class:`threads`, at most ``NUMBA_NUM_THREADS``)."""
    return int(numba.get_num_threads())
