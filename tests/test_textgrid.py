"""vqalign.io.textgrid: round trips, gap filling, praatio compatibility, devdata, bad files."""

from __future__ import annotations

import csv

import pytest

from vqalign.exceptions import ParameterError
from vqalign.io.textgrid import read_textgrid, write_textgrid

TIERS = {
    "words": [(0.25, 0.5, "hello"), (0.5, 1.0 / 3 + 0.6, "world")],
    "phones": [(0.0, 0.25, "sil"), (0.25, 0.31, "HH"), (0.31, 0.5, "AH"),
               (0.5, 1.0 / 3 + 0.6, "W"), (1.0 / 3 + 0.6, 1.2, "sil")],
}


def test_round_trip_exact_times(tmp_path):
    p = write_textgrid(tmp_path / "a.TextGrid", TIERS, 1.2)
    back = read_textgrid(p)
    assert list(back) == ["words", "phones"]
    assert back["words"] == TIERS["words"]          # float times survive exactly
    assert back["phones"] == TIERS["phones"]


def test_gaps_filled_with_empty_intervals(tmp_path):
    p = write_textgrid(tmp_path / "a.TextGrid", TIERS, 1.2)
    full = read_textgrid(p, include_empty=True)
    words = full["words"]
    assert words[0] == (0.0, 0.25, "")
    assert words[-1] == (1.0 / 3 + 0.6, 1.2, "")
    assert all(a[1] == b[0] for a, b in zip(words[:-1], words[1:]))


def test_readable_by_praatio_long_format(tmp_path):
    from praatio import textgrid as ptg

    p = write_textgrid(tmp_path / "a.TextGrid", TIERS, 1.2)
    text = p.read_text()
    assert 'File type = "ooTextFile"' in text and "intervals [1]:" in text  # long format
    tg = ptg.openTextgrid(str(p), includeEmptyIntervals=True)
    assert tg.maxTimestamp == pytest.approx(1.2)
    assert [e.label for e in tg.getTier("phones").entries] == ["sil", "HH", "AH", "W", "sil"]


def test_duration_defaults_to_last_end(tmp_path):
    p = write_textgrid(tmp_path / "a.TextGrid", {"x": [(0.1, 0.7, "a")]})
    assert read_textgrid(p, include_empty=True)["x"][-1] == (0.1, 0.7, "a")


def test_overwrite_flag(tmp_path):
    p = tmp_path / "a.TextGrid"
    write_textgrid(p, TIERS, 1.2)
    before = p.read_text()
    with pytest.raises(ParameterError, match="exists; pass overwrite=True"):
        write_textgrid(p, {"x": [(0.0, 0.5, "b")]}, 0.5, overwrite=False)
    assert p.read_text() == before
    write_textgrid(p, {"x": [(0.0, 0.5, "b")]}, 0.5)
    assert read_textgrid(p) == {"x": [(0.0, 0.5, "b")]}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.TextGrid"]  # no temp files left


@pytest.mark.parametrize("tiers, duration, match", [
    ({}, None, "non-empty dict"),
    ({"x": [(0.5, 0.2, "a")]}, None, "end <= start"),
    ({"x": [(0.0, 0.5, "a"), (0.4, 0.6, "b")]}, None, "must be sorted and must not overlap"),
    ({"x": [(0.0, 0.5)]}, None, "each entry must be"),
    ({"x": [(-0.1, 0.5, "a")]}, None, "before 0"),
    ({"x": [(0.0, 2.0, "a")]}, 1.0, "after duration=1.0"),
    ({"x": []}, None, "all tiers are empty"),
    ({"x": [(0.0, 1.0, "a")]}, -1, "duration=-1.0 must be a positive"),
])
def test_write_bad_tiers(tmp_path, tiers, duration, match):
    with pytest.raises(ParameterError, match=match):
        write_textgrid(tmp_path / "bad.TextGrid", tiers, duration)
    assert not (tmp_path / "bad.TextGrid").exists()


def test_read_missing_and_corrupt(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        read_textgrid(tmp_path / "nope.TextGrid")
    bad = tmp_path / "bad.TextGrid"
    bad.write_text("this is not a textgrid\n")
    with pytest.raises(ParameterError, match="could not read .* as a Praat TextGrid"):
        read_textgrid(bad)
    good = write_textgrid(tmp_path / "good.TextGrid", TIERS, 1.2).read_text()
    cut = tmp_path / "cut.TextGrid"
    cut.write_text(good[: len(good) // 2])
    with pytest.raises(ParameterError, match="could not read"):
        read_textgrid(cut)


def test_read_devdata_textgrids(devdata):
    import soundfile as sf

    with open(devdata / "MANIFEST.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    # one utterance of each voice
    by_voice = {}
    for r in rows:
        by_voice.setdefault(r["voice"], r)
    for r in by_voice.values():
        wav = devdata / r["path"]
        tg = read_textgrid(wav.with_suffix(".TextGrid"), include_empty=True)
        assert set(tg) == {"words", "phones"}
        dur = sf.info(wav).frames / sf.info(wav).samplerate
        for tier in tg.values():
            assert tier[0][0] == 0.0
            assert tier[-1][1] == pytest.approx(dur, abs=1e-5)
            assert all(a[1] == b[0] for a, b in zip(tier[:-1], tier[1:]))
        words = [w for *_, w in tg["words"] if w]
        assert words == wav.with_suffix(".txt").read_text().split()
        assert len(words) == int(r["n_words"])
        nonempty = read_textgrid(wav.with_suffix(".TextGrid"))
        assert [w for *_, w in nonempty["words"]] == words
