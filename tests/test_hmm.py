"""Linear-chain topology, banded forward-backward / Viterbi, dense versions.

References: brute-force path enumeration (tests/naive_hmm.py) and hmmlearn's
C++ scaling / log / Viterbi routines on the same model and emissions.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.naive_hmm import brute_force, topology_to_dense
from vqalign.exceptions import AlignmentError, ParameterError
from vqalign.hmm import (
    Topology,
    dense_forward_backward,
    dense_viterbi,
    forward_backward,
    linear_chain,
    segments_from_path,
    transitions_from_durations,
    viterbi,
)


@pytest.fixture(scope="module")
def hmmc():
    """hmmlearn's compiled routines (an optional peer): only the comparisons need them."""
    return pytest.importorskip("hmmlearn._hmmc", reason="hmmlearn (optional peer) is not installed")


def _expand(log_emit, topo):
    return log_emit[:, topo.emit_ids]


TINY = [
    dict(symbols=["a", "b", "c"], kw=dict(n_frames=7), T=7),
    dict(symbols=["a", "b"], kw=dict(states_per_symbol=2, durations=[3.0, 5.0]), T=7),
    dict(symbols=["a", "b"], kw=dict(optional_silence="sil", n_frames=6), T=6),
    dict(symbols=["a", "a"], kw=dict(optional_silence="sil", silence_at_ends=False,
                                     self_loop=0.6), T=7),
]


@pytest.mark.parametrize("case", TINY, ids=lambda c: str(c["kw"]))
@pytest.mark.parametrize("method", ["scaled", "log"])
def test_against_brute_force(case, method, rng):
    topo = linear_chain(case["symbols"], **case["kw"])
    T = case["T"]
    log_emit = rng.normal(0.0, 2.0, size=(T, topo.n_emit))
    ll_ref, post_ref, path_ref, best_ref = brute_force(
        _expand(log_emit, topo), topo.log_start, topology_to_dense(topo), topo.log_end)

    post, ll = forward_backward(log_emit, topo, method=method)
    assert ll == pytest.approx(ll_ref, abs=1e-10)
    np.testing.assert_allclose(post, post_ref, atol=1e-12)

    post_e, ll_e = forward_backward(log_emit, topo, method=method, posteriors="emit")
    ref_e = np.zeros((T, topo.n_emit))
    for s, e in enumerate(topo.emit_ids):
        ref_e[:, e] += post_ref[:, s]
    np.testing.assert_allclose(post_e, ref_e, atol=1e-12)
    assert ll_e == pytest.approx(ll_ref, abs=1e-10)

    none, ll_n = forward_backward(log_emit, topo, method=method, posteriors=None)
    assert none is None and ll_n == pytest.approx(ll_ref, abs=1e-10)

    path, best = viterbi(log_emit, topo)
    np.testing.assert_array_equal(path, path_ref)
    assert best == pytest.approx(best_ref, abs=1e-10)


def test_dense_against_brute_force(rng):
    S, T = 4, 6
    log_emit = rng.normal(size=(T, S))
    start = rng.dirichlet(np.ones(S))
    trans = rng.dirichlet(np.ones(S), size=S)
    ll_ref, post_ref, path_ref, best_ref = brute_force(log_emit, np.log(start), np.log(trans),
                                                       np.zeros(S))
    for method in ("scaled", "log"):
        post, ll = dense_forward_backward(log_emit, np.log(start), np.log(trans), method=method)
        assert ll == pytest.approx(ll_ref, abs=1e-10)
        np.testing.assert_allclose(post, post_ref, atol=1e-12)
    path, best = dense_viterbi(log_emit, np.log(start), np.log(trans))
    np.testing.assert_array_equal(path, path_ref)
    assert best == pytest.approx(best_ref, abs=1e-10)


def _hmmlearn_posteriors(hmmc, start, trans, log_emit):
    m = log_emit.max(axis=1, keepdims=True)
    frameprob = np.exp(log_emit - m)
    ll, fwd, scaling = hmmc.forward_scaling(start, trans, frameprob)
    bwd = hmmc.backward_scaling(start, trans, frameprob, scaling)
    post = fwd * bwd
    post /= post.sum(axis=1, keepdims=True)
    return post, ll + m.sum()


