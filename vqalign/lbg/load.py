"""Load any codebook file: a :class:`VectorQuantizer` or a :class:`ResidualVQ`.

Above both estimators, so that neither imports the other to load a file.
"""

from __future__ import annotations

from vqalign.lbg.persistence import load_npz
from vqalign.lbg.quantizer import VectorQuantizer
from vqalign.lbg.rvq import ResidualVQ


def load_codebook(path) -> VectorQuantizer | ResidualVQ:
    """Load a VectorQuantizer or ResidualVQ saved by ``save``.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` file written by :meth:`VectorQuantizer.save` or
        :meth:`ResidualVQ.save` (``vqalign codebook --out``).

    Returns
    -------
    VectorQuantizer or ResidualVQ
        The fitted estimator, as its header's ``class`` says.
    """
    _, head = load_npz(path)
    if head.get("class") == "ResidualVQ":
        return ResidualVQ.load(path)
    return VectorQuantizer.load(path)
