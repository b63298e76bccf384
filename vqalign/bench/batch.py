"""``vqalign bench batch``: many files aligned one at a time, the way users run it.

``vqalign align DIR --out-dir OUT --jobs J`` is run as a fresh process (its start-up, worker
processes and cached kernels included), and pocketsphinx 5 (the peer, one decoder reused,
one thread) aligns the same files in this process, in the same run. Printed: each side's
wall time and x real time, their ratio, and, when the folder has reference TextGrids, word
and phone boundary errors of both against them. The same files, the same transcripts.

Example::

    vqalign bench batch --corpus ../shared/devdata/timit --jobs 2 --json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vqalign.exceptions import ParameterError


def add_arguments(p) -> None:
    p.add_argument("--corpus", type=Path, required=True,
                   help="folder of <id>.wav + <id>.txt (+ <id>.TextGrid references, optional)")
    p.add_argument("--jobs", type=int, default=2, help="vqalign's worker processes (default 2)")
    p.add_argument("--limit", type=int, default=None, help="use at most N files")
    p.add_argument("--no-pocketsphinx", action="store_true", help="skip the peer")
    p.add_argument("--json", action="store_true", help="print one JSON object only")


def _score(hyps: dict, items) -> dict:
    from vqalign.eval import compare_tier, summarize_tier
    from vqalign.io.textgrid import read_textgrid

    words, phones = [], []
    for it in items:
        if it.reference is None or it.id not in hyps:
            continue
        ref = read_textgrid(it.reference)
        hyp = hyps[it.id]
        words.append(compare_tier(hyp["words"], ref["words"]))
        if "phones" in ref and hyp.get("phones"):
            phones.append(compare_tier(hyp["phones"], ref["phones"], tier="phones"))
    out = {}
    if words:
        s = summarize_tier(words)
        out["words"] = {"mean_ms": s["mean_ms"], "pct_within_20": s["pct_within_ms"]["20"],
                        "bias_onset_ms": s["bias_onset_ms"]}
    if phones:
        s = summarize_tier(phones)
        out["phones"] = {"mean_ms": s["mean_ms"], "pct_within_20": s["pct_within_ms"]["20"]}
    return out


def run(args) -> int:
    from vqalign.align.corpus import pair_corpus

    if not args.corpus.is_dir():
        raise ParameterError(f"--corpus {args.corpus} is not a folder")
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    items, _ = pair_corpus(args.corpus)
    if args.limit is not None:
        items = items[:args.limit]
    if not items:
        raise ParameterError(f"no audio with a transcript under {args.corpus}")
    work = Path(tempfile.mkdtemp(prefix="vqalign-bench-batch-"))
    try:
        listing = work / "files.list"
        # absolute paths: a list file's relative paths are read relative to the list file
        listing.write_text("".join(f"{Path(it.audio).resolve()}\t{Path(it.transcript).resolve()}\n"
                                   for it in items))
        out = work / "out"
        env = dict(os.environ)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "vqalign", "align", str(listing),
                               "--out-dir", str(out), "--jobs", str(args.jobs), "--quiet"],
                              capture_output=True, text=True, env=env, check=False)
        vq_wall = time.perf_counter() - t0
        if proc.returncode not in (0, 1):
            raise ParameterError(f"vqalign align failed: {proc.stderr[-800:]}")
        hyps = {}
        for it in items:
            f = out / f"{it.audio.stem}.json"
            if f.is_file():
                tiers = json.loads(f.read_text())["tiers"]
                hyps[it.id] = {k: [tuple(x[:3]) for x in v] for k, v in tiers.items()}
        from vqalign.align.corpus import load_item

        audio_s = 0.0
        loaded = []
        for it in items:
            y, sr, text = load_item(it)
            audio_s += y.size / sr
            loaded.append((it, y, sr, text))
        result = {"files": len(items), "audio_s": audio_s,
                  "vqalign": {"wall_s": vq_wall, "jobs": args.jobs, "aligned": len(hyps),
                              "xrt": audio_s / vq_wall, **_score(hyps, items)}}
        if not args.no_pocketsphinx:
            from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
            from vqalign.exceptions import VQAlignError

            ps = PocketsphinxAligner()
            ps_hyps = {}
            t0 = time.perf_counter()
            for it, y, sr, text in loaded:
                try:
                    ps_hyps[it.id] = ps.align(y, text, sr=sr)
                except VQAlignError:
                    pass
            ps_wall = time.perf_counter() - t0
            result["pocketsphinx"] = {"wall_s": ps_wall, "threads": 1, "aligned": len(ps_hyps),
                                      "xrt": audio_s / ps_wall, **_score(ps_hyps, items)}
            result["wall_ratio_vs_pocketsphinx"] = vq_wall / ps_wall
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['files']} files, {audio_s:.1f} s of audio")
    for name in ("vqalign", "pocketsphinx"):
        r = result.get(name)
        if r is None:
            continue
        acc = ""
        if "words" in r:
            acc = (f"; words {r['words']['mean_ms']:.1f} ms mean, "
                   f"{r['words']['pct_within_20']:.1f} % within 20 ms")
        if "phones" in r:
            acc += f"; phones {r['phones']['mean_ms']:.1f} ms"
        how = f"{r['jobs']} jobs, fresh process" if name == "vqalign" else "1 thread, in process"
        print(f"{name:13s} {r['wall_s']:7.1f} s wall ({r['xrt']:.1f}x real time, {how}), "
              f"{r['aligned']} aligned{acc}")
    if "wall_ratio_vs_pocketsphinx" in result:
        print(f"vqalign wall time / pocketsphinx's: {result['wall_ratio_vs_pocketsphinx']:.2f}")
    return 0
