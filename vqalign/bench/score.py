"""``vqalign bench score``: score any aligners' output files against reference TextGrids.

::

    vqalign bench score --ref REF_DIR --hyp mfa=MFA_OUT --hyp whisperx=WX_DIR [--json]
                        [--report OUT.html] [--figure OUT.png]

Every ``*.TextGrid`` under ``--ref`` is a reference utterance (tiers ``words`` and, for
phone figures, ``phones``). Each ``--hyp NAME=PATH`` is a folder (searched recursively)
or one file (a CTM may hold every utterance) in any format of
:mod:`vqalign.io.formats`, detected by content and extension. A hypothesis belongs to
the reference with the same relative path without extension, else the same file stem,
else (CTM, one file for many utterances) the same utterance id.

All systems are scored on the same reference boundaries by
:func:`vqalign.eval.boundaries.compare_tier` (FA-Bench / MFA evaluation definition): silences
and fillers dropped, words normalized, identical labels paired by edit distance, start and
end error of every pair pooled. Unpaired words or phones are counted and listed; files that
cannot be read (unknown format, bad intervals, a reference without a words tier) are
reported with file and line, counted, and the run goes on.

``--json`` prints one object::

    {"systems": {NAME: {"words": {"mean_ms", "median_ms", "p90_ms",
                                  "pct_within_ms": {"10", "20", "25", "50"},
                                  "n_boundaries", "n_unmatched", ...},
                        "phones": {...}, "per_voice": {...}, "per_file": {...}}},
     "problems": [...], ...}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vqalign.eval.folders import (
    AUDIO_EXTS,
    json_safe,
    load_references,
    load_system,
    make_result,
    score_systems,
    summarize,
)
from vqalign.exceptions import ParameterError, VQAlignError


def add_arguments(parser) -> None:
    parser.add_argument("--ref", type=Path, required=True,
                        help="folder of reference TextGrids (searched recursively)")
    parser.add_argument("--hyp", action="append", default=[], metavar="NAME=PATH",
                        help="a system's output folder or file; repeat for more systems")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html",
                        help="write a self-contained HTML report (tables, CDF figure, per "
                             "utterance audio, spectrogram and tiers; worst first)")
    parser.add_argument("--figure", type=Path, default=None, metavar="OUT.png",
                        help="write the CDF / signed-error histogram figure as PNG")
    parser.add_argument("--audio", type=Path, default=None,
                        help="folder with the audio (default: beside the references)")
    parser.add_argument("--report-max", type=int, default=40, metavar="N",
                        help="utterances shown in the report, worst first (default 40)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --report / --figure files")


def parse_hyp(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise ParameterError(f"--hyp {spec!r} is not NAME=PATH (e.g. --hyp mfa=out/mfa)")
    return name.strip(), Path(path.strip())



# ----------------------------------------------------------------------------- output
def _fmt(v, w=7, d=1) -> str:
    return f"{v:{w}.{d}f}" if isinstance(v, (int, float)) and v == v else " " * (w - 3) + "nan"


def print_tables(summary: dict, problems: list, refs: dict) -> None:
    print(f"vqalign bench score: {len(refs)} reference utterance(s), "
          f"{len(summary)} system(s)")
    for tier in ("words", "phones"):
        rows = [(n, s[tier]) for n, s in summary.items() if tier in s]
        if not rows:
            continue
        print(f"\n  {tier}: boundary error (ms), start and end of every paired {tier[:-1]}")
        print(f"  {'system':<16} {'files':>5} {'mean':>7} {'median':>7} {'p90':>7} {'<=10':>6} "
              f"{'<=20':>6} {'<=25':>6} {'<=50':>6} {'bounds':>7} {'miss':>5} {'ins':>5} "
              f"{'untimed':>7} {'bias on':>7} {'bias off':>8}")
        for n, t in rows:
            pct = t["pct_within_ms"]
            print(f"  {n:<16} {summary[n]['n_files']:>5} {_fmt(t['mean_ms'])} "
                  f"{_fmt(t['median_ms'])} {_fmt(t['p90_ms'])} "
                  + " ".join(_fmt(pct[k], 6) for k in ("10", "20", "25", "50"))
                  + f" {t['n_boundaries']:>7} {t['n_missing']:>5} {t['n_inserted']:>5} "
                    f"{t['n_untimed']:>7} {_fmt(t['bias_onset_ms'])} "
                    f"{_fmt(t['bias_offset_ms'], 8)}")
    rows = [(n, s["phones"]["by_class"]) for n, s in summary.items() if "phones" in s]
    if rows:
        from vqalign.phones import CLASSES

        print("\n  phone boundaries by class of the reference phone: mean ms (% within 20 ms)")
        print(f"  {'system':<16} " + " ".join(f"{c:>16}" for c in CLASSES))
        for n, by in rows:
            cells = [f"{_fmt(by[c]['mean_ms'], 6)} ({_fmt(by[c]['pct_within_20'], 5)})"
                     for c in CLASSES]
            print(f"  {n:<16} " + " ".join(f"{c:>16}" for c in cells))
    print("\n  per voice (words): mean ms / % within 20 ms / files")
    for n, s in summary.items():
        for v, pv in s["per_voice"].items():
            t = pv["words"]
            print(f"  {n:<16} {v:<28} {_fmt(t['mean_ms'])} {_fmt(t['pct_within_ms']['20'], 6)} "
                  f"{pv['n_files']:>5}")
    for n, s in summary.items():
        if s["n_missing_files"]:
            print(f"\n  {n}: {s['n_missing_files']} reference utterance(s) have no hypothesis "
                  "file (not scored)")
    if problems:
        print(f"\n  {len(problems)} problem(s):")
        for p in problems[:50]:
            print(f"    [{p['system']}] {p['kind']}: {p['message']}")
        if len(problems) > 50:
            print(f"    ... and {len(problems) - 50} more (see --json)")



def _find_audio(ref_path: Path, ref_root: Path, audio_root: Path | None) -> Path | None:
    cands = []
    if audio_root is not None:
        rel = ref_path.relative_to(ref_root).with_suffix("")
        cands += [audio_root / rel.with_suffix(ext) for ext in AUDIO_EXTS]
        cands += [audio_root / (rel.name + ext) for ext in AUDIO_EXTS]
    cands += [ref_path.with_suffix(ext) for ext in AUDIO_EXTS]
    return next((c for c in cands if c.is_file()), None)


def run(args) -> int:
    if not args.hyp:
        raise ParameterError("give at least one --hyp NAME=PATH (a system's output folder "
                             "or file)")
    specs = [parse_hyp(s) for s in args.hyp]
    names = [n for n, _ in specs]
    if len(set(names)) != len(names):
        raise ParameterError(f"--hyp names must differ, got {', '.join(names)}")
    for out in (args.report, args.figure):
        if out is not None and out.exists() and not args.overwrite:
            raise ParameterError(f"{out} exists; pass --overwrite to replace it")
    problems: list = []
    refs = load_references(args.ref, problems)
    systems = {name: load_system(name, path, refs, problems) for name, path in specs}
    scored = score_systems(refs, systems, problems)
    summary = summarize(refs, scored)

    if args.figure is not None:
        from vqalign.bench.report import error_figure_png
        from vqalign.io.atomic import atomic_write

        png = error_figure_png(scored)
        with atomic_write(args.figure, "wb", overwrite=args.overwrite) as fh:
            fh.write(png)
    if args.report is not None:
        from vqalign.bench.report import write_report
        from vqalign.features.frontend import FEATURE_SR
        from vqalign.io.audio import load_audio

        utts = []
        for key, ref in refs.items():
            sys_tiers = {n: systems[n][key].tiers for n in names if key in systems[n]}
            audio_path = _find_audio(ref["path"], Path(args.ref), args.audio)
            y, sr = None, None
            if audio_path is not None:
                try:
                    y, sr = load_audio(audio_path, sr=FEATURE_SR)
                except VQAlignError as exc:
                    problems.append({"system": "(audio)", "file": str(audio_path),
                                     "kind": "audio", "message": str(exc)})
            utts.append({"id": key, "voice": ref["voice"], "audio": y, "sr": sr,
                         "ref": ref["hyp"].tiers, "systems": sys_tiers})
        write_report(args.report, utts, title=f"vqalign bench score: {args.ref}",
                     overwrite=args.overwrite, max_utterances=args.report_max,
                     problems=problems)

    notes = [p for p in problems if p["kind"] == "ignored"]
    result = make_result(summary, refs, problems)
    problems = result["problems"]
    if args.json:
        print(json.dumps(json_safe(result), indent=1))
    else:
        print_tables(summary, problems, refs)
        for p in notes:
            print(f"  note [{p['system']}]: {p['message']}")
        if args.report is not None:
            print(f"\n  report written to {args.report}")
        if args.figure is not None:
            print(f"  figure written to {args.figure}")
    if not any(s["n_files"] for s in summary.values()):
        print("vqalign bench score: no hypothesis file matched a reference", file=sys.stderr)
        return 1
    return 0
