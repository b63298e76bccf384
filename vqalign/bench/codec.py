"""``vqalign bench codec``: vqalign's codec at several bit rates beside Codec2 and Opus.

vqalign's :class:`~vqalign.codec.Codec` is trained on ``--train`` (a folder of
audio files; default: built-in synthesized speech of two voices) at each of
``--rates`` and scored on ``--test`` (default: the two other synthesized voices),
in the same run and on the same files as

- Codec2 (the ``pycodec2`` wheel; LGPL libcodec2 inside) at 700C, 1200, 1600, 2400
  and 3200 bit/s: 16 kHz audio resampled to 8 kHz (``resample_poly``), coded,
  resampled back, and its delay removed: one delay per mode, the median over the test
  files of the lag that best correlates the amplitude envelopes (the waveform
  cross-correlation peak wanders by up to 15 ms between files because Codec2 makes its
  own phases, and costs it up to 0.1 STOI on a file);
- Opus at 6 kbit/s (``opusenc --hard-cbr`` / ``opusdec`` from Debian's opus-tools)
  when the tools are installed;
- WORLD analysis/resynthesis with nothing quantized (the codec's ceiling).

Metrics (vqalign.eval.codec_metrics): PESQ-WB, STOI, mel-cepstral distortion,
F0 RMSE, voicing error, DNSMOS. Speed: encode + decode seconds per second of
audio on one thread for vqalign and Codec2 (medians over the test files after a
warm-up), as wall time and as this process's CPU time (the single-core cost on a
busy machine). Output: one JSON object (stdout with ``--json``, and ``--out DIR``
/codec_bench.json), a rate-distortion PNG with the published EnCodec and DAC
points (Codec-SUPERB) and a self-contained HTML report with the audio.
"""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError

SR = 16000
CODEC2_RATES = (700, 1200, 1600, 2400, 3200)
DEFAULT_RATES = (800, 1200, 1500, 2400, 3200)
#: published points (Codec-SUPERB): system -> [(bit/s, PESQ-WB, STOI)]
PUBLISHED = {
    "EnCodec 24 kHz": [(1500, 1.46, 0.773), (3000, 1.92, 0.841), (6000, 2.54, 0.893)],
    "DAC 16 kHz": [(6000, 3.86, 0.957)],
}
AUDIO_EXTS = (".wav", ".flac", ".ogg")


def add_arguments(parser):
    parser.add_argument("--train", default=None,
                        help="folder of training audio (default: synthesized voices adam, clara)")
    parser.add_argument("--test", default=None,
                        help="folder of test audio (default: synthesized voices bruno, dana)")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                        help="vqalign bit rates, comma separated (default %(default)s)")
    parser.add_argument("--max-test", type=int, default=30, help="test files at most (30)")
    parser.add_argument("--synthesis", choices=("world", "fast"), default="world",
                        help="vqalign's synthesizer (default %(default)s)")
    parser.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (speechmos)")
    parser.add_argument("--no-peers", action="store_true", help="vqalign only")
    parser.add_argument("--report-files", type=int, default=3,
                        help="test files with audio in the HTML report (3)")
    parser.add_argument("--out", default=None,
                        help="folder for codec_bench.json, codec_rd.png, codec_report.html")
    parser.add_argument("--overwrite", action="store_true", help="replace files in --out")
    parser.add_argument("--json", action="store_true", help="print the JSON object")


def _files(d: str, what: str) -> list[Path]:
    p = Path(d)
    if not p.is_dir():
        raise ParameterError(f"--{what} {d} is not a folder of audio files")
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTS)
    if not files:
        raise ParameterError(f"--{what} {d} holds no audio files ({', '.join(AUDIO_EXTS)})")
    return files


