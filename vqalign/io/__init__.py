"""Audio and transcript reading, TextGrid/JSON/CTM files and the memory-mapped feature store.

Names are loaded on first use so that importing one reader does not import all.
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports

_LAZY = {
    "load_audio": "vqalign.io.audio",
    "FeatureStore": "vqalign.io.store",
    "open_store": "vqalign.io.store",
    "write_store": "vqalign.io.store",
    "read_transcript": "vqalign.io.transcripts",
    "read_textgrid": "vqalign.io.textgrid",
    "write_textgrid": "vqalign.io.textgrid",
    "atomic_write": "vqalign.io.atomic",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
