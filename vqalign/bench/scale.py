"""``vqalign bench scale --hours 1,4,10 [--json]``: align-corpus against corpus size.

For each size a corpus is synthesized with the built-in synthesizer
(:func:`vqalign.datasets.synth.synthesize_corpus`: four voices, speaking rates drawn
in [0.85, 1.2]) in parts of at most 10 minutes, each part with its own seed, and
cached (``--cache``, default ``~/.cache/vqalign/scale``): the parts of a 1-hour corpus
are the first parts of the 10-hour one. Each size is then aligned by
``vqalign align-corpus`` in a fresh process, exactly as a user runs it, and the
benchmark reports:

- wall time and x real time (audio seconds / wall seconds);
- peak RSS: the largest single process (the child's ``wait4`` rusage, which covers
  its reaped workers) and the whole process tree (sum of the RSS of the driver and
  its workers, sampled every 0.2 s);
- word-boundary accuracy of the outputs against the synthesizer's exact times
  (mean, median, share within 20 ms) and the failed utterances.

The reference is the smallest size measured in the same run: each larger size
prints its wall-time ratio next to the ratio of the audio durations (linear
scaling) and its RSS ratio (bounded memory is 1.0x).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vqalign.exceptions import ParameterError

PART_SECONDS = 600.0


def add_arguments(parser):
    parser.add_argument("--hours", default="1,4,10",
                        help="comma-separated corpus sizes in hours (default 1,4,10)")
    parser.add_argument("--jobs", "-j", type=int, default=2,
                        help="align-corpus --jobs (default 2)")
    parser.add_argument("--scheduler", default="local", help="align-corpus --scheduler")
    parser.add_argument("--cache", default=None,
                        help="folder for the synthesized corpora (default "
                             "~/.cache/vqalign/scale, or $VQALIGN_CACHE/scale)")
    parser.add_argument("--work", default=None,
                        help="folder for the align-corpus outputs (default: a temporary "
                             "folder, removed afterwards)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def parse_hours(spec) -> list[float]:
    try:
        hours = [float(x) for x in str(spec).split(",") if x.strip()]
    except ValueError:
        raise ParameterError(f"--hours {spec!r}: give comma-separated numbers of hours, "
                             "e.g. 1,4,10") from None
    if not hours or any(not h > 0 or h > 1000 for h in hours):
        raise ParameterError(f"--hours {spec!r}: every size must be in (0, 1000] hours")
    return sorted(set(hours))


def _cache_dir(arg) -> Path:
    if arg:
        return Path(arg)
    base = os.environ.get("VQALIGN_CACHE")
    return Path(base) / "scale" if base else Path.home() / ".cache" / "vqalign" / "scale"


def _parts(seconds: float, seed: int) -> list[tuple[str, float, int]]:
    """``[(name, part_seconds, part_seed)]`` covering ``seconds`` of audio."""
    out, k, left = [], 0, seconds
    while left > 1e-9:
        s = min(PART_SECONDS, left)
        out.append((f"part{k:04d}-{s:g}s-seed{seed}", s, seed * 100003 + k))
        left -= s
        k += 1
    return out


def _make_part(task):
    """Worker: synthesize one part into its cache folder (atomic: renamed when complete)."""
    from vqalign.datasets.synth import synthesize_corpus, write_corpus

    folder, seconds, seed = task
    folder = Path(folder)
    if (folder / "corpus.json").is_file():
        return str(folder)
    utts = synthesize_corpus(seconds=seconds, seed=seed)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    write_corpus(utts, tmp)
    if folder.exists():      # an earlier, interrupted attempt left an incomplete folder
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return str(folder)


def build_corpus(hours: float, cache: Path, *, seed: int = 0, jobs: int = 2) -> Path:
    """A corpus folder of ``hours`` of synthesized speech (parts cached, hard-linked)."""
    from vqalign.pipeline.schedulers import LocalScheduler

    parts = _parts(hours * 3600.0, seed)
    pdir = cache / "parts"
    pdir.mkdir(parents=True, exist_ok=True)
    todo = [(str(pdir / name), s, ps) for name, s, ps in parts
            if not (pdir / name / "corpus.json").is_file()]
    if todo:
        print(f"synthesizing {sum(t[1] for t in todo) / 3600:.2f} h of speech into {pdir} "
              f"({len(todo)} part(s), cached for later runs) ...", file=sys.stderr, flush=True)
        with LocalScheduler(min(jobs, len(todo))) as sched:
            sched.map(_make_part, todo)
    corpus = cache / f"corpus-{hours:g}h-seed{seed}"
    if not (corpus / ".complete").is_file():
        if corpus.exists():
            shutil.rmtree(corpus)
        tmp = Path(tempfile.mkdtemp(prefix=f".{corpus.name}.", dir=cache))
        for name, _, _ in parts:
            (tmp / name).mkdir()
            for f in (pdir / name).iterdir():
                try:
                    os.link(f, tmp / name / f.name)
                except OSError:
                    shutil.copy2(f, tmp / name / f.name)
        (tmp / ".complete").write_text("ok\n")
        os.replace(tmp, corpus)
    return corpus


def _tree_rss(pid: int) -> int:
    try:
        import psutil
    except ImportError:  # psutil comes with the [dask] extra; without it: driver only
        return 0
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_align_corpus(corpus: Path, out: Path, *, jobs: int, scheduler: str) -> dict:
    """Run ``vqalign align-corpus`` in a fresh process: wall, peak RSS, its output."""
    cmd = [sys.executable, "-m", "vqalign", "align-corpus", str(corpus), "--out", str(out),
           "--jobs", str(jobs), "--scheduler", scheduler]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunks = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda s, k: chunks[k].append(s.read()),
                                args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=lambda s, k: chunks[k].append(s.read()),
                                args=(proc.stderr, "err"), daemon=True)]
    for r in readers:
        r.start()
    peak_tree = 0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak_tree = max(peak_tree, _tree_rss(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "peak_rss_bytes": int(ru.ru_maxrss) * 1024,
            "peak_tree_rss_bytes": int(peak_tree), "returncode": proc.returncode,
            "stdout": "".join(chunks["out"]), "stderr": "".join(chunks["err"])}


def score_outputs(corpus: Path, out: Path) -> dict:
    """Word-boundary errors of the TextGrids in ``out`` against the synthesizer's truth."""
    import numpy as np

    from vqalign.eval.boundaries import boundary_errors
    from vqalign.io.textgrid import read_textgrid

    errs, n_utts, n_missing, seconds = [], 0, 0, 0.0
    for part in sorted(p for p in corpus.iterdir() if p.is_dir()):
        for u in json.loads((part / "corpus.json").read_text()):
            n_utts += 1
            seconds += float(u["duration"])
            tg = out / part.name / f"{u['id']}.TextGrid"
            if not tg.is_file():
                n_missing += 1
                continue
            hyp = read_textgrid(tg)["words"]
            errs.append(boundary_errors(hyp, [tuple(w) for w in u["words"]])["errors"])
    e = np.concatenate(errs) if errs else np.zeros(0)
    return {"n_utts": n_utts, "audio_s": seconds, "n_unaligned": n_missing,
            "word_mean_ms": float(1000 * e.mean()) if e.size else float("nan"),
            "word_median_ms": float(1000 * np.median(e)) if e.size else float("nan"),
            "word_within_20ms": float(np.mean(e <= 0.020)) if e.size else float("nan"),
            "n_boundaries": int(e.size)}