def _load_test(args):
    from vqalign.io import load_audio

    if args.test is None:
        from vqalign.datasets.synth import synthesize_corpus

        utts = synthesize_corpus(n=2 * args.max_test, seed=7, voices=["bruno", "dana"])
        return [(u.id, u.audio.astype(np.float32)) for u in utts][: args.max_test]
    return [(f.stem, load_audio(f, sr=SR)[0]) for f in _files(args.test, "test")[: args.max_test]]


def _train_corpus(args):
    if args.train is None:
        from vqalign.datasets.synth import synthesize_corpus

        return [(u.audio, u.sr) for u in synthesize_corpus(seconds=240, seed=3,
                                                             voices=["adam", "clara"])]
    return [str(f) for f in _files(args.train, "train")]


# ------------------------------------------------------------------ peers
def codec2_available() -> bool:
    try:
        import pycodec2  # noqa: F401
    except ImportError:
        return False
    return True


def codec2_roundtrip(y, mode: int):
    """Codec2 at ``mode`` bit/s on 16 kHz float audio: (decoded 16 kHz float32, seconds
    spent in the codec, bits per second of its frames in whole bytes (800 for 700C, whose
    28-bit frames are sent in 4 bytes))."""
    import pycodec2
    from scipy.signal import resample_poly

    c = pycodec2.Codec2(int(mode))
    spf = c.samples_per_frame()
    x8 = resample_poly(y, 1, 2)
    pcm = np.clip(np.round(x8 * 32767), -32768, 32767).astype(np.int16)
    n = -(-pcm.size // spf) * spf
    pcm = np.pad(pcm, (0, n - pcm.size))
    out = np.empty(n, np.int16)
    t = time.perf_counter()
    nbytes = 0
    for i in range(0, n, spf):
        b = c.encode(pcm[i:i + spf])
        nbytes = len(b)
        out[i:i + spf] = c.decode(b)
    sec = time.perf_counter() - t
    y16 = resample_poly(out.astype(np.float32) / 32768.0, 2, 1).astype(np.float32)
    return y16, sec, 8 * nbytes * 8000 / spf


def opus_available() -> bool:
    return shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def opus_roundtrip(y, kbps: float = 6.0):
    """Opus at ``kbps`` (hard CBR) through opusenc/opusdec: decoded 16 kHz float32."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dec = (Path(tmp) / n for n in ("in.wav", "c.opus", "out.wav"))
        sf.write(src, y, SR, subtype="PCM_16")
        subprocess.run(["opusenc", "--quiet", "--bitrate", f"{kbps:g}", "--hard-cbr", str(src),
                        str(enc)], check=True, capture_output=True)
        subprocess.run(["opusdec", "--quiet", "--rate", str(SR), str(enc), str(dec)],
                       check=True, capture_output=True)
        out, _ = sf.read(dec, dtype="float32")
    return out if out.ndim == 1 else out.mean(axis=1)


# ------------------------------------------------------------------ run
def _one_thread():
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    return threadpool_limits(1)


def run_bench(args) -> dict:
    from vqalign.codec import Codec, analysis
    from vqalign.eval import codec_metrics as M

    rates = [int(r) for r in str(args.rates).split(",") if r.strip()]
    test = _load_test(args)
    train = _train_corpus(args)
    with_dns = not args.no_dnsmos
    refs = {name: M.f0_track(y, SR) for name, y in test}
    systems: dict[str, dict] = {}
    decoded: dict[str, dict] = {}

    def add(key, label, kind, bps, outs, extra=None):
        rows = []
        for (name, y), o in zip(test, outs):
            rows.append(M.score(y, o, SR, ref_f0=refs[name], with_dnsmos=with_dns))
        means = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
        systems[key] = {"label": label, "kind": kind, "bitrate": bps, **means, **(extra or {})}
        decoded[key] = {name: o for (name, _), o in zip(test, outs)}
        print(f"  {label:>24s}  {bps:7.0f} bit/s  PESQ-WB {means['pesq_wb']:.3f}  "
              f"STOI {means['stoi']:.3f}  MCD {means['mcd_db']:.2f} dB", file=sys.stderr)

    limits = _one_thread()
    try:
        dur = sum(y.size for _, y in test) / SR
        print(f"test: {len(test)} files, {dur:.1f} s", file=sys.stderr)
        # WORLD, nothing quantized (the ceiling), with the codec's own analysis
        outs = []
        for _, y in test:
            f0, mc = analysis.analyze(y, SR, frame_ms=10.0, order=24)
            outs.append(analysis.resynthesize(f0, mc, SR, frame_ms=10.0,
                                              voiced_ap=_flat_ap(), n_samples=y.size))
        add("world", "WORLD (unquantized)", "ceiling", float("nan"), outs)
        train_info = {}
        for r in rates:
            t0 = time.perf_counter()
            codec = Codec(r, synthesis=args.synthesis).fit(train)
            fit_s = time.perf_counter() - t0
            # warm-up (numba compile, caches), then timed encode + decode per file
            codec.decode(codec.encode(test[0][1], SR), test[0][1].size)
            outs, ent, speed, cpu = [], [], [], []
            for _, y in test:
                t, c = time.perf_counter(), time.process_time()
                tok = codec.encode(y, SR)
                o = codec.decode(tok, y.size)
                speed.append((y.size / SR) / (time.perf_counter() - t))
                cpu.append((y.size / SR) / max(time.process_time() - c, 1e-9))
                outs.append(o)
                ent.append(codec.entropy_bps(tok))
            train_info = {"train_seconds": codec.n_train_seconds_,
                          "train_files": codec.n_train_files_}
            if r == rates[0] or r == 1200:
                _fast_row(codec, test, r, add)
            add(f"vqalign_{r}", f"vqalign {r}", "vqalign", codec.nominal_bps_, outs,
                {"entropy_bps": float(np.mean(ent)), "stream_bits": codec.design_.stream_bits,
                 "x_realtime_1core": float(np.median(speed)),
                 "x_realtime_cpu": float(np.median(cpu)), "fit_seconds": fit_s,
                 "synthesis": args.synthesis})
        if not args.no_peers and codec2_available():
            for m in CODEC2_RATES:
                codec2_roundtrip(test[0][1], m)  # warm-up
                raw, speed, cpu, lags = [], [], [], []
                for _, y in test:
                    t, c = time.perf_counter(), time.process_time()
                    o, _, _ = codec2_roundtrip(y, m)
                    speed.append((y.size / SR) / (time.perf_counter() - t))
                    cpu.append((y.size / SR) / max(time.process_time() - c, 1e-9))
                    raw.append(o)
                    lags.append(M.envelope_lag(y, o, max_lag=SR // 25))
                # a codec's delay is a constant of its mode: the median of the files' lags
                lag = int(np.median(lags))
                outs = [M.shift(o, lag, y.size) for (_, y), o in zip(test, raw)]
                label = "Codec2 700C" if m == 700 else f"Codec2 {m}"
                add(f"codec2_{m}", label, "codec2", float(m), outs,
                    {"x_realtime_1core": float(np.median(speed)),
                     "x_realtime_cpu": float(np.median(cpu)), "delay_ms": 1000.0 * lag / SR})
        if not args.no_peers and opus_available():
            raw = [opus_roundtrip(y, 6.0) for _, y in test]
            lag = int(np.median([M.envelope_lag(y, o, max_lag=SR // 10)
                                 for (_, y), o in zip(test, raw)]))
            outs = [M.shift(o, lag, y.size) for (_, y), o in zip(test, raw)]
            add("opus_6000", "Opus 6 kbit/s", "opus", 6000.0, outs)
    finally:
        limits.restore_original_limits()
    result = {"bench": "codec", "sample_rate": SR, "n_test_files": len(test),
              "test_seconds": dur, "train": args.train or "synth:adam,clara",
              "test": args.test or "synth:bruno,dana", **train_info,
              "threads": 1, "systems": systems,
              "published_codec_superb": {k: [{"bitrate": b, "pesq_wb": p, "stoi": s}
                                              for b, p, s in v] for k, v in PUBLISHED.items()},
              "beats_codec2": _compare(systems)}
    return result, test, decoded


def _fast_row(codec, test, r, add):
    """The same model and tokens decoded by the other synthesizer (quality and speed)."""
    import copy

    other = copy.copy(codec)
    other.synthesis = "fast" if codec.synthesis == "world" else "world"
    other.decode(other.encode(test[0][1], SR), test[0][1].size)
    outs, speed, cpu = [], [], []
    for _, y in test:
        t, c = time.perf_counter(), time.process_time()
        o = other.decode(other.encode(y, SR), y.size)
        speed.append((y.size / SR) / (time.perf_counter() - t))
        cpu.append((y.size / SR) / max(time.process_time() - c, 1e-9))
        outs.append(o)
    add(f"vqalign_{r}_{other.synthesis}", f"vqalign {r} ({other.synthesis} synth)",
        "vqalign-alt", other.nominal_bps_, outs,
        {"x_realtime_1core": float(np.median(speed)), "x_realtime_cpu": float(np.median(cpu)),
         "synthesis": other.synthesis})


def _flat_ap():
    """A voiced aperiodicity for the unquantized ceiling: the mean of D4C's on the test
    file would leak; a ramp from 0.01 at 0 Hz to 0.9 at Nyquist (power 1.5) is used."""
    from vqalign.codec import analysis

    nb = analysis.fft_size(SR) // 2 + 1
    return np.clip(np.linspace(0, 1, nb) ** 1.5 * 0.9 + 0.01, 0, 1).astype(np.float32)


def _compare(systems) -> dict:
    out = {}
    for key, s in systems.items():
        if s["kind"] != "vqalign":
            continue
        c2 = systems.get(f"codec2_{int(round(s['bitrate']))}")
        if c2 is None:
            continue
        out[key] = {"codec2": c2["label"], "pesq_wb": s["pesq_wb"] > c2["pesq_wb"],
                    "stoi": s["stoi"] > c2["stoi"]}
    return out


# ------------------------------------------------------------------ outputs
def rd_figure_png(result) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sy = result["systems"]
    for ax, metric, name in ((axes[0], "pesq_wb", "PESQ-WB"), (axes[1], "stoi", "STOI")):
        for kind, style, lab in (("vqalign", "o-", "vqalign codec"), ("codec2", "s--", "Codec2"),
                                 ("opus", "D", "Opus (opus-tools)")):
            pts = sorted((s["bitrate"], s[metric]) for s in sy.values() if s["kind"] == kind)
            if pts:
                ax.plot([p[0] / 1000 for p in pts], [p[1] for p in pts], style, label=lab)
        w = sy.get("world")
        if w:
            ax.axhline(w[metric], color="gray", ls=":", label="WORLD unquantized")
        for i, (sysname, pts) in enumerate(PUBLISHED.items()):
            ax.plot([b / 1000 for b, _, _ in pts],
                    [p if metric == "pesq_wb" else s for _, p, s in pts],
                    ["^", "v"][i % 2], mfc="none", ms=9,
                    label=f"{sysname}: published (Codec-SUPERB)")
        ax.set_xscale("log")
        ticks = [0.7, 1, 1.5, 2, 3, 4, 6]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("bit rate (kbit/s)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"rate-distortion on {result['n_test_files']} test files ({result['test']}), "
                 "measured in one run; published points from other data", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _wav_b64(y) -> str:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(y, np.float32), -1, 1), SR, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def html_report(result, test, decoded, png: bytes, n_files: int) -> str:
    import html

    sy = result["systems"]
    rows = "".join(
        f"<tr><td>{html.escape(s['label'])}</td><td>{s['bitrate']:.0f}</td>"
        f"<td>{s.get('entropy_bps', float('nan')):.0f}</td><td>{s['pesq_wb']:.3f}</td>"
        f"<td>{s['stoi']:.3f}</td><td>{s['mcd_db']:.2f}</td><td>{s['f0_rmse_hz']:.1f}</td>"
        f"<td>{100 * s['voicing_error']:.1f}</td><td>{s.get('dnsmos_ovrl', float('nan')):.2f}</td>"
        "</tr>" for s in sy.values())
    keys = [k for k in sy if sy[k]["kind"] in ("vqalign", "codec2", "opus")]
    audio = []
    for name, y in test[:n_files]:
        cells = [f"<td>original<br><audio controls src='data:audio/wav;base64,{_wav_b64(y)}'>"
                 "</audio></td>"]
        for k in keys:
            cells.append(f"<td>{html.escape(sy[k]['label'])}<br><audio controls "
                         f"src='data:audio/wav;base64,{_wav_b64(decoded[k][name])}'></audio></td>")
        audio.append(f"<h3>{html.escape(name)}</h3><table><tr>"
                     + "</tr><tr>".join("".join(cells[i:i + 4]) for i in range(0, len(cells), 4))
                     + "</tr></table>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>vqalign bench codec"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;"
            "border-bottom:1px solid #ddd}</style></head><body><h1>vqalign bench codec</h1>"
            f"<p>train: {html.escape(str(result['train']))}; test: "
            f"{html.escape(str(result['test']))} ({result['n_test_files']} files, "
            f"{result['test_seconds']:.1f} s). Every row measured in this run on the same files."
            "</p><table><tr><th>system</th><th>bit/s</th><th>entropy bit/s</th><th>PESQ-WB</th>"
            "<th>STOI</th><th>MCD dB</th><th>F0 RMSE Hz</th><th>voicing err %</th>"
            f"<th>DNSMOS ovrl</th></tr>{rows}</table>"
            f"<p><img src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'></p>"
            + "".join(audio) + "</body></html>")


def run(args) -> int:
    result, test, decoded = run_bench(args)
    png = rd_figure_png(result)
    if args.out:
        from vqalign.io.atomic import atomic_write

        out = Path(args.out)
        with atomic_write(out / "codec_bench.json", overwrite=args.overwrite) as fh:
            json.dump(_finite(result), fh, indent=1)
        with atomic_write(out / "codec_rd.png", "wb", overwrite=args.overwrite) as fh:
            fh.write(png)
        with atomic_write(out / "codec_report.html", overwrite=args.overwrite) as fh:
            fh.write(html_report(result, test, decoded, png, args.report_files))
    if args.json or not args.out:
        print(json.dumps(_finite(result), indent=1))
    _summary(result)
    return 0


def _finite(o):
    """The result with NaN floats as None (strict JSON)."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def _summary(result):
    sy = result["systems"]
    print(f"{'system':>24s} {'bit/s':>7s} {'entropy':>7s} {'PESQ-WB':>7s} {'STOI':>6s} "
          f"{'MCD':>5s} {'F0 Hz':>6s} {'V err':>6s} {'DNSMOS':>6s} {'x RT':>6s} {'x CPU':>6s}", file=sys.stderr)
    for s in sy.values():
        print(f"{s['label']:>24s} {s['bitrate']:7.0f} {s.get('entropy_bps', math.nan):7.0f} "
              f"{s['pesq_wb']:7.3f} {s['stoi']:6.3f} {s['mcd_db']:5.2f} {s['f0_rmse_hz']:6.1f} "
              f"{s['voicing_error']:6.3f} {s.get('dnsmos_ovrl', math.nan):6.2f} "
              f"{s.get('x_realtime_1core', math.nan):6.1f} {s.get('x_realtime_cpu', math.nan):6.1f}", file=sys.stderr)
