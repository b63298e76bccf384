"""Word boundaries next to a pause, moved to where the sound starts or stops.

An HMM aligner places a word that follows (precedes) a pause by its frames' likelihood,
and the first (last) frames of speech share their 25 ms windows with the silence: the
silence model is weak against them and the word takes in some of the quiet before it
(after it). The first word of an utterance then starts 20-40 ms early and the last one
ends 30-150 ms late, inside the near-floor noise.

:func:`refine_pause_edges` moves each such boundary, in the alignment's words and its
phones, to where a fine loudness envelope (pre-emphasized audio, ``ENV_WIN_S`` windows
every ``ENV_HOP_S``) crosses ``LOUD_SHARE`` of the way from the recording's noise floor to
its loud level, when the boundary lies on the quiet side of that crossing: an onset is
moved later to the first envelope value above the threshold after it (an offset earlier
to the last one before it), at most ``MAX_MOVE_S`` and never so far that the first (last)
phone of the word keeps less than ``MIN_PHONE_S``. A boundary already in loud audio is
left where it is (the aligner's spectral evidence is better there than loudness), and so
is a boundary between two words that touch. The boundary goes to the centre of the first
(last) loud window.

Measured with the Sphinx model's alignments (``vqalign bench timit --modes sphinx``),
nothing fitted on real speech: LOUD_SHARE is the house's near-floor share, and on the
built-in synthesizer (40 utterances, seed 1; exact boundaries) words went 15.9 -> 12.6
ms mean (pause-adjacent 28.9 -> 18.6 ms; first-word starts -23.1 -> +1.0 ms signed,
last-word ends +21.5 -> +2.3 ms), devdata synth (40 files) 20.8 -> 20.4 ms; shares
0.1-0.3 were within 0.4 ms of each other on both; the window's edge instead of its centre
made both synthetic sets' edges 4-5 ms later. Checked on the 40 TIMIT dev files: words
21.0 -> 18.5 ms, phones 15.5 -> 14.8 ms, first-word starts 32.4 -> 10.7 ms mean error.
"""

from __future__ import annotations

import numpy as np

from vqalign.align.alignment import _quality_warnings, add_quality_warnings
from vqalign.features.constants import FEATURE_SR
from vqalign.features.frontend import true_runs
from vqalign.phones import PHONE_CLASS

#: share of the way from the noise floor (5th percentile of the envelope, dB) to the loud
#: level (95th percentile) above which a stretch counts as sound; the "near the floor"
#: share of vqalign.align.confidence and the edge retry of the aligner
LOUD_SHARE = 0.2
#: the envelope: pre-emphasis 0.97 (fricatives and bursts count), windows and hop (s)
ENV_WIN_S = 0.010
ENV_HOP_S = 0.001
#: the farthest a boundary is moved (s)
MAX_MOVE_S = 0.150
#: the shortest phone left at the word's edge (s)
MIN_PHONE_S = 0.015
#: a hypothesis gap of at least this many seconds between two words is a pause
MIN_GAP_S = 0.001
#: :func:`split_at_pauses`: the shortest quiet stretch (s) taken for a pause between two
#: words, two envelope windows. At the word junctions of the synthetic sets where no
#: stop or affricate meets and there is no pause, the longest quiet stretch inside the
#: two meeting phones reached 20 ms in under 0.5 % of them (devdata synth, 781) and in
#: none (built-in synthesizer seed 23, 142); 10 ms in 1 %. Measured after the short
#: pauses of the Sphinx opinion (second_opinion.SHORT_PAUSE_SILPROB), words mean
#: of the default median, 10 / 20 / 30 ms: devdata synth 14.09 in all three (14.11
#: without), built-in synthesizer 8.07 in all (8.07); TIMIT dev 16.94 / 16.86 / 16.87 ms
#: (16.94), words within 20 ms 72.2 / 72.1 / 72.1 % (71.8)
MIN_PAUSE_S = 0.020
#: :func:`quiet_spans`: a span is quiet where the median of the loudness envelope over it
#: lies below this share of the way from the recording's floor (5th
#: percentile) to its loud level (95th): the lower half. On the synthetic sets (SILPROB
#: 0.3, 200 + 40 files) the fillers next to no stop over a true pause lay at 0.00-0.11
#: (10th-90th percentile), those over speech at 0.58-0.93, so any share in 0.12-0.57
#: separates them (the Sphinx opinion's fillers between words,
#: vqalign.align.sphinx.SphinxAligner.align(pause_silprob=...)); devdata synth words 0.3 / 0.5 / 0.7: 14.08 / 14.09 / 14.24 ms, built-in
#: synthesizer 8.07 ms for all three. (A filler next to a stop often lies on its closure,
#: quiet too; dropping every one next to a stop lost true pauses: built-in synthesizer
#: 8.07 -> 11.75 ms, with a gate on the share of quiet windows at probability 0.3.)
PAUSE_GATE_SHARE = 0.5
#: phones whose closure is as quiet as a pause: a quiet stretch next to one is not taken
#: for a pause (taken, devdata synth words went 14.11 -> 17.76 ms, the built-in
#: synthesizer 8.07 -> 13.47: the next word then starts after its closure)
CLOSURE = frozenset(p for p, c in PHONE_CLASS.items() if c == "stop") | {"CH", "JH"}
#: False: the aligners leave the pause-adjacent boundaries where their models put them
ENABLED = True


