"""Plain-numpy brute-force references for the HMM tests (slow and obvious on purpose)."""

from __future__ import annotations

import itertools

import numpy as np


def topology_to_dense(topo):
    """Dense (S, S) log transition matrix of a banded topology (rows need not sum to 1)."""
    S = topo.n_states
    lt = np.full((S, S), -np.inf)
    for i in range(S):
        for k in range(3):
            if i + k < S:
                lt[i, i + k] = topo.log_trans[i, k]
    return lt


def brute_force(log_emit_states, log_start, log_trans, log_end):
    """Enumerate every state sequence.

    ``log_emit_states`` is (T, S) (already expanded per state). Returns
    ``(log_likelihood, posteriors (T, S), best_path, best_logprob)``.
    """
    T, S = log_emit_states.shape
    scores = []
    paths = []
    for seq in itertools.product(range(S), repeat=T):
        lp = log_start[seq[0]] + log_emit_states[0, seq[0]]
        for t in range(1, T):
            lp += log_trans[seq[t - 1], seq[t]] + log_emit_states[t, seq[t]]
        lp += log_end[seq[-1]]
        scores.append(lp)
        paths.append(seq)
    scores = np.array(scores)
    paths = np.array(paths)
    finite = np.isfinite(scores)
    m = scores[finite].max()
    w = np.zeros_like(scores)
    w[finite] = np.exp(scores[finite] - m)
    ll = m + np.log(w.sum())
    post = np.zeros((T, S))
    for t in range(T):
        np.add.at(post[t], paths[:, t], w)
    post /= w.sum()
    best = int(np.argmax(np.where(finite, scores, -np.inf)))
    return ll, post, paths[best].astype(np.int32), float(scores[best])


def naive_diag_loglik(X, means, variances):
    """(T, K) log N(x_t | mean_k, diag(var_k)) with plain broadcasting."""
    X = np.asarray(X, np.float64)
    diff = X[:, None, :] - means[None, :, :]
    return -0.5 * (np.log(2 * np.pi * variances).sum(1)[None, :]
                   + (diff ** 2 / variances[None, :, :]).sum(2))


def naive_tied_emissions(X, means, variances, weights):
    """(T, E) log sum_k w[e, k] N(x_t | k) with a full (T, E, K) array."""
    ll = naive_diag_loglik(X, means, variances)
    with np.errstate(divide="ignore"):
        lw = np.log(weights)
    a = lw[None, :, :] + ll[:, None, :]
    m = a.max(axis=2, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=2, keepdims=True)))[:, :, 0]
