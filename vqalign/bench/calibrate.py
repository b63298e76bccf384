"""``python -m vqalign.bench.calibrate``: the old entry point of the confidence
calibration, which now lives in :mod:`vqalign.eval.calibrate`.

It stays so that the commands recorded in ``vqalign/align/_confidence_coefficients.py``
(and in the sets made before the move) still run as written.
"""

from __future__ import annotations

import sys

from vqalign.eval.calibrate import main
from vqalign.exceptions import ParameterError

if __name__ == "__main__":
    try:
        sys.exit(main())
    except ParameterError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        sys.exit(2)
