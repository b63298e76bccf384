"""Names a package exports but imports only on first use (PEP 562).

``import vqalign`` stays cheap, and one stage's import cost (numba, matplotlib,
librosa) is paid only by the code that uses it::

    __getattr__, __dir__ = lazy_exports(__name__, {"mfcc": "vqalign.features"}, globals())
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, names: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for a package: ``names`` maps an attribute to its module.

    The first access imports the module and caches the value in ``namespace``.
    """

    def __getattr__(name):
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
