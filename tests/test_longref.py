"""The long recording's second opinions (vqalign.align.longref): the per-window median of
three against a brute-force median, and the windows' samples read from a file block by
block against the array's slices."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from vqalign.align import longref as R
from vqalign.align import second_opinion as SO
from vqalign.align.alignment import Alignment, Segment

HOP = 0.01


def _alignment(words, units, rng, jitter, labels):
    """Words and one phone per unit, every word edge moved by up to ``jitter`` s (an edge
    two touching words share moves as one)."""
    edges = sorted({t for ab in words for t in ab})
    moved = dict(zip(edges, np.array(edges) + rng.uniform(-jitter, jitter, len(edges))))
    ws, ps = [], []
    for (a, b), u in zip(words, units):
        a, b = float(moved[a]), float(moved[b])
        ws.append(Segment(a, b, labels[len(ws)], 0.8))
        inner = rng.uniform(-0.004, 0.004, len(u) - 1)
        cuts = np.linspace(a, b, len(u) + 1) + np.r_[0, inner, 0]
        ps += [Segment(float(cuts[j]), float(cuts[j + 1]), s, 0.7) for j, s in enumerate(u)]
    return Alignment(tiers={"words": ws, "phones": ps}, audio=None, sample_rate=16000,
                     duration=60.0, diagnostics={})


def test_per_window_median_is_the_brute_force_median_and_the_flat_where_sphinx_failed():
    rng = np.random.default_rng(0)
    units = [["HH", "AH"], ["K", "AE", "T"], ["S"], ["D", "AO", "G", "Z"]] * 6
    labels = [f"w{i}" for i in range(len(units))]
    t, words = 0.3, []
    for u in units:
        d = 0.08 * len(u)
        words.append((t, t + d))
        t += d + (0.2 if len(words) % 8 == 0 else 0.0)   # pauses every 8 words
    flat = _alignment(words, units, rng, 0.02, labels)
    seeded = _alignment(words, units, rng, 0.02, labels)
    sph = _alignment(words, units, rng, 0.02, labels)
    # three windows of 8 words; the Sphinx model "failed" on the second
    wins, results = [], []
    for k in range(3):
        wa, wb = 8 * k, 8 * k + 8
        a = 0 if k == 0 else int(round(flat.tiers["words"][wa].start / HOP)) - 5
        b = int(round(flat.tiers["words"][wb - 1].end / HOP)) + 5
        wins.append((a, b, wa, wb))
        if k == 1:
            results.append(None)
            continue
        pw = sph.tiers["words"][wa:wb]
        p0 = sum(len(u) for u in units[:wa])
        pp = sph.tiers["phones"][p0:p0 + sum(len(u) for u in units[wa:wb])]
        results.append(([(s.start, s.end, s.label) for s in pw],
                        [(s.start, s.end, s.label) for s in pp],
                        [(int(round(s.start / HOP + 0.5)), int(round(s.end / HOP + 0.5)),
                          s.label) for s in pp]))
    ref, segs, failed = R.reference_alignment(flat, units, wins, results, HOP)
    assert failed == [1]
    assert len(ref.tiers["words"]) == len(units)
    assert len(ref.tiers["phones"]) == sum(map(len, units)) == len(segs)
    got_w, got_p, _ = SO.combine(flat, seeded, ref)
    # brute force: each word boundary, the middle of its three values
    for w in range(len(units)):
        third = flat if 8 <= w < 16 else sph
        for side in (0, 1):
            vals = sorted(getattr(a.tiers["words"][w], ("start", "end")[side])
                          for a in (flat, seeded, third))
            assert abs(got_w[w, side] - vals[1]) < 1e-12
    # the phones inside a word where all three spell it alike: the middle value, kept in it
    k = 0
    for w, u in enumerate(units):
        third = flat if 8 <= w < 16 else sph
        for j in range(len(u) - 1):
            vals = sorted(a.tiers["phones"][k + j].end for a in (flat, seeded, third))
            want = min(max(vals[1], got_w[w, 0]), got_w[w, 1])
            assert abs(got_p[k + j, 1] - want) < 0.011
        k += len(u)
    # the failed window's segmentation is the flat model's phones in frames
    p8 = sum(len(u) for u in units[:8])
    assert segs[p8][0] == int(round(flat.tiers["phones"][p8].start / HOP + 0.5))


def test_window_audio_from_a_file_block_by_block_equals_the_array_slices(tmp_path):
    rng = np.random.default_rng(1)
    y = (0.1 * rng.standard_normal(16000 * 150 + 777)).astype(np.float32)   # > 2 blocks
    f = tmp_path / "x.wav"
    sf.write(f, y, 16000, subtype="FLOAT")
    edges = [0, 2100, 4000, 6500, 9000, 12000, 14500]      # frames of 10 ms
    wins = [(a, b, i, i + 1) for i, (a, b) in enumerate(zip(edges, edges[1:] + [15000]))]
    from_array = list(R.window_audio(wins, HOP, y16=y))
    from_file = list(R.window_audio(wins, HOP, source=str(f)))
    assert len(from_file) == len(from_array) == len(wins)
    for a, b in zip(from_array, from_file):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate(from_file), y)   # every sample, in order


def test_a_recording_without_second_opinions_is_told_why(monkeypatch):
    """Reference.of gives none, and why_not says why (the long alignment's
    diagnostics["reference"]), for each setting that takes the windows model alone."""
    import types

    from vqalign.align import Aligner

    p = types.SimpleNamespace(y16=np.zeros(16000, np.float32), source=None)

    def schedule(**kw):
        return types.SimpleNamespace(estimator=Aligner(**kw))

    monkeypatch.setattr(SO, "available", lambda: True)
    monkeypatch.delenv(R.ENV_SWITCH, raising=False)
    for kw, unit, said in (({"reference": "none"}, "phones", "reference='none'"),
                           ({"reference": "flat"}, "phones", "reference='flat'"),
                           ({}, "chars", "unit='chars'"),
                           ({"codebook": object()}, "phones", "codebook")):
        why = R.Reference.why_not(p, schedule(**kw), unit)
        assert why is not None and said in why
        assert R.Reference.of(p, schedule(**kw), unit) is None
    assert R.Reference.why_not(p, schedule(), "phones") is None
    assert "samples" in R.Reference.why_not(types.SimpleNamespace(y16=None, source=None),
                                            schedule(), "phones")
    monkeypatch.setenv(R.ENV_SWITCH, "0")
    assert R.ENV_SWITCH in R.Reference.why_not(p, schedule(), "phones")
    monkeypatch.delenv(R.ENV_SWITCH)
    monkeypatch.setattr(SO, "available", lambda: False)
    assert "pip install pocketsphinx" in R.Reference.why_not(p, schedule(), "phones")
