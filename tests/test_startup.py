"""What a fresh ``vqalign align`` process pays for before and after its work: no module the
single-file path does not use (peers, plotting, scipy.linalg through numba's array
reductions), one compiled signature per kernel, cached kernels read without numba's
compiler set-up, and the console command's exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

#: modules the default single-file path must not import (peers, plots, other verbs;
#: scipy.linalg arrives with numba's array reductions when a cached kernel uses them;
#: scipy.fft's import alone cost 0.16 s: the front ends use numpy.fft)
NOT_ON_THE_PATH = ("sklearn", "matplotlib", "praatio", "librosa", "dask", "faiss",
                   "hmmlearn", "pandas", "scipy.fft", "scipy.linalg", "scipy.signal",
                   "scipy.optimize",
                   "numba.np.arraymath", "vqalign.bench", "vqalign.plots", "vqalign.codec",
                   "vqalign.pipeline", "vqalign.eval", "vqalign.lbg.rvq",
                   "vqalign.lbg.quantizer")

_RUN = r"""
import json, sys
from vqalign.cli import main
code = main(sys.argv[1:])
from numba.core.dispatcher import Dispatcher
multi = {}
for name, mod in list(sys.modules.items()):
    if name.startswith("vqalign.") and name.rsplit(".", 1)[-1].endswith("_kernels"):
        for attr, value in vars(mod).items():
            if isinstance(value, Dispatcher) and len(value.signatures) > 1:
                multi[f"{name}.{attr}"] = [str(s) for s in value.signatures]
print(json.dumps({"code": code, "modules": sorted(sys.modules), "multi": multi}))
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def wav_and_text(tmp_path_factory):
    from vqalign.datasets.synth import synthesize, write_corpus

    u = synthesize("the cat sat on the mat", seed=3, voice="adam")
    u.id = "u0"
    root = tmp_path_factory.mktemp("startup")
    write_corpus([u], root)
    return root / "u0.wav", root / "u0.txt"


def test_align_path_imports_and_signatures(wav_and_text, tmp_path):
    """A whole default ``vqalign align`` run in a fresh process, after one that made the
    caches: it succeeds, imports none of NOT_ON_THE_PATH, and every kernel it called has
    one signature only (each further one is one more cached kernel loaded by every
    process)."""
    wav, txt = wav_and_text
    out = tmp_path / "a.json"
    for _ in range(2):   # the first run may compile kernels (numba then imports everything)
        proc = subprocess.run([sys.executable, "-c", _RUN, "align", str(wav), str(txt), "--out",
                               str(out), "--overwrite"], capture_output=True, text=True,
                              env=_env(), timeout=900, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and out.is_file()
    loaded = set(got["modules"])
    assert "vqalign.align.aligner" in loaded and "numba" in loaded   # the path did run
    bad = [m for m in NOT_ON_THE_PATH if m in loaded or any(x.startswith(m + ".") for x in loaded)]
    assert bad == [], f"the align path imported {bad}"
    assert got["multi"] == {}, f"kernels with more than one signature: {got['multi']}"
    if json.loads(out.read_text())["diagnostics"].get("reference"):
        assert "pocketsphinx" in loaded or "vqalign.align.sphinx" in loaded


_LOAD = r"""
import json
import numpy as np
import numba.core.base as B
from numba.core.dispatcher import Dispatcher
calls = []
real = B.BaseContext.refresh


def counting(self):
    calls.append(1)
    return real(self)


B.BaseContext.refresh = counting
from vqalign.features import _kernels as FK
from vqalign.hmm import _confidence_kernels as CK, _kernels as HK, _ptm_kernels as PK
from vqalign.lbg import _kernels as LK, encode

kinds = sorted({type(v._cache).__name__ for m in (LK, HK, PK, CK, FK)
                for v in vars(m).values() if isinstance(v, Dispatcher)})
X = np.arange(24, dtype=np.float32).reshape(6, 4) * np.float32(0.5)
C = np.array([[0, 0, 0, 0], [6, 6, 6, 6]], dtype=np.float32)
print(json.dumps({"kinds": kinds, "refresh": len(calls), "labels": encode(X, C).tolist()}))
"""


def test_cached_kernels_load_without_compiler_setup():
    """A kernel read from numba's disk cache in a fresh process runs and gives the right
    answer, and numba's compiler context is never refreshed for it (numba's own
    Cache.load_overload refreshes it first: 0.1-0.2 s of CPU); every kernel module's
    dispatchers read their cache directly."""
    runs = [subprocess.run([sys.executable, "-c", _LOAD], capture_output=True, text=True,
                           env=_env(), timeout=900, check=False) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(runs[1].stdout.strip().splitlines()[-1])   # the first one cached them
    assert got["kinds"] == ["_DirectCache"]
    assert got["refresh"] == 0
    X = np.arange(24, dtype=np.float32).reshape(6, 4) * np.float32(0.5)
    C = np.array([[0, 0, 0, 0], [6, 6, 6, 6]], dtype=np.float32)
    assert got["labels"] == ((X[:, None, :] - C[None]) ** 2).sum(-1).argmin(1).tolist()


def test_console_exit_keeps_outputs_and_codes(wav_and_text, tmp_path):
    """``python -m vqalign`` (the console entry) ends without the interpreter's teardown
    but keeps what it printed, the file it wrote and its exit codes."""
    wav, txt = wav_and_text
    out = tmp_path / "b.json"
    ok = subprocess.run([sys.executable, "-m", "vqalign", "align", str(wav), str(txt), "--out",
                         str(out)], capture_output=True, text=True, env=_env(), timeout=900,
                        check=False)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout.strip().endswith(f"-> {out}") and json.loads(out.read_text())["tiers"]
    again = subprocess.run([sys.executable, "-m", "vqalign", "align", str(wav), str(txt),
                            "--out", str(out)], capture_output=True, text=True, env=_env(),
                           timeout=900, check=False)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr
