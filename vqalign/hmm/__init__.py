"""Hidden Markov models for alignment: linear-chain topologies, banded
forward-backward and Viterbi kernels, diagonal GMMs and tied-mixture emissions.

A typical E-step / decode on one utterance::

    from vqalign.hmm import linear_chain, forward_backward, viterbi, segments_from_path
    topo = linear_chain(phones, states_per_symbol=3, n_frames=len(X),
                        optional_silence="sil", emit_index=table)
    post, ll = forward_backward(log_emit, topo, posteriors="emit")   # (T, E), float
    path, best = viterbi(log_emit, topo)                              # int32 (T,)
    runs = segments_from_path(path, topo)    # [(unit_index, start, end_exclusive), ...]

``log_emit`` is (T, E): column ``topo.emit_ids[s]`` is read by state ``s``.
Training over a corpus: :class:`TiedMixtureHMM` (shared :class:`DiagGMM`
Gaussians, one weight vector per emission column, Baum-Welch with a
:class:`ConvergenceMonitor`). Heavier modules load on first use.
"""

from __future__ import annotations

from vqalign._lazy import lazy_exports
from vqalign.hmm.inference import (
    STATUS_OK,
    STATUS_OVER_BUDGET,
    dense_forward_backward,
    dense_viterbi,
    forward_backward,
    segments_from_path,
    viterbi,
)
from vqalign.hmm.topology import (
    ChainBatch,
    Topology,
    chain_batch,
    linear_chain,
    transitions_from_durations,
)

_LAZY = {
    "DiagGMM": "vqalign.hmm.gmm",
    "diag_gmm": "vqalign.hmm.gmm",
    "TiedMixture": "vqalign.hmm.tied",
    "TiedMixtureHMM": "vqalign.hmm.train",
    "SufficientStats": "vqalign.hmm.stats",
    "Selection": "vqalign.hmm.stats",
    "ConvergenceMonitor": "vqalign.hmm.monitor",
}

__all__ = ["Topology", "ChainBatch", "chain_batch", "linear_chain", "transitions_from_durations", "forward_backward",
           "viterbi", "dense_forward_backward", "dense_viterbi", "segments_from_path",
           "STATUS_OK", "STATUS_OVER_BUDGET",
           *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

