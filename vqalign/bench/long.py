"""``vqalign bench long``: one long multi-voice recording aligned as one file, against the
same utterances aligned one at a time in the same run.

Builds a recording of ``--minutes`` from a corpus with exact (or hand-made) word times
(``--corpus DIR``: any folder of x.wav + x.TextGrid with a words tier, repeated as often
as needed; default ``../shared/devdata/synth`` when it exists, else the built-in
synthesizer), shuffled, with 0.2-1.5 s pauses, writes it as WAV + transcript, and runs
``vqalign align`` on it in a fresh process, exactly as a user would. Prints word-boundary
mean / median / p90 error, drift (mean error of the last tenth of the words minus the first
tenth), x real time, the child's peak RSS and the time of every stage.

The peer is the same aligner on the recording's utterances one at a time (``--single N``
of them, each self-trained on its own audio, in this process): the long file's error on
the words of those utterances (every occurrence) is divided by theirs.

``--gap music|silence|noise``: ``--gap-minutes`` of synthetic music (or silence, or
stationary noise; :func:`vqalign.datasets.longform.gap_audio`) put in the pause nearest
the middle; the span reported without speech and the words over it are printed.

``--kill-at-half``: the alignment is run again with a fresh resume folder, killed at half
the first run's wall time, and started once more; then once more uninterrupted (the
machine's load changes between runs). The re-run's wall time is printed as a share of the
mean of the two uninterrupted runs, its CPU time (user + system, less sensitive to a shared
machine's load) likewise, and whether the words came out the same.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "devdata" / "synth"


def add_arguments(parser):
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="length of the recording (default 60)")
    parser.add_argument("--corpus", default=None,
                        help="folder of x.wav + x.TextGrid (words tier) to build it from, "
                             "repeated as needed, or 'builtin' for the built-in synthesizer "
                             f"(default {DEFAULT_CORPUS} if it exists, else builtin)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unit", default="phones", choices=("phones", "chars"))
    parser.add_argument("--jobs", type=int, default=2, help="threads for vqalign align")
    parser.add_argument("--single", type=int, default=40,
                        help="utterances of the recording also aligned one at a time, the "
                             "peer (default 40; 0: none)")
    parser.add_argument("--reference", default="auto",
                        choices=("auto", "sphinx", "none", "flat"),
                        help="the Aligner's reference, on both sides (vqalign align "
                             "--reference; default auto, as vqalign align)")
    parser.add_argument("--kill-at-half", action="store_true",
                        help="also run it killed at half time and resumed")
    parser.add_argument("--gap", default=None, choices=("music", "silence", "noise"),
                        help="put --gap-minutes of synthetic music, silence or stationary "
                             "noise in the pause nearest the middle (a stretch without "
                             "words: its report and the words around it are printed)")
    parser.add_argument("--gap-minutes", type=float, default=3.0,
                        help="length of the --gap stretch (default 3)")
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


def _children_cpu():
    """User + system CPU seconds of this process's finished children so far."""
    import resource  # noqa: PLC0415
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run_child(cmd, env, kill_after=None):
    """(exit status, wall s, peak RSS MB, killed, stderr, CPU s) of a child process."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed = False
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    # the child's own peak (os.wait4 is not available once communicate() reaped it)
    peak = _peak_mb(err)
    return proc.returncode, wall, peak, killed, err, _children_cpu() - cpu0


def _peak_mb(stderr_text):
    for line in stderr_text.splitlines()[::-1]:
        if line.startswith("PEAK_RSS_KB "):
            return int(line.split()[1]) / 1024
    return float("nan")


#: the child aligns, then prints its own peak RSS: VmHWM of its memory map (Linux), else
#: ru_maxrss. Not ru_maxrss first: Linux carries the parent's high-water mark into a child
#: across exec, so a bench process holding a 3-hour recording (over 1.5 GB) would be
#: reported as the child's peak
_CHILD = ("import resource, sys\n"
          "from vqalign.cli import main\n"
          "rc = main(sys.argv[1:])\n"
          "kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "try:\n"
          "    with open('/proc/self/status') as fh:\n"
          "        kb = next(int(x.split()[1]) for x in fh if x.startswith('VmHWM:'))\n"
          "except (OSError, StopIteration):\n"
          "    pass\n"
          "print('PEAK_RSS_KB', kb, file=sys.stderr)\n"
          "sys.exit(rc)\n")


def _one_at_a_time(rec, n, unit, jobs, seed, reference="auto"):
    """Errors (ms, per word: mean of start and end error) of ``n`` of the recording's
    utterances aligned one at a time, {utterance index in rec.sources: errors}; and the
    wall time and audio seconds."""
    from vqalign.align import Aligner  # noqa: PLC0415
    rng = np.random.default_rng(seed + 1)
    uids = sorted(set(rec.sources))            # utterances that occur in the recording
    pick = sorted(rng.choice(len(uids), size=min(n, len(uids)), replace=False).tolist())
    out, wall, audio_s = {}, 0.0, 0.0
    import warnings  # noqa: PLC0415
    for i in pick:
        uid = uids[i]
        y, words = rec.utterances[uid]
        text = " ".join(lab for _, _, lab in words)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aln = Aligner(unit=unit, n_jobs=jobs, reference=reference).align(
                y, text, sr=rec.sr)
        wall += time.perf_counter() - t0
        audio_s += y.size / rec.sr
        pred = [(w.start, w.end, w.label) for w in aln.tiers["words"]]
        s, e = score_words(pred, words)
        out[uid] = (s + e) / 2
    return out, wall, audio_s


def run(args) -> int:
    import soundfile as sf  # noqa: PLC0415

    from vqalign.datasets.longform import build_long_recording  # noqa: PLC0415
    corpus = args.corpus
    if corpus is None and DEFAULT_CORPUS.is_dir():
        corpus = DEFAULT_CORPUS
    if corpus == "builtin":
        corpus = None
    elif corpus is None:
        print("bench long: no corpus given and ../shared/devdata is absent; building the "
              "recording from built-in synthesized speech", file=sys.stderr)
    rec = build_long_recording(args.minutes, corpus, seed=args.seed)
    gap = None
    if args.gap:
        from vqalign.datasets.longform import with_gap  # noqa: PLC0415
        rec, gap = with_gap(rec, args.gap, 60.0 * args.gap_minutes, seed=args.seed)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vqalign-long-"))
    work.mkdir(parents=True, exist_ok=True)
    wav, txt, out = work / "long.wav", work / "long.txt", work / "long.json"
    sf.write(str(wav), rec.audio, rec.sr)
    txt.write_text(rec.text + "\n")
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(args.jobs)
    env["VQALIGN_RESUME_DIR"] = str(work / "resume")
    cmd = [sys.executable, "-c", _CHILD, "align", str(wav), str(txt), "--out", str(out),
           "--unit", args.unit, "--reference", args.reference, "--overwrite"]
    rc, wall, peak_mb, _, err, cpu = _run_child(cmd, env)
    if rc != 0:
        print(err.strip()[-2000:], file=sys.stderr)
        print(f"bench long: vqalign align failed (exit {rc})", file=sys.stderr)
        return 1
    aln = json.loads(out.read_text())
    pred = [(s, e, lab) for s, e, lab, *_ in aln["tiers"]["words"]]
    res = summarize(pred, rec.words)
    long_diag = aln.get("diagnostics", {}).get("long_audio", {})
    res.update({"minutes": rec.duration / 60, "corpus": str(corpus) if corpus else "synth",
                "seed": args.seed, "reference": args.reference, "wall_s": wall, "cpu_s": cpu,
                "x_real_time": rec.duration / wall, "load_1min": os.getloadavg()[0],
                "peak_rss_mb": peak_mb, "threads": args.jobs,
                "stages_s": long_diag.get("stages_s", {}),
                "anchor_stray_s": long_diag.get("anchor_stray_s"),
                "start": long_diag.get("start"),
                "unsure_spans_s": long_diag.get("unsure_spans_s", []),
                "anchor_corridor_s": long_diag.get("anchor_corridor_s"),
                "warnings": aln.get("diagnostics", {}).get("warnings", [])[:5]})
    if gap is not None:
        diag = aln.get("diagnostics", {})
        res.update({"gap": args.gap, "gap_s": [round(gap[0], 2), round(gap[1], 2)],
                    "non_speech_s": diag.get("non_speech_s", []),
                    "words_over_gap": [p for p in pred
                                       if p[1] > gap[0] + 0.05 and p[0] < gap[1] - 0.05],
                    "gap_warnings": [w for w in diag.get("warnings", [])
                                     if "holds no word" in w]})
    if args.single:
        single, s_wall, s_audio = _one_at_a_time(rec, args.single, args.unit, args.jobs,
                                                 args.seed, args.reference)
        s_err = np.concatenate(list(single.values()))
        # the long file's error on every occurrence of the same utterances
        sp, ep = score_words(pred, rec.words)
        per_word = (sp + ep) / 2
        src = np.array([rec.sources[i] for i in rec.word_source])
        mask = np.isin(src, list(single))
        res.update({"single_utterances": len(single), "single_words": int(s_err.size),
                    "single_word_mean_ms": float(s_err.mean()),
                    "single_x_real_time": s_audio / max(s_wall, 1e-9),
                    "long_same_words_mean_ms": float(per_word[mask].mean()),
                    "long_same_words_n": int(mask.sum()),
                    "mean_ratio_long_vs_single": float(per_word[mask].mean() / s_err.mean())})
    if args.kill_at_half:
        env2 = dict(env)
        env2["VQALIGN_RESUME_DIR"] = str(work / "resume-kill")
        out2 = work / "long-resumed.json"
        cmd2 = [*cmd[:6], "--out", str(out2), *cmd[8:]]
        _, w1, _, killed, _, c1 = _run_child(cmd2, env2, kill_after=wall / 2)
        rc2, w2, p2, _, err2, c2 = _run_child(cmd2, env2)
        # an uninterrupted run right after, on its own work folder: the machine's load
        # changes, so the re-run is compared with the mean of the two uninterrupted runs
        env3 = dict(env)
        env3["VQALIGN_RESUME_DIR"] = str(work / "resume-again")
        out3 = work / "long-again.json"
        _, w3, _, _, _, c3 = _run_child([*cmd[:6], "--out", str(out3), *cmd[8:]], env3)
        same = False
        if rc2 == 0:
            a2 = json.loads(out2.read_text())
            same = a2["tiers"] == aln["tiers"]
        res.update({"kill_at_s": round(wall / 2, 1), "killed": killed, "resume_wall_s": w2,
                    "uninterrupted_again_s": w3,
                    "resume_share": w2 / ((wall + w3) / 2), "resume_same_output": same,
                    "killed_cpu_s": c1, "resume_cpu_s": c2, "uninterrupted_again_cpu_s": c3,
                    "resume_cpu_share": c2 / max((cpu + c3) / 2, 1e-9),
                    "resume_peak_rss_mb": p2,
                    "resumed_stages": (json.loads(out2.read_text())["diagnostics"]
                                       ["long_audio"].get("resumed", []) if rc2 == 0 else
                                       err2.strip()[-300:])})
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['minutes']:.1f} min from {res['corpus']} (seed {args.seed}, reference "
          f"{args.reference}), {res['n_words']} words "
          f"({res['n_matched']} matched): mean {res['word_mean_ms']:.1f} ms, median "
          f"{res['word_median_ms']:.1f} ms, p90 {res['word_p90_ms']:.1f} ms, "
          f"{100 * res['word_within_20ms']:.1f} % within 20 ms; drift {res['drift_ms']:+.1f} ms")
    print(f"  one file: {wall:.1f} s wall ({cpu:.1f} s CPU), {res['x_real_time']:.1f}x real "
          f"time ({args.jobs} threads, load {res['load_1min']:.1f}), peak RSS {peak_mb:.0f} MB")
    print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in res["stages_s"].items())
          + (f"; the anchor path strays up to {res['anchor_stray_s']:.0f} s from the "
             f"diagonal (corridor +-{res['anchor_corridor_s']:.0f} s)"
             if res.get("anchor_stray_s") is not None else ""))
    if gap is not None:
        print(f"  {args.gap} at {gap[0]:.1f}-{gap[1]:.1f} s; reported without speech: "
              f"{res['non_speech_s']}; words over it: {len(res['words_over_gap'])} "
              f"{res['words_over_gap'][:3]}")
    if res["start"] is not None:
        print(f"  flat start kept: {res['start']}; spans reported unsure: "
              f"{len(res['unsure_spans_s'])} {res['unsure_spans_s'][:4]}")
    if args.single:
        print(f"  one at a time ({res['single_utterances']} of its utterances, "
              f"{res['single_words']} words, {args.jobs} threads): mean "
              f"{res['single_word_mean_ms']:.1f} ms per word, "
              f"{res['single_x_real_time']:.1f}x real time; the long file on the same "
              f"{res['long_same_words_n']} words: {res['long_same_words_mean_ms']:.1f} ms "
              f"-> ratio {res['mean_ratio_long_vs_single']:.2f}")
    if args.kill_at_half:
        print(f"  killed at {res['kill_at_s']:.1f} s ({'killed' if res['killed'] else 'had finished'}"
              f"), re-run {res['resume_wall_s']:.1f} s = {100 * res['resume_share']:.0f} % of "
              f"the uninterrupted runs ({wall:.1f} s before, "
              f"{res['uninterrupted_again_s']:.1f} s after it); in CPU time "
              f"{res['resume_cpu_s']:.1f} s = {100 * res['resume_cpu_share']:.0f} % "
              f"({cpu:.1f} s and {res['uninterrupted_again_cpu_s']:.1f} s); same words: "
              f"{res['resume_same_output']}; resumed {res['resumed_stages']}")
    return 0
