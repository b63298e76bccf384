"""Score folders of alignment files against reference TextGrids, without the CLI.

::

    from vqalign.eval import score
    result = score("ref_dir", {"mfa": "mfa_out", "whisperx": "wx_dir"})
    result["systems"]["mfa"]["words"]["mean_ms"]

Every ``*.TextGrid`` under the reference folder is a reference utterance (tiers ``words``
and, for phone figures, ``phones``). Each system is a folder (searched recursively) or
one file (a CTM may hold every utterance) in any format of :mod:`vqalign.io.formats`,
detected by content and extension. A hypothesis belongs to the reference with the same
relative path without extension, else the same file stem, else (CTM, one file for many
utterances) the same utterance id.

All systems are scored on the same reference boundaries by
:func:`vqalign.eval.boundaries.compare_tier` (FA-Bench / MFA evaluation definition):
silences and fillers dropped, words normalized, identical labels paired by edit distance,
start and end error of every pair pooled. Unpaired words or phones are counted and
listed; files that cannot be read (unknown format, bad intervals, a reference without a
words tier) are reported in ``problems`` with file and line, and the run goes on.
``vqalign bench score`` is this module plus tables, a figure and an HTML report.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from vqalign.exceptions import ParameterError, VQAlignError

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
IGNORED_EXTS = AUDIO_EXTS + (".txt", ".lab", ".xhtml", ".html", ".png", ".log")


def score(ref, hyps) -> dict:
    """Score systems' alignment files against a folder of reference TextGrids.

    Parameters
    ----------
    ref : str or Path
        Folder of reference TextGrids (searched recursively).
    hyps : dict of str to (str or Path), or str or Path
        ``{system name: output folder or file}``; a single path is one system named after
        it.

    Returns
    -------
    dict
        ``systems``: ``{name: {"words": {...}, "phones": {...}, "n_files",
        "n_missing_files", "per_voice", "per_file"}}`` where each tier holds ``mean_ms``,
        ``median_ms``, ``p90_ms``, ``pct_within_ms`` (``"10"``, ``"20"``, ``"25"``,
        ``"50"``), ``n_boundaries``, ``n_unmatched``, ``bias_onset_ms``, ... (see
        :func:`vqalign.eval.boundaries.summarize_tier`); ``n_references``; ``problems``
        (list of ``{"system", "file", "kind", "message"}``); ``n_problems``; ``notes``
        (files not read because they are not alignments). The same object that
        ``vqalign bench score --json`` prints (there non-finite numbers become null).

    Raises
    ------
    ParameterError
        ``ref`` is not a folder or holds no TextGrid; a system's path does not exist.
    """
    if isinstance(hyps, (str, Path)):
        hyps = {Path(hyps).name: hyps}
    problems: list = []
    refs = load_references(Path(ref), problems)
    systems = {name: load_system(name, Path(path), refs, problems)
               for name, path in hyps.items()}
    scored = score_systems(refs, systems, problems)
    return make_result(summarize(refs, scored), refs, problems)


def make_result(summary: dict, refs: dict, problems: list) -> dict:
    """The result object of :func:`score` from :func:`summarize`'s ``summary``, the
    references and the problems met (``"ignored"`` ones become ``notes``)."""
    notes = [p for p in problems if p["kind"] == "ignored"]
    problems = [p for p in problems if p["kind"] != "ignored"]
    return {"systems": summary, "n_references": len(refs), "problems": problems,
            "n_problems": len(problems), "notes": [p["message"] for p in notes]}


# ----------------------------------------------------------------------------- references
def load_references(root: Path, problems: list) -> dict:
    """Every readable reference TextGrid under ``root``.

    Parameters
    ----------
    root : Path
        Folder searched recursively (a ``MANIFEST.tsv`` with ``path`` and ``voice``
        columns names the voices; else the parent folder's name).
    problems : list
        Unreadable references are appended here (``{"system", "file", "kind",
        "message"}``) and skipped.

    Returns
    -------
    dict
        ``{key: {"path", "hyp": Hypothesis, "voice"}}``, key = relative path without
        extension.
    """
    from vqalign.io.formats import read_reference

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
    """One system's hypotheses, each matched to its reference.

    Parameters
    ----------
    name : str
        The system's name (for the problems).
    path : Path
        Its output folder (searched recursively) or one file.
    refs : dict
        From :func:`load_references`.
    problems : list
        Unreadable, unmatched, duplicate and ignored files are appended here.

    Returns
    -------
    dict
        ``{ref key: Hypothesis}``.
    """
    from vqalign.io.formats import read_hypotheses

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
    from vqalign.eval.boundaries import fold_word

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
    """Pair every system's hypotheses with the references (:func:`compare_tier`).

    Parameters
    ----------
    refs : dict
        From :func:`load_references`.
    systems : dict
        ``{name: {ref key: Hypothesis}}`` from :func:`load_system`.
    problems : list
        Scoring problems (words that differ, missing phone tiers) are appended here.

    Returns
    -------
    dict
        ``{name: {"words": [(key, compare_tier result), ...], "phones": [...],
        "files": {key: {...}}, "missing_files": [key, ...]}}``.
    """
    from vqalign.eval.boundaries import compare_tier

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
    """The reported figures of :func:`score_systems`' result, overall, per voice and per
    file (:func:`vqalign.eval.boundaries.summarize_tier`).

    Parameters
    ----------
    refs : dict
        From :func:`load_references`.
    scored : dict
        From :func:`score_systems`.

    Returns
    -------
    dict
        ``{name: {"words", "phones", "n_files", "n_missing_files", "per_voice",
        "per_file"}}``.
    """
    from vqalign.eval.boundaries import summarize_tier

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


def json_safe(obj):
    """``obj`` with numpy arrays and scalars as Python lists and numbers, and non-finite
    floats as ``None``, ready for :func:`json.dumps`."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