def loudness_envelope(y16: np.ndarray, sr: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Loudness of the pre-emphasized audio: (dB (n,), window centres in s (n,)).

    Parameters
    ----------
    y16 : ndarray (n_samples,)
        Audio.
    sr : int
        Its sample rate.

    Returns
    -------
    db, t : ndarray (n_windows,) float64
        Mean power in dB of ``ENV_WIN_S`` windows every ``ENV_HOP_S``, and their centres.
    """
    y = np.asarray(y16, np.float64)
    if y.size < 2:
        return np.zeros(0), np.zeros(0)
    y = np.concatenate([[y[0]], y[1:] - 0.97 * y[:-1]])
    w = max(1, int(round(ENV_WIN_S * sr)))
    h = max(1, int(round(ENV_HOP_S * sr)))
    if y.size < w:
        return np.zeros(0), np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(y * y)])
    a = np.arange(0, y.size - w + 1, h)
    db = 10.0 * np.log10((c[a + w] - c[a]) / w + 1e-12)
    return db, (a + 0.5 * w) / sr


def refine_pause_edges(aln, y16: np.ndarray, sr: int = 16000, *, offset_s: float = 0.0):
    """Move the word boundaries next to a pause of ``aln`` (in place) to where the sound
    starts or stops (see the module docstring); returns ``aln``.

    Parameters
    ----------
    aln : vqalign.align.Alignment
        Words and one unit tier (phones or chars) whose segments share the word edges.
    y16 : ndarray (n_samples,)
        The audio the alignment's times refer to, its first sample at ``offset_s``.
    sr : int
    offset_s : float
        Time (s) of ``y16``'s first sample in the alignment.

    Returns
    -------
    Alignment
        ``aln``, with ``diagnostics["pause_edges_moved"]`` counting the moved boundaries;
        the quality warnings that named the old times (see
        :func:`vqalign.align.alignment.add_quality_warnings`) are given again for the new.
    """
    if isinstance(aln, Exception) or y16 is None:
        return aln
    words = aln.tiers.get("words") or []
    unit = aln.unit_tier
    units = aln.tiers.get(unit, []) if unit else []
    sound = _sound(y16, sr) if words else None
    if sound is None:
        return aln
    on, t = sound
    t = t + offset_s
    stale = set(_quality_warnings(aln))
    moved = 0
    # the units that start (end) at a time: found by bisection, not a scan per word
    # (unsorted units, which no aligner writes, take the scan)
    u_start = np.array([u.start for u in units], np.float64)
    u_end = np.array([u.end for u in units], np.float64)
    ordered = bool(np.all(np.diff(u_start) >= 0) and np.all(np.diff(u_end) >= 0))

    def near(times, t):
        if not ordered:
            return range(len(units))
        return range(int(np.searchsorted(times, t - 1e-6)),
                     int(np.searchsorted(times, t + 1e-6, side="right")))

    for i, w in enumerate(words):
        first = [units[k] for k in near(u_start, w.start)
                 if abs(units[k].start - w.start) < 1e-6 and units[k].end <= w.end + 1e-6]
        last = [units[k] for k in near(u_end, w.end)
                if abs(units[k].end - w.end) < 1e-6 and units[k].start >= w.start - 1e-6]
        if i == 0 or words[i - 1].end < w.start - MIN_GAP_S:
            lim = (first[0].end if first else w.end) - MIN_PHONE_S
            new = _rise_after(on, t, w.start, min(w.start + MAX_MOVE_S, lim))
            if new is not None:
                for u in first:
                    u.start = new
                w.start = new
                moved += 1
        if i == len(words) - 1 or words[i + 1].start > w.end + MIN_GAP_S:
            lim = (last[0].start if last else w.start) + MIN_PHONE_S
            new = _fall_before(on, t, w.end, max(w.end - MAX_MOVE_S, lim))
            if new is not None:
                for u in last:
                    u.end = new
                w.end = new
                moved += 1
    aln.diagnostics["pause_edges_moved"] = moved
    if moved and "warnings" in aln.diagnostics:
        # the warnings about segments name their times: those of the old edges are replaced
        aln.diagnostics["warnings"] = [w for w in aln.diagnostics["warnings"]
                                       if w not in stale]
        add_quality_warnings(aln)
    return aln


def _levels(y16, sr):
    """(envelope dB, window centres s, floor, loud level) of ``y16``; None without 10
    windows or 6 dB of contrast (nothing to go by)."""
    db, t = loudness_envelope(y16, sr)
    if db.size < 10:
        return None
    floor, loud = np.percentile(db, [5, 95])
    return None if loud - floor < 6.0 else (db, t, floor, loud)


def _sound(y16, sr):
    """(loud (n,) bool, window centres (n,) s): the envelope above ``LOUD_SHARE`` of the
    way from its floor to its loud level; None as :func:`_levels`."""
    lv = _levels(y16, sr)
    if lv is None:
        return None
    db, t, floor, loud = lv
    return db >= floor + LOUD_SHARE * (loud - floor), t


def quiet_spans(y16: np.ndarray, sr: int, spans) -> list[bool]:
    """Per ``(start, end)`` span (s) of ``y16``: whether the median of its loudness
    envelope over the span lies below ``PAUSE_GATE_SHARE`` of the way from the
    recording's floor (5th percentile) to its loud level (95th); False for a span holding
    no window, True for every span without 10 windows or 6 dB of contrast."""
    lv = _levels(y16, sr)
    if lv is None:
        return [True] * len(spans)
    db, t, floor, loud = lv
    cut = floor + PAUSE_GATE_SHARE * (loud - floor)
    out = []
    for a, b in spans:
        inside = (t >= a) & (t <= b)
        out.append(bool(inside.any() and np.median(db[inside]) < cut))
    return out


def split_at_pauses(aln, y16: np.ndarray, sr: int = FEATURE_SR):
    """Two words of ``aln`` that touch are parted (in place) where a quiet stretch of at
    least ``MIN_PAUSE_S`` lies between them: envelope windows under the ``LOUD_SHARE``
    level, inside the last phone of the first word and the first phone of the second
    (``MIN_PHONE_S`` of each left), neither of them a stop or an affricate (their closure
    is as quiet as a pause and belongs to the word). The words and those two phones then
    meet ``MIN_GAP_S`` either side of the stretch's middle, a pause that
    :func:`refine_pause_edges` moves to where the sound stops and starts again.

    Parameters
    ----------
    aln : vqalign.align.Alignment
        Words and phones in the time of ``y16`` (its first sample at 0 s).
    y16 : ndarray (n_samples,)
    sr : int

    Returns
    -------
    Alignment
        ``aln``, with ``diagnostics["pauses_split"]`` counting the words parted.
    """
    if isinstance(aln, Exception) or y16 is None or aln.unit_tier != "phones":
        return aln
    words, units = aln.tiers.get("words") or [], aln.tiers.get("phones") or []
    sound = _sound(y16, sr) if len(words) > 1 and units else None
    if sound is None:
        return aln
    on, t = sound
    s, e = true_runs(~on)
    q0, q1 = t[s], t[e - 1]   # quiet runs
    ends = np.array([u.end for u in units])
    starts = np.array([u.start for u in units])
    split = 0
    for w, v in zip(words[:-1], words[1:]):
        if v.start - w.end > MIN_GAP_S:
            continue
        left = units[int(np.argmin(np.abs(ends - w.end)))]
        right = units[int(np.argmin(np.abs(starts - v.start)))]
        if CLOSURE & {left.label.upper().rstrip("012"), right.label.upper().rstrip("012")}:
            continue
        a = np.maximum(q0, left.start + MIN_PHONE_S)
        b = np.minimum(q1, right.end - MIN_PHONE_S)
        k = int(np.argmax(b - a)) if a.size else -1
        if k < 0 or b[k] - a[k] < MIN_PAUSE_S:
            continue
        mid = 0.5 * (a[k] + b[k])
        w.end = left.end = mid - MIN_GAP_S
        v.start = right.start = mid + MIN_GAP_S
        split += 1
    aln.diagnostics["pauses_split"] = split
    return aln


def refine_prepared(aln, p, sr: int = FEATURE_SR):
    """The aligners' hook: :func:`refine_pause_edges` of an alignment in the recording's
    time on the audio of the prepared utterance ``p`` (``p.y16`` from ``p.offset_s``);
    ``aln`` unchanged when ``ENABLED`` is False, it is an exception or ``p`` holds no
    audio."""
    if not ENABLED:
        return aln
    return refine_pause_edges(aln, getattr(p, "y16", None), sr,
                              offset_s=float(getattr(p, "offset_s", 0.0)))


def _rise_after(on, t, b, limit):
    """The first envelope time in (b, limit] whose window is loud, when the one at ``b``
    is quiet; None otherwise (or when no loud window comes before ``limit``)."""
    k = int(np.searchsorted(t, b))
    if k >= t.size or on[k] or limit <= b:
        return None
    stop = int(np.searchsorted(t, limit, side="right"))
    hit = np.flatnonzero(on[k:stop])
    if hit.size == 0:
        return None
    return float(t[k + hit[0]])


def _fall_before(on, t, b, limit):
    """The last envelope time in [limit, b) after which the windows are quiet, when the one
    at ``b`` is quiet; None otherwise."""
    k = int(np.searchsorted(t, b)) - 1
    if k < 0 or on[k] or limit >= b:
        return None
    start = int(np.searchsorted(t, limit))
    hit = np.flatnonzero(on[start:k + 1])
    if hit.size == 0:
        return None
    return float(t[start + hit[-1]])
