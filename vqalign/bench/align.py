"""``vqalign bench align``: alignment accuracy and speed against pocketsphinx, in one run.

Finds every audio file under ``--corpus`` with a ``.txt`` transcript and a reference
``.TextGrid`` beside it (the devdata layout ``synth/<voice>/<id>.wav|.txt|.TextGrid``),
then, on the same utterances:

* vqalign in corpus mode: ``Aligner(...).fit(corpus)`` then ``align_many`` over every
  utterance; the time covers training and alignment (features included); numba
  compilation is excluded by a tiny warm-up run first;
* pocketsphinx forced alignment (:mod:`vqalign.bench.peers.pocketsphinx`, PEERS.md settings,
  single thread), after a one-utterance warm-up;
* with ``--peers``, viter (trained on the corpus itself, as MFA's ``train-and-align``),
  aeneas-ng and bfa, through :mod:`vqalign.bench.peers` (their settings and install
  steps are documented there); a peer that is not installed is skipped with a line
  saying why.

Time is reported three ways per system: one-time load/training (vqalign and viter
train on the corpus; pocketsphinx loads its model), alignment, and the total.
Without ``--corpus`` and without the dev set, built-in synthesized speech is used.

Audio is loaded before any clock starts. Word and phone boundaries are scored by
:func:`vqalign.eval.boundaries.compare_tier` (FA-Bench definition, as ``bench score``); figures are printed per voice and overall,
with x-real-time (seconds of audio per second of wall time) for both systems.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from vqalign.eval.corpus import find_utterances, load_utterances, voice_of  # noqa: F401
from vqalign.exceptions import ParameterError, VQAlignError

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "devdata"


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", type=Path, default=None,
                        help="folder with <id>.wav + <id>.txt + <id>.TextGrid (searched "
                             f"recursively); default: {DEFAULT_CORPUS} (the dev set, on a "
                             "development machine) if present, else built-in synthesized "
                             "speech (vqalign.datasets.synth, see --synth)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--limit", type=int, default=None,
                        help="use at most N utterances, taken in turn from each voice")
    parser.add_argument("--peers", default="pocketsphinx",
                        help="comma-separated peers to run on the same corpus: pocketsphinx, "
                             "viter, aeneas, bfa (default pocketsphinx); missing ones are "
                             "skipped with a line saying why (install steps: "
                             "vqalign.bench.peers)")
    parser.add_argument("--no-pocketsphinx", action="store_true",
                        help="drop pocketsphinx from --peers")
    parser.add_argument("--viter-recipe", choices=("mono", "full"), default="mono",
                        help="viter training on the corpus: mono (monophone) or full "
                             "(mono -> tri -> LDA+MLLT -> SAT, as MFA); default mono")
    parser.add_argument("--synth", type=int, default=12, metavar="N",
                        help="without a corpus: number of built-in synthesized utterances "
                             "(default 12)")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html",
                        help="also write a self-contained HTML report of the run")
    parser.add_argument("--save", type=Path, default=None, metavar="DIR",
                        help="also write every system's alignments as DIR/<system>/<id>.TextGrid "
                             "(and the references as DIR/reference/<id>.TextGrid), for "
                             "`vqalign bench score`")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --report or --save files")
    parser.add_argument("--unit", choices=("phones", "chars"), default="phones",
                        help="vqalign's alignment unit (default phones)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="worker threads for vqalign (default 2; pocketsphinx uses 1)")
    parser.add_argument("--n-iter", type=int, default=None,
                        help="EM iterations for vqalign's Aligner (default: its own default)")
    parser.add_argument("--single", type=int, default=0, metavar="N",
                        help="also align N of the utterances (spread over the voices) one at "
                             "a time, each self-trained alone (vqalign.align.align), and report "
                             "their accuracy and confidence AUC (default 0: skip)")


# ----------------------------------------------------------------------------- systems
def _run_vqalign(data, *, unit: str, jobs: int, n_iter: int | None):
    """Train on the corpus (load/training time) and align every utterance (alignment
    time); returns a :class:`vqalign.bench.peers.PeerRun`."""
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
        warnings.filterwarnings("ignore", message=r".*(letter-to-sound|G2P)")
        t0 = time.perf_counter()
        aligner = Aligner(**kwargs).fit(corpus)
        t1 = time.perf_counter()
        results = aligner.align_many(corpus, n_jobs=jobs)
        t2 = time.perf_counter()
    hyps = [r if isinstance(r, BaseException) else
            {"words": r.tier("words"), "phones": r.tier(r.unit_tier) if r.unit_tier else []}
            for r in results]
    from vqalign.bench.peers import PeerRun

    return PeerRun(hyps, t1 - t0, t2 - t1,
                   {"n_jobs": jobs, "unit": unit, "oov": list(getattr(aligner, "oov_", [])),
                    "confidence": [_confidences(r) for r in results]})


def _confidences(aln):
    """(word conf 50 ms, word conf 20 ms, unit conf 50 ms, unit conf 20 ms) of one
    alignment (None for a failed utterance)."""
    if isinstance(aln, BaseException):
        return None
    block = aln.diagnostics.get("confidence", {})
    unit = aln.unit_tier

    def arr(v):
        return np.array([np.nan if x is None else x for x in v], np.float64)

    return (arr([s.confidence for s in aln.words]),
            arr(block.get("words_20ms", [None] * len(aln.words))),
            arr([s.confidence for s in aln.tiers.get(unit, [])]),
            arr(block.get(f"{unit}_20ms", [None] * len(aln.tiers.get(unit, [])))))


def confidence_report(data, hyps, confs, *, n_bins: int = 10) -> dict:
    """AUC and reliability of the confidences against the references: keys
    ``words_50ms``, ``words_20ms``, ``phones_50ms``, ``phones_20ms`` (see
    :func:`vqalign.eval.reliability.confidence_scores`)."""
    from vqalign.eval.reliability import confidence_scores, segment_errors

    pools = {k: ([], []) for k in ("words_50ms", "words_20ms", "phones_50ms", "phones_20ms")}
    for d, h, c in zip(data, hyps, confs):
        if c is None or isinstance(h, BaseException):
            continue
        try:
            we = segment_errors(h["words"], d["ref"]["words"], tier="words")
            pe = (segment_errors(h["phones"], d["ref"]["phones"], tier="phones")
                  if h.get("phones") and "phones" in d["ref"] else None)
        except VQAlignError:
            continue
        for key, conf, err in (("words_50ms", c[0], we), ("words_20ms", c[1], we),
                               ("phones_50ms", c[2], pe), ("phones_20ms", c[3], pe)):
            if err is not None and err.size == conf.size:
                pools[key][0].append(conf)
                pools[key][1].append(err)
    out = {}
    for key, (cs, es) in pools.items():
        if cs:
            tol = 0.05 if key.endswith("50ms") else 0.02
            out[key] = confidence_scores(np.concatenate(cs), np.concatenate(es), tol_s=tol,
                                         n_bins=n_bins)
    return out


def _run_pocketsphinx(data):
    from vqalign.bench.peers import PeerRun
    from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
    from vqalign.exceptions import VQAlignError

    t0 = time.perf_counter()
    ps = PocketsphinxAligner()
    ps.decoder  # noqa: B018  (loads the acoustic model and dictionary)
    load_s = time.perf_counter() - t0
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
    align_s = time.perf_counter() - t0
    return PeerRun(hyps, load_s, align_s,
                   {"n_jobs": 1, "added_words": sorted(ps.added_words_),
                    "n_retried": ps.n_retried_, "retried_seconds": ps.retried_seconds_,
                    "retried_audio_s": ps.retried_audio_s_})


def _synth_data(n: int, say) -> list:
    """Built-in synthesized speech (exact tiers) when there is no corpus."""
    from vqalign.datasets.synth import synthesize_corpus

    if n < 1:
        raise ParameterError(f"--synth must be >= 1, got {n}")
    utts = synthesize_corpus(n=n, seed=0)
    return [{"item": None, "id": u.id, "voice": u.voice, "audio": u.audio, "sr": u.sr,
             "text": u.text, "ref": {"words": u.words, "phones": u.phones},
             "seconds": u.duration} for u in utts]


# ----------------------------------------------------------------------------- scoring
def score(data, hyps, *, phones: bool = True) -> dict:
    """Pool per-utterance pairings per voice and overall (FA-Bench definition)."""
    from vqalign.eval.boundaries import compare_tier, summarize_tier
    from vqalign.exceptions import VQAlignError

    pooled: dict[str, dict] = defaultdict(lambda: {"w": [], "p": [], "failed": [], "n": 0})
    for d, h in zip(data, hyps):
        keys = (d["voice"], "overall")
        for key in keys:
            pooled[key]["n"] += 1
        if isinstance(h, BaseException):
            for key in keys:
                pooled[key]["failed"].append(f"{d['id']}: {h}")
            continue
        try:
            w = compare_tier(h["words"], d["ref"]["words"])
            p = None
            if phones and h.get("phones") and "phones" in d["ref"]:
                p = compare_tier(h["phones"], d["ref"]["phones"], tier="phones")
        except VQAlignError as exc:
            for key in keys:
                pooled[key]["failed"].append(f"{d['id']}: scoring: {exc}")
            continue
        for key in keys:
            pooled[key]["w"].append(w)
            if p is not None:
                pooled[key]["p"].append(p)
    out = {}
    for key, v in pooled.items():
        entry = {"n_utts": v["n"], "n_failed": len(v["failed"]),
                 "words": summarize_tier(v["w"]), "failed": v["failed"][:20]}
        if v["p"]:
            entry["phones"] = summarize_tier(v["p"])
        out[key] = entry
    return out


# ----------------------------------------------------------------------------- report
def _row(name: str, voice: str, s: dict) -> str:
    w = s["words"]
    text = (f"  {name:<12} {voice:<24} {s['n_utts'] - s['n_failed']:>4}/{s['n_utts']:<4} "
            f"{_ms(w['mean_ms'])} {_ms(w['median_ms'])} {_ms(w['p90_ms'])} "
            + " ".join(_pct(w["pct_within_ms"][str(t)]) for t in (10, 20, 25, 50)))
    if "phones" in s:
        p = s["phones"]
        text += (f" | {_ms(p['mean_ms'])} {_ms(p['median_ms'])} "
                 f"{_pct(p['pct_within_ms']['20'])} {p['n_ref_units'] - p['n_missing']:>5}/"
                 f"{p['n_ref_units']:<5}")
    return text


def _ms(v) -> str:
    return f"{v:7.1f}" if v == v else "    nan"


def _pct(v) -> str:
    return f"{v:5.1f}" if v == v else "  nan"


def flat_figures(prefix: str, s: dict) -> dict:
    """One system's overall figures (:func:`score`'s ``"overall"``) as flat JSON keys
    ``<prefix>_word_mean_ms``, ``<prefix>_word_within_20ms``, ... (fractions, not %)."""
    w = s["words"]
    out = {f"{prefix}_word_mean_ms": w["mean_ms"], f"{prefix}_word_median_ms": w["median_ms"],
           f"{prefix}_word_p90_ms": w["p90_ms"]}
    for t in (10, 20, 25, 50):
        out[f"{prefix}_word_within_{t}ms"] = w["pct_within_ms"][str(t)] / 100.0
    if "phones" in s:
        p = s["phones"]
        out[f"{prefix}_phone_mean_ms"] = p["mean_ms"]
        out[f"{prefix}_phone_median_ms"] = p["median_ms"]
        out[f"{prefix}_phone_within_20ms"] = p["pct_within_ms"]["20"] / 100.0
        out[f"{prefix}_phone_matched"] = p["n_ref_units"] - p["n_missing"]
        out[f"{prefix}_phone_ref"] = p["n_ref_units"]
    out[f"{prefix}_n_failed"] = s["n_failed"]
    return out


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


def _conf_keys(prefix: str, conf: dict) -> dict:
    """JSON keys of a :func:`confidence_report`: ``{prefix}_conf_auc_<tier>_<tol>`` per
    entry, the 50 ms word figures as ``{prefix}_conf_auc_50ms`` / ``_reliability`` /
    ``_ece``, and the whole report as ``{prefix}_confidence``."""
    out = {}
    for key, c in conf.items():
        short = key.replace("phones", "phone").replace("words", "word")
        out[f"{prefix}_conf_auc_{short}"] = c["auc"]
    if "words_50ms" in conf:
        w = conf["words_50ms"]
        out[f"{prefix}_conf_auc_50ms"] = w["auc"]
        out[f"{prefix}_conf_reliability"] = w["reliability"]
        out[f"{prefix}_conf_ece"] = w["ece"]
    out[f"{prefix}_confidence"] = conf
    return out


def _systems_block(s: dict) -> dict:
    keep = ("mean_ms", "median_ms", "p90_ms", "pct_within_ms", "n_boundaries", "n_unmatched",
            "n_missing", "n_inserted", "n_untimed", "bias_onset_ms", "bias_offset_ms",
            "by_class")
    out = {"words": {k: v for k, v in s["words"].items() if k in keep}}
    if "phones" in s:
        out["phones"] = {k: v for k, v in s["phones"].items() if k in keep}
    return out


def _save(root: Path, data, systems, *, overwrite: bool) -> None:
    """References and every system's hypotheses as TextGrids (atomic, no silent overwrite)."""
    from vqalign.io.textgrid import write_textgrid

    jobs = [("reference", d, d["ref"]) for d in data]
    for name, pr in systems.items():
        jobs += [(name, d, h) for d, h in zip(data, pr.hyps) if not isinstance(h, BaseException)]
    targets = [Path(root) / name / f"{d['id']}.TextGrid" for name, d, _ in jobs]
    if not overwrite:
        for t in targets:
            if t.exists():
                raise ParameterError(f"{t} exists; pass --overwrite to replace it")
    for (_, d, tiers), t in zip(jobs, targets):
        t.parent.mkdir(parents=True, exist_ok=True)
        keep = {k: [(s, e, lab) for s, e, lab in v if s == s and e == e]
                for k, v in tiers.items() if k in ("words", "phones") and v}
        end = max([d["seconds"]] + [e for v in keep.values() for _, e, _ in v])
        write_textgrid(t, keep, end, overwrite=True)


