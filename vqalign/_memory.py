"""Free memory handed back to the system between the stages of a long recording.

Arrays of up to 32 MB come from the C library's heap once larger ones were freed (glibc
raises its mmap threshold as they are), and Python's objects from its arenas: after a
stage ends, the pages of what it freed stay in the process (its RSS) until the heap is
trimmed. ``malloc_trim(0)`` returns every whole free page of every heap (glibc; a no-op
elsewhere). Measured on a 180-minute recording (``vqalign bench long``): see
:data:`vqalign.align.windows.MEMORY_MB_PER_MIN`.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_TRIM = []


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    where the C library has none)."""
    if not _TRIM:
        try:
            _TRIM.append(ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim)
        except (OSError, AttributeError):
            _TRIM.append(None)
    if _TRIM[0] is not None:
        _TRIM[0](0)