def test_dense_against_hmmlearn(hmmc, rng):
    S, T = 6, 80
    log_emit = rng.normal(0, 3, size=(T, S))
    start = rng.dirichlet(np.ones(S))
    trans = np.triu(rng.random((S, S)) + 0.1)          # general left-to-right
    trans /= trans.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        ls, lt = np.log(start), np.log(trans)
    post_ref, ll_ref = _hmmlearn_posteriors(hmmc, start, trans, log_emit)
    for method in ("scaled", "log"):
        post, ll = dense_forward_backward(log_emit, ls, lt, method=method)
        assert ll == pytest.approx(ll_ref, rel=1e-12)
        np.testing.assert_allclose(post, post_ref, atol=1e-10)
    ll_log, _ = hmmc.forward_log(start, trans, log_emit)
    assert ll_log == pytest.approx(ll_ref, rel=1e-10)
    best_ref, path_ref = hmmc.viterbi(start, trans, log_emit)
    path, best = dense_viterbi(log_emit, ls, lt)
    np.testing.assert_array_equal(path, path_ref)
    assert best == pytest.approx(best_ref, rel=1e-12)


def test_band_against_hmmlearn(hmmc, rng):
    """A banded chain that may end anywhere, written as hmmlearn's dense model."""
    S, T = 30, 400
    p = rng.uniform(0.5, 0.95, size=S)
    lt = np.full((S, 3), -np.inf)
    lt[:, 0] = np.log(p)
    lt[:-1, 1] = np.log1p(-p[:-1])
    lt[-1, 0] = 0.0
    topo = Topology(labels=[f"s{i}" for i in range(S)], symbols=[f"s{i}" for i in range(S)],
                    unit_index=np.arange(S, dtype=np.int32), emit_ids=np.arange(S, dtype=np.int32),
                    log_trans=lt, log_start=np.r_[0.0, np.full(S - 1, -np.inf)],
                    log_end=np.zeros(S), skippable=np.zeros(S, bool))
    log_emit = rng.normal(0, 4, size=(T, S)).astype(np.float32)
    trans = np.exp(topology_to_dense(topo))
    start = np.exp(topo.log_start)
    post_ref, ll_ref = _hmmlearn_posteriors(hmmc, start, trans, log_emit.astype(np.float64))
    for method in ("scaled", "log"):
        post, ll = forward_backward(log_emit, topo, method=method)
        assert ll == pytest.approx(ll_ref, rel=1e-11)
        np.testing.assert_allclose(post, post_ref, atol=1e-9)
    best_ref, path_ref = hmmc.viterbi(start, trans, log_emit.astype(np.float64))
    path, best = viterbi(log_emit, topo)
    np.testing.assert_array_equal(path, path_ref)
    assert best == pytest.approx(best_ref, rel=1e-11)


def test_scaled_and_log_agree_with_shared_columns(rng):
    syms = list("abcabdcab")
    topo = linear_chain(syms, states_per_symbol={"a": 3, "b": 2}, optional_silence="sil",
                        n_frames=300)
    assert topo.n_emit < topo.n_states            # columns are shared
    log_emit = rng.normal(-40, 8, size=(300, topo.n_emit + 2))   # extra unused columns
    for post in ("states", "emit"):
        p1, l1 = forward_backward(log_emit, topo, method="scaled", posteriors=post)
        p2, l2 = forward_backward(log_emit, topo, method="log", posteriors=post)
        assert l1 == pytest.approx(l2, rel=1e-12)
        np.testing.assert_allclose(p1, p2, atol=1e-10)
        np.testing.assert_allclose(p1.sum(axis=1), 1.0, atol=1e-12)