def run(args) -> int:
    from vqalign.bench import peers as peer_mod

    say = (lambda *a: None) if args.json else print
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    wanted = peer_mod.parse_peers(args.peers)
    if args.no_pocketsphinx:
        wanted = [p for p in wanted if p != "pocketsphinx"]
    if args.report is not None and args.report.exists() and not args.overwrite:
        raise ParameterError(f"{args.report} exists; pass --overwrite to replace it")
    root = args.corpus
    if root is None and DEFAULT_CORPUS.is_dir():
        root = DEFAULT_CORPUS
    skipped = 0
    if root is None:
        say(f"vqalign bench align: no --corpus given and {DEFAULT_CORPUS} not found; using "
            f"built-in synthesized speech (vqalign.datasets.synth: {args.synth} utterances, "
            "seed 0)")
        data = _synth_data(args.synth, say)
        if args.limit is not None:
            data = data[:max(1, args.limit)]
        source = f"vqalign.datasets.synth (n={len(data)}, seed 0)"
    else:
        if not Path(root).is_dir():
            raise ParameterError(f"corpus folder {root} not found; pass --corpus DIR (a folder "
                                 "of <id>.wav, <id>.txt and reference <id>.TextGrid files)")
        items, skipped = find_utterances(Path(root), args.limit)
        data = load_utterances(items)
        source = str(root)
    total_s = float(sum(d["seconds"] for d in data))
    voices = sorted({d["voice"] for d in data})
    say(f"vqalign bench align: {len(data)} utterances, {total_s:.1f} s of audio, "
        f"{len(voices)} voice(s) from {source}" + (f" ({skipped} files skipped)" if skipped
                                                   else ""))

    systems = {}
    say(f"  running vqalign (corpus mode, unit={args.unit}, {args.jobs} thread(s)) ...")
    systems["vqalign"] = _run_vqalign(data, unit=args.unit, jobs=args.jobs, n_iter=args.n_iter)
    oov = systems["vqalign"].info["oov"]
    if oov:
        say(f"  {len(oov)} word(s) not in CMUdict, pronounced by letter-to-sound rules "
            f"(the peers get the same guesses where their dictionaries lack them): "
            f"{', '.join(oov)}")
    skipped_peers = {}
    for name in wanted:
        reason = peer_mod.availability(name)
        if reason is not None:
            skipped_peers[name] = reason
            print(f"  skipping {name}: {reason}", file=sys.stderr if args.json else sys.stdout)
            continue
        threads = 1 if name == "pocketsphinx" else args.jobs
        say(f"  running {name} ({threads} thread(s)) ...")
        try:
            if name == "pocketsphinx":
                systems[name] = _run_pocketsphinx(data)
            elif name == "viter":
                systems[name] = peer_mod.run_viter(data, jobs=args.jobs,
                                                   recipe=args.viter_recipe, say=say)
            elif name == "aeneas":
                systems[name] = peer_mod.run_aeneas(data, jobs=args.jobs, say=say)
            else:
                systems[name] = peer_mod.run_bfa(data, jobs=args.jobs, say=say)
        except VQAlignError as exc:
            skipped_peers[name] = f"failed: {exc}"
            print(f"  {name} failed, left out: {exc}",
                  file=sys.stderr if args.json else sys.stdout)

    result = {"n_utts": len(data), "audio_seconds": round(total_s, 3), "corpus": source}
    scores = {}
    for name, pr in systems.items():
        scores[name] = score(data, pr.hyps, phones=(name != "vqalign" or args.unit == "phones"))
        result[f"{name}_seconds"] = round(pr.seconds, 3)
        result[f"{name}_load_seconds"] = round(pr.load_seconds, 3)
        result[f"{name}_align_seconds"] = round(pr.align_seconds, 3)
        result[f"{name}_xrt"] = total_s / pr.seconds if pr.seconds > 0 else float("inf")
        result[f"{name}_n_jobs"] = pr.info["n_jobs"]
        result.update(flat_figures(name, scores[name]["overall"]))
        result[f"{name}_per_voice"] = {
            v: {k: scores[name][v][k] for k in ("n_utts", "n_failed")}
            | _systems_block(scores[name][v]) for v in voices}
    result["systems"] = {
        name: {"load_seconds": round(pr.load_seconds, 3),
               "align_seconds": round(pr.align_seconds, 3),
               "total_seconds": round(pr.seconds, 3), "n_jobs": pr.info["n_jobs"],
               "n_failed": scores[name]["overall"]["n_failed"],
               "settings": {k: v for k, v in pr.info.items()
                            if k not in ("n_jobs", "retried_seconds", "retried_audio_s",
                                         "confidence")}}
        | _systems_block(scores[name]["overall"]) for name, pr in systems.items()}
    result["skipped_peers"] = skipped_peers
    conf = confidence_report(data, systems["vqalign"].hyps, systems["vqalign"].info["confidence"])
    result.update(_conf_keys("vqalign", conf))
    single = None
    if args.single:
        single = _run_single(data, args.single, unit=args.unit, jobs=args.jobs, say=say)
        result["vqalign_single_n_utts"] = single["n_utts"]
        result.update(flat_figures("vqalign_single", single["scores"]["overall"]))
        result.update(_conf_keys("vqalign_single", single["confidence"]))
    if "pocketsphinx" in systems:
        info = systems["pocketsphinx"].info
        result["pocketsphinx_n_retried"] = info["n_retried"]
        rest_s = systems["pocketsphinx"].align_seconds - info["retried_seconds"]
        if info["n_retried"] and rest_s > 0:
            # speed on the utterances the PEERS.md settings align in one go
            result["pocketsphinx_xrt_without_retried"] = (
                (total_s - info["retried_audio_s"]) / rest_s)
    if "pocketsphinx" in systems:
        result["xrt_ratio"] = result["vqalign_xrt"] / result["pocketsphinx_xrt"]
    for name in systems:
        if name != "vqalign":
            result[f"xrt_ratio_vs_{name}"] = result["vqalign_xrt"] / result[f"{name}_xrt"]

    if args.save is not None:
        _save(args.save, data, systems, overwrite=args.overwrite)
        say(f"  alignments written under {args.save}")
    if args.report is not None:
        from vqalign.bench.report import write_report

        utts = []
        for i, d in enumerate(data):
            utts.append({"id": d["id"], "voice": d["voice"], "audio": d["audio"], "sr": d["sr"],
                         "ref": d["ref"],
                         "systems": {n: pr.hyps[i] for n, pr in systems.items()
                                     if not isinstance(pr.hyps[i], BaseException)}})
        write_report(args.report, utts, title=f"vqalign bench align: {source}",
                     overwrite=args.overwrite)
        say(f"  report written to {args.report}")

    if args.json:
        print(json.dumps(_json_safe(result), indent=1))
        return 0
    print()
    print(f"  {'':<12} {'':<24} {'':>9} {'words':<43} | phones")
    print(f"  {'system':<12} {'voice':<24} {'utts':^9} {'mean':>7} {'median':>7} {'p90':>7} "
          f"{'<=10':>5} {'<=20':>5} {'<=25':>5} {'<=50':>5} | {'mean':>7} {'median':>7} "
          f"{'<=20':>5} matched")
    for v in voices + ["overall"]:
        for name in systems:
            print(_row(name, v, scores[name][v]))
    print("  (errors in ms; <=N: % of boundaries within N ms; start and end of every paired "
          "word or phone)")
    print()
    print(f"  {'system':<12} {'threads':>7} {'load/train s':>12} {'align s':>9} {'total s':>9} "
          f"{'x real time':>11}")
    for name, pr in systems.items():
        print(f"  {name:<12} {pr.info['n_jobs']:>7} {pr.load_seconds:12.2f} "
              f"{pr.align_seconds:9.2f} {pr.seconds:9.2f} {result[f'{name}_xrt']:11.1f}"
              + (f"  ({pr.info['n_retried']} utterance(s) needed the wide-beam retry)"
                 if pr.info.get("n_retried") else ""))
    if "pocketsphinx_xrt_without_retried" in result:
        print(f"  pocketsphinx without the retried utterances: "
              f"{result['pocketsphinx_xrt_without_retried']:6.1f}x real time")
    for name in systems:
        if name != "vqalign":
            print(f"  speed ratio vqalign / {name} (total time): "
                  f"{result[f'xrt_ratio_vs_{name}']:.2f}x")
    _print_confidence(conf)
    if single is not None:
        print()
        print(f"  vqalign single-utterance mode ({single['n_utts']} utterances, each "
              f"self-trained alone, {single['seconds']:.1f} s):")
        print(_row("vqalign-1", "overall", single["scores"]["overall"]))
        _print_confidence(single["confidence"], what="single-utterance")
    for name in systems:
        failed = scores[name]["overall"]["failed"]
        if failed:
            print(f"  {name}: {scores[name]['overall']['n_failed']} utterance(s) failed, e.g.")
            for f in failed[:5]:
                print(f"    {f}")
    return 0


