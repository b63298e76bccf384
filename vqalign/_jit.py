"""Reading this package's compiled kernels from numba's cache without numba's set-up.

Before numba reads a cached kernel it refreshes its whole compiler context
(``Cache.load_overload`` calls ``target_context.refresh()``): it imports and installs
every typing and lowering registry it has (strings, dicts, sets, jitclasses, random
generators, polynomials, ...). That costs about 0.15-0.25 s of CPU once per process,
more than aligning a 3 s file, and none of it is needed to run machine code that is
already compiled: that needs numba's runtime (NRT) only, which is still started here.

:func:`fast_cache_loads` gives the kernels of one ``_kernels.py`` module a cache that
skips the refresh. A kernel whose cache entry is missing or stale is compiled exactly
as before (numba's compiler refreshes the context itself), so the only change is
when that set-up happens. With numba internals other than the expected ones, nothing
is changed.
"""

from __future__ import annotations

try:
    from numba.core.caching import FunctionCache
    from numba.core.dispatcher import Dispatcher
    from numba.core.runtime import rtsys
except ImportError:  # pragma: no cover - another numba layout: keep numba's own loading
    FunctionCache = Dispatcher = rtsys = None


if FunctionCache is not None and all(hasattr(FunctionCache, name) for name in (
        "load_overload", "_load_overload", "_guard_against_spurious_io_errors")):

    class _DirectCache(FunctionCache):
        """numba's per-function disk cache, read without refreshing the compiler."""

        def load_overload(self, sig, target_context):
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
            # None when the guard swallowed an I/O error: numba then compiles
else:  # pragma: no cover
    _DirectCache = None


def fast_cache_loads(namespace: dict) -> int:
    """Read the cached kernels among ``namespace``'s values without numba's set-up.

    Parameters
    ----------
    namespace : dict
        A kernel module's ``globals()``; its ``njit(cache=True)`` dispatchers get the
        direct cache (others, and plain functions under ``NUMBA_DISABLE_JIT=1``, are
        left alone).

    Returns
    -------
    int
        How many dispatchers now read their cache directly (0 when numba's internals
        are not the expected ones).
    """
    if _DirectCache is None:
        return 0
    n = 0
    for value in list(namespace.values()):
        if isinstance(value, Dispatcher) and type(getattr(value, "_cache", None)) is FunctionCache:
            value._cache.__class__ = _DirectCache
            n += 1
    return n
