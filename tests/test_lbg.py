"""Codebooks: references are plain-numpy k-means / nearest-code searches."""

from __future__ import annotations

import numpy as np
import pytest

from tests.naive import blobs, naive_nearest
from vqalign.exceptions import ParameterError
from vqalign.lbg import (
    ResidualVQ,
    VectorQuantizer,
    decode,
    encode,
    lbg,
    lloyd,
    minibatch_lloyd,
    random_codebook,
)


def naive_kmeans(X, C0, n_iter):
    C = C0.astype(np.float64).copy()
    for _ in range(n_iter):
        lab, _ = naive_nearest(X, C)
        for k in range(C.shape[0]):
            m = lab == k
            if m.any():
                C[k] = X[m].astype(np.float64).mean(0)
    return C


# ------------------------------------------------------------------ nearest code
@pytest.mark.parametrize("d,k", [(13, 300), (3, 7), (80, 70)])  # fused (K > one tile) and BLAS
def test_encode_matches_naive_argmin(rng, d, k):
    X = (rng.standard_normal((2500, d)) * 2 + 40).astype(np.float32)  # large offset like MFCC c0
    C = X[rng.choice(len(X), k, replace=False)] + 0.1 * rng.standard_normal((k, d)).astype(np.float32)
    lab = encode(X, C)
    ref, refd = naive_nearest(X, C)
    assert lab.dtype == np.int32
    # ties are measure-zero here; allow float32-rounding near-ties only
    same = lab == ref
    d_ours = ((X.astype(np.float64) - C[lab]) ** 2).sum(1)
    assert np.all(same | (np.abs(d_ours - refd) <= 1e-4 * (1 + refd)))
    assert same.mean() > 0.999


def test_encode_decode_round_trip(rng):
    X = blobs(rng)
    C = random_codebook(X, 50, seed=1)
    codes = encode(C, C)
    np.testing.assert_array_equal(codes, np.arange(50))
    np.testing.assert_array_equal(decode(codes, C), C)
    q = decode(encode(X, C), C)
    ref, _ = naive_nearest(X, C)
    np.testing.assert_allclose(q, C[ref])


def test_random_codebook_distinct_rows(rng):
    X = np.repeat(blobs(rng, n=200), 3, axis=0)  # every row three times
    C = random_codebook(X, 150, seed=2)
    assert C.shape == (150, 5) and C.dtype == np.float32
    assert np.unique(C, axis=0).shape[0] == 150
    assert all((X == c).all(1).any() for c in C)


# ------------------------------------------------------------------ Lloyd
def test_lloyd_equals_naive_kmeans_from_same_init(rng):
    X = blobs(rng, n=4000, d=6, centres=15, spread=0.8)
    C0 = X[rng.choice(len(X), 20, replace=False)]
    ours = lloyd(X, 20, init=C0, n_iter=8, tol=0.0, dead_policy=None)
    ref = naive_kmeans(X, C0, 8)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_lloyd_memmap_equals_array(rng, tmp_path):
    X = blobs(rng, n=3000)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mm[:] = X
    mm.flush()
    C0 = X[:10]
    a = lloyd(X, 10, init=C0, n_iter=5, tol=0.0, dead_policy=None)
    b = lloyd(np.load(tmp_path / "x.npy", mmap_mode="r"), 10, init=C0, n_iter=5, tol=0.0,
              dead_policy=None)
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ------------------------------------------------------------------ dead codes
@pytest.mark.parametrize("policy", ["split", "resample"])
def test_dead_codes_are_reseeded(rng, policy):
    X = blobs(rng, n=3000, d=4, centres=8, spread=0.5)
    C0 = X[rng.choice(len(X), 16, replace=False)].copy()
    C0[:5] = 1e3  # five codes far from every vector: dead from the first pass
    vq = VectorQuantizer("lloyd", 16, init=C0, n_iter=10, dead_policy=policy,
                         random_state=0).fit(X)
    assert vq.history_["dead_reseeded"][0] == 5
    assert (encode(X, vq.codebook_) >= 0).all()
    assert np.bincount(encode(X, vq.codebook_), minlength=16).min() > 0
    # without repair the five codes stay dead and the error is worse
    off = VectorQuantizer("lloyd", 16, init=C0, n_iter=10, dead_policy=None).fit(X)
    assert np.nansum(off.history_["dead_reseeded"]) == 0
    assert np.bincount(encode(X, off.codebook_), minlength=16)[:5].sum() == 0
    assert vq.mse(X) < off.mse(X)


