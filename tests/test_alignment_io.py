"""Alignment objects and their files: JSON / TextGrid / CTM round trips (checked with
praatio and plain text parsing), refusing to overwrite, atomic writes, quality warnings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vqalign.align.alignment import Alignment, Segment, add_quality_warnings, read_alignment
from vqalign.exceptions import ParameterError
from vqalign.history import History


def _example() -> Alignment:
    h = History("em")
    h.append(log_likelihood=-50.5, loss=50.5)
    h.append(log_likelihood=-40.25, loss=40.25)
    return Alignment(
        tiers={
            "words": [Segment(0.12, 0.48, "hello", 0.91), Segment(0.55, 1.031, "world", 0.5)],
            "phones": [Segment(0.12, 0.2, "HH"), Segment(0.2, 0.3, "AH"), Segment(0.3, 0.38, "L"),
                       Segment(0.38, 0.48, "OW"), Segment(0.55, 0.7, "W"),
                       Segment(0.7, 0.85, "ER"), Segment(0.85, 0.95, "L"),
                       Segment(0.95, 1.031, "D")],
        },
        audio="/data/utt 1.wav", sample_rate=16000, duration=1.25,
        diagnostics={"hop_s": 0.01, "frame_loglik": [-1.5, float("nan"), -2.0],
                     "em_history": h.to_dict(), "warnings": []},
    )


def test_json_round_trip_and_format(tmp_path):
    a = _example()
    p = a.write(tmp_path / "out.json")
    d = json.loads(p.read_text(encoding="utf-8"))
    # DESIGN.md format, checked by plain JSON parsing
    assert d["audio"] == "/data/utt 1.wav" and d["sample_rate"] == 16000
    assert d["tiers"]["words"][0] == [0.12, 0.48, "hello", 0.91]
    assert d["tiers"]["phones"][0] == [0.12, 0.2, "HH", None]      # unknown confidence
    assert d["diagnostics"]["frame_loglik"] == [-1.5, None, -2.0]   # NaN -> null
    assert History.from_dict(d["diagnostics"]["em_history"])["log_likelihood"].tolist() == [
        -50.5, -40.25]
    b = read_alignment(p)
    assert b.tier("words") == a.tier("words") and b.tier("phones") == a.tier("phones")
    assert b.words[0].confidence == 0.91 and math.isnan(b.tiers["phones"][0].confidence)
    assert b.duration == 1.25 and b.audio == a.audio and b.sample_rate == 16000
    assert Alignment.from_dict(a.to_dict()).to_dict() == a.to_dict()


def test_indented_json_is_the_text_of_json_dumps():
    from vqalign.align.alignment import dumps_indented
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 7)) * 10.0 ** rng.integers(-8, 9, size=(50, 1))
    cases = [_example().to_dict(), {}, [], {"a": [], "b": {}}, [[]], [[], [1]],
             [1, "é\n\"x\"", None, True, False, 1.5e-300, 10**30, 1e22, -0.0],
             {"rows": rows.tolist(), "ints": list(range(5)), "mixed": [[1.0, "w", None]],
              "deep": {"k": [[1.0, 2], [3, [4, {"z": [], "y": [0.5]}]]]}},
             "s", 1.0, None, (1, 2), {"t": (0.25, (1, 2))}]
    for x in cases:
        for indent in (1, 2, 4):
            assert dumps_indented(x, indent) == json.dumps(
                x, indent=indent, ensure_ascii=False, allow_nan=False)
    assert dumps_indented({1: [2]}) == json.dumps({1: [2]}, indent=1)   # a key not a str
    for bad in ([float("nan")], {"a": [1.0, float("inf")]}, [[float("-inf")]]):
        with pytest.raises(ValueError, match="JSON compliant"):
            dumps_indented(bad)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_indented({"a": [np.int64(3)]})


def test_textgrid_round_trip_checked_with_praatio(tmp_path):
    from praatio import textgrid as ptg

    a = _example()
    p = a.write(tmp_path / "out.TextGrid")
    tg = ptg.openTextgrid(str(p), includeEmptyIntervals=True)
    assert tg.maxTimestamp == pytest.approx(1.25)
    words = [(e.start, e.end, e.label) for e in tg.getTier("words").entries]
    # the tier covers [0, duration]; gaps are empty intervals
    assert words == [(0.0, 0.12, ""), (0.12, 0.48, "hello"), (0.48, 0.55, ""),
                     (0.55, 1.031, "world"), (1.031, 1.25, "")]
    phones = [e.label for e in tg.getTier("phones").entries]
    assert phones == ["", "HH", "AH", "L", "OW", "", "W", "ER", "L", "D", ""]
    b = read_alignment(p)
    assert b.tier("words") == a.tier("words") and b.tier("phones") == a.tier("phones")
    assert b.duration == pytest.approx(1.25)


def test_ctm_format_and_round_trip(tmp_path):
    a = _example()
    p = a.write(tmp_path / "out.ctm")
    lines = p.read_text().splitlines()
    # Kaldi CTM: <utt> <channel> <start> <dur> <word> <conf>
    assert lines == ["utt_1 1 0.120 0.360 hello 0.910", "utt_1 1 0.550 0.481 world 0.500"]
    b = read_alignment(p)
    assert [(round(s, 3), round(e, 3), w) for s, e, w in b.tier("words")] == [
        (0.12, 0.48, "hello"), (0.55, 1.031, "world")]
    assert b.audio == "utt_1"
    phones_ctm = a.to_ctm(tier="phones", utterance="u")
    assert phones_ctm.splitlines()[0] == "u 1 0.120 0.080 HH"   # no confidence: 5 columns
    with pytest.raises(ParameterError, match="no tier 'chars'"):
        a.to_ctm(tier="chars")


def test_format_override_and_unknown_suffix(tmp_path):
    a = _example()
    p = a.write(tmp_path / "out.txt", format="json")
    assert json.loads(p.read_text())["tiers"]["words"][1][2] == "world"
    with pytest.raises(ParameterError, match=r"suffix '.txt'.*\.TextGrid, \.json or \.ctm"):
        a.write(tmp_path / "other.txt")
    with pytest.raises(ParameterError, match="format='xml'"):
        a.write(tmp_path / "x.json", format="xml")


@pytest.mark.parametrize("name", ["out.json", "out.TextGrid", "out.ctm"])
def test_refuses_to_overwrite(tmp_path, name):
    p = tmp_path / name
    p.write_text("precious")
    with pytest.raises(ParameterError, match="exists; pass overwrite=True"):
        _example().write(p)
    assert p.read_text() == "precious"
    _example().write(p, overwrite=True)
    assert p.read_text() != "precious"
    assert read_alignment(p).tier("words")[0][2] == "hello"


@pytest.mark.parametrize("name", ["out.json", "out.TextGrid", "out.ctm"])
def test_atomic_write_leaves_old_file_on_failure(tmp_path, name, monkeypatch):
    p = tmp_path / name
    p.write_text("precious")

    def boom(fd):
        raise OSError("disk full")

    # the content is written to a temporary file, then the flush to disk fails:
    # the target must keep its old content and no temporary file may be left behind
    import vqalign.io.atomic as atomic
    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        _example().write(p, overwrite=True)
    assert p.read_text() == "precious"
    assert sorted(f.name for f in tmp_path.iterdir()) == [name]


def test_segments_validated():
    with pytest.raises(ParameterError, match="overlap or are out of order"):
        Alignment(tiers={"words": [(0.0, 0.5, "a"), (0.4, 0.8, "b")]})
    with pytest.raises(ParameterError, match="need 0 <= start <= end"):
        Alignment(tiers={"words": [(0.5, 0.2, "a")]})
    with pytest.raises(ParameterError, match="duration 0.500000 s is shorter"):
        Alignment(tiers={"words": [(0.0, 0.8, "a")]}, duration=0.5)
    with pytest.raises(ParameterError, match="dict of tiers"):
        Alignment(tiers={})
    a = Alignment(tiers={"words": [[0.0, 0.5, "a", None], (0.5, 0.9, "b")]})
    assert a.duration == 0.9 and math.isnan(a.words[0].confidence)
    with pytest.raises(ParameterError, match="needs a 'tiers' key"):
        Alignment.from_dict({"audio": "x"})


def test_read_alignment_errors(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        read_alignment(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ParameterError, match="not a valid alignment JSON"):
        read_alignment(bad)
    ctm = tmp_path / "bad.ctm"
    ctm.write_text("utt 1 0.1\n")
    with pytest.raises(ParameterError, match="line 1"):
        read_alignment(ctm)


def test_quality_warnings():
    a = Alignment(
        tiers={"words": [Segment(0.1, 0.5, "hello", 0.9), Segment(2.0, 2.4, "there", 0.1)],
               "phones": [Segment(0.1, 0.11, "HH"), Segment(0.11, 0.2, "AH"),
                          Segment(0.2, 0.3, "L"), Segment(0.3, 0.5, "OW"),
                          Segment(2.0, 2.1, "DH"), Segment(2.1, 2.3, "EH"),
                          Segment(2.3, 2.4, "R", 0.05)]},  # phones: no conf. warning
        duration=2.6)
    added = add_quality_warnings(a)
    assert len(added) == 3
    assert any("'HH' at 0.100 s lasts 10 ms (< 20 ms)" in w for w in added)
    assert any("'there'" in w and "low confidence 0.10" in w for w in added)
    assert any("1.50 s of silence between 'hello' and 'there'" in w for w in added)
    assert a.warnings == added
    assert add_quality_warnings(a) == []           # not repeated
    assert len(a.diagnostics["warnings"]) == 3
    assert "3 warnings" in a.summary()
    clean = Alignment(tiers={"words": [Segment(0.1, 0.5, "hi", 0.9)]}, duration=0.7)
    assert add_quality_warnings(clean) == []
    with pytest.raises(ParameterError, match="min_segment_s"):
        add_quality_warnings(clean, min_segment_s=-1)


def test_stretched_units_warned():
    # 4 words spread over speech that held 10: units of ~250 ms, one of 450 ms
    phones = [Segment(0.2 + 0.25 * k, 0.45 + 0.25 * k, "AH") for k in range(8)]
    phones.append(Segment(2.2, 2.65, "IY"))
    def make():
        return Alignment(tiers={"words": [Segment(0.2, 1.2, "could"), Segment(1.2, 2.2, "you"),
                                          Segment(2.2, 2.65, "me")], "phones": list(phones)},
                         duration=2.7)

    added = add_quality_warnings(make())
    assert len(added) == 2
    assert "phones: 'IY' at 2.200 s lasts 450 ms (> 400 ms)" in added[0]
    assert "median phone lasts 250 ms (> 180 ms" in added[1]
    assert add_quality_warnings(make(), max_unit_s=0.5, max_median_unit_s=0.3) == []


def test_ctm_keeps_shared_boundaries_under_rounding(tmp_path):
    # 0.3125 s rounds differently as an end (start + duration) than as a start unless
    # both ends are rounded first; a reader must not see overlapping words
    a = Alignment(tiers={"words": [Segment(0.2555, 0.3125, "a"), Segment(0.3125, 0.5005, "b"),
                                   Segment(0.5005, 0.9, "c")]})
    p = a.write(tmp_path / "x.ctm")
    rows = [ln.split() for ln in p.read_text().splitlines()]
    for r1, r2 in zip(rows[:-1], rows[1:]):
        assert abs(float(r1[2]) + float(r1[3]) - float(r2[2])) < 1e-9
    b = read_alignment(p)
    assert [w for _, _, w in b.tier("words")] == ["a", "b", "c"]
    np.testing.assert_allclose([x[:2] for x in b.tier("words")], [x[:2] for x in a.tier("words")],
                               atol=0.0006)
