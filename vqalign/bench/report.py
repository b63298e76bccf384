"""One self-contained HTML page for ``bench score --report`` and ``bench align --report``.

The page holds everything inline (no network, no files beside it): the summary tables per
system (words, phones, phone classes), the figure (CDF of absolute boundary error per
system and signed-error histograms, PNG), and per utterance, worst first, the audio (WAV),
its spectrogram and the stacked word and phone tiers of the reference and of every
system. Tiers are drawn by the page's script from the JSON embedded in it; clicking a
segment plays that stretch of audio.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math

import numpy as np

from vqalign.exceptions import ParameterError

_CSS = """
body{font-family:system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px} h2{font-size:16px;margin-top:28px} h3{font-size:14px;margin:4px 0}
table{border-collapse:collapse;margin:6px 0 14px 0;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
.utt{border:1px solid #ddd;border-radius:4px;padding:8px;margin:12px 0}
.spec{display:block;width:100%;height:110px;image-rendering:pixelated}
.row{display:flex;align-items:stretch;height:22px;margin-top:2px}
.rowname{width:150px;flex:none;font-size:11px;line-height:22px;overflow:hidden;
 white-space:nowrap}
.track{position:relative;flex:1;background:#fafafa;border:1px solid #eee}
.seg{position:absolute;top:0;bottom:0;border-left:1px solid #555;border-right:1px solid #555;
 font-size:10px;line-height:20px;overflow:hidden;white-space:nowrap;text-align:center;
 cursor:pointer;box-sizing:border-box}
.seg.ref{background:#dbe9f6}.seg.hyp{background:#f8e3c8}.seg.playing{background:#ffd24d}
.specwrap{display:flex}.specpad{width:150px;flex:none}.specbox{flex:1}
.note{font-size:12px;color:#666}
"""

_JS = r"""
(function(){
  "use strict";
  var data = JSON.parse(document.getElementById("vq-data").textContent);
  window.vqReport = {played: [], drawn: 0};
  var stopAt = {};
  function draw(u){
    var box = document.getElementById("tiers-" + u.index);
    u.rows.forEach(function(row){
      var r = document.createElement("div"); r.className = "row";
      var name = document.createElement("div"); name.className = "rowname";
      name.textContent = row.name; r.appendChild(name);
      var track = document.createElement("div"); track.className = "track";
      row.segs.forEach(function(s){
        if (!(s[1] > s[0])) return;
        var d = document.createElement("div");
        d.className = "seg " + (row.ref ? "ref" : "hyp");
        d.style.left = (100 * s[0] / u.duration) + "%";
        d.style.width = (100 * (s[1] - s[0]) / u.duration) + "%";
        d.textContent = s[2]; d.title = s[2] + "  " + s[0].toFixed(3) + "-" + s[1].toFixed(3) + " s";
        if (s.length > 3 && s[3]) {   // the viewer's confidence colour and value
          d.style.background = s[3]; d.classList.add("conf");
          d.title += "  confidence " + Number(s[4]).toFixed(2);
        }
        d.dataset.start = s[0]; d.dataset.end = s[1]; d.dataset.utt = u.index;
        d.addEventListener("click", onClick);
        track.appendChild(d); window.vqReport.drawn += 1;
      });
      r.appendChild(track); box.appendChild(r);
    });
  }
  function onClick(ev){
    var d = ev.currentTarget, idx = d.dataset.utt;
    var audio = document.getElementById("audio-" + idx);
    var prev = document.querySelector(".seg.playing");
    if (prev) prev.classList.remove("playing");
    d.classList.add("playing");
    if (!audio) return;
    var start = parseFloat(d.dataset.start), end = parseFloat(d.dataset.end);
    stopAt[idx] = end;
    audio.currentTime = start;
    var p = audio.play();
    window.vqReport.played.push({utt: idx, start: start, end: end, requested: true});
    if (p && p.catch) p.catch(function(e){ window.vqReport.playError = String(e); });
  }
  data.utterances.forEach(function(u){
    draw(u);
    var audio = document.getElementById("audio-" + u.index);
    if (audio) {
      audio.addEventListener("playing", function(){ window.vqReport.playing = true; });
      audio.addEventListener("timeupdate", function(){
        if (stopAt[u.index] !== undefined && audio.currentTime >= stopAt[u.index]) {
          audio.pause(); delete stopAt[u.index];
        }
      });
    }
  });
  document.body.dataset.drawn = String(window.vqReport.drawn);
})();
"""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _abs_signed(results) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    res = [r[1] if isinstance(r, tuple) else r for r in results]
    on = np.concatenate([r["onset"] for r in res]) if res else np.empty(0)
    off = np.concatenate([r["offset"] for r in res]) if res else np.empty(0)
    return np.abs(np.concatenate([on, off])), on, off


def error_figure_png(scored: dict) -> bytes:
    """The figure: per tier, the CDF of absolute boundary error per system, and signed
    onset/offset error histograms. ``scored``: ``{name: {"words": [compare_tier results],
    "phones": [...]}}`` (items may be ``(key, result)`` pairs)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    tiers = [t for t in ("words", "phones") if any(s.get(t) for s in scored.values())]
    fig = Figure(figsize=(11, 3.4 * max(1, len(tiers))))
    axes = fig.subplots(max(1, len(tiers)), 2, squeeze=False)
    for row, tier in enumerate(tiers):
        ax_cdf, ax_hist = axes[row]
        bins = np.linspace(-100, 100, 81)
        for name, s in scored.items():
            if not s.get(tier):
                continue
            e, on, off = _abs_signed(s[tier])
            if e.size == 0:
                continue
            ms = np.sort(1000 * e)
            ax_cdf.plot(ms, np.arange(1, ms.size + 1) / ms.size, label=name)
            signed = 1000 * np.concatenate([on, off])
            ax_hist.hist(np.clip(signed, -100, 100), bins=bins, histtype="step",
                         label=f"{name} (onset+offset)", density=True)
        ax_cdf.set_xlim(0, 100)
        ax_cdf.set_ylim(0, 1)
        for t in (10, 20, 25, 50):
            ax_cdf.axvline(t, color="#bbb", lw=0.6)
        ax_cdf.set_xlabel(f"absolute {tier[:-1]} boundary error (ms)")
        ax_cdf.set_ylabel("fraction of boundaries")
        ax_cdf.set_title(f"{tier}: CDF of absolute error")
        ax_cdf.legend(fontsize=8, loc="lower right")
        ax_hist.set_xlabel("signed error, hypothesis - reference (ms; clipped to ±100)")
        ax_hist.set_title(f"{tier}: signed error")
        ax_hist.legend(fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14 / max(1, len(tiers)) + 0.04,
                        top=0.93, hspace=0.45, wspace=0.2)
    return _png(fig)


def _spectrogram_png(y: np.ndarray, sr: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import colormaps

    n_fft, hop = int(0.025 * sr), int(0.005 * sr)
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    n = 1 + (y.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    frames = y[idx] * np.hanning(n_fft)[None, :]
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    db = 10 * np.log10(spec + 1e-10)
    db = np.clip(db, db.max() - 70, None)
    img = (db - db.min()) / max(db.max() - db.min(), 1e-9)
    rgba = colormaps["magma"](img.T[::-1])
    import matplotlib.image as mpimg

    buf = io.BytesIO()
    mpimg.imsave(buf, rgba, format="png")
    return buf.getvalue()


def _wav_bytes(y: np.ndarray, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, dtype=np.float32), int(sr), format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _cell(v, d=1) -> str:
    return f"{v:.{d}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


def _tiers_of(x) -> dict:
    if hasattr(x, "tiers"):
        x = x.tiers
    return {k: [(float(s), float(e), str(lab)) for s, e, lab in v]
            for k, v in x.items() if k in ("words", "phones")}


def write_report(path, utterances, *, title: str = "vqalign bench report",
                 overwrite: bool = False, max_utterances: int = 40, problems=None):
    """Write the HTML report atomically.

    Parameters
    ----------
    path : str or Path
    utterances : list of dict
        ``{"id", "voice", "audio" (float32 or None), "sr", "ref": {"words", "phones"},
        "systems": {name: {"words": [...], "phones": [...]}}}``.
    max_utterances : int
        Utterances drawn (worst mean word error first); the tables use all of them.
    problems : list of dict, optional
        ``{"system", "kind", "message"}`` rows (files that could not be scored).
    """
    from vqalign.eval.boundaries import compare_tier, summarize_tier
    from vqalign.exceptions import VQAlignError
    from vqalign.phones import CLASSES

    if max_utterances < 1:
        raise ParameterError(f"max_utterances must be >= 1, got {max_utterances}")
    names = sorted({n for u in utterances for n in u["systems"]},
                   key=lambda n: (n != "vqalign", n))
    scored = {n: {"words": [], "phones": []} for n in names}
    by_voice: dict = {}
    worst = []
    for u in utterances:
        ref = _tiers_of(u["ref"])
        u_scores = {}
        for n, hyp in u["systems"].items():
            hyp = _tiers_of(hyp)
            try:
                if "words" in hyp and "words" in ref:
                    w = compare_tier(hyp["words"], ref["words"])
                    scored[n]["words"].append(w)
                    by_voice.setdefault((n, str(u.get("voice", ""))), []).append(w)
                    e = np.abs(np.concatenate([w["onset"], w["offset"]]))
                    u_scores[n] = float(1000 * e.mean()) if e.size else float("nan")
                if "phones" in hyp and "phones" in ref:
                    scored[n]["phones"].append(compare_tier(hyp["phones"], ref["phones"],
                                                            tier="phones"))
            except VQAlignError:
                u_scores[n] = float("inf")
        finite = [v for v in u_scores.values() if v == v]
        if u["systems"]:
            worst.append((max(finite) if finite else -1.0, u, u_scores))
    worst.sort(key=lambda t: -t[0])

    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>{len(utterances)} utterance(s); {len(names)} system(s). "
             "Errors in ms; start and end of every paired word or phone (FA-Bench "
             "definition). Click a segment to play it.</p>"]
    for tier in ("words", "phones"):
        rows = [(n, summarize_tier(scored[n][tier])) for n in names if scored[n][tier]]
        if not rows:
            continue
        parts.append(f"<h2>{tier}</h2><table class='summary' data-tier='{tier}'><tr>"
                     "<th>system</th><th>mean</th><th>median</th><th>p90</th><th>≤10</th>"
                     "<th>≤20</th><th>≤25</th><th>≤50</th><th>boundaries</th><th>missing</th>"
                     "<th>inserted</th><th>untimed</th><th>bias onset</th><th>bias offset</th>"
                     "</tr>")
        for n, s in rows:
            pct = s["pct_within_ms"]
            parts.append(f"<tr><td>{html.escape(n)}</td><td>{_cell(s['mean_ms'])}</td>"
                         f"<td>{_cell(s['median_ms'])}</td><td>{_cell(s['p90_ms'])}</td>"
                         + "".join(f"<td>{_cell(pct[k])}</td>" for k in ("10", "20", "25", "50"))
                         + f"<td>{s['n_boundaries']}</td><td>{s['n_missing']}</td>"
                           f"<td>{s['n_inserted']}</td><td>{s['n_untimed']}</td>"
                           f"<td>{_cell(s['bias_onset_ms'])}</td>"
                           f"<td>{_cell(s['bias_offset_ms'])}</td></tr>")
        parts.append("</table>")
        if tier == "phones":
            parts.append("<table class='classes'><tr><th>system</th>"
                         + "".join(f"<th>{c}</th>" for c in CLASSES) + "</tr>")
            for n, s in rows:
                parts.append(f"<tr><td>{html.escape(n)}</td>" + "".join(
                    f"<td>{_cell(s['by_class'][c]['mean_ms'])} "
                    f"({_cell(s['by_class'][c]['pct_within_20'])} %)</td>" for c in CLASSES)
                    + "</tr>")
            parts.append("</table><p class='note'>phone boundaries by class of the reference "
                         "phone: mean ms (% within 20 ms)</p>")
    if by_voice:
        parts.append("<h2>per voice (words)</h2><table class='voices'><tr><th>system</th>"
                     "<th>voice</th><th>files</th><th>mean</th><th>median</th><th>p90</th>"
                     "<th>≤20</th><th>missing</th><th>inserted</th></tr>")
        for (n, v), ws in sorted(by_voice.items()):
            s = summarize_tier(ws)
            parts.append(f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td>"
                         f"<td>{len(ws)}</td><td>{_cell(s['mean_ms'])}</td>"
                         f"<td>{_cell(s['median_ms'])}</td><td>{_cell(s['p90_ms'])}</td>"
                         f"<td>{_cell(s['pct_within_ms']['20'])}</td><td>{s['n_missing']}</td>"
                         f"<td>{s['n_inserted']}</td></tr>")
        parts.append("</table>")
    if worst:
        parts.append("<h2>per file (mean word boundary error, ms; worst first)</h2>"
                     "<table class='files'><tr><th>utterance</th><th>voice</th>"
                     + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>")
        for _, u, u_scores in worst:
            parts.append(f"<tr><td>{html.escape(str(u['id']))}</td>"
                         f"<td>{html.escape(str(u.get('voice', '')))}</td>"
                         + "".join(f"<td>{_cell(u_scores.get(n, float('nan')))}</td>"
                                   for n in names) + "</tr>")
        parts.append("</table>")
    if any(scored[n]["words"] for n in names):
        parts.append("<h2>figure</h2><img alt='CDF of absolute boundary error and signed "
                     f"error histograms' style='max-width:100%' "
                     f"src='data:image/png;base64,{_b64(error_figure_png(scored))}'>")
    if problems:
        parts.append(f"<h2>problems ({len(problems)})</h2><ul class='problems'>")
        for p in problems[:200]:
            parts.append(f"<li>[{html.escape(str(p.get('system')))}] "
                         f"{html.escape(str(p.get('kind')))}: "
                         f"{html.escape(str(p.get('message')))}</li>")
        parts.append("</ul>")

    parts.append(f"<h2>utterances, worst first (showing {min(max_utterances, len(worst))} of "
                 f"{len(worst)})</h2>")
    payload = []
    for k, (_, u, u_scores) in enumerate(worst[:max_utterances]):
        ref = _tiers_of(u["ref"])
        ends = [e for tiers in [ref] + [_tiers_of(h) for h in u["systems"].values()]
                for ivs in tiers.values() for _, e, _ in ivs if e == e]
        duration = (u["audio"].size / u["sr"]) if u.get("audio") is not None else max(ends or [1])
        rows = []
        for tier in ("words", "phones"):
            if tier in ref:
                rows.append({"name": f"reference {tier}", "ref": True,
                             "segs": [s for s in ref[tier] if s[2].strip()]})
        for n in names:
            if n not in u["systems"]:
                continue
            hyp = _tiers_of(u["systems"][n])
            for tier in ("words", "phones"):
                if tier in hyp:
                    rows.append({"name": f"{n} {tier}", "ref": False,
                                 "segs": [s for s in hyp[tier] if s[2].strip() and s[0] == s[0]
                                          and s[1] == s[1]]})
        payload.append({"index": k, "id": str(u["id"]), "duration": duration, "rows": rows})
        score_txt = "; ".join(f"{html.escape(n)} {_cell(v)} ms" for n, v in u_scores.items())
        parts.append(f"<div class='utt' id='utt-{k}'><h3>{html.escape(str(u['id']))} "
                     f"<span class='note'>({html.escape(str(u.get('voice', '')))}; mean word "
                     f"error: {score_txt})</span></h3>")
        if u.get("audio") is not None:
            y = np.asarray(u["audio"], dtype=np.float32)
            parts.append(audio_block(k, y, int(u["sr"])))
        else:
            parts.append("<p class='note'>no audio found for this utterance</p>")
        parts.append(f"<div class='tiers' id='tiers-{k}'></div></div>")
    write_page(path, parts, payload, overwrite=overwrite)
    return path


def audio_block(k: int, y: np.ndarray, sr: int) -> str:
    """The page's player and spectrogram of utterance ``k`` (``y`` float32, ``(n,)``), the
    player's id ``audio-k`` being what the page's script plays segments on."""
    return (f"<audio id='audio-{k}' controls preload='auto' "
            f"src='data:audio/wav;base64,{_b64(_wav_bytes(y, sr))}'></audio>"
            "<div class='specwrap'><div class='specpad'></div><div class='specbox'>"
            f"<img class='spec' alt='spectrogram' src='data:image/png;base64,"
            f"{_b64(_spectrogram_png(y, sr))}'></div></div>")


def write_page(path, parts: list, payload: list, *, overwrite: bool) -> None:
    """Close a page: the utterances' tier data (JSON) and the script that draws them,
    written atomically with the ``parts`` before them."""
    from vqalign.io.atomic import atomic_write

    blob = json.dumps({"utterances": payload}, allow_nan=False).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='vq-data'>{blob}</script>")
    parts.append(f"<script>{_JS}</script></body></html>")
    with atomic_write(path, "w", overwrite=overwrite) as fh:
        fh.write("".join(parts))
