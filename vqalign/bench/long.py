"""``vqalign bench long``: one long multi-voice recording aligned as one file.

Builds a recording of ``--minutes`` from a corpus with exact word times (default
``../shared/devdata`` when it exists, else the built-in synthesizer), shuffled, with
0.2-1.5 s pauses, writes it as WAV + transcript, and runs ``vqalign align`` on it in a
fresh process, exactly as a user would. Prints word-boundary mean / median / p90 error,
drift (mean error of the last tenth of the words minus the first tenth), x real time
and the child's peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "devdata"


def add_arguments(parser):
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="length of the recording (default 60)")
    parser.add_argument("--corpus", default=None,
                        help="folder of x.wav + x.TextGrid (words tier) to build it from "
                             f"(default {DEFAULT_CORPUS} if it exists, else built-in "
                             "synthesized speech)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unit", default="phones", choices=("phones", "chars"))
    parser.add_argument("--jobs", type=int, default=2, help="threads for vqalign align")
    parser.add_argument("--keep", default=None, help="keep the WAV, transcript and JSON here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def score_words(pred, truth):
    """(start errors, end errors) in ms of predicted vs true words, in order; raises
    if the labels differ (every word must be matched)."""
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} predicted words for {len(truth)} true words")
    s = np.array([abs(p[0] - t[0]) for p, t in zip(pred, truth)]) * 1000
    e = np.array([abs(p[1] - t[1]) for p, t in zip(pred, truth)]) * 1000
    return s, e


def summarize(pred, truth):
    s, e = score_words(pred, truth)
    err = np.concatenate([s, e])
    per_word = (s + e) / 2
    n = max(1, len(per_word) // 10)
    return {"n_words": len(truth), "n_matched": int(sum(
        1 for p, t in zip(pred, truth) if p[2].lower() == t[2].lower())),
        "word_mean_ms": float(err.mean()), "word_median_ms": float(np.median(err)),
        "word_p90_ms": float(np.percentile(err, 90)),
        "word_within_20ms": float(np.mean(err <= 20)),
        "drift_ms": float(per_word[-n:].mean() - per_word[:n].mean()),
        "first_tenth_ms": float(per_word[:n].mean()),
        "last_tenth_ms": float(per_word[-n:].mean())}


def run(args) -> int:
    import soundfile as sf  # noqa: PLC0415

    from vqalign.datasets.longform import build_long_recording  # noqa: PLC0415
    corpus = args.corpus
    if corpus is None and DEFAULT_CORPUS.is_dir():
        corpus = DEFAULT_CORPUS
    if corpus is None:
        print("bench long: no corpus given and ../shared/devdata is absent; building the "
              "recording from built-in synthesized speech", file=sys.stderr)
    rec = build_long_recording(args.minutes, corpus, seed=args.seed)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vqalign-long-"))
    work.mkdir(parents=True, exist_ok=True)
    wav, txt, out = work / "long.wav", work / "long.txt", work / "long.json"
    sf.write(str(wav), rec.audio, rec.sr)
    txt.write_text(rec.text + "\n")
    if out.exists():
        out.unlink()
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "vqalign", "align", str(wav), str(txt), "--out", str(out),
           "--unit", args.unit]
    env["NUMBA_NUM_THREADS"] = str(args.jobs)
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        print(proc.stderr.strip()[-2000:], file=sys.stderr)
        print(f"bench long: vqalign align failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    aln = json.loads(out.read_text())
    pred = [(s, e, lab) for s, e, lab, *_ in aln["tiers"]["words"]]
    res = summarize(pred, rec.words)
    res.update({"minutes": rec.duration / 60, "corpus": str(corpus) if corpus else "synth",
                "seed": args.seed, "wall_s": wall, "x_real_time": rec.duration / wall,
                "peak_rss_mb": peak_mb, "threads": args.jobs,
                "warnings": aln.get("diagnostics", {}).get("warnings", [])[:5],
                "peak_rss_of": "the vqalign align child process (its rusage maximum)"
                if before == 0 else "the largest child of this process so far"})
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['minutes']:.1f} min, {res['n_words']} words ({res['n_matched']} matched): "
              f"mean {res['word_mean_ms']:.1f} ms, median {res['word_median_ms']:.1f} ms, "
              f"p90 {res['word_p90_ms']:.1f} ms, {100 * res['word_within_20ms']:.1f} % within "
              f"20 ms; drift {res['drift_ms']:+.1f} ms; {res['x_real_time']:.0f}x real time "
              f"({wall:.1f} s, {args.jobs} threads); peak RSS {peak_mb:.0f} MB")
    return 0
