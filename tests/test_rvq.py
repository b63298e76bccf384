"""Residual VQ: beam search against exhaustive search, joint refinement, dead codes, bench."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vqalign.exceptions import ParameterError
from vqalign.lbg import ResidualVQ


def lowrank(rng, n, d, rank=3, noise=0.2):
    B = rng.standard_normal((rank, d)) * 2
    return (rng.standard_normal((n, rank)) @ B + noise * rng.standard_normal((n, d))
            ).astype(np.float32)


def exhaustive_codes(X, books):
    """Best code tuple per row over all prod(K_s) combinations (plain numpy)."""
    combos = list(itertools.product(*[range(C.shape[0]) for C in books]))
    recon = np.stack([sum(C[c].astype(np.float64) for C, c in zip(books, combo))
                      for combo in combos])
    err = ((X[:, None, :].astype(np.float64) - recon[None]) ** 2).sum(-1)
    return np.array(combos)[err.argmin(1)], err.min(1)


def test_beam_wide_enough_is_exhaustive(rng):
    X = lowrank(rng, 600, 6)
    rvq = ResidualVQ(3, 4, method="lloyd", random_state=0, n_iter=5, refine_passes=0).fit(X)
    ref, ref_err = exhaustive_codes(X, rvq.codebooks_)
    codes = rvq.encode(X, beam_size=16)  # 4 x 4 partial codes kept: stage 3 sees all 64
    err = ((X - rvq.decode(codes)).astype(np.float64) ** 2).sum(1)
    np.testing.assert_allclose(err, ref_err, rtol=1e-4, atol=1e-4)
    # a narrow beam is never better than exhaustive search and never worse than greedy
    greedy = ((X - rvq.decode(rvq.encode(X, beam_size=1))).astype(np.float64) ** 2).sum(1)
    beam2 = ((X - rvq.decode(rvq.encode(X, beam_size=2))).astype(np.float64) ** 2).sum(1)
    assert (beam2 >= ref_err - 1e-4).all()
    assert beam2.mean() <= greedy.mean() + 1e-6
    assert greedy.mean() > ref_err.mean()  # greedy is suboptimal on this data


def test_joint_refinement_lowers_training_error(rng):
    X = lowrank(rng, 3000, 8, rank=4)
    g = ResidualVQ(3, 8, method="lloyd", random_state=0, n_iter=10, refine_passes=0).fit(X)
    r = ResidualVQ(3, 8, method="lloyd", random_state=0, n_iter=10, refine_passes=4).fit(X)
    # same greedy stages (same seeds), then block coordinate descent: never worse
    assert len(r.refine_mse_) == 4
    assert all(b <= a * (1 + 1e-6) for a, b in zip(r.refine_mse_, r.refine_mse_[1:]))
    assert r.stage_mse_[-1] < g.stage_mse_[-1]
    # statistics are those of encode() with the final codebooks
    err = X - r.decode(r.encode(X))
    assert r.stage_mse_[-1] == pytest.approx(float((err.astype(np.float64) ** 2).sum(1).mean()),
                                             rel=1e-4)


def test_refit_stage_is_the_mean_of_the_targets(rng):
    from vqalign.lbg.rvq import _decode_all, _refit_stage

    X = lowrank(rng, 500, 5)
    books = [rng.standard_normal((4, 5)).astype(np.float32) for _ in range(2)]
    codes = rng.integers(0, 4, size=(500, 2)).astype(np.int32)
    codes[:, 1] = np.minimum(codes[:, 1], 2)   # code 3 of stage 1 unused
    recon = _decode_all(codes, books, 5)
    n_dead = _refit_stage(X, recon, books, codes, 1)
    target = X.astype(np.float64) - books[0][codes[:, 0]]
    for k in range(3):
        np.testing.assert_allclose(books[1][k], target[codes[:, 1] == k].mean(0), rtol=1e-4,
                                   atol=1e-4)
    assert n_dead == 1
    # the unused code moved onto the row the stage served worst
    res = target - books[1][codes[:, 1]]
    worst = np.argmax((res ** 2).sum(1))
    np.testing.assert_allclose(books[1][3], target[worst], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(recon, _decode_all(codes, books, 5), rtol=1e-5, atol=1e-5)


def test_principal_subspace_matches_numpy_svd(rng):
    from vqalign.lbg.rvq import principal_subspace

    X = lowrank(rng, 3000, 40, rank=5, noise=0.05)
    mu, Q = principal_subspace(X, 5, np.random.default_rng(0), n_rows=1000)
    np.testing.assert_allclose(mu, X.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(Q.T @ Q, np.eye(5), atol=1e-4)
    _, _, Vt = np.linalg.svd(X.astype(np.float64) - X.mean(0), full_matrices=False)
    # cosines of the principal angles between the two subspaces are all ~1
    cos = np.linalg.svd(Vt[:5] @ Q, compute_uv=False)
    assert cos.min() > 0.999


def test_refit_in_a_subspace_is_the_projected_mean(rng):
    from vqalign.lbg.rvq import _decode_all, _refit_stage, principal_subspace

    X = lowrank(rng, 800, 12, rank=3)
    gen = np.random.default_rng(1)
    mu, Q = principal_subspace(X, 4, gen)
    books = [rng.standard_normal((5, 12)).astype(np.float32),
             (mu + rng.standard_normal((6, 4)) @ Q.T).astype(np.float32)]
    codes = np.stack([rng.integers(0, 5, 800), rng.integers(0, 6, 800)], 1).astype(np.int32)
    recon = _decode_all(codes, books, 12)
    before = float(((X - recon).astype(np.float64) ** 2).sum())
    _refit_stage(X, recon, books, codes, 1, basis=(mu, Q))
    target = X.astype(np.float64) - books[0][codes[:, 0]]
    P = Q.astype(np.float64) @ Q.T.astype(np.float64)
    for k in range(6):
        m = target[codes[:, 1] == k].mean(0)
        np.testing.assert_allclose(books[1][k], mu + (m - mu) @ P, rtol=1e-4, atol=1e-4)
    after = float(((X - _decode_all(codes, books, 12)).astype(np.float64) ** 2).sum())
    assert after <= before * (1 + 1e-6)
    np.testing.assert_allclose(recon, _decode_all(codes, books, 12), rtol=1e-5, atol=1e-5)


def test_stage_subspace_codes_and_exact_encoding(rng):
    X = lowrank(rng, 2500, 48, rank=6, noise=0.3)
    rvq = ResidualVQ(3, 8, method="lloyd", n_iter=8, stage_dim=5, refine_passes=3,
                     random_state=0).fit(X)
    assert rvq.stage_dims_ == [5, 5, 5]
    for C in rvq.codebooks_:
        # each stage's codes lie in a 5-dimensional affine subspace
        sv = np.linalg.svd(C.astype(np.float64) - C.mean(0), compute_uv=False)
        assert sv[5] < 1e-4 * sv[0]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(rvq.refine_mse_, rvq.refine_mse_[1:]))
    # greedy encode() is the plain nearest code of each stage's residual, in the full space
    codes = rvq.encode(X)
    R = X.astype(np.float64)
    for s, C in enumerate(rvq.codebooks_):
        d = ((R[:, None, :] - C[None].astype(np.float64)) ** 2).sum(-1)
        assert (d.argmin(1) == codes[:, s]).mean() > 0.995
        R = R - C[codes[:, s]]
    # the full-space fit (stage_dim=None) keeps the old behaviour; a subspace as wide as X too
    full = ResidualVQ(2, 8, method="lloyd", n_iter=5, stage_dim=None, random_state=0).fit(X)
    wide = ResidualVQ(2, 8, method="lloyd", n_iter=5, stage_dim=48, random_state=0).fit(X)
    assert full.stage_dims_ == [48, 48] and wide.stage_dims_ == [48, 48]
    np.testing.assert_array_equal(full.encode(X), wide.encode(X))


def test_stage_subspace_generalizes_on_low_rank_noise(rng):
    # wide noisy vectors, few rows per code: the full-space codes fit the sample's noise
    B = rng.standard_normal((4, 256)) * 2
    X = (rng.standard_normal((3000, 4)) @ B + rng.standard_normal((3000, 256))).astype(np.float32)
    tr, te = X[:2000], X[2000:]
    err = {}
    for dim in ("auto", None):
        rvq = ResidualVQ(2, 32, stage_dim=dim, random_state=0).fit(tr)
        err[dim] = float(((te - rvq.decode(rvq.encode(te))).astype(np.float64) ** 2).mean())
    assert err["auto"] < 0.995 * err[None]


def test_wide_vectors_split_without_dead_codes(rng):
    # D = 256 takes the power-iteration split axis; every split must produce two live codes
    X = lowrank(rng, 4000, 256, rank=8, noise=0.5)
    rvq = ResidualVQ(2, 16, random_state=0, refine_passes=1).fit(X)
    assert rvq.stage_dead_[0] <= 2
    assert len(rvq.stage_dead_) == 2
    assert (np.bincount(rvq.encode(X)[:, 0], minlength=16) > 0).all()


def test_wide_axes_find_the_principal_axis(rng):
    from vqalign.lbg.lbg import _wide_axes
    from vqalign.lbg.nearest import assign, prepare

    D = 300
    axes = np.linalg.qr(rng.standard_normal((D, 2)))[0].T
    centres = rng.standard_normal((2, D)) * 10
    lab = rng.integers(0, 2, 3000)
    X = (centres[lab] + 3.0 * rng.standard_normal((3000, 1)) * axes[lab]
         + 0.3 * rng.standard_normal((3000, D))).astype(np.float32)
    codes = centres.astype(np.float64)
    shift = X.mean(0)
    a = assign(X, prepare(codes, shift), accumulate=True)
    v, sd = _wide_axes(X, a, codes, shift, np.random.default_rng(0), np.arange(2))
    for k in range(2):
        assert abs(v[k] @ axes[k]) > 0.99
        assert sd[k] == pytest.approx(np.sqrt(9.0 + 0.09), rel=0.1)
    # only the codes that split are computed; the others get no offset
    v1, sd1 = _wide_axes(X, a, codes, shift, np.random.default_rng(0), np.array([1]))
    assert abs(v1[1] @ axes[1]) > 0.99 and sd1[0] == 0 and not v1[0].any()


def test_bad_parameters(rng):
    X = lowrank(rng, 200, 4)
    with pytest.raises(ParameterError, match="beam_size"):
        ResidualVQ(2, 4, beam_size=0).fit(X)
    with pytest.raises(ParameterError, match="refine_passes"):
        ResidualVQ(2, 4, refine_passes=-1).fit(X)
    with pytest.raises(ParameterError, match="stage_dim"):
        ResidualVQ(2, 4, stage_dim="half").fit(X)
    with pytest.raises(ParameterError, match="stage_dim"):
        ResidualVQ(2, 4, stage_dim=0).fit(X)
    rvq = ResidualVQ(2, 4, method="lloyd", random_state=0).fit(X)
    with pytest.raises(ParameterError, match="features"):
        rvq.encode(X[:, :3])


def test_save_load_keeps_beam_and_dead_counts(rng, tmp_path):
    X = lowrank(rng, 800, 6)
    rvq = ResidualVQ(2, 8, method="lloyd", beam_size=3, refine_passes=1, random_state=0).fit(X)
    rvq.save(tmp_path / "r.npz")
    back = ResidualVQ.load(tmp_path / "r.npz")
    assert back.beam_size == 3 and back.stage_dead_ == rvq.stage_dead_
    np.testing.assert_array_equal(back.encode(X), rvq.encode(X))
    # a stage subspace survives the round trip
    Y = lowrank(rng, 800, 20)
    sub = ResidualVQ(2, 4, method="lloyd", stage_dim=3, random_state=0).fit(Y)
    sub.save(tmp_path / "s.npz")
    back = ResidualVQ.load(tmp_path / "s.npz")
    assert back.stage_dim == 3 and back.stage_dims_ == [3, 3]
    np.testing.assert_array_equal(back.encode(Y), sub.encode(Y))


def test_bench_rvq_json(capsys):
    import json

    pytest.importorskip("faiss")
    from vqalign.cli import main

    assert main(["bench", "rvq", "--d", "64", "--n-stages", "2", "--n-codes", "16",
                 "--n-train", "3000", "--n-test", "500", "--rank", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("vqalign_fit_s", "vqalign_encode_s", "vqalign_rel_mse", "vqalign_cos",
                "faiss_fit_s", "faiss_encode_s", "faiss_rel_mse", "faiss_cos"):
        assert key in out
    assert 0 < out["vqalign_rel_mse"] < 1 and 0 < out["faiss_rel_mse"] < 1
    # same data, same bits: the two libraries land close to each other
    assert out["vqalign_rel_mse"] < 1.2 * out["faiss_rel_mse"]
    assert 0 < out["vqalign_cos"] <= 1
