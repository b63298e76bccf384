"""`vqalign bench scale` at a tiny size: corpus synthesis and caching, a fresh-process
align-corpus run, RSS from the child's rusage, accuracy against the synthesizer's truth."""

from __future__ import annotations

import json
import time

import pytest

from vqalign.bench import scale
from vqalign.cli import main
from vqalign.exceptions import ParameterError


def test_bench_scale_tiny_json(tmp_path, capsys):
    cache = tmp_path / "cache"
    scale.build_corpus(0.004, cache, jobs=1)    # built (and cached) before the timing
    t0 = time.perf_counter()
    assert main(["bench", "scale", "--hours", "0.004", "--cache", str(cache), "--json",
                 "--jobs", "1"]) == 0
    elapsed = time.perf_counter() - t0          # our own clock around the whole verb
    d = json.loads(capsys.readouterr().out)
    assert d["jobs"] == 1 and d["scheduler"] == "local" and "threads" in d
    (row,) = d["sizes"]
    truth = json.loads(next((cache / "parts").glob("part0000-*")).joinpath(
        "corpus.json").read_text())
    assert row["n_utts"] == len(truth) >= 2
    assert row["audio_s"] == pytest.approx(sum(u["duration"] for u in truth))
    assert row["audio_s"] >= 0.004 * 3600
    assert row["summary"] == f"aligned {len(truth)}, failed 0" and row["n_unaligned"] == 0
    # the corpus is cached, so the timed align-corpus child is most of our call (the rest:
    # scoring a few files): its wall time lies between 60 % and all of our own clock's
    print("wall_s", row["wall_s"], "our clock", elapsed)
    assert 0.6 * elapsed < row["wall_s"] < elapsed
    assert row["audio_s"] / elapsed <= row["x_real_time"] < row["audio_s"] / (0.6 * elapsed)
    assert row["x_real_time"] == pytest.approx(row["audio_s"] / row["wall_s"], rel=1e-6)
    # a fresh Python with numba and the aligner: well above 50 MB, far below 3 GB (the
    # tree figure is sampled every 0.2 s, so it may miss the largest process's peak)
    assert 0.05 < row["peak_rss_gb"] < 3.0 and 0.05 < row["peak_tree_rss_gb"] < 3.0
    assert row["word_mean_ms"] < 80 and row["n_boundaries"] == 2 * sum(
        sum(1 for w in u["words"] if w[2]) for u in truth)
    assert [s.split(":")[0] for s in row["stages"] if "..." not in s] == \
        ["features", "codebook", "em", "align"]
    assert row["wall_ratio"] == 1.0
    # the corpus is cached: a second build synthesizes nothing
    part = next((cache / "parts").glob("part0000-*"))
    before = (part / "corpus.json").stat().st_mtime_ns
    assert scale.build_corpus(0.004, cache) == cache / "corpus-0.004h-seed0"
    assert (part / "corpus.json").stat().st_mtime_ns == before


def test_parse_hours():
    assert scale.parse_hours("10,1, 4") == [1.0, 4.0, 10.0]
    with pytest.raises(ParameterError, match="comma-separated numbers"):
        scale.parse_hours("1h")
    with pytest.raises(ParameterError, match=r"in \(0, 1000\]"):
        scale.parse_hours("0,1")
    assert [p[1] for p in scale._parts(1500.0, 0)] == [600.0, 600.0, 300.0]
