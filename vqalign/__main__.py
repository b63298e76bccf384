"""``python -m vqalign``: same as the ``vqalign`` command."""

import sys

from vqalign.cli import main

sys.exit(main())
