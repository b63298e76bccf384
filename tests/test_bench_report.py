"""The HTML report in a real headless browser (Debian's chromium): the page loads without
console errors, the tiers are drawn, and clicking a segment starts playback."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from vqalign.bench.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

# injected first in <head>: collect page errors and console.error calls
CATCH = ("<script>window.__errors=[];window.addEventListener('error',function(e){"
         "window.__errors.push('error: '+e.message)});(function(){var ce=console.error;"
         "console.error=function(){window.__errors.push('console.error: '+"
         "Array.prototype.join.call(arguments,' '));ce.apply(console,arguments)}})();</script>")
# appended at the end of <body>: click the first word segment, wait for "playing"
HARNESS = """<script>
window.addEventListener('load', function(){
  var out = {errors: window.__errors};
  var segs = document.querySelectorAll('.seg');
  out.drawn = segs.length;
  out.rows = document.querySelectorAll('.row').length;
  out.widths_ok = Array.prototype.every.call(segs, function(s){
      return s.getBoundingClientRect().width > 0; });
  var target = document.querySelector('#tiers-0 .seg.hyp');
  var audio = document.getElementById('audio-0');
  var done = false;
  function finish(){ if (done) return; done = true;
    out.paused = audio.paused; out.currentTime = audio.currentTime;
    out.vq = window.vqReport;
    var pre = document.createElement('pre'); pre.id = 'harness-result';
    pre.textContent = JSON.stringify(out); document.body.appendChild(pre); }
  audio.addEventListener('playing', function(){ out.playing = true;
      out.start = parseFloat(target.dataset.start); setTimeout(finish, 50); });
  target.click();
  out.highlighted = target.classList.contains('playing');
  setTimeout(finish, 4000);
});
</script>"""


@pytest.fixture(scope="module")
def synth_utts():
    from vqalign.datasets.synth import synthesize

    return [synthesize(text, seed=40 + k, voice="clara")
            for k, text in enumerate(["the quick brown fox", "a small red boat"])]


def _utterances(synth_utts):
    utts = []
    for k, u in enumerate(synth_utts):
        hyp_w = [(s + 0.012, e + 0.012, w) for s, e, w in u.words if w]
        hyp_p = [(s + 0.008, e + 0.008, p) for s, e, p in u.phones if p != "sil"]
        utts.append({"id": f"u{k}", "voice": "clara", "audio": u.audio, "sr": u.sr,
                     "ref": {"words": u.words, "phones": u.phones},
                     "systems": {"shifted": {"words": hyp_w, "phones": hyp_p}}})
    return utts


def test_report_structure(tmp_path, synth_utts):
    utts = _utterances(synth_utts)
    out = write_report(tmp_path / "r.html", utts, title="t")
    page = out.read_text(encoding="utf-8")
    # self-contained: no external resources
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", page)
    # worst first: utterance u1 is shifted by the same 12 ms, so ranks are by ties -> both
    # present, and the word table shows 12 ms mean error for the shifted system
    assert "<td>shifted</td><td>12.0</td>" in page
    data = json.loads(re.search(r"<script type='application/json' id='vq-data'>(.*?)</script>",
                                page, re.S).group(1))
    rows = data["utterances"][0]["rows"]
    assert [r["name"] for r in rows] == ["reference words", "reference phones",
                                         "shifted words", "shifted phones"]
    with pytest.raises(Exception, match="exists"):
        write_report(tmp_path / "r.html", utts)
    # worst utterance first
    worse = _utterances(synth_utts)
    worse[1]["systems"]["shifted"]["words"] = [(s + 0.2, e + 0.2, w) for s, e, w in
                                               worse[1]["systems"]["shifted"]["words"]]
    page = write_report(tmp_path / "w.html", worse).read_text(encoding="utf-8")
    assert page.index("<h3>u1 ") < page.index("<h3>u0 ")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(.ci/run installs it: apt-get install chromium)")
def test_report_in_headless_chromium(tmp_path, synth_utts):
    utts = _utterances(synth_utts)
    page = write_report(tmp_path / "r.html", utts).read_text(encoding="utf-8")
    page = page.replace("<head>", "<head>" + CATCH, 1).replace("</body>", HARNESS + "</body>")
    (tmp_path / "h.html").write_text(page, encoding="utf-8")
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--virtual-time-budget=8000", "--dump-dom",
                           (tmp_path / "h.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    m = re.search(r'<pre id="harness-result">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"harness wrote no result; chromium exit {proc.returncode}: {proc.stderr[-800:]}"
    import html

    res = json.loads(html.unescape(m.group(1)))
    print(res)
    assert res["errors"] == []
    assert res["rows"] == 2 * 4 and res["drawn"] > 30 and res["widths_ok"]
    assert res["highlighted"] and res["vq"]["played"], res
    assert res.get("playing") is True, res
    assert res["currentTime"] >= res["start"] - 0.05
    # the screenshot a person would look at (not committed)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    "--window-size=1200,900", f"--screenshot={shot}",
                    (tmp_path / "r.html").as_uri()], capture_output=True, timeout=120,
                   check=False)
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"
    arr = _png_pixels(shot)
    assert arr.std() > 10   # not a blank page


def _png_pixels(path):
    import matplotlib.image as mpimg

    return np.asarray(mpimg.imread(path)) * 255.0
