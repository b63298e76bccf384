"""`vqalign bench score` against an independent scorer (tests/independent_scorer.py) on
held-out synthetic English, format invariance, bad inputs, and `bench align` fallbacks."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from tests import independent_scorer
from vqalign.cli import main

DATA = Path(__file__).parent / "data" / "bench"
# sentences that are not in vqalign.datasets.sentences (held out from any tuning)
HELD_OUT = ["a gentle breeze carried the smell of pine across the camp",
            "the library closes early on sunday during the winter",
            "two red kites floated high above the green hill",
            "he poured warm milk into a tall glass for his daughter",
            "the engineer checked every bolt on the old iron bridge",
            "bright lanterns lined the narrow street during the festival"]
VOICES = ["adam", "bruno", "clara", "dana"]


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """References (exact synth tiers) and vqalign's corpus-mode TextGrids."""
    import soundfile as sf

    from vqalign.align import Aligner
    from vqalign.datasets.synth import synthesize

    root = tmp_path_factory.mktemp("heldout")
    utts = [synthesize(s, voice=VOICES[k % 4], seed=900 + k) for k, s in enumerate(HELD_OUT)]
    for k, u in enumerate(utts):
        u.id = f"{u.voice}/h{k:02d}"
        (root / "ref" / u.voice).mkdir(parents=True, exist_ok=True)
        u.write_textgrid(root / "ref" / f"{u.id}.TextGrid")
        sf.write(root / "ref" / f"{u.id}.wav", u.audio, u.sr, subtype="PCM_16")
    corpus = [(u.audio, u.sr, u.text) for u in utts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = Aligner(n_jobs=2).fit(corpus).align_many(corpus, n_jobs=2)
    for u, a in zip(utts, results):
        a.write(root / "vqalign" / f"{u.id}.TextGrid")
    return {"root": root, "utts": utts, "vqalign": results}


@pytest.fixture(scope="module")
def pocketsphinx_dir(heldout):
    pytest.importorskip("pocketsphinx")
    from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
    from vqalign.io.textgrid import write_textgrid

    ps = PocketsphinxAligner()
    out = heldout["root"] / "pocketsphinx"
    for u in heldout["utts"]:
        r = ps.align(u.audio, u.text, sr=u.sr)
        (out / u.voice).mkdir(parents=True, exist_ok=True)
        write_textgrid(out / f"{u.id}.TextGrid", {"words": r["words"], "phones": r["phones"]},
                       u.duration)
    return out


def _score(capsys, *argv) -> dict:
    assert main(["bench", "score", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("system", ["vqalign", "pocketsphinx"])
def test_score_agrees_with_independent_scorer(system, heldout, request, capsys):
    hyp = heldout["root"] / "vqalign" if system == "vqalign" else \
        request.getfixturevalue("pocketsphinx_dir")
    ref = heldout["root"] / "ref"
    d = _score(capsys, "--ref", str(ref), "--hyp", f"{system}={hyp}")
    mine = d["systems"][system]["words"]
    indep = independent_scorer.score_dirs(ref, hyp)
    print(system, mine["mean_ms"], mine["pct_within_ms"]["20"], indep)
    n_words = sum(len(s.split()) for s in HELD_OUT)
    assert indep["n_boundaries"] == mine["n_boundaries"] == 2 * n_words
    assert abs(mine["mean_ms"] - indep["mean_ms"]) < 0.5
    assert abs(mine["pct_within_ms"]["20"] - indep["pct_within_20"]) < 0.5
    assert mine["n_unmatched"] == 0 and d["n_problems"] == 0
    assert set(d["systems"][system]["per_voice"]) == set(VOICES)
    assert len(d["systems"][system]["per_file"]) == len(HELD_OUT)
    assert d["systems"][system]["phones"]["n_boundaries"] > 0


def _write_formats(alignments, utts, root: Path) -> None:
    """One alignment written as TextGrid, WhisperX JSON, CTM and Gentle JSON, each from
    the format's documentation (times rounded to 1 ms so every format holds them)."""
    from vqalign.io.textgrid import write_textgrid

    for a, u in zip(alignments, utts):
        words = [(round(s, 3), round(e, 3), w) for s, e, w in a.tier("words")]
        stem = Path(u.id).name
        for sub in ("tg", "wx", "ctm", "gentle"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        write_textgrid(root / "tg" / f"{stem}.TextGrid", {"words": words}, u.duration)
        (root / "wx" / f"{stem}.json").write_text(json.dumps({"segments": [{
            "start": words[0][0], "end": words[-1][1], "text": u.text,
            "words": [{"word": w, "start": s, "end": e, "score": 0.9}
                      for s, e, w in words]}]}))
        (root / "ctm" / f"{stem}.ctm").write_text("".join(
            f"{stem} 1 {s:.3f} {e - s:.3f} {w} 1.00\n" for s, e, w in words))
        (root / "gentle" / f"{stem}.json").write_text(json.dumps({
            "transcript": u.text, "words": [{"alignedWord": w, "word": w, "case": "success",
                                             "start": s, "end": e} for s, e, w in words]}))


def test_same_alignments_in_four_formats_score_identically(heldout, tmp_path, capsys):
    _write_formats(heldout["vqalign"], heldout["utts"], tmp_path)
    d = _score(capsys, "--ref", str(heldout["root"] / "ref"),
               *[x for sub in ("tg", "wx", "ctm", "gentle")
                 for x in ("--hyp", f"{sub}={tmp_path / sub}")])
    s = d["systems"]
    assert {s[k]["words"]["n_boundaries"] for k in s} == {2 * sum(len(x.split())
                                                                  for x in HELD_OUT)}
    for k in ("wx", "ctm", "gentle"):
        for key in ("mean_ms", "median_ms", "p90_ms", "bias_onset_ms", "bias_offset_ms"):
            assert s[k]["words"][key] == pytest.approx(s["tg"]["words"][key], abs=1e-9), (k, key)
        assert s[k]["words"]["pct_within_ms"] == s["tg"]["words"]["pct_within_ms"]
    # the rounding to 1 ms moves the figures by less than 1 ms from the unrounded files
    raw = _score(capsys, "--ref", str(heldout["root"] / "ref"),
                 "--hyp", f"raw={heldout['root'] / 'vqalign'}")["systems"]["raw"]["words"]
    assert abs(raw["mean_ms"] - s["tg"]["words"]["mean_ms"]) < 1.0


def test_bad_inputs_are_reported_and_the_run_goes_on(tmp_path, capsys):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.mkdir()
    hyp.mkdir()
    for stem in "abcd":
        shutil.copy(DATA / "ref.TextGrid", ref / f"{stem}.TextGrid")
    shutil.copy(DATA / "ref_no_words.TextGrid", ref / "e.TextGrid")
    shutil.copy(DATA / "whisperx.json", hyp / "a.json")          # fine (one untimed token)
    shutil.copy(DATA / "unknown.align", hyp / "b.align")        # unknown format
    shutil.copy(DATA / "overlap.ctm", hyp / "c.ctm")            # overlapping intervals
    (hyp / "d.json").write_text(json.dumps([{"start": 0.3, "end": 0.62, "text": "hello"},
                                            {"start": 0.62, "end": 1.05, "text": "word"}]))
    shutil.copy(DATA / "nfa_words.ctm", hyp / "e.ctm")          # its reference lacks words
    lines = (DATA / "ref.TextGrid").read_text().splitlines()      # f: a words tier only
    cut = next(i for i, ln in enumerate(lines) if "item [2]" in ln)
    (ref / "f.TextGrid").write_text("\n".join(lines[:cut]).replace("size = 2 ", "size = 1 "))
    shutil.copy(DATA / "pocketsphinx.json", hyp / "f.json")     # hello world, with phones
    (hyp / "f.txt").write_text("hello world\n")                 # a transcript: noted, not read
    d = _score(capsys, "--ref", str(ref), "--hyp", f"x={hyp}")
    kinds = {(p["kind"], Path(p["file"]).name): p["message"] for p in d["problems"]}
    assert "line 1: unknown alignment format" in kinds[("unreadable", "b.align")]
    assert "line 2" in kinds[("unreadable", "c.ctm")] and "overlaps" in kinds[("unreadable",
                                                                              "c.ctm")]
    msg = kinds[("words differ", "d.json")]
    assert "'word'" in msg and "not in the reference" in msg and "'world'" in msg
    assert "ref.TextGrid" not in msg and "d.TextGrid line" in msg   # the reference's line
    assert "no words tier" in kinds[("reference", "e.TextGrid")]
    assert "no reference" in kinds[("no reference", "e.ctm")]   # e's reference is unusable
    assert "no phones tier" in kinds[("reference", "f.TextGrid")]
    assert "3 missing" in kinds[("words differ", "f.json")]
    assert d["n_problems"] == 7 and "1 file(s) with extension(s) .txt not read" in d["notes"][0]
    x = d["systems"]["x"]
    # a: hello, world, it's timed; "42." -> forty two, untimed (4 boundaries); d: hello;
    # f: hello, world
    assert x["n_files"] == 3 and x["words"]["n_untimed"] == 4
    assert x["words"]["n_boundaries"] == 2 * 3 + 2 + 2 * 2
    assert x["words"]["n_inserted"] == 1 and x["words"]["n_missing"] == 4 + 3
    assert "phones" not in x
    # text output lists them too
    assert main(["bench", "score", "--ref", str(ref), "--hyp", f"x={hyp}"]) == 0
    out = capsys.readouterr().out
    assert "7 problem(s)" in out and "b.align line 1" in out


def test_report_and_figure_files(heldout, tmp_path, capsys):
    rep, fig = tmp_path / "r.html", tmp_path / "f.png"
    argv = ["bench", "score", "--ref", str(heldout["root"] / "ref"), "--hyp",
            f"vqalign={heldout['root'] / 'vqalign'}", "--report", str(rep), "--figure", str(fig)]
    assert main(argv) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = rep.read_text(encoding="utf-8")
    assert page.count("<audio id=") == len(HELD_OUT) and "data:audio/wav;base64," in page
    assert "reference words" in page and "vqalign phones" in page
    capsys.readouterr()
    assert main(argv) == 2                                # nothing overwritten silently
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_score_argument_errors(tmp_path, capsys):
    assert main(["bench", "score", "--ref", str(DATA), "--hyp", "nameonly"]) == 2
    assert "is not NAME=PATH" in capsys.readouterr().err
    assert main(["bench", "score", "--ref", str(DATA), "--hyp", f"a={tmp_path / 'nope'}"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_bench_align_without_corpus_uses_synth_and_skips_missing_peers(monkeypatch, tmp_path,
                                                                      capsys):
    import vqalign.bench.align as bench_align
    import vqalign.bench.peers as peers

    monkeypatch.setattr(bench_align, "DEFAULT_CORPUS", tmp_path / "no-such-devdata")
    real = peers.availability
    monkeypatch.setattr(peers, "availability",
                        lambda name: "not installed here (test)" if name == "bfa" else real(name))
    save = tmp_path / "saved"
    assert main(["bench", "align", "--no-pocketsphinx", "--peers", "bfa", "--synth", "3",
                 "--jobs", "1", "--n-iter", "3", "--save", str(save)]) == 0
    out = capsys.readouterr().out
    assert "using built-in synthesized speech" in out and "3 utterances" in out
    assert "skipping bfa: not installed here (test)" in out
    assert "vqalign" in out and "load/train s" in out
    # the saved alignments re-score to the figures the run printed
    mean = float(next(ln for ln in out.splitlines() if "vqalign" in ln and "overall" in ln
                      ).split()[3])
    d = _score(capsys, "--ref", str(save / "reference"), "--hyp", f"v={save / 'vqalign'}")
    assert d["systems"]["v"]["words"]["mean_ms"] == pytest.approx(mean, abs=0.06)
    assert d["systems"]["v"]["n_files"] == 3
    with pytest.raises(SystemExit, match="^0$"):          # --help exits cleanly
        main(["bench", "align", "--help"])
    assert "built-in synthesized speech" in " ".join(capsys.readouterr().out.split())
