"""``vqalign bench score``: score any aligners' output files against reference TextGrids.

::

    vqalign bench score --ref REF_DIR --hyp mfa=MFA_OUT --hyp whisperx=WX_DIR [--json]
                        [--report OUT.html] [--figure OUT.png]

Every ``*.TextGrid`` under ``--ref`` is a reference utterance (tiers ``words`` and, for
phone figures, ``phones``). Each ``--hyp NAME=PATH`` is a folder (searched recursively)
or one file (a CTM may hold every utterance) in any format of
:mod:`vqalign.bench.formats`, detected by content and extension. A hypothesis belongs to
the reference with the same relative path without extension, else the same file stem,
else (CTM, one file for many utterances) the same utterance id.

All systems are scored on the same reference boundaries by
:func:`vqalign.bench.metrics.compare_tier` (FA-Bench / MFA evaluation definition): silences
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

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

from vqalign.exceptions import ParameterError, VQAlignError

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
IGNORED_EXTS = AUDIO_EXTS + (".txt", ".lab", ".xhtml", ".html", ".png", ".log")


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


# ----------------------------------------------------------------------------- references
def load_references(root: Path, problems: list) -> dict:
    """``{key: {"path", "hyp": Hypothesis, "voice"}}`` for every readable reference."""
    from vqalign.bench.formats import read_reference

    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"--ref {root} is not a folder; pass the folder of reference "
                             "TextGrids")
    voices = _manifest_voices(root)
    refs = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() != ".textgrid" or any(part.startswith(".") for part in
                                                  p.relative_to(root).parts):
            continue
        key = p.relative_to(root).with_suffix("").as_posix()
        try:
            h = read_reference(p)
        except VQAlignError as exc:
            problems.append({"system": "(reference)", "file": str(p), "kind": "reference",
                             "message": str(exc)})
            continue
        rel_parent = p.relative_to(root).parent.as_posix()
        voice = voices.get(key) or (Path(rel_parent).name if rel_parent != "." else "(root)")
        refs[key] = {"path": p, "hyp": h, "voice": voice}
    if not refs and not problems:
        raise ParameterError(f"no .TextGrid file under {root}")
    return refs


def _manifest_voices(root: Path) -> dict:
    man = root / "MANIFEST.tsv"
    if not man.is_file():
        return {}
    with open(man, encoding="utf-8", newline="") as fh:
        return {Path(r["path"]).with_suffix("").as_posix(): r["voice"]
                for r in csv.DictReader(fh, delimiter="\t") if r.get("path") and r.get("voice")}


# ----------------------------------------------------------------------------- hypotheses
def load_system(name: str, path: Path, refs: dict, problems: list) -> dict:
    """``{ref key: Hypothesis}`` for one system; unreadable or unmatched files are noted."""
    from vqalign.bench.formats import read_hypotheses

    path = Path(path)
    if not path.exists():
        raise ParameterError(f"--hyp {name}={path}: no such file or folder")
    if path.is_dir():
        every = [p for p in sorted(path.rglob("*")) if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        # audio, transcripts, SMIL text pages, logs and pictures are not alignments: they
        # are counted (not read) so that nothing is skipped unseen
        files = [p for p in every if p.suffix.lower() not in IGNORED_EXTS]
        n_ignored = len(every) - len(files)
        if n_ignored:
            exts = sorted({p.suffix.lower() for p in every if p.suffix.lower() in IGNORED_EXTS})
            problems.append({"system": name, "file": str(path), "kind": "ignored",
                             "message": f"{path}: {n_ignored} file(s) with extension(s) "
                                        f"{', '.join(exts)} not read (audio, transcripts, "
                                        "pages, logs)"})
        base = path
    else:
        files, base = [path], path.parent
    by_stem = defaultdict(list)
    for key in refs:
        by_stem[Path(key).name].append(key)
    out = {}
    for f in files:
        try:
            hyps = read_hypotheses(f)
        except VQAlignError as exc:
            problems.append({"system": name, "file": str(f), "kind": "unreadable",
                             "message": str(exc)})
            continue
        for h in hyps:
            rel = f.relative_to(base).with_suffix("").as_posix()
            cands = [rel] if len(hyps) == 1 else []
            if h.utterance:
                cands.append(h.utterance)
            cands.append(Path(rel).name)
            key = next((c for c in cands if c in refs), None)
            if key is None:
                for c in cands:
                    stems = by_stem.get(Path(c).name, [])
                    if len(stems) == 1:
                        key = stems[0]
                        break
            if key is None:
                problems.append({"system": name, "file": str(f), "kind": "no reference",
                                 "message": f"{f}: no reference TextGrid for "
                                            f"{h.utterance or rel!r}; file not scored"})
                continue
            if key in out:
                problems.append({"system": name, "file": str(f), "kind": "duplicate",
                                 "message": f"{f}: a second hypothesis for {key!r} "
                                            f"(first: {out[key].path}); the first is kept"})
                continue
            out[key] = h
    return out


def _fill_labels_from_reference(h, ref, problems, name) -> bool:
    """SMIL without its text page: take the reference words in order if counts agree."""
    from vqalign.bench.metrics import fold_word

    rw = [lab for _, _, lab in ref.tiers["words"] if fold_word(lab)]
    hw = h.tiers["words"]
    if len(rw) != len(hw):
        problems.append({"system": name, "file": str(h.path), "kind": "words differ",
                         "message": f"{h.path}: SMIL has {len(hw)} fragments and no text page; "
                                    f"the reference has {len(rw)} words, so labels cannot be "
                                    "taken from it; put the XHTML page beside the SMIL file"})
        return False
    h.tiers["words"] = [(s, e, lab) for (s, e, _), lab in zip(hw, rw)]
    return True


# ----------------------------------------------------------------------------- scoring
def score_systems(refs: dict, systems: dict, problems: list) -> dict:
    """``{name: {"words": [...compare_tier...], "phones": [...], "files": {key: {...}}}}``."""
    from vqalign.bench.metrics import compare_tier

    out = {}
    for name, hyps in systems.items():
        res = {"words": [], "phones": [], "files": {}, "missing_files": []}
        for key, ref in refs.items():
            h = hyps.get(key)
            if h is None:
                res["missing_files"].append(key)
                continue
            if h.labels_from_reference and not _fill_labels_from_reference(
                    h, ref["hyp"], problems, name):
                continue
            entry = {"voice": ref["voice"], "format": h.format, "notes": list(h.notes)}
            try:
                if "words" in h.tiers:
                    w = compare_tier(h.tiers["words"], ref["hyp"].tiers["words"])
                    res["words"].append((key, w))
                    entry["words"] = w
                    _word_problems(name, h, ref["hyp"], w, problems)
                if "phones" in h.tiers and "phones" not in ref["hyp"].tiers:
                    problems.append({"system": name, "file": str(ref["path"]),
                                     "kind": "reference",
                                     "message": f"{ref['path']}: reference has no phones tier; "
                                                f"the phones of {h.path} are not scored"})
                if "phones" in h.tiers and "phones" in ref["hyp"].tiers:
                    p = compare_tier(h.tiers["phones"], ref["hyp"].tiers["phones"],
                                     tier="phones")
                    res["phones"].append((key, p))
                    entry["phones"] = p
            except VQAlignError as exc:
                problems.append({"system": name, "file": str(h.path), "kind": "scoring",
                                 "message": f"{h.path}: {exc}"})
                continue
            res["files"][key] = entry
        out[name] = res
    return out


def _word_problems(name, h, ref, w, problems) -> None:
    if not (w["missing"] or w["inserted"]):
        return
    hl = h.lines.get("words") or []
    rl = ref.lines.get("words") or []
    parts = []
    for lab, src in list(zip(w["inserted"], w["inserted_src"]))[:3]:
        ln = hl[src] if src < len(hl) else None
        parts.append(f"{lab!r} (line {ln}) not in the reference" if ln else
                     f"{lab!r} not in the reference")
    for lab, src in list(zip(w["missing"], w["missing_src"]))[:3]:
        ln = rl[src] if src < len(rl) else None
        parts.append(f"reference word {lab!r} ({ref.path} line {ln}) has no match" if ln else
                     f"reference word {lab!r} has no match")
    problems.append({"system": name, "file": str(h.path), "kind": "words differ",
                     "message": f"{h.path}: words differ from the reference: "
                                f"{len(w['inserted'])} inserted, {len(w['missing'])} missing; "
                                + "; ".join(parts) + " (counted as unmatched)"})


def summarize(refs: dict, scored: dict) -> dict:
    from vqalign.bench.metrics import summarize_tier

    out = {}
    for name, res in scored.items():
        s = {"words": summarize_tier([w for _, w in res["words"]])}
        if res["phones"]:
            s["phones"] = summarize_tier([p for _, p in res["phones"]])
        s["n_files"] = len(res["files"])
        s["n_missing_files"] = len(res["missing_files"])
        voices = sorted({refs[k]["voice"] for k in res["files"]})
        s["per_voice"] = {}
        for v in voices:
            pv = {"words": summarize_tier([w for k, w in res["words"] if refs[k]["voice"] == v])}
            ph = [p for k, p in res["phones"] if refs[k]["voice"] == v]
            if ph:
                pv["phones"] = summarize_tier(ph)
            pv["n_files"] = sum(1 for k in res["files"] if refs[k]["voice"] == v)
            s["per_voice"][v] = pv
        s["per_file"] = {}
        for key, entry in res["files"].items():
            pf = {"voice": entry["voice"], "format": entry["format"]}
            for tier in ("words", "phones"):
                if tier in entry:
                    f = summarize_tier([entry[tier]])
                    pf[tier] = {k: f[k] for k in ("mean_ms", "median_ms", "pct_within_ms",
                                                  "n_boundaries", "n_missing", "n_inserted",
                                                  "n_untimed")}
            if entry["notes"]:
                pf["notes"] = entry["notes"]
            s["per_file"][key] = pf
        out[name] = s
    return out


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
        from vqalign.bench.phonesets import CLASSES

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


def _json_safe(obj):
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


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
        from vqalign.io.audio import load_audio

        utts = []
        for key, ref in refs.items():
            sys_tiers = {n: systems[n][key].tiers for n in names if key in systems[n]}
            audio_path = _find_audio(ref["path"], Path(args.ref), args.audio)
            y, sr = None, None
            if audio_path is not None:
                try:
                    y, sr = load_audio(audio_path, sr=16000)
                except VQAlignError as exc:
                    problems.append({"system": "(audio)", "file": str(audio_path),
                                     "kind": "audio", "message": str(exc)})
            utts.append({"id": key, "voice": ref["voice"], "audio": y, "sr": sr,
                         "ref": ref["hyp"].tiers, "systems": sys_tiers})
        write_report(args.report, utts, title=f"vqalign bench score: {args.ref}",
                     overwrite=args.overwrite, max_utterances=args.report_max,
                     problems=problems)

    notes = [p for p in problems if p["kind"] == "ignored"]
    problems = [p for p in problems if p["kind"] != "ignored"]
    result = {"systems": summary, "n_references": len(refs), "problems": problems,
              "n_problems": len(problems), "notes": [p["message"] for p in notes]}
    if args.json:
        print(json.dumps(_json_safe(result), indent=1))
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
