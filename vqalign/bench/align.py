"""``vqalign bench align``: alignment accuracy and speed against pocketsphinx, in one run.

Finds every audio file under ``--corpus`` with a ``.txt`` transcript and a reference
``.TextGrid`` beside it (the devdata layout ``synth/<voice>/<id>.wav|.txt|.TextGrid``),
then, on the same utterances:

* vqalign in corpus mode: ``Aligner(...).fit(corpus)`` then ``align_many`` over every
  utterance; the time covers training and alignment (features included); numba
  compilation is excluded by a tiny warm-up run first;
* pocketsphinx forced alignment (:mod:`vqalign.bench.adapters`, PEERS.md settings,
  single thread), after a one-utterance warm-up.

Audio is loaded before either clock starts. Word boundaries (start and end of every
word) and phone boundaries (matched phones) are scored with
:func:`vqalign.bench.metrics.boundary_errors`; figures are printed per voice and overall,
with x-real-time (seconds of audio per second of wall time) for both systems.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "devdata"


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", type=Path, default=None,
                        help="folder with <id>.wav + <id>.txt + <id>.TextGrid (searched "
                             f"recursively); default: {DEFAULT_CORPUS} if present")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--limit", type=int, default=None,
                        help="use at most N utterances, taken in turn from each voice")
    parser.add_argument("--no-pocketsphinx", action="store_true",
                        help="skip the pocketsphinx run (vqalign figures only)")
    parser.add_argument("--unit", choices=("phones", "chars"), default="phones",
                        help="vqalign's alignment unit (default phones)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="worker threads for vqalign (default 2; pocketsphinx uses 1)")
    parser.add_argument("--n-iter", type=int, default=None,
                        help="EM iterations for vqalign's Aligner (default: its own default)")


# ----------------------------------------------------------------------------- corpus
def find_utterances(root: Path, limit: int | None = None) -> tuple[list, int]:
    """Items with a reference TextGrid, round-robin over voices when limited.

    Returns ``(items, n_skipped)`` where skipped are files that could not be paired or
    have no reference.
    """
    from vqalign.align.corpus import pair_corpus

    items, failures = pair_corpus(root)
    with_ref = [it for it in items if it.reference is not None]
    skipped = len(failures) + len(items) - len(with_ref)
    manifest = Path(root) / "MANIFEST.tsv"
    if manifest.is_file():
        # devdata: MANIFEST.tsv lists the evaluation utterances and their voices
        import csv

        with open(manifest, encoding="utf-8", newline="") as fh:
            rows = {Path(r["path"]).with_suffix("").as_posix(): r
                    for r in csv.DictReader(fh, delimiter="\t") if r.get("path")}
        listed = [it for it in with_ref if it.id in rows]
        skipped += len(with_ref) - len(listed)
        with_ref = listed
        for it in with_ref:
            voice = rows[it.id].get("voice")
            if voice:
                it.group = voice
    if not with_ref:
        raise ParameterError(f"no utterance under {root} has audio, a .txt transcript and a "
                             "reference .TextGrid beside each other")
    if limit is not None:
        if limit < 1:
            raise ParameterError(f"--limit must be >= 1, got {limit}")
        by_voice: dict[str, list] = defaultdict(list)
        for it in with_ref:
            by_voice[voice_of(it)].append(it)
        chosen = []
        queues = [list(v) for v in by_voice.values()]
        while len(chosen) < limit and any(queues):
            for q in queues:
                if q and len(chosen) < limit:
                    chosen.append(q.pop(0))
        with_ref = sorted(chosen, key=lambda it: it.id)
    return with_ref, skipped


def voice_of(item) -> str:
    return Path(item.group).name if item.group else "(root)"


def _load(items):
    from vqalign.align.corpus import load_item
    from vqalign.io.textgrid import read_textgrid

    data = []
    for it in items:
        y, sr, text = load_item(it)
        ref = read_textgrid(it.reference)
        if "words" not in ref:
            raise ParameterError(f"reference {it.reference} has no 'words' tier")
        data.append({"item": it, "voice": voice_of(it), "audio": y, "sr": sr, "text": text,
                     "ref": ref, "seconds": y.size / sr})
    return data


# ----------------------------------------------------------------------------- systems
def _run_vqalign(data, *, unit: str, jobs: int, n_iter: int | None) -> tuple[list, float, dict]:
    """Train on the corpus and align every utterance; returns (hyps, seconds, info)."""
    from vqalign.align import Aligner

    kwargs = {"unit": unit, "n_jobs": jobs}
    if n_iter is not None:
        kwargs["n_iter"] = n_iter
    corpus = [(d["audio"], d["sr"], d["text"]) for d in data]
    # warm-up: a tiny corpus-mode run compiles (or loads) every numba kernel
    warm = min(range(len(data)), key=lambda i: data[i]["seconds"])
    wk = dict(kwargs, n_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Aligner(**wk).fit(corpus[warm:warm + 1]).align_many(corpus[warm:warm + 1], n_jobs=1)

    with warnings.catch_warnings():
        # the OOV words are reported once below, not by every call
        warnings.filterwarnings("ignore", message=".*letter-to-sound")
        t0 = time.perf_counter()
        aligner = Aligner(**kwargs).fit(corpus)
        results = aligner.align_many(corpus, n_jobs=jobs)
        seconds = time.perf_counter() - t0
    hyps = []
    for r in results:
        if isinstance(r, BaseException):
            hyps.append(r)
        else:
            hyps.append({"words": r.tier("words"),
                         "phones": r.tier(r.unit_tier) if r.unit_tier else []})
    return hyps, seconds, {"n_jobs": jobs, "unit": unit, "oov": list(getattr(aligner, "oov_", []))}


def _run_pocketsphinx(data) -> tuple[list, float, dict]:
    from vqalign.bench.adapters import PocketsphinxAligner
    from vqalign.exceptions import VQAlignError

    ps = PocketsphinxAligner()
    warm = min(range(len(data)), key=lambda i: data[i]["seconds"])
    try:
        ps.align(data[warm]["audio"], data[warm]["text"], sr=data[warm]["sr"])
    except VQAlignError:
        pass
    hyps = []
    t0 = time.perf_counter()
    for d in data:
        try:
            hyps.append(ps.align(d["audio"], d["text"], sr=d["sr"]))
        except VQAlignError as exc:
            hyps.append(exc)
    seconds = time.perf_counter() - t0
    return hyps, seconds, {"n_jobs": 1, "added_words": sorted(ps.added_words_),
                           "n_retried": ps.n_retried_, "retried_seconds": ps.retried_seconds_,
                           "retried_audio_s": ps.retried_audio_s_}


# ----------------------------------------------------------------------------- scoring
def score(data, hyps, *, phones: bool = True) -> dict:
    """Pool per-utterance errors per voice and overall."""
    from vqalign.bench.metrics import boundary_errors, summarize_errors
    from vqalign.exceptions import VQAlignError

    pooled: dict[str, dict[str, list]] = defaultdict(lambda: {"w": [], "p": [], "failed": [],
                                                              "n": 0, "matched": 0, "ref": 0})
    for d, h in zip(data, hyps):
        for key in (d["voice"], "overall"):
            pooled[key]["n"] += 1
        if isinstance(h, BaseException):
            for key in (d["voice"], "overall"):
                pooled[key]["failed"].append(f"{d['item'].id}: {h}")
            continue
        try:
            w = boundary_errors(h["words"], d["ref"]["words"])
        except VQAlignError as exc:
            for key in (d["voice"], "overall"):
                pooled[key]["failed"].append(f"{d['item'].id}: scoring: {exc}")
            continue
        p = None
        if phones and h.get("phones") and "phones" in d["ref"]:
            p = boundary_errors(h["phones"], d["ref"]["phones"], tier="phones")
        for key in (d["voice"], "overall"):
            pooled[key]["w"].append(w["errors"])
            if p is not None:
                pooled[key]["p"].append(p["errors"])
                pooled[key]["matched"] += p["n_matched"]
                pooled[key]["ref"] += p["n_ref"]
    out = {}
    for key, v in pooled.items():
        words = summarize_errors(np.concatenate(v["w"]) if v["w"] else [])
        entry = {"n_utts": v["n"], "n_failed": len(v["failed"]), "words": words,
                 "failed": v["failed"][:20]}
        if v["p"]:
            entry["phones"] = summarize_errors(np.concatenate(v["p"]))
            entry["phones"]["n_matched"] = v["matched"]
            entry["phones"]["n_ref"] = v["ref"]
        out[key] = entry
    return out


# ----------------------------------------------------------------------------- report
def _row(name: str, voice: str, s: dict) -> str:
    w = s["words"]
    text = (f"  {name:<12} {voice:<24} {s['n_utts'] - s['n_failed']:>4}/{s['n_utts']:<4} "
            f"{_ms(w['mean_ms'])} {_ms(w['median_ms'])} "
            + " ".join(_pct(w[f"within_{t}"]) for t in (10, 20, 25, 50)))
    if "phones" in s:
        p = s["phones"]
        text += (f" | {_ms(p['mean_ms'])} {_ms(p['median_ms'])} {_pct(p['within_20'])}"
                 f" {p['n_matched']:>5}/{p['n_ref']:<5}")
    return text


def _ms(v) -> str:
    return f"{v:7.1f}" if v == v else "    nan"


def _pct(v) -> str:
    return f"{100 * v:5.1f}" if v == v else "  nan"


def _flat(prefix: str, s: dict) -> dict:
    out = {f"{prefix}_word_mean_ms": s["words"]["mean_ms"],
           f"{prefix}_word_median_ms": s["words"]["median_ms"]}
    for t in (10, 20, 25, 50):
        out[f"{prefix}_word_within_{t}ms"] = s["words"][f"within_{t}"]
    if "phones" in s:
        out[f"{prefix}_phone_mean_ms"] = s["phones"]["mean_ms"]
        out[f"{prefix}_phone_median_ms"] = s["phones"]["median_ms"]
        out[f"{prefix}_phone_within_20ms"] = s["phones"]["within_20"]
        out[f"{prefix}_phone_matched"] = s["phones"]["n_matched"]
        out[f"{prefix}_phone_ref"] = s["phones"]["n_ref"]
    out[f"{prefix}_n_failed"] = s["n_failed"]
    return out


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run(args) -> int:
    root = args.corpus or DEFAULT_CORPUS
    if not Path(root).is_dir():
        raise ParameterError(f"corpus folder {root} not found; pass --corpus DIR (a folder of "
                             "<id>.wav, <id>.txt and reference <id>.TextGrid files)")
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    items, skipped = find_utterances(Path(root), args.limit)
    data = _load(items)
    total_s = float(sum(d["seconds"] for d in data))
    voices = sorted({d["voice"] for d in data})
    say = (lambda *a: None) if args.json else print
    say(f"vqalign bench align: {len(data)} utterances, {total_s:.1f} s of audio, "
        f"{len(voices)} voice(s) from {root}" + (f" ({skipped} files skipped)" if skipped else ""))

    systems = {}
    say(f"  running vqalign (corpus mode, unit={args.unit}, {args.jobs} thread(s)) ...")
    hyps, secs, info = _run_vqalign(data, unit=args.unit, jobs=args.jobs, n_iter=args.n_iter)
    systems["vqalign"] = (hyps, secs, info)
    if info["oov"]:
        say(f"  {len(info['oov'])} word(s) not in CMUdict, pronounced by letter-to-sound rules "
            f"(pocketsphinx gets the same guesses where its dictionary lacks them): {', '.join(info['oov'])}")
    if not args.no_pocketsphinx:
        say("  running pocketsphinx (1 thread) ...")
        systems["pocketsphinx"] = _run_pocketsphinx(data)

    result = {"n_utts": len(data), "audio_seconds": round(total_s, 3), "corpus": str(root)}
    scores = {}
    for name, (hyps, secs, info) in systems.items():
        scores[name] = score(data, hyps, phones=(name == "pocketsphinx" or args.unit == "phones"))
        result[f"{name}_seconds"] = round(secs, 3)
        result[f"{name}_xrt"] = total_s / secs if secs > 0 else float("inf")
        result[f"{name}_n_jobs"] = info["n_jobs"]
        result.update(_flat(name, scores[name]["overall"]))
        result[f"{name}_per_voice"] = {v: {k: scores[name][v][k] for k in ("n_utts", "n_failed",
                                                                         "words")}
                                       | ({"phones": scores[name][v]["phones"]}
                                          if "phones" in scores[name][v] else {})
                                       for v in voices}
    if "pocketsphinx" in systems:
        info = systems["pocketsphinx"][2]
        result["pocketsphinx_n_retried"] = info["n_retried"]
        rest_s = result["pocketsphinx_seconds"] - info["retried_seconds"]
        if info["n_retried"] and rest_s > 0:
            # speed on the utterances the PEERS.md settings align in one go
            result["pocketsphinx_xrt_without_retried"] = (
                (total_s - info["retried_audio_s"]) / rest_s)
    if "pocketsphinx" in systems and "vqalign" in systems:
        result["xrt_ratio"] = result["vqalign_xrt"] / result["pocketsphinx_xrt"]

    if args.json:
        print(json.dumps(_json_safe(result), indent=1))
        return 0
    print()
    print(f"  {'':<12} {'':<24} {'':>9} {'words':<35} | phones")
    print(f"  {'system':<12} {'voice':<24} {'utts':^9} {'mean':>7} {'median':>7} "
          f"{'<=10':>5} {'<=20':>5} {'<=25':>5} {'<=50':>5} | {'mean':>7} {'median':>7} "
          f"{'<=20':>5} matched")
    for v in voices + ["overall"]:
        for name in systems:
            print(_row(name, v, scores[name][v]))
    print("  (errors in ms; <=N: % of boundaries within N ms; words: start and end of every word)")
    print()
    for name, (_, secs, info) in systems.items():
        print(f"  {name:<12} {secs:8.2f} s for {total_s:.1f} s of audio = "
              f"{result[f'{name}_xrt']:6.1f}x real time ({info['n_jobs']} thread(s)"
              + (", training included" if name == "vqalign" else "")
              + (f"; {info['n_retried']} utterance(s) needed the wide-beam retry"
                 if info.get("n_retried") else "") + ")")
    if "pocketsphinx_xrt_without_retried" in result:
        print(f"  pocketsphinx without the retried utterances: "
              f"{result['pocketsphinx_xrt_without_retried']:6.1f}x real time")
    if "xrt_ratio" in result:
        print(f"  speed ratio vqalign / pocketsphinx: {result['xrt_ratio']:.2f}x")
    for name in systems:
        failed = scores[name]["overall"]["failed"]
        if failed:
            print(f"  {name}: {scores[name]['overall']['n_failed']} utterance(s) failed, e.g.")
            for f in failed[:5]:
                print(f"    {f}")
    return 0