def test_scaled_falls_back_when_a_frame_underflows():
    # frame 0: the only reachable state's emission is 2000 nats below the row max
    topo = linear_chain(["a", "b"], n_frames=4)
    log_emit = np.array([[-2000.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    p1, l1 = forward_backward(log_emit, topo, method="scaled")
    p2, l2 = forward_backward(log_emit, topo, method="log")
    assert np.isfinite(l1) and l1 == pytest.approx(l2)
    np.testing.assert_allclose(p1, p2, atol=1e-12)


@pytest.mark.parametrize("log_next", [-40.0, -300.0, -700.0])
def test_scaled_matches_log_with_extreme_transitions(rng, log_next):
    topo = linear_chain(list("abcd"), n_frames=30)
    topo.log_trans[:-1, 1] = log_next
    topo.log_trans[:, 0] = np.log1p(-np.exp(log_next))
    log_emit = rng.normal(0, 30, size=(30, 4))
    p1, l1 = forward_backward(log_emit, topo, method="scaled")
    p2, l2 = forward_backward(log_emit, topo, method="log")
    assert np.isfinite(l1) and l1 == pytest.approx(l2, rel=1e-12)
    np.testing.assert_allclose(p1, p2, atol=1e-9)


def test_one_hour_of_frames_stays_finite(rng):
    T, S = 360_000, 40
    topo = linear_chain([f"p{i}" for i in range(S)], n_frames=T)
    truth = np.repeat(np.arange(S), T // S)
    log_emit = rng.normal(-60.0, 5.0, size=(T, S)).astype(np.float32)
    log_emit[np.arange(T), truth] += 10.0
    _, ll = forward_backward(log_emit, topo, posteriors=None)
    post, ll_e = forward_backward(log_emit, topo, posteriors="emit")
    assert np.isfinite(ll) and ll == pytest.approx(ll_e, rel=1e-12)
    assert ll < -40.0 * T                         # exp(ll) is far below float64 range
    _, ll_log = forward_backward(log_emit, topo, method="log", posteriors=None)
    assert ll == pytest.approx(ll_log, rel=1e-10)   # 360k summed terms
    assert np.isfinite(post).all()
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-9)
    path, best = viterbi(log_emit, topo)
    assert np.isfinite(best) and best <= ll
    assert np.mean(path == truth) > 0.99


def _boundary_error(path, L, S):
    b = np.flatnonzero(np.diff(path)) + 1
    if b.size != S - 1:
        return np.inf
    return np.abs(b - np.arange(1, S) * L).mean()


def test_three_quarter_self_loops_park_in_final_state_durations_do_not(rng):
    """Weak emissions (as at a flat start): 3/4-1/4 transitions with a row-normalized
    final state (self loop 1) let the decoder rush through and park in the last state;
    transitions from expected durations recover the segmentation."""
    S, L = 8, 25
    T = S * L
    truth = np.repeat(np.arange(S), L)
    log_emit = rng.normal(0.0, 0.3, size=(T, S))
    log_emit[np.arange(T), truth] += 0.2
    syms = [f"p{i}" for i in range(S)]
    durations = linear_chain(syms, n_frames=T)
    assert np.exp(durations.log_trans[0, 0]) == pytest.approx(1 - 1 / L)
    fixed = linear_chain(syms, self_loop=0.75)
    fixed.log_trans[-1, 0] = 0.0                 # rows sum to 1: the last state keeps all
    path_bad, _ = viterbi(log_emit, fixed)
    path_good, _ = viterbi(log_emit, durations)
    assert np.count_nonzero(path_bad == S - 1) > 3 * L      # parked
    assert _boundary_error(path_bad, L, S) > 20
    assert abs(np.count_nonzero(path_good == S - 1) - L) <= 10
    assert _boundary_error(path_good, L, S) < 5


def test_transitions_from_durations():
    topo = linear_chain(["a", "b", "c"], states_per_symbol={"b": 2},
                        durations={"a": 10.0, "b": 8.0, "c": 2.0}, optional_silence="sil",
                        n_frames=70)
    p = np.exp(topo.log_trans)
    lab = topo.labels
    assert lab == ["sil.0", "a.0", "sil.0", "b.0", "b.1", "sil.0", "c.0", "sil.0"]
    assert p[1, 0] == pytest.approx(0.9)                    # d = 10
    assert p[1, 1] == pytest.approx(0.05) and p[1, 2] == pytest.approx(0.05)  # next skippable
    assert p[3, 0] == pytest.approx(0.75) and p[3, 1] == pytest.approx(0.25)  # 8 frames / 2
    assert p[6, 0] == pytest.approx(0.5)
    assert p[0, 0] == pytest.approx(1 - 8 / 70)             # silence: n_frames / n_states
    assert topo.min_frames == 4 and topo.skippable.sum() == 4
    np.testing.assert_array_equal(topo.unit_index, [-1, 0, -1, 1, 1, -1, 2, -1])
    assert np.isfinite(topo.log_start[:2]).all() and np.isinf(topo.log_start[2:]).all()
    assert np.isfinite(topo.log_end[-2:]).all() and np.isinf(topo.log_end[:-2]).all()
    # the same (symbol, substate) share one emission column
    assert len({topo.emit_ids[i] for i in (0, 2, 5, 7)}) == 1
    lt = transitions_from_durations([1.0, 0.5, 1e9])
    assert np.exp(lt[0, 0]) == 0.0 and np.exp(lt[1, 0]) == 0.0
    assert np.exp(lt[2, 0]) == pytest.approx(1 - 1e-6)


def test_emit_index_mapping_and_callable():
    table = {("a", 0): 4, ("b", 0): 1, ("sil", 0): 0}
    topo = linear_chain(["a", "b", "a"], emit_index=table, optional_silence="sil")
    np.testing.assert_array_equal(topo.emit_ids, [0, 4, 0, 1, 0, 4, 0])
    topo2 = linear_chain(["a", "b"], emit_index=lambda s, k: {"a": 2, "b": 3}[s])
    np.testing.assert_array_equal(topo2.emit_ids, [2, 3])
    with pytest.raises(ParameterError, match=r"no entry for .*'c'"):
        linear_chain(["c"], emit_index=table)


def test_segments_from_path():
    topo = linear_chain(["a", "b", "a"], states_per_symbol=2, optional_silence="sil")
    # states: sil a0 a1 sil b0 b1 sil a0 a1 sil
    path = np.array([0, 1, 1, 2, 4, 5, 5, 6, 7, 8, 8, 9], dtype=np.int32)
    assert segments_from_path(path, topo) == [(-1, 0, 1), (0, 1, 4), (1, 4, 7), (-1, 7, 8),
                                              (2, 8, 11), (-1, 11, 12)]


def test_too_few_frames_message():
    topo = linear_chain(list("abcdefgh"), states_per_symbol=3, optional_silence="sil")
    assert topo.min_frames == 24
    with pytest.raises(ParameterError, match=r"24 HMM states but the audio has only 20 frames "
                                             r"\(0\.20 s at 10 ms hop.*0\.24 s"):
        forward_backward(np.zeros((20, topo.n_emit)), topo)
    with pytest.raises(ParameterError, match=r"24 HMM states .* 20 frames \(0\.40 s at 20 ms"):
        viterbi(np.zeros((20, topo.n_emit)), topo, hop_s=0.02)


def test_bad_emissions():
    topo = linear_chain(["a", "b"], n_frames=10)
    le = np.zeros((10, 2))
    le[6, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN at frame 6"):
        forward_backward(le, topo)
    with pytest.raises(ParameterError, match="NaN at frame 6"):
        forward_backward(le, topo, method="log")
    with pytest.raises(ParameterError, match="NaN at frame 6"):
        viterbi(le, topo)
    le[6, 1] = np.inf
    with pytest.raises(ParameterError, match=r"\+inf at frame 6"):
        forward_backward(le, topo)
    with pytest.raises(ParameterError, match="1 columns but the topology reads emission column 1"):
        forward_backward(np.zeros((10, 1)), topo)
    with pytest.raises(ParameterError, match="2-D"):
        viterbi(np.zeros(10), topo)
    with pytest.raises(ParameterError, match="posteriors="):
        forward_backward(np.zeros((10, 2)), topo, posteriors="gamma")


def test_impossible_emissions_raise_alignment_error():
    topo = linear_chain(["a", "b"], n_frames=5)
    le = np.zeros((5, 2))
    le[:, 1] = -np.inf                      # state b can never emit: no complete path
    for method in ("scaled", "log"):
        with pytest.raises(AlignmentError, match="no state sequence"):
            forward_backward(le, topo, method=method)
    with pytest.raises(AlignmentError, match="no state sequence"):
        viterbi(le, topo)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_bad_probabilities():
    topo = linear_chain(["a", "b"], n_frames=10)
    topo.log_trans[0, 0] = np.log(1.5)
    with pytest.raises(ParameterError, match=r"probability 1\.5 > 1"):
        forward_backward(np.zeros((10, 2)), topo)
    topo = linear_chain(["a", "b"], n_frames=10)
    topo.log_trans[0, 0] = np.log(0.9)
    topo.log_trans[0, 1] = np.log(0.3)
    with pytest.raises(ParameterError, match=r"out of state 0 \(a\.0\) sum to 1\.2"):
        viterbi(np.zeros((10, 2)), topo)
    with pytest.raises(ParameterError, match=r"self_loop=1\.3 is outside"):
        linear_chain(["a"], self_loop=1.3)
    with pytest.raises(ParameterError, match="expected duration of state a.0 is -3"):
        linear_chain(["a"], durations=-3)
    with pytest.raises(ParameterError, match="durations has 1 values but there are 2 symbols"):
        linear_chain(["a", "b"], durations=[3])
    le = np.zeros((5, 3))
    ls = np.log(np.full(3, 1 / 3))
    with pytest.raises(ParameterError, match="row 1 of the transition matrix sums to 0.5"):
        dense_forward_backward(le, ls, np.log([[1, 0, 0], [0.25, 0.25, 0], [0, 0, 1]]))
    with pytest.raises(ParameterError, match=r"probability 2 > 1"):
        dense_viterbi(le, ls, np.log([[2, 0, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(ParameterError, match="start probabilities sum to 0.6"):
        dense_viterbi(le, np.log([0.2, 0.2, 0.2]), np.log(np.eye(3)))
    with pytest.raises(ParameterError, match="sequence of symbols"):
        linear_chain("hello")


def test_convergence_monitor_resumes_from_a_saved_history():
    """A monitor resumed from an earlier run's history stops where the uninterrupted
    one stops (streamed corpus EM restarts from its recorded iterations)."""
    from vqalign.history import History
    from vqalign.hmm.monitor import ConvergenceMonitor

    lls = [-40.0, -35.0, -34.0, -33.99999, -33.999989]
    whole = ConvergenceMonitor(tol=1e-5, n_iter=10, relative=True, min_iter=3, name="a")
    stops_whole = []
    for ll in lls:
        whole.report(ll * 100, 100)
        stops_whole.append(whole.reached_tol)
    first = ConvergenceMonitor(tol=1e-5, n_iter=10, relative=True, min_iter=3, name="a")
    for ll in lls[:2]:
        first.report(ll * 100, 100)
    saved = History.from_dict(first.history.to_dict())
    again = ConvergenceMonitor(tol=1e-5, n_iter=10, relative=True, min_iter=3, name="b")
    again.resume(saved)
    assert again.iter == 2 and again.history.name == "b"
    stops = stops_whole[:2]
    for ll in lls[2:]:
        again.report(ll * 100, 100)
        stops.append(again.reached_tol)
    assert stops == stops_whole and stops_whole.index(True) == 3
    np.testing.assert_array_equal(again.history["log_likelihood"], whole.history["log_likelihood"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_bad_row_is_the_brute_force_scan(dtype):
    """The emission check before the Viterbi: the first frame with a NaN or +inf among the
    columns the states read, bad values in other columns ignored, -inf allowed."""
    from vqalign.hmm import _kernels as K

    rng = np.random.default_rng(3)
    for _ in range(50):
        X = rng.normal(size=(40, 9)).astype(dtype)
        n_bad = rng.integers(0, 4)
        for _ in range(n_bad):
            X[rng.integers(40), rng.integers(9)] = rng.choice([np.nan, np.inf, -np.inf])
        cols = np.unique(rng.choice(9, size=rng.integers(1, 9), replace=False))
        sub = X[:, cols]
        rows = np.flatnonzero((np.isnan(sub) | (sub == np.inf)).any(axis=1))
        want = int(rows[0]) if rows.size else -1
        assert K.first_bad_row(X, cols.astype(np.int64)) == want
