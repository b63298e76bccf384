"""Left-to-right HMM topologies: a linear chain of states per utterance.

Each state goes to itself or to the next one (the regular expression with ``+``
after every symbol); an optional silence between symbols (and at both ends) is
a skippable state that its left neighbour can jump over (``i -> i + 2``).
Transitions are set from expected durations: a state expected to last ``d``
frames has self-loop probability ``p = 1 - 1/d`` (geometric durations have
``E[d] = 1 / (1 - p)``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vqalign._validation import check_positive_int, check_probability
from vqalign.exceptions import ParameterError

MAX_SELF_LOOP = 1.0 - 1e-6

__all__ = ["Topology", "ChainBatch", "chain_batch", "linear_chain", "transitions_from_durations"]


@dataclass
class Topology:
    """A banded left-to-right HMM over ``S`` states.

    Attributes
    ----------
    labels : list[str]
        One label per state, ``"<symbol>.<substate>"`` with sub-states counted from 0
        (``"AH.0"``, ``"AH.1"``, ``"AH.2"`` for a 3-state ``AH``).
    symbols : list[str]
        The input symbol sequence.
    unit_index : int32 (S,)
        Position in ``symbols`` of each state; -1 for an inserted optional silence.
    emit_ids : int32 (S,)
        Column of the emission table read by each state.
    log_trans : float64 (S, 3)
        ``log P(i->i)``, ``log P(i->i+1)``, ``log P(i->i+2)``; -inf where impossible.
    log_start, log_end : float64 (S,)
        Log start probabilities; 0 for the states a path may end in, -inf elsewhere.
    skippable : bool (S,)
    emit_labels : list[str]
        Label of each emission column (``"<symbol>.<substate>"``), when known.
    """

    labels: list
    symbols: list
    unit_index: np.ndarray
    emit_ids: np.ndarray
    log_trans: np.ndarray
    log_start: np.ndarray
    log_end: np.ndarray
    skippable: np.ndarray
    emit_labels: list | None = None

    @property
    def n_states(self) -> int:
        return int(self.emit_ids.shape[0])

    @property
    def min_frames(self) -> int:
        """The fewest frames any path needs: the number of non-skippable states."""
        return int(self.n_states - np.count_nonzero(self.skippable))

    @property
    def n_emit(self) -> int:
        """Number of emission columns the states refer to (max emit id + 1)."""
        return int(self.emit_ids.max()) + 1 if self.n_states else 0

    def validate(self) -> Topology:
        """Check shapes and probabilities; return self (raises ParameterError)."""
        S = len(self.labels)
        if S == 0:
            raise ParameterError("topology has no states; pass at least one symbol")
        for name, arr, shape in (("unit_index", self.unit_index, (S,)),
                                 ("emit_ids", self.emit_ids, (S,)),
                                 ("log_trans", self.log_trans, (S, 3)),
                                 ("log_start", self.log_start, (S,)),
                                 ("log_end", self.log_end, (S,)),
                                 ("skippable", self.skippable, (S,))):
            if np.shape(arr) != shape:
                raise ParameterError(f"topology.{name} has shape {np.shape(arr)}, expected {shape} "
                                     f"for {S} states")
        if np.any(self.emit_ids < 0):
            raise ParameterError("topology.emit_ids must be >= 0 (column of the emission table)")
        for name, arr in (("log_trans", self.log_trans), ("log_start", self.log_start),
                          ("log_end", self.log_end)):
            a = np.asarray(arr, dtype=np.float64)
            if np.isnan(a).any():
                raise ParameterError(f"topology.{name} contains NaN")
            if np.any(a > 1e-9):
                bad = float(np.exp(a.max()))
                raise ParameterError(
                    f"topology.{name} holds a probability {bad:.6g} > 1 (log value "
                    f"{a.max():.6g}); transition and start probabilities must lie in [0, 1]")
        p = np.exp(self.log_trans)
        rows = p.sum(axis=1)
        if np.any(rows > 1 + 1e-6):
            i = int(np.argmax(rows))
            raise ParameterError(
                f"transition probabilities out of state {i} ({self.labels[i]}) sum to "
                f"{rows[i]:.6g} > 1; each row of P(i->i), P(i->i+1), P(i->i+2) must sum to "
                "at most 1 (the rest is the probability of ending)")
        if np.isfinite(self.log_trans[-1, 1:]).any() or (
                S > 1 and np.isfinite(self.log_trans[-2, 2])):
            raise ParameterError("topology has transitions past the last state")
        total_start = float(np.exp(self.log_start).sum())
        if not abs(total_start - 1.0) <= 1e-6:
            raise ParameterError(f"start probabilities sum to {total_start:.6g}, not 1")
        if not np.isfinite(self.log_end).any():
            raise ParameterError("topology has no state a path may end in (log_end all -inf)")
        return self


def _per_symbol_int(value, symbols, name) -> list[int]:
    if isinstance(value, Mapping):
        out = []
        for s in symbols:
            v = value.get(s, 1)
            out.append(check_positive_int(v, f"{name}[{s!r}]"))
        return out
    v = check_positive_int(value, name)
    return [v] * len(symbols)


def transitions_from_durations(durations, *, next_skippable=None, min_self_loop: float = 0.0,
                               is_last=None) -> np.ndarray:
    """Banded log transitions ``(S, 3)`` from expected state durations (frames).

    ``p_self = clip(1 - 1/d, min_self_loop, 1 - 1e-6)``; the rest goes to the next
    state, split evenly with the skip ``i -> i + 2`` when the next state is
    skippable (``next_skippable[i]``). The last state keeps ``p_self`` and its
    remaining mass is the probability of ending (``is_last`` marks states with
    no successor; by default only the final state).
    """
    d = np.asarray(durations, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ParameterError(f"durations must be a 1-D sequence of frames per state, got shape {d.shape}")
    if not np.isfinite(d).all() or np.any(d <= 0):
        i = int(np.flatnonzero(~(np.isfinite(d) & (d > 0)))[0])
        raise ParameterError(f"expected duration of state {i} is {float(d[i]):g} frames; durations must be "
                             "positive and finite")
    min_self_loop = check_probability(min_self_loop, "min_self_loop")
    S = d.size
    nxt = np.zeros(S, bool) if next_skippable is None else np.asarray(next_skippable, bool)
    last = np.zeros(S, bool) if is_last is None else np.asarray(is_last, bool)
    last = last.copy()
    last[-1] = True
    p = np.clip(1.0 - 1.0 / d, min_self_loop, MAX_SELF_LOOP)
    rest = 1.0 - p
    trans = np.zeros((S, 3))
    trans[:, 0] = p
    for i in range(S):
        if last[i] or i == S - 1:
            continue
        if nxt[i] and i + 2 < S:
            trans[i, 1] = rest[i] / 2
            trans[i, 2] = rest[i] / 2
        else:
            trans[i, 1] = rest[i]
    with np.errstate(divide="ignore"):
        return np.log(trans)


def linear_chain(symbols: Sequence[str], *, states_per_symbol=1,
                 emit_index: Mapping | Callable | None = None,
                 n_frames: int | None = None, durations=None,
                 optional_silence: str | None = None, silence_at_ends: bool = True,
                 min_self_loop: float = 0.0, self_loop: float | None = None) -> Topology:
    """Build the linear-chain topology of a symbol sequence.

    Parameters
    ----------
    symbols : sequence of str
        Units in order (phones, characters, words).
    states_per_symbol : int or dict symbol -> int
        Sub-states per symbol (default 1). An optional silence always has one state.
    emit_index : dict ``(symbol, substate) -> int`` or callable ``(symbol, substate) -> int``
        Emission column of each (symbol, sub-state). Default: one id per distinct
        (symbol, substate) in order of appearance, so repeated symbols share parameters.
    n_frames : int, optional
        Frames of the utterance; sets the default expected duration
        ``d = n_frames / n_states`` per state.
    durations : float, sequence (one per symbol) or dict symbol -> float, optional
        Expected frames per symbol, split evenly over its sub-states. Symbols a dict
        does not name (and the optional silence) fall back to ``n_frames / n_states``.
    optional_silence : str, optional
        Symbol (e.g. ``"sil"``) inserted as a skippable state between symbols, and at
        both ends if ``silence_at_ends``.
    min_self_loop : float
        Lower bound on every self-loop probability.
    self_loop : float, optional
        Use this fixed self-loop probability for every state instead of durations
        (e.g. 0.75; mostly to compare with duration-based initialization).

    Without ``n_frames``, ``durations`` or ``self_loop``, every self loop is 0.5.
    """
    if isinstance(symbols, str):
        raise ParameterError("symbols must be a sequence of symbols (e.g. transcript.split()), "
                             f"got the string {symbols[:40]!r}")
    symbols = [str(s) for s in symbols]
    if not symbols:
        raise ParameterError("symbols is empty; the transcript produced no units to align")
    n_sub = _per_symbol_int(states_per_symbol, symbols, "states_per_symbol")

    labels, unit_index, keys, skippable, owner = [], [], [], [], []

    def add_silence():
        labels.append(f"{optional_silence}.0")
        unit_index.append(-1)
        keys.append((optional_silence, 0))
        skippable.append(True)
        owner.append(-1)

    for i, sym in enumerate(symbols):
        if optional_silence is not None and (i > 0 or silence_at_ends):
            add_silence()
        for k in range(n_sub[i]):
            labels.append(f"{sym}.{k}")
            unit_index.append(i)
            keys.append((sym, k))
            skippable.append(False)
            owner.append(i)
    if optional_silence is not None and silence_at_ends:
        add_silence()
    S = len(labels)
    skippable = np.asarray(skippable, bool)

    # emission ids
    emit_labels: list[str] | None = None
    if emit_index is None:
        table: dict = {}
        for key in keys:
            if key not in table:
                table[key] = len(table)
        emit_ids = np.array([table[k] for k in keys], dtype=np.int32)
        emit_labels = [f"{s}.{k}" for (s, k) in table]
    else:
        ids = []
        for key in keys:
            try:
                v = emit_index(*key) if callable(emit_index) else emit_index[key]
            except KeyError:
                raise ParameterError(
                    f"emit_index has no entry for (symbol, substate) {key!r}; add it or use "
                    "emit_index=None for one column per distinct (symbol, substate)") from None
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ParameterError(f"emit_index{key!r} = {v!r}; it must be an int >= 0")
            ids.append(int(v))
        emit_ids = np.array(ids, dtype=np.int32)

    # expected durations per state
    if self_loop is not None:
        p = check_probability(self_loop, "self_loop")
        p = min(max(p, check_probability(min_self_loop, "min_self_loop")), MAX_SELF_LOOP)
        d = np.full(S, 1.0 / (1.0 - p))
    else:
        default = None
        if n_frames is not None:
            n_frames = check_positive_int(n_frames, "n_frames")
            default = n_frames / S
        d = np.empty(S)
        per_symbol = None
        if durations is not None:
            if isinstance(durations, Mapping):
                per_symbol = [durations.get(s) for s in symbols]
                sil_d = durations.get(optional_silence) if optional_silence else None
            elif isinstance(durations, numbers.Real) and not isinstance(durations, bool):
                per_symbol = [float(durations)] * len(symbols)
                sil_d = None
            else:
                arr = list(durations)
                if len(arr) != len(symbols):
                    raise ParameterError(
                        f"durations has {len(arr)} values but there are {len(symbols)} symbols; "
                        "give one expected duration (frames) per symbol, a scalar or a dict")
                per_symbol = [float(x) for x in arr]
                sil_d = None
        else:
            sil_d = None
        for s in range(S):
            i = owner[s]
            if i < 0:
                val = sil_d if sil_d is not None else default
            else:
                val = per_symbol[i] if per_symbol is not None else None
                if val is not None:
                    val = float(val) / n_sub[i]
                else:
                    val = default
            d[s] = 2.0 if val is None else val
        bad = ~(np.isfinite(d) & (d > 0))
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            raise ParameterError(f"expected duration of state {labels[s]} is {float(d[s]):g} frames; "
                                 "durations must be positive and finite")
    next_skip = np.zeros(S, bool)
    next_skip[:-1] = skippable[1:]
    log_trans = transitions_from_durations(d, next_skippable=next_skip,
                                           min_self_loop=min_self_loop)
    log_start = np.full(S, -np.inf)
    if skippable[0] and S > 1:
        log_start[0] = log_start[1] = math.log(0.5)
    else:
        log_start[0] = 0.0
    log_end = np.full(S, -np.inf)
    log_end[-1] = 0.0
    if skippable[-1] and S > 1:
        log_end[-2] = 0.0
    return Topology(labels=labels, symbols=list(symbols),
                    unit_index=np.asarray(unit_index, dtype=np.int32), emit_ids=emit_ids,
                    log_trans=log_trans, log_start=log_start, log_end=log_end,
                    skippable=skippable, emit_labels=emit_labels)


# ---------------------------------------------------------------------------- batches
@dataclass
class ChainBatch:
    """Many utterances' linear chains in flat state tables (the engine's batched layout).

    Utterance ``u`` owns states ``state_off[u]:state_off[u + 1]``. Each utterance is a
    sequence of *words*, each a sequence of symbols; a one-state optional silence
    (skippable) sits between words and at both ends when the batch has one.

    Attributes
    ----------
    emit_ids : int32 (S,)
        Emission column of each state.
    skippable : bool (S,)
        The optional silences.
    unit_index : int32 (S,)
        Position of the state's symbol within its utterance (counted over all its words);
        -1 for a silence.
    state_off : int64 (U + 1,)
    units : list of lists of (word_index, symbol)
        Per utterance, the symbols in order with the word each belongs to.
    """

    emit_ids: np.ndarray
    skippable: np.ndarray
    unit_index: np.ndarray
    state_off: np.ndarray
    units: list

    @property
    def n_utterances(self) -> int:
        return int(self.state_off.shape[0] - 1)

    @property
    def n_states(self) -> int:
        return int(self.emit_ids.shape[0])

    def min_frames(self) -> np.ndarray:
        """int64 (U,): the fewest frames a path through each utterance needs."""
        ns = np.add.reduceat((~self.skippable).astype(np.int64), self.state_off[:-1]) \
            if self.n_states else np.zeros(self.n_utterances, np.int64)
        empty = self.state_off[1:] == self.state_off[:-1]
        ns[empty] = 0
        return ns

    @classmethod
    def from_words(cls, utterances, *, emit_index, states_per_symbol=1,
                   optional_silence: str | None = None) -> ChainBatch:
        """Build the batch of ``utterances``: per utterance a list of words, each a list
        of symbols (a flat list of symbols is one word per symbol).

        ``emit_index``: dict ``(symbol, substate) -> column`` (a missing key raises a
        ParameterError naming it). ``states_per_symbol``: int or dict symbol -> int.
        """
        cols, skip, unit, offs, units_all = [], [], [], [0], []
        sil_col = None
        if optional_silence is not None:
            try:
                sil_col = emit_index[(optional_silence, 0)]
            except KeyError:
                raise ParameterError(f"emit_index has no column for the optional silence "
                                     f"({optional_silence!r}, 0)") from None
        per = states_per_symbol
        for u, words in enumerate(utterances):
            if isinstance(words, str):
                raise ParameterError(f"utterance {u}: give a list of words (each a list of "
                                     f"symbols), not the string {words[:40]!r}")
            words = [[w] if isinstance(w, str) else list(w) for w in words]
            units = []
            ui = 0
            if sil_col is not None:
                cols.append(sil_col)
                skip.append(True)
                unit.append(-1)
            for wi, w in enumerate(words):
                for lab in w:
                    n = per.get(lab, 1) if isinstance(per, Mapping) else int(per)
                    for j in range(n):
                        try:
                            cols.append(emit_index[(lab, j)])
                        except KeyError:
                            raise ParameterError(
                                f"symbol {lab!r} (sub-state {j}) of utterance {u} has no "
                                "emission column; the model never saw it (add it with "
                                "add_symbols, or train on data that has it)") from None
                        skip.append(False)
                        unit.append(ui)
                    units.append((wi, lab))
                    ui += 1
                if sil_col is not None:
                    cols.append(sil_col)
                    skip.append(True)
                    unit.append(-1)
            offs.append(len(cols))
            units_all.append(units)
        return cls(np.asarray(cols, np.int32), np.asarray(skip, bool),
                   np.asarray(unit, np.int32), np.asarray(offs, np.int64), units_all)

    def word_ends(self) -> np.ndarray:
        """bool (S,): the last state of every word."""
        S = self.n_states
        out = np.zeros(S, bool)
        sp = np.flatnonzero(self.unit_index >= 0)
        if sp.size == 0:
            return out
        # word of each state's unit, per utterance
        u_of = np.searchsorted(self.state_off, sp, side="right") - 1
        widx = np.array([self.units[u][i][0] for u, i in zip(u_of, self.unit_index[sp])],
                        np.int64)
        key = u_of * (1 << 32) + widx
        last = np.ones(sp.size, bool)
        last[:-1] = key[1:] != key[:-1]
        out[sp[last]] = True
        return out

    def transitions(self, self_loop, *, p_silence=0.3, p_edge_silence=0.8, open_end=False):
        """Linear (trans (S, 3), start (S,), end (S,)) of the batch.

        ``self_loop`` (n_columns,): P(stay) of each emission column (a state expected to
        last d frames has 1 - 1/d). Leaving a state goes to the next one; when the next
        is an optional silence, with probability ``p_silence`` into it and otherwise
        over it (i -> i + 2). Each utterance starts in its leading silence with
        probability ``p_edge_silence`` (else in its first symbol) and may end in its
        last symbol or its trailing silence; with ``open_end`` after any word or silence
        (a window of a longer recording).
        """
        S = self.n_states
        off = self.state_off
        ps = np.clip(np.asarray(self_loop, np.float64)[self.emit_ids], 0.0, MAX_SELF_LOOP)
        nxt = 1.0 - ps
        last = np.zeros(S, bool)
        nonempty = off[1:] > off[:-1]
        last[(off[1:] - 1)[nonempty]] = True
        nxt_skip = np.zeros(S, bool)
        nxt_skip[:-1] = self.skippable[1:]
        nxt_skip[last] = False
        trans = np.zeros((S, 3))
        trans[:, 0] = ps
        trans[:, 1] = np.where(nxt_skip, nxt * p_silence, nxt)
        trans[:, 2] = np.where(nxt_skip, nxt * (1.0 - p_silence), 0.0)
        trans[last, 1] = 0.0
        second_last = np.zeros(S, bool)
        second_last[np.maximum(off[1:] - 2, off[:-1])[nonempty]] = True
        trans[second_last, 2] = 0.0
        start = np.zeros(S)
        end = np.zeros(S)
        a = off[:-1][nonempty]
        b = off[1:][nonempty]
        lead = self.skippable[a] & (b - a > 1)
        start[a[lead]] = p_edge_silence
        start[a[lead] + 1] = 1.0 - p_edge_silence
        start[a[~lead]] = 1.0
        end[b - 1] = 1.0
        trail = self.skippable[b - 1] & (b - a > 1)
        end[(b - 2)[trail]] = 1.0
        if open_end:
            end[self.skippable | self.word_ends()] = 1.0
        return trans, start, end

    def segments(self, path_u, u):
        """Runs of one utterance's local state path: int arrays (unit, start, end_excl)
        over its symbols, silences dropped."""
        s0 = self.state_off[u]
        uos = self.unit_index[s0 + np.asarray(path_u, np.int64)]
        T = uos.shape[0]
        if T == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        change = np.flatnonzero(uos[1:] != uos[:-1]) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [T]])
        ids = uos[starts]
        keep = ids >= 0
        return ids[keep].astype(np.int64), starts[keep], ends[keep]


def chain_batch(topologies) -> ChainBatch:
    """A :class:`ChainBatch` of single-utterance :class:`Topology` objects (one word per
    symbol, with the silences they hold)."""
    topos = list(topologies)
    if not topos:
        raise ParameterError("chain_batch needs at least one Topology")
    offs = np.zeros(len(topos) + 1, np.int64)
    offs[1:] = np.cumsum([t.n_states for t in topos])
    units = [[(i, s) for i, s in enumerate(t.symbols)] for t in topos]
    return ChainBatch(np.concatenate([t.emit_ids for t in topos]).astype(np.int32),
                      np.concatenate([t.skippable for t in topos]),
                      np.concatenate([t.unit_index for t in topos]).astype(np.int32),
                      offs, units)