def run(args) -> int:
    from vqalign._validation import check_positive_int

    hours = parse_hours(args.hours)
    jobs = check_positive_int(args.jobs, "--jobs")
    cache = _cache_dir(args.cache)
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vqalign-scale-"))
    rows = []
    try:
        for h in hours:
            corpus = build_corpus(h, cache, seed=args.seed, jobs=jobs)
            out = work_root / f"out-{h:g}h"
            if out.exists():
                shutil.rmtree(out)
            print(f"align-corpus on {h:g} h ({corpus}) ...", file=sys.stderr, flush=True)
            r = run_align_corpus(corpus, out, jobs=jobs, scheduler=args.scheduler)
            if r["returncode"] != 0:
                raise ParameterError(f"align-corpus failed on the {h:g} h corpus (exit "
                                     f"{r['returncode']}):\n{r['stderr'][-2000:]}")
            sc = score_outputs(corpus, out)
            last = [ln for ln in r["stdout"].splitlines() if ln.startswith("aligned ")]
            stages = [ln for ln in r["stderr"].splitlines()
                      if ln.split(":")[0] in ("features", "codebook", "em", "align")]
            rows.append({"hours": h, **sc, "wall_s": r["wall_s"],
                         "x_real_time": sc["audio_s"] / r["wall_s"],
                         "peak_rss_gb": r["peak_rss_bytes"] / 1e9,
                         "peak_tree_rss_gb": r["peak_tree_rss_bytes"] / 1e9,
                         "summary": last[-1] if last else "", "stages": stages})
            if not args.work:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work_root, ignore_errors=True)
    base = rows[0]
    for r in rows:
        r["audio_ratio"] = r["audio_s"] / base["audio_s"]
        r["wall_ratio"] = r["wall_s"] / base["wall_s"]
        r["rss_ratio"] = r["peak_rss_gb"] / base["peak_rss_gb"] if base["peak_rss_gb"] else 0.0
    info = {"jobs": jobs, "scheduler": args.scheduler, "threads": f"{jobs} worker processes "
            f"(features, alignment), {jobs} numba threads (EM)", "cpu_count": os.cpu_count(),
            "reference": f"the {base['hours']:g} h corpus of the same run", "sizes": rows}
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"align-corpus scale: --jobs {jobs} --scheduler {args.scheduler} "
          f"({os.cpu_count()} CPUs); ratios against the {base['hours']:g} h run")
    print(f"{'hours':>6} {'utts':>6} {'wall s':>8} {'xRT':>6} {'RSS GB':>7} {'tree GB':>8} "
          f"{'wall x':>7} {'audio x':>8} {'mean ms':>8} {'<=20ms':>7} {'failed':>6}")
    for r in rows:
        print(f"{r['hours']:>6g} {r['n_utts']:>6} {r['wall_s']:>8.1f} {r['x_real_time']:>6.0f} "
              f"{r['peak_rss_gb']:>7.2f} {r['peak_tree_rss_gb']:>8.2f} {r['wall_ratio']:>7.2f} "
              f"{r['audio_ratio']:>8.2f} {r['word_mean_ms']:>8.1f} "
              f"{100 * r['word_within_20ms']:>6.1f}% {r['n_unaligned']:>6}")
    for r in rows:
        for ln in r["stages"]:
            print(f"  {r['hours']:g} h  {ln}")
    return 0
