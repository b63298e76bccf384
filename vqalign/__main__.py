"""``python -m vqalign``: same as the ``vqalign`` command."""

from vqalign.cli import console

console()
