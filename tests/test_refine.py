"""Pause-adjacent word boundaries moved to where the sound starts or stops
(vqalign.align.refine), checked on audio whose sound starts and stops at known samples."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.align import refine
from vqalign.align.alignment import Alignment, Segment

SR = 16000


def _audio(on_s, off_s, total_s=2.0, seed=0):
    """Noise at -70 dB with loud noise (about -10 dB) from on_s to off_s (each pair)."""
    rng = np.random.default_rng(seed)
    y = 3e-4 * rng.standard_normal(int(total_s * SR))
    for a, b in zip(on_s, off_s):
        y[int(a * SR):int(b * SR)] += 0.3 * rng.standard_normal(int(b * SR) - int(a * SR))
    return y.astype(np.float32)


def _aln(words, phones, duration=2.0):
    return Alignment(tiers={"words": [Segment(s, e, lab, 0.5) for s, e, lab in words],
                            "phones": [Segment(s, e, lab, 0.5) for s, e, lab in phones]},
                     audio=None, sample_rate=SR, duration=duration, diagnostics={})


def test_leading_and_trailing_silence_given_back():
    y = _audio([0.40], [1.30])
    # the aligner put the word 60 ms early and 80 ms late, in the near-floor noise
    a = _aln([(0.34, 0.80, "one"), (0.80, 1.38, "two")],
             [(0.34, 0.55, "W"), (0.55, 0.80, "AH"), (0.80, 1.00, "T"), (1.00, 1.38, "UW")])
    refine.refine_pause_edges(a, y, SR)
    w = a.tiers["words"]
    assert abs(w[0].start - 0.40) <= 0.006 and abs(w[1].end - 1.30) <= 0.006
    # the phones at the edges move with the words; the boundary between the two touching
    # words and the inner phone boundaries stay
    p = a.tiers["phones"]
    assert p[0].start == w[0].start and p[-1].end == w[1].end
    assert (w[0].end, w[1].start, p[1].start, p[2].start, p[3].start) == (0.80, 0.80, 0.55,
                                                                           0.80, 1.00)
    assert a.diagnostics["pause_edges_moved"] == 2


def test_warnings_name_the_moved_times():
    """A low-confidence word whose edge is moved is warned about at its new times, not
    its old ones (the aligners warn before they refine); other warnings stay."""
    from vqalign.align.alignment import add_quality_warnings

    y = _audio([0.40], [1.30])
    a = _aln([(0.34, 0.80, "one"), (0.80, 1.38, "two")],
             [(0.34, 0.55, "W"), (0.55, 0.80, "AH"), (0.80, 1.00, "T"), (1.00, 1.38, "UW")])
    a.words[0].confidence = 0.3
    a.diagnostics["warnings"] = ["transcript: a warning of another kind"]
    add_quality_warnings(a)
    assert any("'one' at 0.340-0.800 s has low confidence" in m for m in a.warnings)
    refine.refine_pause_edges(a, y, SR)
    start = a.words[0].start
    assert abs(start - 0.40) <= 0.006
    assert not any("0.340-0.800" in m for m in a.warnings)
    assert sum(f"'one' at {start:.3f}-0.800 s has low confidence" in m
               for m in a.warnings) == 1
    assert a.warnings[0] == "transcript: a warning of another kind"


def test_inner_pause_and_boundaries_in_loud_audio():
    y = _audio([0.30, 1.00], [0.70, 1.60])
    # word one ends late into the pause; word two starts inside the loud part (late, not
    # in quiet: left alone) and ends early (inside loud audio: left alone)
    a = _aln([(0.30, 0.78, "one"), (1.05, 1.50, "two")],
             [(0.30, 0.78, "W"), (1.05, 1.50, "T")])
    refine.refine_pause_edges(a, y, SR)
    w = a.tiers["words"]
    assert abs(w[0].end - 0.70) <= 0.006
    assert (w[0].start, w[1].start, w[1].end) == (0.30, 1.05, 1.50)


def test_moves_are_bounded():
    y = _audio([0.60], [1.20])
    # 250 ms early: more than MAX_MOVE_S, so it moves at most that far, and the first
    # phone keeps MIN_PHONE_S
    a = _aln([(0.35, 1.20, "one")], [(0.35, 0.62, "W"), (0.62, 1.20, "AH")])
    refine.refine_pause_edges(a, y, SR)
    assert a.tiers["words"][0].start == 0.35     # no loud window within reach: unchanged
    b = _aln([(0.50, 1.20, "one")], [(0.50, 0.62, "W"), (0.62, 1.20, "AH")])
    refine.refine_pause_edges(b, y, SR)
    assert abs(b.tiers["words"][0].start - 0.60) <= 0.006
    c = _aln([(0.50, 1.20, "one")], [(0.50, 0.605, "W"), (0.605, 1.20, "AH")])
    refine.refine_pause_edges(c, y, SR)
    # the first phone would be shorter than MIN_PHONE_S: its start cannot reach 0.60
    assert c.tiers["words"][0].start <= 0.605 - refine.MIN_PHONE_S + 1e-9


def test_flat_audio_and_offsets():
    rng = np.random.default_rng(1)
    flat = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    a = _aln([(0.2, 0.6, "one")], [(0.2, 0.6, "W")], duration=1.0)
    refine.refine_pause_edges(a, flat, SR)   # no contrast: nothing moves
    assert (a.tiers["words"][0].start, a.tiers["words"][0].end) == (0.2, 0.6)
    y = _audio([0.40], [1.30])
    b = _aln([(1.34, 2.38, "one")], [(1.34, 2.38, "W")], duration=3.0)
    refine.refine_pause_edges(b, y, SR, offset_s=1.0)    # audio from 1.0 s on
    assert b.tiers["words"][0].start == pytest.approx(1.40, abs=0.006)
    assert b.tiers["words"][0].end == pytest.approx(2.30, abs=0.006)


def test_envelope_is_the_windowed_power_of_the_pre_emphasized_audio():
    rng = np.random.default_rng(2)
    y = rng.standard_normal(800).astype(np.float32)
    db, t = refine.loudness_envelope(y, SR)
    z = np.concatenate([[y[0]], y[1:] - 0.97 * y[:-1]]).astype(np.float64)
    w, h = 160, 16
    k = 7
    assert db[k] == pytest.approx(10 * np.log10(np.mean(z[k * h:k * h + w] ** 2) + 1e-12))
    assert t[k] == pytest.approx((k * h + w / 2) / SR)


def test_units_found_by_bisection_move_as_by_the_scan_of_every_unit():
    """Many words with pauses between them: the edges moved with the units found by
    bisection equal those of the scan over every unit (the road of units out of order)."""
    rng = np.random.default_rng(5)
    n = 30
    on = np.cumsum(rng.uniform(0.25, 0.5, n))
    off = on + rng.uniform(0.12, 0.2, n)
    y = _audio(on, off, total_s=float(off[-1] + 0.5), seed=2)
    words, phones = [], []
    for k, (a, b) in enumerate(zip(on, off)):
        a2, b2 = a - rng.uniform(0.0, 0.02), b + rng.uniform(0.0, 0.02)   # in the quiet
        mid = (a2 + b2) / 2
        words.append((a2, b2, f"w{k}"))
        phones += [(a2, mid, "AA"), (mid, b2, "B")]
    dur = len(y) / SR
    fast = refine.refine_pause_edges(_aln(words, phones, dur), y, SR)
    # the same units, shuffled: refine cannot bisect and scans them all
    shuffled = _aln(words, phones, dur)
    order = rng.permutation(len(phones))
    shuffled.tiers["phones"] = [shuffled.tiers["phones"][i] for i in order]
    slow = refine.refine_pause_edges(shuffled, y, SR)
    assert fast.diagnostics["pause_edges_moved"] == slow.diagnostics["pause_edges_moved"] > n
    assert fast.tiers["words"] == slow.tiers["words"]
    assert fast.tiers["phones"] == sorted(slow.tiers["phones"], key=lambda s: s.start)


# ------------------------------------------------------------------ split_at_pauses
def _junction(left="S", right="M"):
    """Two touching words meeting at 1.00 s ("ask me"): phones ``left`` and ``right`` at
    the junction."""
    return _aln([(0.40, 1.00, "ask"), (1.00, 1.60, "me")],
                [(0.40, 0.70, "AE"), (0.70, 1.00, left), (1.00, 1.30, right),
                 (1.30, 1.60, "IY")])


def test_touching_words_are_parted_at_a_quiet_stretch_between_them():
    """Sound 0.40-0.97 and 1.03-1.60 s (a 60 ms pause the aligner did not place): the
    words are parted, and the pause edges then moved by refine_pause_edges lie within
    6 ms (half an envelope window and a hop) of where the sound stops and starts."""
    y = _audio([0.40, 1.03], [0.97, 1.60])
    a = _junction()
    refine.split_at_pauses(a, y, SR)
    assert a.diagnostics["pauses_split"] == 1
    w, p = a.tiers["words"], a.tiers["phones"]
    assert 0.97 < w[0].end < w[1].start < 1.03
    assert (p[1].end, p[2].start) == (w[0].end, w[1].start)
    refine.refine_pause_edges(a, y, SR)
    assert abs(w[0].end - 0.97) <= 0.006 and abs(w[1].start - 1.03) <= 0.006
    assert (p[1].end, p[2].start) == (w[0].end, w[1].start)
    assert [s.end for s in p[:1]] == [0.70] and p[3].start == 1.30   # inner phones stay


@pytest.mark.parametrize("left,right", [("T", "M"), ("S", "P"), ("S", "CH")])
def test_no_pause_is_taken_next_to_a_stop_or_an_affricate(left, right):
    """The same quiet stretch where a stop or an affricate meets the junction: it may be
    that phone's closure, so the words stay joined."""
    y = _audio([0.40, 1.03], [0.97, 1.60])
    a = _junction(left, right)
    refine.split_at_pauses(a, y, SR)
    w = a.tiers["words"]
    assert a.diagnostics["pauses_split"] == 0 and w[0].end == w[1].start == 1.00


def test_a_stretch_shorter_than_a_pause_or_outside_the_meeting_phones_is_left():
    """A 12 ms quiet stretch at the junction (under MIN_PAUSE_S once the windows' width is
    taken off) and a 60 ms one inside the second word's last phone: nothing parted."""
    y = _audio([0.40, 1.006], [0.994, 1.60])
    a = _junction()
    refine.split_at_pauses(a, y, SR)
    assert a.diagnostics["pauses_split"] == 0
    y = _audio([0.40, 1.43], [1.37, 1.60])
    a = _junction()
    refine.split_at_pauses(a, y, SR)
    assert a.diagnostics["pauses_split"] == 0
    assert a.tiers["words"][0].end == a.tiers["words"][1].start == 1.00
