"""Every command and code block of the README runs, in order, in a folder of the shape the
README describes (``speech.wav`` + ``speech.txt`` and ``corpus/`` of wav + txt pairs, made
by the synthesizer), and does what the README says it does.

The two set-up commands are the exception: the test command is the one ``.ci/run`` runs
(checked to be the same text), and of ``pip install . && vqalign demo`` the demo is run
(the package under test is already installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT
from vqalign.datasets.synth import synthesize

README = ROOT / "README.md"
TEST_COMMAND = 'pip install ".[test]" && python -m pytest -n 2'


def _blocks():
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^```(bash|python)\n(.*?)^```", text, re.S | re.M)]


def test_readme_is_short_and_its_blocks_are_known():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    kinds = [k for k, _ in _blocks()]
    assert kinds.count("bash") >= 6 and kinds.count("python") >= 2
    assert TEST_COMMAND in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in ci


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    u = synthesize("the cat sat on the mat by the door", seed=3, voice="clara")
    sf.write(d / "speech.wav", u.audio, u.sr)
    (d / "speech.txt").write_text(u.text + "\n")
    (d / "corpus").mkdir()
    truth = {}
    for k, text in enumerate(["a small red boat sailed home", "she had your dark suit",
                              "four queen of clubs", "the quick brown fox jumped"]):
        v = synthesize(text, seed=20 + k, voice="clara")
        sf.write(d / "corpus" / f"u{k}.wav", v.audio, v.sr)
        (d / "corpus" / f"u{k}.txt").write_text(v.text + "\n")
        truth[f"u{k}"] = [w for w in v.words if w[2]]
    return d, [w for w in u.words if w[2]], truth


def _run(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"README command failed: {cmd}\n{proc.stdout[-2000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc


def _word_error_ms(path: Path, truth) -> float:
    words = json.loads(path.read_text())["tiers"]["words"]
    assert [w[2] for w in words] == [w[2] for w in truth]
    return 1000 * float(np.mean([abs(a[0] - b[0]) + abs(a[1] - b[1])
                                 for a, b in zip(words, truth)]) / 2)


@pytest.mark.slow
def test_readme_blocks_run(workdir, monkeypatch, capsys):
    d, speech_truth, corpus_truth = workdir
    ran = []
    for kind, code in _blocks():
        if kind == "python":
            monkeypatch.chdir(d)
            exec(compile(code, "README block", "exec"), {"__name__": "readme"})
            ran.append(code)
            continue
        for line in code.splitlines():
            cmd = line.split(" #")[0].strip()
            if not cmd:
                continue
            if cmd == TEST_COMMAND:
                continue                            # .ci/run runs it (checked above)
            if cmd.startswith("pip install . && "):
                cmd = cmd[len("pip install . && "):]
            assert not cmd.startswith("pip "), f"unexpected install line in the README: {cmd}"
            proc = _run(cmd, d)
            ran.append(cmd)
            if cmd == "vqalign demo":
                assert "word" in proc.stdout.lower()
            if cmd.startswith("vqalign bench"):
                json.loads(proc.stdout)            # --json prints one JSON object
    assert any(c.startswith("vqalign demo") for c in ran)
    # what the README promises of the outputs
    assert _word_error_ms(d / "speech.json", speech_truth) < 40
    assert (d / "speech.TextGrid").is_file() and (d / "speech_py.TextGrid").is_file()
    out = capsys.readouterr().out
    assert len([ln for ln in out.splitlines() if re.match(r"\s*\d+\.\d\d\s+\d+\.\d\d", ln)]) \
        == len(speech_truth)
    for k, truth in corpus_truth.items():
        assert _word_error_ms(d / "aligned" / f"{k}.json", truth) < 40
        assert (d / "corpus_aligned" / f"{k}.TextGrid").is_file()
    page = (d / "speech.html").read_text()
    assert "id='vq-data'" in page and "<audio" in page
    assert (d / "codebook.npz").is_file()
    shutil.rmtree(d / "vqalign_demo", ignore_errors=True)
