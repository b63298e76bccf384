"""``vqalign view``: a page for any alignment files of one recording or of a folder, checked
for its content, its bad inputs, and in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from vqalign.align.alignment import Alignment
from vqalign.bench.view import read_view_tiers
from vqalign.cli import main
from vqalign.datasets.synth import synthesize
from vqalign.exceptions import ParameterError
from vqalign.io.textgrid import write_textgrid

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--mute-audio"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two synthesized recordings, each with a vqalign JSON (truth shifted by 10 ms,
    confidences 0.9 / 0.2 alternating) and a TextGrid of the exact truth."""
    root = tmp_path_factory.mktemp("view")
    (root / "vq").mkdir()
    (root / "tg").mkdir()
    for k, text in enumerate(["the quick brown fox", "a small red boat"]):
        u = synthesize(text, seed=60 + k, voice="clara")
        sf.write(root / f"u{k}.wav", u.audio, u.sr)
        words = [(s + 0.01, e + 0.01, w, 0.9 if i % 2 == 0 else 0.2)
                 for i, (s, e, w) in enumerate(x for x in u.words if x[2])]
        phones = [(s + 0.01, e + 0.01, p, 0.5) for s, e, p in u.phones if p != "sil"]
        aln = Alignment(tiers={"words": words, "phones": phones},
                        duration=u.audio.size / u.sr, audio=f"u{k}.wav")
        aln.write(root / "vq" / f"u{k}.json")
        write_textgrid(root / "tg" / f"u{k}.TextGrid",
                       {"words": [w for w in u.words if w[2]], "phones": u.phones},
                       u.audio.size / u.sr)
    return root


def _payload(page: str) -> dict:
    m = re.search(r"<script type='application/json' id='vq-data'>(.*?)</script>", page, re.S)
    return json.loads(m.group(1))


def test_one_recording_two_aligners(folder, tmp_path, capsys):
    out = tmp_path / "p.html"
    assert main(["view", str(folder / "u0.wav"), str(folder / "vq" / "u0.json"),
                 str(folder / "tg" / "u0.TextGrid"), "--names", "mine,truth",
                 "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", page)   # self-contained
    assert "<audio id='audio-0'" in page and "alt='spectrogram'" in page
    rows = _payload(page)["utterances"][0]["rows"]
    assert [r["name"] for r in rows] == ["mine words", "mine phones", "truth words",
                                         "truth phones"]
    # the JSON's confidences are carried (alternating 0.9 / 0.2); the TextGrid has none
    assert [s[4] for s in rows[0]["segs"]] == [0.9, 0.2, 0.9, 0.2]
    assert rows[0]["segs"][0][3] != rows[0]["segs"][1][3]
    assert all(s[3] is None for s in rows[2]["segs"])
    # times as written: the JSON is the truth shifted by 10 ms
    assert np.allclose([s[0] - t[0] for s, t in zip(rows[0]["segs"], rows[2]["segs"])],
                       0.01, atol=1e-6)
    assert "1 recording(s) drawn" in capsys.readouterr().out


def test_folder_modes_and_missing(folder, tmp_path, capsys):
    sf.write(folder / "lonely.wav", np.zeros(1600, np.float32), 16000)
    try:
        out = tmp_path / "all.html"
        assert main(["view", str(folder), str(folder / "vq"), str(folder / "tg"),
                     "--out", str(out)]) == 0
        assert [u["id"] for u in _payload(out.read_text())["utterances"]] == ["u0", "u1"]
        err = capsys.readouterr().err
        assert "no alignment for" in err and "lonely.wav" in err
        pages = tmp_path / "pages"
        assert main(["view", str(folder), str(folder / "vq"), "--out-dir", str(pages)]) == 0
        assert sorted(p.name for p in pages.iterdir()) == ["u0.html", "u1.html"]
        before = (pages / "u0.html").read_bytes()
        assert main(["view", str(folder), str(folder / "tg"), "--out-dir", str(pages)]) == 2
        assert re.search(r"2 page\(s\) exist already.*--overwrite", capsys.readouterr().err)
        assert (pages / "u0.html").read_bytes() == before   # nothing replaced
    finally:
        (folder / "lonely.wav").unlink()


def test_alignment_of_another_recording(folder, tmp_path, capsys):
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(8000, np.float32), 16000)   # 0.5 s
    with pytest.raises(ParameterError, match=r"u0\.json has segments up to .* but the audio "
                                             r"lasts 0\.50 s"):
        read_view_tiers(folder / "vq" / "u0.json", 0.5)
    assert main(["view", str(short), str(folder / "vq" / "u0.json"), "--out",
                 str(tmp_path / "x.html")]) == 2
    assert "it is the alignment of another recording" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert main(["view", str(folder / "u0.wav"), str(bad), "--out",
                 str(tmp_path / "y.html")]) == 2
    assert re.search(r"bad\.json.*unknown alignment format", capsys.readouterr().err)
    assert main(["view", str(folder / "u0.wav"), "--out", str(tmp_path / "z.html")]) == 2
    assert "give at least one alignment file" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(.ci/run installs it: apt-get install chromium)")
def test_view_in_headless_chromium(folder, tmp_path):
    out = tmp_path / "p.html"
    main(["view", str(folder / "u0.wav"), str(folder / "vq" / "u0.json"),
          str(folder / "tg" / "u0.TextGrid"), "--out", str(out)])
    harness = """<script>window.addEventListener('load', function(){
      var segs = document.querySelectorAll('.seg');
      var out = {drawn: segs.length, rows: document.querySelectorAll('.row').length,
        coloured: document.querySelectorAll('.seg.conf').length,
        widths_ok: Array.prototype.every.call(segs, function(s){
          return s.getBoundingClientRect().width > 0; })};
      var pre = document.createElement('pre'); pre.id = 'harness-result';
      pre.textContent = JSON.stringify(out); document.body.appendChild(pre); });</script>"""
    (tmp_path / "h.html").write_text(out.read_text().replace("</body>", harness + "</body>"))
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'prof'}",
                           "--virtual-time-budget=5000", "--dump-dom",
                           (tmp_path / "h.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    m = re.search(r'<pre id="harness-result">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"no result; chromium exit {proc.returncode}: {proc.stderr[-800:]}"
    res = json.loads(html.unescape(m.group(1)))
    page = _payload(out.read_text())["utterances"][0]
    n_segs = sum(len(r["segs"]) for r in page["rows"])
    assert res["rows"] == 4 and res["drawn"] == n_segs and res["widths_ok"], res
    # the JSON's word and phone tiers carry confidences: exactly their segments are coloured
    assert res["coloured"] == len(page["rows"][0]["segs"]) + len(page["rows"][1]["segs"])
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'prof2'}",
                    "--window-size=1200,600", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=False)
    import matplotlib.image as mpimg

    assert mpimg.imread(shot)[..., :3].std() > 0.05   # not a blank page
