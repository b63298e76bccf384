"""Unit scores (phone purity, cluster purity, PNMI, bits) against brute-force counting."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from vqalign.eval.units import contingency, frame_labels, unit_bits, unit_scores
from vqalign.exceptions import ParameterError


def brute(phones, units):
    """Slow, obvious versions from pair counts (fairseq measure_teacher_quality's formulas)."""
    n = len(phones)
    joint = Counter(zip(phones, units))
    py = Counter(phones)
    pz = Counter(units)
    phone_pur = sum(max(c for (y, z2), c in joint.items() if z2 == z) for z in pz) / n
    cluster_pur = sum(max(c for (y2, z), c in joint.items() if y2 == y) for y in py) / n
    mi = sum(c / n * math.log2((c / n) / (py[y] / n * pz[z] / n)) for (y, z), c in joint.items())
    hy = -sum(c / n * math.log2(c / n) for c in py.values())
    return phone_pur, cluster_pur, mi / hy


@pytest.mark.parametrize("K", [3, 17, 200])
def test_scores_match_brute_force(rng, K):
    phones = rng.choice(np.array(["aa", "b", "sil", "iy", "k"]), size=3000)
    # units correlated with phones, plus noise
    base = {p: i for i, p in enumerate(sorted(set(phones)))}
    units = np.array([base[p] * 7 % K for p in phones])
    noisy = rng.random(phones.size) < 0.4
    units[noisy] = rng.integers(0, K, noisy.sum())
    s = unit_scores(phones, units)
    pp, cp, pnmi = brute(list(phones), list(units))
    assert s["phone_purity"] == pytest.approx(pp, abs=1e-12)
    assert s["cluster_purity"] == pytest.approx(cp, abs=1e-12)
    assert s["pnmi"] == pytest.approx(pnmi, abs=1e-12)
    assert s["n_frames"] == 3000


def test_extremes():
    phones = np.array(["a", "b", "c", "a", "b", "c"] * 50)
    same = unit_scores(phones, np.array([0, 1, 2, 0, 1, 2] * 50))
    assert same["pnmi"] == pytest.approx(1.0)
    assert same["phone_purity"] == pytest.approx(1.0)
    one = unit_scores(phones, np.zeros(300, int))
    assert one["pnmi"] == pytest.approx(0.0, abs=1e-12)
    assert one["phone_purity"] == pytest.approx(1 / 3)
    assert one["cluster_purity"] == pytest.approx(1.0)


def test_tuple_units_equal_their_ids(rng):
    phones = rng.integers(0, 6, 1000)
    pairs = rng.integers(0, 4, (1000, 2))
    ids = pairs[:, 0] * 4 + pairs[:, 1]
    a, b = unit_scores(phones, pairs), unit_scores(phones, ids)
    for k in ("pnmi", "phone_purity", "cluster_purity", "h_unit"):
        assert a[k] == pytest.approx(b[k])
    p, _, _ = contingency(phones, ids)
    assert p.sum() == pytest.approx(1.0)


def test_unit_bits():
    z = np.array([0, 1, 2, 3] * 25)
    assert unit_bits(z, 50.0) == pytest.approx(100.0)  # 2 bits x 50 per second
    assert unit_bits(np.zeros(10, int), 50.0) == 0.0


def test_frame_labels():
    iv = [(0.0, 0.1, "sil"), (0.1, 0.25, "ah"), (0.3, 0.4, "t")]
    got = frame_labels(iv, [0.0, 0.05, 0.1, 0.2, 0.27, 0.35, 0.5])
    assert list(got) == ["sil", "sil", "ah", "ah", "sil", "t", "sil"]


def test_bad_input():
    with pytest.raises(ParameterError, match="phones have 3 frames but units have 2"):
        unit_scores(["a", "b", "c"], [1, 2])
    with pytest.raises(ParameterError, match="no frames"):
        unit_scores([], [])


def test_bench_units_end_to_end(tmp_path, capsys):
    """bench units runs end to end on 3 synthesized files with their exact phone tiers
    (every unit type scored, PNMI in [0, 1]), and its context features are the frames
    stacked and z-scored, computed here by hand."""
    import json

    import soundfile as sf

    from vqalign.bench.units import context_frames
    from vqalign.cli import main
    from vqalign.datasets.synth import synthesize
    from vqalign.io.textgrid import write_textgrid

    for k, text in enumerate(["the quick brown fox", "a small red boat", "she had your suit"]):
        u = synthesize(text, seed=80 + k, voice="clara")
        sf.write(tmp_path / f"u{k}.wav", u.audio, u.sr)
        (tmp_path / f"u{k}.txt").write_text(text + "\n")
        write_textgrid(tmp_path / f"u{k}.TextGrid",
                       {"words": [w for w in u.words if w[2]], "phones": u.phones},
                       u.audio.size / u.sr)
    assert main(["bench", "units", "--corpus", str(tmp_path), "--ks", "8", "--no-codec",
                 "--no-hmm", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in res["units"]]
    assert any(n.startswith("k-means MFCC 13") for n in names)
    assert any(n.startswith("vqalign LBG MFCC +-2 frames") for n in names)
    assert all(0.0 <= r["pnmi"] <= 1.0 for r in res["units"])
    # the context features: frames stacked, then z-scored per dimension
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    X = context_frames([a], 1)
    assert X.shape == (4, 9)
    raw = np.concatenate([a[[0, 0, 1, 2]], a, a[[1, 2, 3, 3]]], axis=1).astype(np.float64)
    assert np.allclose(X, (raw - raw.mean(0)) / (raw.std(0) + 1e-9), atol=1e-6)