def _run_single(data, n, *, unit, jobs, say):
    """Self-train on each of ``n`` utterances alone (spread over the voices)."""
    from vqalign.align import Aligner

    if n < 1:
        raise ParameterError(f"--single must be >= 1, got {n}")
    by_voice = defaultdict(list)
    for i, d in enumerate(data):
        by_voice[d["voice"]].append(i)
    order = []
    queues = [list(v) for v in by_voice.values()]
    while len(order) < min(n, len(data)):
        for q in queues:
            if q and len(order) < n:
                order.append(q.pop(0))
    sub = [data[i] for i in sorted(order)]
    say(f"  running vqalign single-utterance mode on {len(sub)} utterances ...")
    hyps, confs = [], []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for d in sub:
            try:
                a = Aligner(unit=unit, n_jobs=jobs).align(d["audio"], d["text"], sr=d["sr"])
            except VQAlignError as exc:
                hyps.append(exc)
                confs.append(None)
                continue
            hyps.append({"words": a.tier("words"),
                         "phones": a.tier(a.unit_tier) if a.unit_tier else []})
            confs.append(_confidences(a))
    seconds = time.perf_counter() - t0
    return {"n_utts": len(sub), "seconds": seconds,
            "scores": score(sub, hyps, phones=unit == "phones"),
            "confidence": confidence_report(sub, hyps, confs)}


def _print_confidence(conf: dict, what: str = "corpus-mode") -> None:
    """The confidence block of the text report: AUC per tier and tolerance, and the
    reliability (calibration) table of the word confidence."""
    if not conf:
        return
    print()
    print(f"  vqalign {what} confidence (calibrated P(both boundaries within the "
          "tolerance)); AUC for flagging segments beyond it:")
    for key, c in conf.items():
        print(f"    {key:<12} AUC {c['auc']:.3f}  ({c['n']} segments, "
              f"{100 * c['bad_share']:.1f} % beyond; expected calibration error "
              f"{c['ece']:.3f}{'; ' + str(c['n_unknown']) + ' unknown' if c['n_unknown'] else ''})")
    for key in ("words_50ms", "words_20ms"):
        if key not in conf:
            continue
        print(f"  reliability of the {key.replace('_', ' ')} confidence (predicted -> "
              "observed share within):")
        for b in conf[key]["reliability"]:
            print(f"    [{b['bin'][0]:.1f}, {b['bin'][1]:.1f})  n={b['n']:>5}  predicted "
                  f"{b['mean_predicted']:.2f}  observed {b['observed']:.2f}")
