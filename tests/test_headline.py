"""The headline commands: ``vqalign demo`` (the README's first command) at a small size,
its printed accuracy checked against the synthesizer's truth by an independent scorer;
``vqalign --version`` and ``python -m vqalign`` as the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT
from tests.independent_scorer import score_dirs


def _version() -> str:
    m = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    return m.group(1)


def test_version_both_ways():
    out = subprocess.run([sys.executable, "-m", "vqalign", "--version"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == f"vqalign {_version()}"
    import vqalign

    assert vqalign.__version__ == _version()


def test_python_m_is_the_cli(tmp_path):
    """``python -m vqalign`` parses, runs and fails exactly as the console script does."""
    bad = subprocess.run([sys.executable, "-m", "vqalign", "align", str(tmp_path / "no.wav"),
                          "some words", "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert re.search(r"vqalign align: error: .*no\.wav", bad.stderr)
    usage = subprocess.run([sys.executable, "-m", "vqalign"], capture_output=True, text=True,
                           check=False)
    assert usage.returncode == 2 and "align-corpus" in usage.stdout


def test_demo_small_accuracy_against_truth(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "vqalign", "demo", "--n-utts", "4",
                           "--codes", "32", "--no-plots", "--out", str(out)],
                          capture_output=True, text=True, check=True, timeout=600)
    m = re.search(r"words vs exact truth: mean ([\d.]+) ms, median [\d.]+ ms, (\d+)% within "
                  r"20 ms \((\d+) boundaries\)", proc.stdout)
    assert m, proc.stdout
    printed_mean, printed_pct, n = float(m.group(1)), int(m.group(2)), int(m.group(3))
    # the written alignments against the synthesizer's exact TextGrids, scored independently
    ref = score_dirs(out / "corpus", out / "alignments")
    assert ref["n_boundaries"] == n
    assert abs(ref["mean_ms"] - printed_mean) < 0.05 + 1e-9
    assert abs(ref["pct_within_20"] - printed_pct) <= 1
    assert ref["mean_ms"] < 25      # synthetic speech, corpus mode: measured 10.3 ms
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["aligned"] == 4 and summary["failed"] == 0
    assert len(list((out / "alignments").glob("*.TextGrid"))) == 4


def test_every_verb_help_has_an_example():
    from vqalign.cli import BENCH, VERBS, build_parser

    missing = []
    for argv in [[v, "--help"] for v in VERBS] + [["bench", b, "--help"] for b in BENCH]:
        parser = build_parser(argv)
        sub = parser._subparsers._group_actions[0].choices[argv[0]]
        if argv[0] == "bench":
            sub = sub._subparsers._group_actions[0].choices[argv[1]]
        if "example" not in (sub.epilog or ""):
            missing.append(" ".join(argv[:-1]))
    assert missing == []
