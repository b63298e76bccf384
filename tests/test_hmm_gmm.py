"""DiagGMM, tied-mixture emissions and TiedMixtureHMM training.

References: scikit-learn's GaussianMixture (diag) with the same start, plain
numpy log-densities and (T, E, K) tied mixtures (tests/naive_hmm.py), and the
known segmentation of synthetic utterances.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from tests.naive_hmm import naive_diag_loglik, naive_tied_emissions
from vqalign.exceptions import ConvergenceWarning, ParameterError
from vqalign.hmm import (
    ConvergenceMonitor,
    DiagGMM,
    TiedMixture,
    TiedMixtureHMM,
    segments_from_path,
)


def _blobs(rng, n=400, centers=((0, 0, 0), (4, 4, -2), (-3, 1, 3)), scales=(1.0, 0.5, 2.0)):
    X = np.concatenate([rng.normal(c, s, size=(n, len(c))) for c, s in zip(centers, scales)])
    return X.astype(np.float32)


def test_em_matches_sklearn(rng):
    sk_mixture = pytest.importorskip("sklearn.mixture")
    X = _blobs(rng)
    C = np.array([[0.5, 0, 0], [3, 3, -1], [-2, 0, 2.0]])
    init = DiagGMM.from_codebook(C, X, var_floor=0.0)
    w0, m0, v0 = init.weights_, init.means_, init.variances_
    g = DiagGMM(3, var_floor=0.0, n_iter=6, tol=-np.inf, init_means=C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g.fit(X)
    ref = sk_mixture.GaussianMixture(3, covariance_type="diag", max_iter=6, tol=0.0, reg_covar=0.0,
                                     weights_init=w0, means_init=m0, precisions_init=1.0 / v0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X.astype(np.float64))
    np.testing.assert_allclose(g.means_, ref.means_, atol=1e-9)
    np.testing.assert_allclose(g.variances_, ref.covariances_, atol=1e-9)
    np.testing.assert_allclose(g.weights_, ref.weights_, atol=1e-12)
    ll = g.history_["log_likelihood"]
    assert len(ll) == 6 and np.all(np.diff(ll) >= 0)
    assert ll[-1] == pytest.approx(ref.lower_bound_, abs=1e-9)
    np.testing.assert_allclose(g.score_samples(X), ref.score_samples(X.astype(np.float64)),
                               atol=1e-9)
    assert np.all(np.diff(g.history_["seconds"]) >= 0)


def test_from_codebook_per_cluster_statistics(rng):
    X = _blobs(rng, n=200)
    C = np.array([[0.0, 0, 0], [4, 4, -2], [-3, 1, 3], [50, 50, 50]])  # the last gets no frames
    g = DiagGMM.from_codebook(C, X, var_floor=1e-3)
    d = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(2)
    lab = d.argmin(1)
    for k in range(3):
        xk = X[lab == k].astype(np.float64)
        assert g.weights_[k] == pytest.approx(len(xk) / len(X))
        np.testing.assert_allclose(g.variances_[k], ((xk - C[k]) ** 2).mean(0), rtol=1e-9)
    np.testing.assert_array_equal(g.means_, C)
    assert g.weights_[3] < 1e-9                                  # empty cluster
    np.testing.assert_allclose(g.variances_[3], X.astype(np.float64).var(0), rtol=1e-6)


@pytest.mark.parametrize("K,D", [(4, 3), (80, 40)])           # fused numba / BLAS blocks
def test_likelihoods_and_top_n_against_numpy(rng, K, D):
    X = rng.normal(size=(300, D)).astype(np.float32)
    g = DiagGMM.from_codebook(rng.normal(size=(K, D)), X, block_size=64)
    ref = naive_diag_loglik(X, g.means_, g.variances_)
    np.testing.assert_allclose(g.log_component_likelihoods(X), ref, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(g.score_samples(X), logsumexp(ref + np.log(g.weights_), axis=1),
                               rtol=1e-10)
    n = 3
    idx, val = g.top_n_components(X, n)
    assert idx.dtype == np.int32 and val.dtype == np.float32 and idx.shape == (300, n)
    order = np.argsort(-ref, axis=1, kind="stable")[:, :n]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(val, np.take_along_axis(ref, order, 1), rtol=1e-6)


def test_fit_streams_over_a_store_memmap(rng, tmp_path):
    X = _blobs(rng, n=300)
    mm = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()

    class Store:                      # any object with an .X memmap, like io.store
        pass

    store = Store()
    store.X = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="r", shape=X.shape)
    kw = dict(n_iter=4, tol=0.0, random_state=3, block_size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = DiagGMM(3, **kw).fit(X)
        b = DiagGMM(3, **kw).fit(store)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    np.testing.assert_allclose(a.variances_, b.variances_, rtol=1e-12)


def test_variance_floor(rng):
    X = rng.normal(0, 2.0, size=(500, 2)).astype(np.float32)
    X[:100] = [40.0, 40.0]                        # a cluster of identical frames
    g = DiagGMM.from_codebook(np.array([[40.0, 40.0], [0.0, 0.0]]), X, var_floor=0.01)
    floor = 0.01 * X.astype(np.float64).var(0)
    np.testing.assert_allclose(g.variances_[0], floor)
    assert np.all(g.variances_ >= floor * (1 - 1e-9))


def test_top_n_em_runs_and_records_history(rng):
    X = _blobs(rng, n=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g = DiagGMM(6, top_n=2, n_iter=5, random_state=0).fit(X)
    h = g.history_
    assert len(h) == g.n_iter_ and np.isfinite(h["log_likelihood"]).all()
    np.testing.assert_allclose(h["loss"], -h["log_likelihood"])
    assert (h["n_codes"] == 6).all() and (h["utilization"] <= 1).all()


def test_gmm_bad_inputs(rng):
    X = rng.normal(size=(50, 3)).astype(np.float32)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN or Inf values .first at row 7"):
        DiagGMM(2).fit(bad)
    with pytest.raises(ParameterError, match="50 frames but n_components=60"):
        DiagGMM(60).fit(X)
    with pytest.raises(ParameterError, match="top_n=5 exceeds n_components=2"):
        DiagGMM(2, top_n=5).fit(X)
    with pytest.raises(ParameterError, match="var_floor"):
        DiagGMM(2, var_floor=-1).fit(X)
    g = DiagGMM.from_codebook(X[:2], X)
    with pytest.raises(ParameterError, match="4 features per frame but the GMM was trained on 3"):
        g.score_samples(np.zeros((5, 4), np.float32))
    with pytest.raises(ParameterError, match="not fitted"):
        DiagGMM(2).score_samples(X)


# ---------------------------------------------------------------- tied mixtures

def _tied(rng, K=12, D=4, E=5, T=150):
    X = rng.normal(size=(T, D)).astype(np.float32)
    g = DiagGMM.from_codebook(rng.normal(size=(K, D)), X)
    w = rng.dirichlet(np.full(K, 0.5), size=E)
    return X, g, w


def test_tied_emissions_against_full_tensor(rng):
    X, g, w = _tied(rng)
    tm = TiedMixture(g, np.log(w))
    ref = naive_tied_emissions(X, g.means_, g.variances_, w)
    np.testing.assert_allclose(tm.emissions(X), ref, rtol=1e-10)
    # top-n with n = K through the selection kernel gives the same numbers
    sel = tm.select(X, n=g.n_components)
    np.testing.assert_allclose(tm.emissions(selected=sel), ref, rtol=1e-6)
    np.testing.assert_allclose(tm.emissions(sel), ref, rtol=1e-6)
    # with n < K: the sum runs over each frame's n best Gaussians only
    idx, val = tm.select(X, n=3)
    full = naive_diag_loglik(X, g.means_, g.variances_)
    mask = np.full(full.shape, -np.inf)
    np.put_along_axis(mask, idx.astype(np.int64), 0.0, axis=1)
    ref3 = logsumexp(np.log(w)[None] + (full + mask)[:, None, :], axis=2)
    np.testing.assert_allclose(tm.emissions(selected=(idx, val)), ref3, rtol=1e-6)
    # only some columns
    out = tm.emissions(X, columns=[1, 3])
    np.testing.assert_allclose(out[:, [1, 3]], ref[:, [1, 3]], rtol=1e-10)
    assert np.isneginf(out[:, [0, 2, 4]]).all()


def test_tied_accumulate_against_full_tensor(rng):
    X, g, w = _tied(rng)
    tm = TiedMixture(g, np.log(w))
    post = rng.dirichlet(np.ones(w.shape[0]), size=X.shape[0])
    post[post < 0.05] = 0.0
    dens = np.exp(naive_diag_loglik(X, g.means_, g.variances_))        # (T, K)
    joint = w[None, :, :] * dens[:, None, :]                           # (T, E, K)
    resp = joint / joint.sum(2, keepdims=True)
    ref = np.einsum("te,tek->ek", post, resp)
    occ = np.einsum("te,tek->tk", post, resp)
    X64 = X.astype(np.float64)
    nk_ref, fk_ref, sk_ref = occ.sum(0), occ.T @ X64, occ.T @ X64 ** 2
    for selected in (None, tm.select(X, n=g.n_components)):
        stats = (np.zeros(12), np.zeros((12, 4)), np.zeros((12, 4)))
        counts = tm.accumulate(post, X, selected=selected, gauss_stats=stats)
        np.testing.assert_allclose(counts, ref, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(stats[0], nk_ref, rtol=1e-5)
        np.testing.assert_allclose(stats[1], fk_ref, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(stats[2], sk_ref, rtol=1e-5)
    np.testing.assert_allclose(counts.sum(), post.sum(), rtol=1e-9)


def test_update_weights_and_bad_weights(rng):
    X, g, w = _tied(rng)
    tm = TiedMixture(g, np.log(w))
    counts = rng.random((5, 12))
    counts[0, :6] = 0.0
    counts[4] = 0.0                                    # no data: row kept as is
    tm.update_weights(counts, floor=1e-3)
    wn = tm.weights
    np.testing.assert_allclose(wn.sum(1), 1.0)
    assert wn[0, :6].min() == pytest.approx(1e-3 / (1 + 6e-3))
    np.testing.assert_allclose(wn[1], counts[1] / counts[1].sum(), rtol=1e-12)
    np.testing.assert_allclose(wn[4], w[4], rtol=1e-12)
    bad = w.copy()
    bad[2] *= 0.9
    with pytest.raises(ParameterError, match="weights of emission column 2 sum to 0.9"):
        TiedMixture(g, np.log(bad))
    with pytest.raises(ParameterError, match=r"log_weights must be \(n_emit, 12\)"):
        TiedMixture(g, np.log(w[:, :5]))
    with pytest.raises(ParameterError, match="floor"):
        tm.update_weights(counts, floor=0.5)


# ------------------------------------------------------------------- training

def _corpus(rng, n_utt=14, alphabet="abcde", D=4, sd=1.0):
    mu = {s: rng.normal(0, 3, size=D) for s in alphabet}
    data = []
    for _ in range(n_utt):
        syms = list(rng.choice(list(alphabet), size=rng.integers(4, 9)))
        durs = rng.integers(6, 22, size=len(syms))
        X = np.concatenate([rng.normal(mu[s], sd, size=(d, D)) for s, d in zip(syms, durs)])
        data.append((X.astype(np.float32), syms, durs))
    return data


def _boundary_error(model, X, syms, durs):
    path = model.decode(X, syms)
    segs = segments_from_path(path, model.topology(syms, X.shape[0]))
    starts = np.array([s for u, s, _ in segs if u >= 0][1:])
    return np.abs(starts - np.cumsum(durs)[:-1]).mean()


@pytest.mark.parametrize("update", ["w", "wt", "wmv"])
def test_baum_welch_never_decreases_and_recovers_boundaries(rng, update):
    data = _corpus(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)   # a drop would fail the test
        model = TiedMixtureHMM(16, top_n=4, n_iter=6, tol=0.0, update=update,
                               random_state=0).fit([(X, s) for X, s, _ in data])
    ll = model.history_["log_likelihood"]
    assert len(ll) == 6 and np.all(np.diff(ll) >= 0) and ll[-1] > ll[0] + 0.5
    err = np.mean([_boundary_error(model, X, s, d) for X, s, d in data[:6]])
    assert err < 3.0
    if "t" in update:
        mean_d = np.mean(np.concatenate([d for _, _, d in data]))
        assert np.nanmean(model.self_loop_) == pytest.approx(1 - 1 / mean_d, abs=0.02)


def test_training_with_optional_silence_and_codebook(rng):
    data = _corpus(rng, n_utt=8)
    sil = np.zeros(4, np.float32)
    padded = []
    for X, s, _ in data:
        pad = rng.normal(sil, 0.3, size=(8, 4)).astype(np.float32)
        padded.append((np.concatenate([pad, X, pad]), s))
    codebook = np.concatenate([X for X, _ in padded])[::37][:16]
    model = TiedMixtureHMM(gmm=codebook, optional_silence="sil", states_per_symbol=2, top_n=4,
                           n_iter=4, tol=0.0).fit(padded)
    assert ("sil", 0) in model.emit_index_ and model.gmm_.n_components == 16
    X, syms = padded[0]
    segs = segments_from_path(model.decode(X, syms), model.topology(syms, X.shape[0]))
    assert segs[0][0] == -1 and segs[-1][0] == -1                    # silences found
    assert abs(segs[0][2] - 8) <= 3 and abs(segs[-1][1] - (X.shape[0] - 8)) <= 3


def test_training_bad_inputs(rng):
    data = _corpus(rng, n_utt=3)
    pairs = [(X, s) for X, s, _ in data]
    with pytest.raises(ParameterError, match="HMM states but the audio has only 3 frames"):
        TiedMixtureHMM(4, top_n=2, n_iter=1).fit(pairs + [(pairs[0][0][:3], list("abcde"))])
    with pytest.raises(ParameterError, match="update='wx'"):
        TiedMixtureHMM(4, update="wx").fit(pairs)
    model = TiedMixtureHMM(4, top_n=2, n_iter=1).fit(pairs)
    with pytest.raises(ParameterError, match="symbol 'z' .* was not seen in training"):
        model.decode(pairs[0][0], ["a", "z"])
    with pytest.raises(ParameterError, match="not fitted"):
        TiedMixtureHMM(4).decode(pairs[0][0], ["a"])


def test_monitor_warns_on_decrease_and_stops_at_tol():
    mon = ConvergenceMonitor(tol=0.01, n_iter=10, name="test")
    mon.report(-1000.0, 100)
    mon.report(-900.0, 100)
    assert not mon.converged
    with pytest.warns(ConvergenceWarning, match="went down from -9 to -9.5"):
        mon.report(-950.0, 100)
    assert mon.reached_tol and mon.converged
    h = mon.history
    np.testing.assert_allclose(h["log_likelihood"], [-10, -9, -9.5])
    np.testing.assert_allclose(h["loss"], [10, 9, 9.5])
    assert list(h["step"]) == [0, 1, 2]


def test_shortlist_e_step_against_full_top_n(rng):
    """Gaussian selection from the means' neighbour lists: all K listed = the plain top-n E-step;
    a short list sums a subset of the mixture, so its log-likelihood is a lower bound."""
    X = np.concatenate([_blobs(rng, n=300), _blobs(rng, n=300) + 6]).astype(np.float32)
    C = X[rng.choice(len(X), 24, replace=False)]
    plain = DiagGMM.from_codebook(C, X, top_n=3)
    every = DiagGMM.from_codebook(C, X, top_n=3, shortlist=24)
    t0, nk0, fk0, sk0 = plain._e_step(X)
    t1, nk1, fk1, sk1 = every._e_step(X)
    assert t1 == pytest.approx(t0, rel=1e-5)
    np.testing.assert_allclose(nk1, nk0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fk1, fk0, rtol=1e-4, atol=1e-4)
    short = DiagGMM.from_codebook(C, X, top_n=3, shortlist=6)
    t2, nk2, _, _ = short._e_step(X)
    full = float(plain.score_samples(X).sum())
    assert t2 <= full + 1e-6 * abs(full) and t0 <= full + 1e-6 * abs(full)
    assert t2 > full - 0.05 * abs(full)
    assert nk2.sum() == pytest.approx(len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g = DiagGMM(24, init_means=C, top_n=3, shortlist=8, n_iter=3).fit(X)
    assert np.all(np.diff(g.history_["log_likelihood"]) > -1e-3)
    with pytest.raises(ParameterError, match="shortlist=2 needs top_n <= shortlist"):
        DiagGMM(24, top_n=3, shortlist=2).fit(X)
    with pytest.raises(ParameterError, match="shortlist=4 needs top_n"):
        DiagGMM(24, shortlist=4).fit(X)
