"""``vqalign demo``: the whole pipeline on built-in synthesized speech.

Needs no network and no user data. Each stage prints what it did and writes
its outputs under ``--out``.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="vqalign_demo", help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def run(args) -> int:
    raise NotImplementedError("demo is assembled once the stages land")