def test_minibatch_reseeds_dead_codes(rng):
    X = blobs(rng, n=4000, d=4, centres=10, spread=0.5)
    C0 = X[rng.choice(len(X), 20, replace=False)].copy()
    C0[:4] = -500.0
    cb = minibatch_lloyd(X, 20, batch_size=512, n_steps=60, init=C0, seed=0)
    counts = np.bincount(encode(X, cb), minlength=20)
    assert (counts > 0).all()


def test_minibatch_ema_step_matches_formula(rng):
    X = blobs(rng, n=500, d=3, centres=5)
    C0 = X[:6].astype(np.float64)
    decay = 0.7
    cb = minibatch_lloyd(X, 6, batch_size=500, n_steps=1, decay=decay, init=C0,
                         dead_policy=None)
    lab, _ = naive_nearest(X, C0)
    share = 500 / 6
    for k in range(6):
        m = lab == k
        n_k = decay * share + (1 - decay) * m.sum()
        s_k = decay * share * C0[k] + (1 - decay) * X[m].astype(np.float64).sum(0)
        np.testing.assert_allclose(cb[k], s_k / n_k, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ LBG
def test_lbg_doubles_level_by_level(rng):
    X = blobs(rng, n=5000, d=4, centres=30, spread=0.3)
    vq = VectorQuantizer("lbg", 40, random_state=0, final_passes=1, max_points_per_code=200,
                         growth=2.0).fit(X)
    h = vq.history_
    levels = h["level"].astype(int)
    sizes = {int(lv): set(h["n_codes"][levels == lv].astype(int)) for lv in np.unique(levels)}
    assert sizes == {0: {1}, 1: {2}, 2: {4}, 3: {8}, 4: {16}, 5: {32}, 6: {40}}
    assert vq.codebook_.shape == (40, 4)
    # level 0 is the global mean: its MSE is the total variance (200 x 40 >= N: no subsample)
    var = ((X.astype(np.float64) - X.mean(0)) ** 2).sum(1).mean()
    assert h["loss"][0] == pytest.approx(var, rel=1e-4)
    # each doubling lowers the error
    first = [h["loss"][levels == lv][0] for lv in range(7)]
    assert all(a > b for a, b in zip(first, first[1:]))
    assert (np.bincount(vq.encode(X), minlength=40) > 0).all()


def test_lbg_growth_splits_highest_distortion_codes(rng):
    X = blobs(rng, n=5000, d=4, centres=30, spread=0.3)
    vq = VectorQuantizer("lbg", 40, random_state=0, max_points_per_code=200, growth=1.5).fit(X)
    h = vq.history_
    levels = h["level"].astype(int)
    sizes = [int(h["n_codes"][levels == lv][0]) for lv in np.unique(levels)]
    assert sizes == [1, 2, 3, 5, 8, 12, 18, 27, 40]
    # the last level runs last_iter (10) iterations unless it converged earlier
    assert 1 <= (levels == levels.max()).sum() <= 10
    with pytest.raises(ParameterError, match="growth=2.5"):
        lbg(X, 8, growth=2.5)


def test_few_points_per_code_warns(rng):
    X = blobs(rng, n=3000, d=4)
    with pytest.warns(UserWarning, match=r"3000 rows for K=1024 codes: 2\.9 training vectors"):
        VectorQuantizer("lbg", 1024, random_state=0, n_iter=1, last_iter=1).fit(X)


def test_lbg_function_beats_random_codebook(rng):
    X = blobs(rng, n=6000, d=5, centres=40, spread=0.4)
    cb = lbg(X, 32, seed=0)
    rnd = random_codebook(X, 32, seed=0)
    ref_lab, ref_d = naive_nearest(X, cb)
    _, rnd_d = naive_nearest(X, rnd)
    assert ref_d.mean() < 0.8 * rnd_d.mean()


def test_history_and_snapshots(rng):
    X = blobs(rng, n=3000, d=4)
    vq = VectorQuantizer("lbg", 16, keep_snapshots=4, random_state=0).fit(X)
    h = vq.history_
    assert len(h) == vq.n_iter_ > 4
    assert 1 <= len(vq.snapshots_) <= 4
    steps = [s for s, _, _ in vq.snapshots_]
    assert steps == sorted(steps) and steps[0] == 0
    for step, level, cb in vq.snapshots_:
        assert cb.shape == (int(h["n_codes"][step]), 4)
        assert level == h["level"][step]
    assert np.all(np.diff(h["samples_seen"]) > 0)
    assert np.all(h["entropy"] <= h["log_k"] + 1e-9)
    np.testing.assert_allclose(h["perplexity"], np.exp(h["entropy"]))


# ------------------------------------------------------------------ residual VQ
@pytest.mark.parametrize("d,n,k", [(13, 3000, 32), (2048, 400, 8)])
def test_rvq_error_decreases_and_matches_greedy(rng, d, n, k):
    X = (rng.standard_normal((n, d)) * np.linspace(2, 0.2, d)).astype(np.float32)
    rvq = ResidualVQ(n_stages=3, n_codes=k, method="lloyd", random_state=0, n_iter=5).fit(X)
    assert all(a > b for a, b in zip(rvq.stage_mse_, rvq.stage_mse_[1:]))
    assert all(a < b for a, b in zip(rvq.stage_cosine_, rvq.stage_cosine_[1:]))
    assert rvq.bits_per_vector_ == pytest.approx(3 * np.log2(k))
    codes = rvq.encode(X)
    assert codes.shape == (n, 3) and codes.dtype == np.int32
    # greedy reference: nearest code of the residual at each stage
    R = X.astype(np.float64)
    for s, C in enumerate(rvq.codebooks_):
        lab, _ = naive_nearest(R, C)
        assert (lab == codes[:, s]).mean() > 0.995
        R = R - C[codes[:, s]]
    np.testing.assert_allclose(rvq.decode(codes), X - R, atol=1e-3)
    rep = rvq.report(X)
    assert rep[-1]["mse"] == pytest.approx(rvq.stage_mse_[-1], rel=1e-3)


# ------------------------------------------------------------------ persistence
class FakeStore:
    def __init__(self, X, settings):
        self.X = X
        self.settings = settings


def test_save_load_round_trip(rng, tmp_path):
    X = blobs(rng, n=2000, d=5)
    store = FakeStore(X, {"n_mfcc": 5, "hop_length": 0.01})
    vq = VectorQuantizer("lbg", 12, random_state=0).fit(store)
    path = tmp_path / "cb.npz"
    vq.save(path)
    back = VectorQuantizer.load(path)
    np.testing.assert_array_equal(back.codebook_, vq.codebook_)
    np.testing.assert_array_equal(back.counts_, vq.counts_)
    np.testing.assert_array_equal(back.encode(store), vq.encode(store))
    np.testing.assert_allclose(back.history_["loss"], vq.history_["loss"])
    assert back.feature_settings_ == {"n_mfcc": 5, "hop_length": 0.01}
    with pytest.raises(ParameterError, match="exists"):
        vq.save(path)
    vq.save(path, overwrite=True)
    with pytest.raises(ParameterError, match="hop_length"):
        back.encode(FakeStore(X, {"n_mfcc": 5, "hop_length": 0.02}))
    with pytest.raises(ParameterError, match="7 features per row but the codebook was trained on 5"):
        back.encode(np.zeros((4, 7), np.float32))
    rvq = ResidualVQ(2, 8, "lloyd", random_state=0).fit(X)
    rvq.save(tmp_path / "rvq.npz")
    rb = ResidualVQ.load(tmp_path / "rvq.npz")
    np.testing.assert_array_equal(rb.encode(X), rvq.encode(X))


# ------------------------------------------------------------------ bad input
def test_bad_inputs(rng):
    X = blobs(rng, n=100, d=3)
    with pytest.raises(ParameterError, match="K=101 codes requested but X has only 100 rows"):
        lbg(X, 101)
    bad = X.copy()
    bad[17, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN or Inf.*row 17"):
        lloyd(bad, 4)
    bad[17, 1] = np.inf
    with pytest.raises(ParameterError, match="row 17"):
        VectorQuantizer("lbg", 4).fit(bad)
    with pytest.raises(ParameterError, match="empty"):
        lbg(np.zeros((0, 13), np.float32), 4)
    with pytest.raises(ParameterError, match="integer.*int16"):
        lbg(X.astype(np.int16), 4)
    with pytest.raises(ParameterError, match="2-D"):
        lbg(X[:, 0], 4)
    cb = lbg(X, 4, seed=0)
    with pytest.raises(ParameterError, match="X has 5 features per row but the codebook has 3"):
        encode(np.zeros((10, 5), np.float32), cb)
    with pytest.raises(ParameterError, match="code 9 is outside"):
        decode(np.array([0, 9]), cb)
    with pytest.raises(ParameterError, match="method='kmeans'"):
        VectorQuantizer("kmeans", 4).fit(X)
    with pytest.raises(ParameterError, match="dead_policy='drop'"):
        VectorQuantizer("lloyd", 4, dead_policy="drop").fit(X)
    with pytest.raises(ParameterError, match="not fitted"):
        VectorQuantizer().encode(X)


def test_memmap_nan_found_while_streaming(rng, tmp_path):
    X = blobs(rng, n=500, d=3)
    X[321, 0] = np.nan
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(ParameterError, match="row 321"):
        lloyd(mm, 4, n_iter=2)


# ------------------------------------------------------------------ CLI
def test_cli_codebook(rng, tmp_path, capsys):
    from vqalign.cli import main

    X = blobs(rng, n=2000, d=4)
    np.save(tmp_path / "f.npy", X)
    out = tmp_path / "cb.npz"
    args = ["codebook", str(tmp_path / "f.npy"), "-K", "16", "--out", str(out), "--no-progress",
            "--compare", str(tmp_path / "cmp.png")]
    assert main(args) == 0
    assert out.is_file() and (tmp_path / "cmp.png").stat().st_size > 1000
    vq = VectorQuantizer.load(out)
    assert vq.codebook_.shape == (16, 4)
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_cli_compare_methods(rng, tmp_path, capsys):
    from vqalign.cli import main

    X = blobs(rng, n=3000, d=4)
    np.save(tmp_path / "f.npy", X)
    fig = tmp_path / "study.png"
    args = ["codebook", str(tmp_path / "f.npy"), "-K", "16", "--no-progress",
            "--compare", "random,minibatch,lbg", "--figure", str(fig)]
    assert main(args) == 0
    assert fig.stat().st_size > 5000
    out = capsys.readouterr().out
    assert "random init + Lloyd" in out and "minibatch Lloyd" in out
    assert main(args[:-4] + ["--compare", "random,kmeans"]) == 2
    assert "kmeans" in capsys.readouterr().err


def test_bounded_pass_with_jumped_codes_matches_full_search(rng):
    from vqalign.lbg.nearest import Bounds, assign, prepare

    X = blobs(rng, n=6000, d=6, centres=40, spread=0.5)
    C = X[rng.choice(len(X), 256, replace=False)].copy()
    P = prepare(C)
    b = Bounds(len(X))
    assign(X, P, bounds=b)
    for _ in range(3):
        C2 = C + 0.01 * rng.standard_normal(C.shape).astype(np.float32)
        jump = rng.choice(256, 3, replace=False)          # re-seeded codes jump far
        C2[jump] = X[rng.choice(len(X), 3)]
        P2 = prepare(C2, P.shift)
        b.moved(C, C2)
        got = assign(X, P2, bounds=b)
        assert b.searched < len(X)                        # the bounds skipped rows
        lab, d = naive_nearest(X, C2)
        assert (got.labels == lab).mean() > 0.999
        np.testing.assert_allclose(got.mind, d, rtol=1e-3, atol=1e-3)
        full = assign(X, P2, accumulate=True)
        np.testing.assert_allclose(got.sums, full.sums, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.counts, full.counts)
        C, P = C2, P2


def test_bench_codebook_json(capsys):
    import json

    pytest.importorskip("faiss")
    pytest.importorskip("sklearn")
    from vqalign.cli import main

    assert main(["bench", "codebook", "--n", "20000", "--k", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("vqalign_s", "vqalign_mse", "vqalign_util", "faiss_s", "faiss_mse",
                "sklearn_minibatch_s", "sklearn_minibatch_mse", "vqalign_peak_rss_mb"):
        assert key in out
    levels = out["vqalign_levels"]
    assert levels[0]["k"] == 1 and levels[-1]["k"] == 32
    assert sum(r["steps"] for r in levels) == out["vqalign_steps"]
    # the MSEs are measured by one function on the same data: all are plausible numbers
    assert 0 < out["vqalign_mse"] < 2 * out["faiss_mse"]
    assert out["vqalign_util"] >= 0.99


# ------------------------------------------------------------------ neighbour search (large K)
def test_code_neighbours_match_brute_force(rng):
    from vqalign.lbg import _kernels
    from vqalign.lbg.nearest import prepare

    C = (rng.standard_normal((300, 13)) * 2).astype(np.float32)
    P = prepare(C)
    M = 16
    nbr = np.empty((300, M), np.int32)
    rad = np.empty(300, np.float32)
    _kernels.code_neighbours(P.CT, P.shifted, P.cnorm, nbr, rad)
    d = np.sqrt(((C[:, None, :].astype(np.float64) - C[None].astype(np.float64)) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")
    assert (nbr[:, 0] == np.arange(300)).all()
    for k in range(300):
        assert set(nbr[k].tolist()) == set(order[k, :M].tolist())
        outside = np.setdiff1d(np.arange(300), nbr[k])
        # rad is a lower bound on the distance to every code left out, and a tight one
        assert rad[k] <= d[k, outside].min() <= rad[k] * 1.001 + 1e-4


def test_neighbour_search_pass_is_exact(rng, monkeypatch):
    import vqalign.lbg.nearest as nearest

    monkeypatch.setattr(nearest, "NBR_MIN_CODES", 64)
    monkeypatch.setattr(nearest, "NBR_SIZE", 12)
    X = blobs(rng, n=6000, d=6, centres=40, spread=0.5)
    C = X[rng.choice(len(X), 256, replace=False)].copy()
    # first pass anchored on the labels of a coarser codebook (its codes keep their index)
    coarse = nearest.assign(X, nearest.prepare(C[:128])).labels
    P = nearest.prepare(C)
    b = nearest.Bounds(len(X))
    b.anchor(coarse[:5000])
    got = nearest.assign(X, P, bounds=b)
    assert b.searched < len(X)                            # some rows skipped the full search
    lab, d = naive_nearest(X, C)
    assert (got.labels == lab).mean() > 0.999
    for _ in range(3):
        C2 = C + 0.02 * rng.standard_normal(C.shape).astype(np.float32)
        jump = rng.choice(256, 3, replace=False)          # re-seeded codes jump far
        C2[jump] = X[rng.choice(len(X), 3)]
        P2 = nearest.prepare(C2, P.shift)
        b.moved(C, C2)
        got = nearest.assign(X, P2, bounds=b)
        assert b.searched < 0.5 * len(X)
        lab, d = naive_nearest(X, C2)
        assert (got.labels == lab).mean() > 0.999
        np.testing.assert_allclose(got.mind, d, rtol=1e-3, atol=1e-3)
        full = nearest.assign(X, P2, accumulate=True)
        np.testing.assert_allclose(got.sums, full.sums, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.counts, full.counts)
        C, P = C2, P2


def test_lbg_with_neighbour_search_equals_without(rng, monkeypatch):
    import vqalign.lbg.nearest as nearest

    X = blobs(rng, n=8000, d=5, centres=60, spread=0.4)
    monkeypatch.setattr(nearest, "NBR_MIN_CODES", 10**9)
    plain = VectorQuantizer("lbg", 200, random_state=3).fit(X)
    monkeypatch.setattr(nearest, "NBR_MIN_CODES", 16)
    monkeypatch.setattr(nearest, "NBR_SIZE", 10)
    fast = VectorQuantizer("lbg", 200, random_state=3).fit(X)
    # the neighbour search only skips work whose result it can prove: same codebook
    np.testing.assert_allclose(fast.codebook_, plain.codebook_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fast.history_["loss"], plain.history_["loss"], rtol=1e-5)


# ------------------------------------------------------------------ bad input at scale
def test_zero_variance_data_is_refused(rng):
    from vqalign.lbg.lbg import warn_few_points

    X = np.full((500, 13), 0.25, np.float32)
    with pytest.raises(ParameterError, match="zero variance: all 500 rows are the same vector"):
        lbg(X, 8)
    with pytest.raises(ParameterError, match="zero variance"):
        ResidualVQ(2, 4).fit(X)
    assert lbg(X, 1).tolist() == [[0.25] * 13]
    # one constant feature is fine
    Y = blobs(rng, n=500, d=4)
    Y[:, 2] = 3.0
    assert lbg(Y, 8, seed=0).shape == (8, 4)
    # the seed's K = 16384 on fewer than 64K frames: a warning with the points per code
    with pytest.warns(UserWarning, match=r"60000 rows for K=16384 codes: 3\.7 training vectors "
                                         r"per code.*use K <= 15000"):
        warn_few_points(60000, 16384)


def test_memmap_store_larger_than_a_block_is_streamed(rng, tmp_path, monkeypatch):
    import tracemalloc

    import vqalign.lbg._data as data

    X = blobs(rng, n=400_000, d=13, centres=50)
    path = tmp_path / "big.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    monkeypatch.setattr(data, "BLOCK_BYTES", 1 << 20)      # 1 MB blocks: the file is 20 MB
    tracemalloc.start()
    try:
        vq = VectorQuantizer("lbg", 32, random_state=0, final_passes=1).fit(mm)
        from vqalign.lbg import usage
        u = usage(mm, vq.codebook_)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # per-row bounds (16 bytes/row) and a few blocks, never the 52-byte rows themselves
    assert peak < 0.5 * X.nbytes
    assert u["mse"] == pytest.approx(vq.mse(X), rel=1e-5)


def test_near_codes_walk_the_lists_without_full_search(rng, monkeypatch):
    import vqalign.lbg.nearest as nearest

    monkeypatch.setattr(nearest, "NBR_MIN_CODES", 64)
    monkeypatch.setattr(nearest, "NBR_SIZE", 12)
    monkeypatch.setattr(nearest._kernels, "SERIAL_WORK", 1)
    X = blobs(rng, n=20000, d=6, centres=40, spread=0.5)
    C = X[rng.choice(len(X), 512, replace=False)].copy()
    P = nearest.prepare(C)
    got = nearest.near_codes(X, P)
    lab, d = naive_nearest(X, C)
    dg = ((X.astype(np.float64) - C[got].astype(np.float64)) ** 2).sum(1)
    # mostly the nearest code itself; a row whose anchor lies in another blob may stay there
    ratio = dg / np.maximum(d, 1e-12)
    assert (got == lab).mean() > 0.9
    assert np.quantile(ratio, 0.9) < 1.01 and np.median(ratio) == pytest.approx(1.0)
    exact = nearest.assign(X, P)                # the exact search is still exact
    assert (exact.labels == lab).mean() > 0.999


def test_cluster_covariances_kernel_matches_brute_force():
    from vqalign.lbg import _kernels
    rng = np.random.default_rng(4)
    V = rng.standard_normal((300, 7))
    lab = rng.integers(0, 5, 300)
    lab[lab == 3] = 0                                  # cluster 3 empty
    order = np.argsort(lab, kind="stable").astype(np.int64)
    counts = np.bincount(lab, minlength=5).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    norm = np.maximum(counts, 1).astype(np.float64)
    norm[1] += 10.0                                    # a normaliser that is not the count
    cov = np.empty((5, 7, 7))
    _kernels.cluster_covariances(V, order, starts, counts, norm, cov)
    for k in range(5):
        X = V[lab == k]
        m = X.sum(0) / norm[k]
        want = X.T @ X / norm[k] - np.outer(m, m)      # E[xy] - E[x]E[y] over norm[k] rows
        np.testing.assert_allclose(cov[k], want, atol=1e-12)
    np.testing.assert_allclose(cov[0], np.cov(V[lab == 0].T, bias=True), atol=1e-12)
    assert not cov[3].any()
