"""The chain engine of vqalign.hmm against references: exact vs beam, checkpointed vs
stored bands, chunked vs one-chunk E-steps, tied-mixture statistics vs a plain numpy
computation, the log-space fallback vs the scaled recursion, and hypothesis properties
of posteriors, Viterbi paths and log-likelihoods."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vqalign.hmm import DiagGMM, TiedMixtureHMM, forward_backward, linear_chain, viterbi
from vqalign.hmm import _kernels as K


def _toy(rng, n_utt=5, D=3, alphabet="abcd"):
    mu = {s: rng.normal(0, 3, size=D) for s in alphabet}
    data = []
    for _ in range(n_utt):
        words = [list(rng.choice(list(alphabet), size=rng.integers(1, 3)))
                 for _ in range(rng.integers(2, 4))]
        frames = []
        for w in words:
            frames.append(rng.normal(0, 0.3, size=(int(rng.integers(2, 6)), D)))
            for s in w:
                frames.append(rng.normal(mu[s], 1.0, size=(int(rng.integers(4, 10)), D)))
        frames.append(rng.normal(0, 0.3, size=(3, D)))
        data.append((np.concatenate(frames).astype(np.float32), words))
    return data


def _model(rng, data, K_=12, top_n=4, update="wtmv", **kw):
    X = np.concatenate([x for x, _ in data])
    cb = X[rng.choice(X.shape[0], K_, replace=False)]
    gmm = DiagGMM.from_codebook(cb, X, var_floor=1e-2, top_n=top_n)
    m = TiedMixtureHMM(gmm=gmm, states_per_symbol=2, optional_silence="sil", top_n=top_n,
                       n_iter=2, tol=0.0, update=update, beam=0.0, min_post=0.0, **kw)
    m.fit(data)
    return m


def _stack(data):
    X = np.ascontiguousarray(np.concatenate([x for x, _ in data]), dtype=np.float32)
    off = np.zeros(len(data) + 1, np.int64)
    off[1:] = np.cumsum([x.shape[0] for x, _ in data])
    return X, off


def test_chunked_estep_equals_one_chunk(rng):
    data = _toy(rng, n_utt=7)
    m = _model(rng, data)
    X, off = _stack(data)
    b = m.batch([w for _, w in data])
    sel = m.select(X)
    m.n_chunks = 1
    one = m.estep(X, off, b, sel, gaussian_stats=True)
    m.n_chunks = 5
    many = m.estep(X, off, b, sel, gaussian_stats=True)
    assert one.loglik == pytest.approx(many.loglik, rel=1e-12)
    for a, c in ((one.counts, many.counts), (one.trans, many.trans), (one.occ, many.occ),
                 (one.sx, many.sx), (one.sxx, many.sxx), (one.silence, many.silence)):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)
    # statistics of separate calls add up to those of one call
    parts = [m.estep(X[off[u]:off[u + 1]], np.array([0, off[u + 1] - off[u]]),
                     m.batch([data[u][1]]), sel.rows(off[u], off[u + 1]), gaussian_stats=True)
             for u in range(len(data))]
    total = sum(parts[1:], parts[0])
    np.testing.assert_allclose(total.counts, one.counts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(total.sxx, one.sxx, rtol=1e-10, atol=1e-12)
    assert total.loglik == pytest.approx(one.loglik, rel=1e-12)


def test_tied_statistics_equal_naive_numpy(rng):
    data = _toy(rng, n_utt=3)
    m = _model(rng, data)
    X, off = _stack(data)
    b = m.batch([w for _, w in data])
    sel = m.select(X)
    got = m.estep(X, off, b, sel, gaussian_stats=True)
    E, Kc = m.weights_.shape
    counts = np.zeros((E, Kc))
    occ = np.zeros(Kc)
    sx = np.zeros((Kc, X.shape[1]))
    sxx = np.zeros((Kc, X.shape[1]))
    ll_total = 0.0
    for u, (x, words) in enumerate(data):
        topo = m.topology(words)
        s = sel.rows(off[u], off[u + 1])
        # per-frame likelihood of every top-n Gaussian and column, in plain numpy
        lg = np.log(s.eg) + s.gmax[:, None]                       # (T, n)
        le = np.full((x.shape[0], E), -np.inf)
        cols = np.unique(topo.emit_ids)
        for c in cols:
            le[:, c] = np.log((m.weights_[c][s.idx] * np.exp(lg)).sum(1))
        post, ll = forward_backward(le, topo, posteriors="emit")
        ll_total += ll
        for c in cols:
            r = m.weights_[c][s.idx] * np.exp(lg)
            r = r / r.sum(1, keepdims=True) * post[:, c:c + 1]
            np.add.at(counts[c], s.idx.ravel(), r.ravel())
            np.add.at(occ, s.idx.ravel(), r.ravel())
            for d in range(X.shape[1]):
                np.add.at(sx[:, d], s.idx.ravel(), (r * x[:, d:d + 1]).ravel())
                np.add.at(sxx[:, d], s.idx.ravel(), (r * x[:, d:d + 1] ** 2).ravel())
    np.testing.assert_allclose(got.counts, counts, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.occ, occ, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.sx, sx, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sxx, sxx, rtol=1e-5, atol=1e-7)
    assert got.loglik == pytest.approx(ll_total, rel=1e-9)


def test_log_fallback_equals_scaled_estep(rng):
    data = _toy(rng, n_utt=2)
    m = _model(rng, data, update="wt")
    X, off = _stack(data)
    b = m.batch([w for _, w in data])
    sel = m.select(X)
    ref = m.estep(X, off, b, sel)
    trans, start, end = m.transitions(b)
    E, Kc = m.weights_.shape
    counts = np.zeros((E, Kc))
    lls = []
    for u in range(len(data)):
        st_, ll = m._estep_log(X, off, b, u, trans, start, end, sel, counts,
                               np.zeros((b.n_states, 3)), np.zeros(1), np.zeros((1, 1)),
                               np.zeros((1, 1)), False)
        assert st_ == K.OK
        lls.append(ll)
    np.testing.assert_allclose(counts, ref.counts, rtol=1e-8, atol=1e-10)
    # the log twin with checkpoints (forced by a budget of one cell) gives the same counts
    with np.errstate(divide="ignore"):
        lt, ls, le = np.log(trans), np.log(start), np.log(end)
    ck = np.zeros((E, Kc))
    tc = np.zeros((b.n_states, 3))
    for u in range(len(data)):
        ll, st_ = K.estep_one_log(True, np.zeros((1, 1)), sel.idx, sel.eg, m.weights_, off,
                                  b.state_off, b.emit_ids, lt, ls, le, 0.0, 0.0, u, ck, tc, X,
                                  np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1)), False, 1, 0.0)
        assert st_ == K.OK and ll == pytest.approx(lls[u], rel=1e-12)
    np.testing.assert_allclose(ck, counts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.add.reduceat(tc.sum(1), b.state_off[:-1]),
                               np.diff(off) - 1, rtol=1e-9)          # T - 1 transitions each
    gsum = np.add.reduceat(sel.gmax, off[:-1])
    assert sum(lls) + gsum.sum() == pytest.approx(ref.loglik, rel=1e-10)


def test_underflow_in_scaled_space_falls_back_to_log(rng):
    """Transitions so unlikely that scaled alpha underflows: the E-step retries in log
    space instead of dropping the utterance."""
    data = _toy(rng, n_utt=2)
    m = _model(rng, data, update="w")
    X, off = _stack(data)
    b = m.batch([w for _, w in data])
    sel = m.select(X)
    m.self_loop_[:] = 1.0 - 1e-300       # leaving a state: probability ~1e-300
    stats = m.estep(X, off, b, sel)
    assert stats.n_utterances == 2 and not stats.failures
    assert np.isfinite(stats.loglik)


def test_beam_infinity_and_checkpoints_equal_exact(rng):
    T, S, E = 300, 40, 12
    topo = linear_chain([f"p{i % E}" for i in range(S)], n_frames=T)
    log_emit = rng.normal(0, 3, size=(T, E))
    exact, ll = forward_backward(log_emit, topo)
    tiny, ll_t = forward_backward(log_emit, topo, beam=1e-300)     # prunes nothing real
    np.testing.assert_allclose(tiny, exact, atol=1e-12)
    assert ll_t == pytest.approx(ll, rel=1e-12)
    for ck in (1, 7, 64, 299, 1000):
        post, ll_c = forward_backward(log_emit, topo, checkpoint=ck)
        np.testing.assert_array_equal(post, exact)                  # recomputed identically
        assert ll_c == ll
    # pruning only removes paths: the likelihood can only fall
    _, ll_p = forward_backward(log_emit, topo, beam=1e-6)
    assert ll_p <= ll + 1e-9
    path, best = viterbi(log_emit, topo)
    path_b, best_b = viterbi(log_emit, topo, beam=-1e4)                # wider than any gap
    np.testing.assert_array_equal(path_b, path)
    assert best_b == pytest.approx(best)
    # emissions like an alignment's (each state's column clearly best around its frames):
    # a narrow beam keeps the posteriors and the path
    centre = (np.arange(S) + 0.5) * T / S
    cols = topo.emit_ids
    le = np.full((T, E), -30.0)
    for s_ in range(S):
        near = np.abs(np.arange(T) - centre[s_]) < T / S
        le[near, cols[s_]] = np.maximum(le[near, cols[s_]], -1.0)
    le += rng.normal(0, 0.5, size=le.shape)
    exact, ll = forward_backward(le, topo)
    pruned, ll_p = forward_backward(le, topo, beam=1e-8)
    assert ll_p == pytest.approx(ll, abs=1e-6) and ll_p <= ll + 1e-9
    assert np.abs(pruned - exact).max() < 1e-6
    path, best = viterbi(le, topo)
    path_b, best_b = viterbi(le, topo, beam=-30.0)
    np.testing.assert_array_equal(path_b, path)


def test_parallel_estep_above_threshold_equals_serial(rng):
    """Many chunks run in prange; the same statistics come out of a serial loop."""
    data = _toy(rng, n_utt=16)
    m = _model(rng, data, update="wt")
    X, off = _stack(data)
    b = m.batch([w for _, w in data])
    sel = m.select(X)
    m.n_chunks = 16
    par = m.estep(X, off, b, sel)
    ser = None
    for u in range(len(data)):
        one = m.estep(X[off[u]:off[u + 1]], np.array([0, off[u + 1] - off[u]]),
                      m.batch([data[u][1]]), sel.rows(off[u], off[u + 1]))
        ser = one if ser is None else ser + one
    np.testing.assert_allclose(par.counts, ser.counts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(par.trans, ser.trans, rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n_sym=st.integers(1, 6), extra=st.integers(0, 30), seed=st.integers(0, 10_000),
       sil=st.booleans())
def test_properties_posteriors_paths_loglik(n_sym, extra, seed, sil):
    rng = np.random.default_rng(seed)
    syms = [f"s{i}" for i in rng.integers(0, 4, size=n_sym)]
    topo = linear_chain(syms, states_per_symbol=2, optional_silence="sil" if sil else None,
                        n_frames=2 * n_sym + extra + 1)
    T = topo.min_frames + extra + 1
    log_emit = rng.normal(0, 2, size=(T, topo.n_emit))
    post, ll = forward_backward(log_emit, topo)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-9)       # sums to 1 per frame
    _, ll_log = forward_backward(log_emit, topo, method="log")
    assert ll == pytest.approx(ll_log, rel=1e-9)
    path, _ = viterbi(log_emit, topo)
    steps = np.diff(path)
    assert np.all((steps >= 0) & (steps <= 2))                          # monotone
    visited = set(path.tolist())
    assert all(s in visited for s in np.flatnonzero(~topo.skippable))   # no state skipped
    assert path[0] in np.flatnonzero(np.isfinite(topo.log_start))
    assert path[-1] in np.flatnonzero(np.isfinite(topo.log_end))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n_chunks=st.integers(1, 6))
def test_property_loglik_independent_of_chunking(seed, n_chunks):
    rng = np.random.default_rng(seed)
    data = _toy(rng, n_utt=6)
    m = _model(rng, data, update="w")
    X, off = _stack(data)
    b = m.batch([w for _, w in data])
    sel = m.select(X)
    m.n_chunks = 1
    ref = m.estep(X, off, b, sel).loglik
    m.n_chunks = n_chunks
    assert m.estep(X, off, b, sel).loglik == pytest.approx(ref, rel=1e-12)


def test_estep_names_an_utterance_no_path_fits(rng):
    data = _toy(rng, n_utt=2)
    m = _model(rng, data, update="w")
    X, off = _stack(data)
    sel = m.select(X)
    # a transcript of the first utterance that needs more frames than the second has
    m.self_loop_[:] = 0.5
    bad = m.batch([data[0][1], data[0][1] * 20])
    assert bad.min_frames()[1] > off[2] - off[1]
    stats = m.estep(X, off, bad, sel, names=["a", "b"])
    assert stats.n_utterances == 1
    assert stats.failures and "utterance b" in stats.failures[0][1]
    assert "frames" in stats.failures[0][1]
    # the failed utterance is dropped whole: what is left equals an E-step on "a" alone
    alone = m.estep(X[: off[1]], off[:2], m.batch([data[0][1]]), m.select(X[: off[1]]))
    assert not alone.failures and alone.n_utterances == 1
    assert stats.loglik == pytest.approx(alone.loglik, rel=1e-9)
    assert stats.n_frames == alone.n_frames
