"""The README's set-up commands and CI stay in step; the CLI and errors behave."""

import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from vqalign import _validation as V
from vqalign.exceptions import ParameterError
from vqalign.history import History, code_usage_stats


def _ci_test_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("# README command (b)"))
    return lines[i + 1].strip()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert _ci_test_command() in readme


def test_readme_has_demo_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"pip install .*&& vqalign demo", readme)


def test_cli_help_lists_verbs():
    out = subprocess.run([sys.executable, "-m", "vqalign", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for verb in ("demo", "features", "codebook", "align", "align-corpus", "plot", "animate",
                 "bench"):
        assert verb in out


@pytest.mark.parametrize("bad, match", [
    (np.zeros(0, np.float32), "empty"),
    (np.zeros(100, np.float32), "silent"),
    (np.array([0.1, np.nan, 0.2], np.float32), "NaN or Inf"),
    (np.array([0.1, np.inf, 0.2]), "NaN or Inf"),
    (np.ones(10, np.int16), "integer dtype int16"),
    (np.ones((2, 10), np.float32), "mono"),
    ("not audio", "numpy array"),
])
def test_check_audio_refuses(bad, match):
    with pytest.raises(ParameterError, match=match):
        V.check_audio(bad, 16000)


def test_check_audio_short_and_low_rate():
    with pytest.raises(ParameterError, match="shorter than one analysis window"):
        V.check_audio(np.ones(100, np.float32), 16000, min_samples=400)
    with pytest.raises(ParameterError, match="below the 8000 Hz"):
        V.check_audio(np.ones(100, np.float32), 4000)


def test_check_features_messages():
    with pytest.raises(ParameterError, match="dtype int64"):
        V.check_features(np.ones((3, 2), np.int64))
    with pytest.raises(ParameterError, match="2-D"):
        V.check_features(np.ones(3))
    with pytest.raises(ParameterError, match="first at row 1"):
        V.check_features(np.array([[0.0, 1.0], [np.nan, 1.0]]))
    with pytest.raises(ParameterError, match="13 were expected"):
        V.check_features(np.ones((3, 2)), n_features=13)
    out = V.check_features(np.ones((3, 2)))
    assert out.dtype == np.float32 and out.flags.c_contiguous


def test_check_lengths_gives_numbers_and_seconds():
    with pytest.raises(ParameterError, match=r"412 HMM states .* 230 frames \(2.30 s"):
        V.check_lengths(230, 412, hop_s=0.01)
    V.check_lengths(230, 230, hop_s=0.01)


def test_history_columns_and_roundtrip():
    h = History("lbg")
    h.append(loss=2.0, n_codes=2)
    h.append(loss=1.0, n_codes=4, extra_metric=3.0)
    assert list(h["step"]) == [0, 1]
    assert np.isnan(h["extra_metric"][0]) and h["extra_metric"][1] == 3.0
    h2 = History.from_dict(h.to_dict())
    assert list(h2["loss"]) == [2.0, 1.0] and h2.name == "lbg"
    with pytest.raises(KeyError, match="no column"):
        h["nope"]


def test_code_usage_stats_against_hand_values():
    s = code_usage_stats(np.array([1, 1, 2, 0]))
    p = np.array([0.25, 0.25, 0.5])
    assert s["entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert s["utilization"] == 0.75 and s["log_k"] == pytest.approx(np.log(4))


@pytest.mark.parametrize("bad_index", [0, 5, 99])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_audio_finds_every_nonfinite_position(bad, bad_index):
    y = np.linspace(-0.5, 0.5, 100).astype(np.float32)
    y[bad_index] = bad
    with pytest.raises(ParameterError, match=f"1 NaN or Inf samples \\(first at index {bad_index}\\)"):
        V.check_audio(y, 16000)


def test_check_audio_silence_is_exact_zero_only():
    y = np.zeros(100, np.float32)
    y[50] = 1e-30  # not silent: a tiny but real sample
    assert V.check_audio(y, 16000)[50] == np.float32(1e-30)


def test_check_hop_names_the_value_and_the_fix():
    assert V.check_hop(0.005, sr=16000) == 0.005
    with pytest.raises(ParameterError, match=r"hop_length=0.1 s is outside \[0.002, 0.05\]"):
        V.check_hop(0.1)
    with pytest.raises(ParameterError, match=r"hop_length=True s is outside"):
        V.check_hop(True)
    with pytest.raises(ParameterError, match=r"not a whole number of samples at 16000 Hz"):
        V.check_hop(0.00503, sr=16000)
    assert V.check_hop(0.00503) == 0.00503          # without a rate only the range
