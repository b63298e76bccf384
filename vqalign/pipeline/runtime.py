"""What every corpus stage shares: the worker's store cache, progress lines, write errors.

Below :mod:`vqalign.pipeline.corpus` (the stages) and :mod:`vqalign.pipeline.em` (the EM
stage), so that neither imports the other for them.
"""

from __future__ import annotations

import sys

from vqalign.exceptions import RunWriteError

#: per worker process: the store it reads and the model it aligns with (one of each)
WORKER_CACHE: dict = {}


def open_store_cached(path):
    """The feature store at ``path``, opened once per process (:data:`WORKER_CACHE`)."""
    from vqalign.io.store import open_store
    key = ("store", str(path))
    st = WORKER_CACHE.get(key)
    if st is None:
        WORKER_CACHE.clear()
        st = WORKER_CACHE[key] = open_store(path)
    return st


def say(msg, quiet=False):
    """A progress line on stderr (none when ``quiet``)."""
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def write_error(path, exc: OSError) -> RunWriteError:
    """The RunWriteError for an OSError raised while writing ``path`` (names the path)."""
    return RunWriteError(
        f"cannot write {str(getattr(exc, 'filename', None) or path)!r}: "
        f"{exc.strerror or exc}; free disk space or fix the folder's permissions, then re-run "
        "the same command: finished stages and alignments are kept and the run resumes")
