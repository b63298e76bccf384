"""``vqalign align INPUT... --out-dir DIR``: many files, each aligned by the single-file
method in worker processes, gives exactly what ``vqalign align FILE TEXT --out X`` gives
for each file; pairing problems are listed and the rest aligned; nothing is replaced
without --overwrite; list files work."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from vqalign.cli import main
from vqalign.datasets.synth import synthesize

TEXTS = ["a small red boat sailed home", "the quick brown fox jumped", "four queen of clubs"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    truth = {}
    for k, text in enumerate(TEXTS):
        u = synthesize(text, seed=70 + k, voice="clara")
        sub = root / ("spk" if k == 2 else "")
        sub.mkdir(exist_ok=True)
        sf.write(sub / f"u{k}.wav", u.audio, u.sr)
        (sub / f"u{k}.txt").write_text(u.text + "\n")
        truth[("spk/" if k == 2 else "") + f"u{k}"] = [w for w in u.words if w[2]]
    sf.write(root / "lonely.wav", np.zeros(16000, np.float32), 16000)
    (root / "orphan.txt").write_text("no audio for me\n")
    return root, truth


def _tiers(path):
    return json.loads(path.read_text())["tiers"]


def test_folder_matches_one_at_a_time(corpus, tmp_path, capsys):
    root, truth = corpus
    out = tmp_path / "out"
    rc = main(["align", str(root), "--out-dir", str(out), "--jobs", "2", "--quiet",
               "--format", "json,TextGrid"])
    captured = capsys.readouterr()
    assert rc == 1                                   # two pairing failures, listed
    assert "aligned 3, kept 0" in captured.out and "failed 2" in captured.out
    assert "lonely" in captured.err and "orphan" in captured.err
    failures = (out / "failures.tsv").read_text()
    assert "audio without a transcript" in failures and "transcript without audio" in failures
    for uid, words in truth.items():
        got = _tiers(out / f"{uid}.json")
        assert (out / f"{uid}.TextGrid").is_file()
        assert [w[2] for w in got["words"]] == [w[2] for w in words]
        err = np.mean([abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(got["words"], words)])
        assert 1000 * err / 2 < 40, (uid, err)
    # the same as the single-file command on one of them
    single = tmp_path / "single.json"
    assert main(["align", str(root / "u0.wav"), str(root / "u0.txt"), "--out", str(single)]) == 0
    assert _tiers(single) == _tiers(out / "u0.json")


def test_resume_overwrite_and_list_file(corpus, tmp_path, capsys):
    root, truth = corpus
    out = tmp_path / "out"
    lst = tmp_path / "files.list"
    lst.write_text(f"# two files\n{root / 'u0.wav'}\n{root / 'u1.wav'}\t{root / 'u1.txt'}\n")
    assert main(["align", str(lst), "--out-dir", str(out), "--jobs", "1", "--quiet"]) == 0
    first = (out / "u0.json").stat().st_mtime_ns
    os.utime(out / "u0.json", ns=(first - 10**9, first - 10**9))
    assert main(["align", str(lst), "--out-dir", str(out), "--jobs", "1", "--quiet"]) == 0
    assert "aligned 0, kept 2" in capsys.readouterr().out
    assert (out / "u0.json").stat().st_mtime_ns == first - 10**9     # not replaced
    arpabet = [p[2] for p in _tiers(out / "u0.json")["phones"]]
    assert main(["align", str(lst), "--out-dir", str(out), "--jobs", "1", "--quiet",
                 "--overwrite", "--phoneset", "misaki"]) == 0
    assert "aligned 2, kept 0" in capsys.readouterr().out
    assert (out / "u0.json").stat().st_mtime_ns != first - 10**9
    from vqalign.phones import ARPABET_TO_MISAKI

    assert [p[2] for p in _tiers(out / "u0.json")["phones"]] == \
        [ARPABET_TO_MISAKI[a] for a in arpabet]


def test_bad_inputs(corpus, tmp_path, capsys):
    root, _ = corpus
    assert main(["align", str(root / "u0.wav"), "--out", str(tmp_path / "x.json")]) == 2
    assert "give one AUDIO and its TRANSCRIPT" in capsys.readouterr().err
    assert main(["align", str(tmp_path / "nope"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["align", str(root / "lonely.wav"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "nothing to align" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_batch_json(corpus, tmp_path, capsys, monkeypatch):
    """bench batch on the synthesized folder (references are the synthesizer's exact
    TextGrids written beside the audio): every file aligned by both sides, the audio
    length the files' own, and vqalign's words as close to the truth as align gives."""
    root, truth = corpus
    for uid, words in truth.items():
        from vqalign.io.textgrid import write_textgrid

        dur = sf.info(str(root / f"{uid}.wav")).duration
        write_textgrid(root / f"{uid}.TextGrid", {"words": words}, dur)
    try:
        # the folder given relative to the working directory, as in the README
        monkeypatch.chdir(root.parent)
        assert main(["bench", "batch", "--corpus", root.name, "--jobs", "1", "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
    finally:
        for uid in truth:
            (root / f"{uid}.TextGrid").unlink()
    assert res["files"] == 3 and res["vqalign"]["aligned"] == 3
    assert res["pocketsphinx"]["aligned"] == 3
    assert abs(res["audio_s"] - sum(sf.info(str(root / f"{u}.wav")).duration
                                    for u in truth)) < 1e-6
    assert res["vqalign"]["words"]["mean_ms"] < 40
