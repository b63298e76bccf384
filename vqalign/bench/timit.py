"""``vqalign bench timit``: real speech measured against boundaries placed by people.

::

    vqalign bench timit --corpus DIR [--modes default,selftrain,sphinx,corpus,pocketsphinx]
                        [--limit N] [--noise babble|white --snr DB] [--seed S]
                        [--json] [--report OUT.html] [--overwrite]

``DIR`` is any folder (searched recursively) of audio files, each with a ``.txt``
transcript and a hand-made ``.TextGrid`` beside it holding tiers ``words`` and
``phones`` (ARPAbet, either case, stress digits allowed; silences ``pau`` / ``sil`` /
``""``; TIMIT's glottal stop ``q`` is accepted and never paired, having no dictionary
phone; a tier in another phone set that :mod:`vqalign.phones` maps, Festival,
eSpeak or IPA, is mapped to ARPAbet). The TIMIT layout of ``../shared/devdata/timit`` is one such folder; its
``info.tsv`` (column ``speaker``) names the voices, else the sub-folder does.

Every mode runs on the same audio in one run:

==============  =====================================================================
mode            what runs
==============  =====================================================================
default         :func:`vqalign.align.align` (one file at a time, the default median
                of three opinions when pocketsphinx is installed)
selftrain       ``align(..., reference="none")``: vqalign's own models alone (no
                Sphinx model: the median of three with vqalign's English prior,
                :mod:`vqalign.align.prior`)
flat            ``align(..., reference="flat")``: the flat-start self-trained model
                alone (no pretrained model at all)
sphinx          ``Aligner.from_sphinx("en-us")``: vqalign's decoder on the CMU Sphinx
                en-us model
corpus          ``Aligner().fit(corpus)`` on all the utterances, its ``alignments_``
pocketsphinx    pocketsphinx 5 itself (PEERS.md settings,
                :func:`vqalign.bench.align._run_pocketsphinx`)
==============  =====================================================================

Per mode it prints words and phones (FA-Bench pairing of
:func:`vqalign.eval.compare_tier`): mean / median / p90 absolute boundary
error and the share within 20 ms; the bias (mean and median signed error, hypothesis
minus reference, of word starts and of word ends); word boundaries next to a pause
(the reference has no other word within ``PAUSE_GAP_S`` on that side, utterance edges
included) against boundaries between two words; the first word's start and the last
word's end (mean absolute error, and the files whose first word starts in the first
20 ms while the reference's starts 100 ms or more later: the leading silence swallowed);
the confidence AUC for flagging words (phones) whose boundary error exceeds 50 ms
(:func:`vqalign.bench.align.confidence_report`); and the worst utterances.

``--noise white`` adds seeded Gaussian noise, ``--noise babble`` a sum of
``BABBLE_TALKERS`` other utterances of the same folder (random, seeded; built-in
synthesized speech when the folder has too few), each at equal loudness, at ``--snr``
dB relative to the utterance's mean power over the whole file; every mode aligns the
same noisy audio.

Bad references are named and counted, and the run goes on: a ``words`` tier whose words
differ from the transcript (the file is skipped), a missing ``words`` tier (skipped) or
``phones`` tier (words scored, phones not), phone labels outside ARPAbet and outside
every mapped phone set (phones of the file not scored).
"""

from __future__ import annotations

import csv
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

# the scorer: every import of the scoring library is here, in one place
from vqalign.eval.boundaries import compare_tier, fold_word, summarize_tier
from vqalign.eval.folders import json_safe
from vqalign.exceptions import ParameterError, VQAlignError
from vqalign.phones import PHONE_CLASS, detect_phoneset, is_silence, to_arpabet

MODES = ("default", "selftrain", "flat", "sphinx", "corpus", "pocketsphinx")
NOISES = ("babble", "white")
#: a word boundary is "next to a pause" when no other reference word starts (ends)
#: within this many seconds of its end (start)
PAUSE_GAP_S = 0.010
#: talkers summed into babble noise
BABBLE_TALKERS = 5
#: phone labels accepted in a reference phones tier beside ARPAbet: TIMIT's glottal stop
EXTRA_PHONES = {"Q"}
#: a first word that starts within this many seconds of the file's start while the
#: reference word starts at least SWALLOW_MIN_S later has swallowed the leading silence
SWALLOW_AT_S = 0.020
SWALLOW_MIN_S = 0.100
WORST = 5


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", type=Path, required=True,
                        help="folder of <id>.wav + <id>.txt + hand <id>.TextGrid (tiers "
                             "words and phones), searched recursively")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated modes to run (default all: {','.join(MODES)})")
    parser.add_argument("--limit", type=int, default=None,
                        help="use at most N utterances, taken in turn from each voice")
    parser.add_argument("--noise", choices=NOISES, default=None,
                        help="mix noise into every utterance before aligning: white "
                             "(seeded Gaussian) or babble (other utterances of the folder)")
    parser.add_argument("--snr", type=float, default=None, metavar="DB",
                        help="signal-to-noise ratio of --noise in dB (required with it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="threads for vqalign (default 2; pocketsphinx uses 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html",
                        help="also write a self-contained HTML report (worst utterances "
                             "first, every mode's tiers)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --report file")


def parse_modes(text: str) -> list[str]:
    """``"default,corpus"`` -> ``["default", "corpus"]`` (checked, order of MODES)."""
    names = [m.strip().lower() for m in (text or "").split(",") if m.strip()]
    bad = [m for m in names if m not in MODES]
    if bad or not names:
        raise ParameterError(f"--modes: unknown mode(s) {', '.join(bad) or '(none given)'}; "
                             f"choose from {', '.join(MODES)} (comma-separated)")
    return [m for m in MODES if m in names]


# ----------------------------------------------------------------------------- corpus
def _voices_from_info(root: Path) -> dict:
    """``{id: speaker}`` from an ``info.tsv`` (TIMIT dev layout), else ``{}``."""
    info = root / "info.tsv"
    if not info.is_file():
        return {}
    with open(info, encoding="utf-8", newline="") as fh:
        return {r["id"]: (r.get("speaker") or "").split()[0]
                for r in csv.DictReader(fh, delimiter="\t")
                if r.get("id") and (r.get("speaker") or "").split()}


def check_reference(ref: dict, text: str, path) -> tuple[dict | None, list[dict]]:
    """A hand TextGrid's tiers checked against its transcript.

    Parameters
    ----------
    ref : dict
        ``{tier: [(start_s, end_s, label), ...]}`` as read by
        :func:`vqalign.io.textgrid.read_textgrid`.
    text : str
        The transcript.
    path : str or Path
        The TextGrid (named in the problems).

    Returns
    -------
    (tiers, problems)
        ``tiers``: ``{"words": [...], "phones": [...]}`` with the phones in upper-case
        ARPAbet (``phones`` left out when it cannot be scored), or None when the file
        cannot be scored at all; ``problems``: ``{"file", "kind", "message"}`` dicts.
    """
    from vqalign.align.text import normalize_words

    problems = []
    if "words" not in ref:
        problems.append({"file": str(path), "kind": "missing tier",
                         "message": f"{path}: no 'words' tier (tiers: "
                                    f"{', '.join(ref) or 'none'}); file skipped"})
        return None, problems
    ref_words = [w for _, _, lab in ref["words"] for w in fold_word(lab)]
    try:
        said = [w for t in normalize_words(text, unit="phones") for w in fold_word(t)]
    except VQAlignError as exc:
        said = []
        problems.append({"file": str(path), "kind": "transcript",
                         "message": f"{path}: transcript cannot be read ({exc}); file skipped"})
        return None, problems
    if ref_words != said:
        k = next((i for i, (a, b) in enumerate(zip(ref_words, said)) if a != b),
                 min(len(ref_words), len(said)))
        ra = ref_words[k] if k < len(ref_words) else "(end)"
        sa = said[k] if k < len(said) else "(end)"
        problems.append({"file": str(path), "kind": "words differ",
                         "message": f"{path}: the words tier has {len(ref_words)} words, the "
                                    f"transcript {len(said)}; first difference at word {k}: "
                                    f"{ra!r} vs {sa!r}; file skipped"})
        return None, problems
    tiers = {"words": [(s, e, lab) for s, e, lab in ref["words"]]}
    if "phones" not in ref:
        problems.append({"file": str(path), "kind": "missing tier",
                         "message": f"{path}: no 'phones' tier; its phones are not scored"})
        return tiers, problems
    labels = [lab for _, _, lab in ref["phones"] if not is_silence(lab)]
    phoneset, bad = "arpabet", [lab for lab in labels if _arpabet(lab) is None]
    if bad:
        # not ARPAbet: the phone set its labels look like (Festival, eSpeak, IPA)
        guess = detect_phoneset(labels)
        still = [lab for lab in labels if to_arpabet(lab, guess).startswith("?")]
        if len(still) < len(bad):
            phoneset, bad = guess, still
    if bad:
        problems.append({"file": str(path), "kind": "phone set",
                         "message": f"{path}: {len(bad)} phone label(s) outside ARPAbet "
                                    f"({', '.join(sorted(set(bad))[:8])}); its phones are "
                                    "not scored"})
        return tiers, problems
    phones = [(s, e, "sil" if is_silence(lab) else
               _arpabet(lab) if phoneset == "arpabet" else to_arpabet(lab, phoneset))
              for s, e, lab in ref["phones"]]
    tiers["phones"] = phones
    return tiers, problems


def _arpabet(label: str) -> str | None:
    """An ARPAbet label (either case, stress digits allowed, or an EXTRA_PHONES one) in
    upper case without stress; None for anything else."""
    up = label.strip().upper().rstrip("012")
    return up if up in PHONE_CLASS or up in EXTRA_PHONES else None


def load_corpus(root: Path, limit: int | None, problems: list) -> list[dict]:
    """Utterances of ``root`` with a usable reference: ``{"id", "voice", "audio", "sr",
    "text", "ref", "seconds", "path"}``; problems are appended to ``problems``."""
    from vqalign.align.corpus import load_item, pair_corpus
    from vqalign.io.textgrid import read_textgrid

    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"--corpus {root} is not a folder; pass a folder of <id>.wav, "
                             "<id>.txt and hand <id>.TextGrid files")
    items, failures = pair_corpus(root)
    for f in failures:
        problems.append({"file": f.path, "kind": "pairing", "message": str(f)})
    voices = _voices_from_info(root)
    with_ref = [it for it in items if it.reference is not None]
    for it in items:
        if it.reference is None:
            problems.append({"file": str(it.audio), "kind": "no reference",
                             "message": f"{it.audio}: no .TextGrid beside it; not scored"})
    if not with_ref:
        raise ParameterError(f"no utterance under {root} has audio, a .txt transcript and a "
                             "hand .TextGrid beside each other")
    for it in with_ref:
        it.group = voices.get(Path(it.id).name) or (Path(it.group).name if it.group
                                                    else "(root)")
    if limit is not None:
        if limit < 1:
            raise ParameterError(f"--limit must be >= 1, got {limit}")
        by_voice: dict = defaultdict(list)
        for it in with_ref:
            by_voice[it.group].append(it)
        queues, chosen = [list(v) for v in by_voice.values()], []
        while len(chosen) < limit and any(queues):
            for q in queues:
                if q and len(chosen) < limit:
                    chosen.append(q.pop(0))
        with_ref = sorted(chosen, key=lambda it: it.id)
    data = []
    for it in with_ref:
        try:
            y, sr, text = load_item(it)
            raw = read_textgrid(it.reference)
        except VQAlignError as exc:
            problems.append({"file": str(it.reference), "kind": "unreadable",
                             "message": f"{exc}; file skipped"})
            continue
        tiers, probs = check_reference(raw, text, it.reference)
        problems.extend(probs)
        if tiers is None:
            continue
        data.append({"id": it.id, "voice": it.group, "audio": y, "sr": sr, "text": text,
                     "ref": tiers, "seconds": y.size / sr, "path": str(it.reference)})
    if not data:
        raise ParameterError(f"no utterance under {root} has a usable reference (see the "
                             f"{len(problems)} problem(s) above)")
    return data


# ----------------------------------------------------------------------------- noise
def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y + g * noise`` with ``g`` such that the mean power of ``y`` over that of the
    scaled noise is ``snr_db`` dB; scaled down as a whole if it would clip.

    Parameters
    ----------
    y, noise : ndarray (n_samples,)
    snr_db : float

    Returns
    -------
    ndarray (n_samples,) float32
    """
    y = np.asarray(y, np.float64)
    n = np.asarray(noise, np.float64)[:y.size]
    ps, pn = float(np.mean(y ** 2)), float(np.mean(n ** 2))
    if ps <= 0 or pn <= 0:
        return y.astype(np.float32)
    out = y + n * np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    peak = float(np.max(np.abs(out)))
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def _babble(k: int, size: int, pool: list, rng) -> np.ndarray:
    """Sum of BABBLE_TALKERS utterances of ``pool`` other than ``pool[k]`` (each looped
    to ``size`` samples from a random start, unit RMS)."""
    others = [i for i in range(len(pool)) if i != k]
    pick = rng.choice(others, size=min(BABBLE_TALKERS, len(others)), replace=False)
    out = np.zeros(size)
    for i in pick:
        x = np.asarray(pool[i], np.float64)
        x = x / max(np.sqrt(np.mean(x ** 2)), 1e-9)
        start = int(rng.integers(0, x.size))
        idx = (start + np.arange(size)) % x.size
        out += x[idx]
    return out


def add_noise(data: list, kind: str, snr_db: float, seed: int) -> dict:
    """Replace every utterance's audio by itself plus ``kind`` noise at ``snr_db`` (each
    file's noise seeded by ``seed`` and the file's id, so --limit does not change it).
    Returns a description of the noise for the report."""
    import zlib

    if kind not in NOISES:
        raise ParameterError(f"--noise {kind!r} is not one of {', '.join(NOISES)}")
    pool, source = [d["audio"] for d in data], "other utterances of the folder"
    if kind == "babble" and len(pool) < BABBLE_TALKERS + 1:
        from vqalign.datasets.synth import synthesize_corpus

        pool = pool + [u.audio for u in synthesize_corpus(n=BABBLE_TALKERS, seed=seed)]
        source = "other utterances of the folder and built-in synthesized speech"
    for k, d in enumerate(data):
        rng = np.random.default_rng([seed, zlib.crc32(d["id"].encode())])
        if kind == "white":
            noise = rng.standard_normal(d["audio"].size)
        else:
            noise = _babble(k, d["audio"].size, pool, rng)
        d["audio"] = mix_at_snr(d["audio"], noise, snr_db)
    return {"kind": kind, "snr_db": snr_db, "seed": seed,
            "source": "seeded Gaussian" if kind == "white" else
            f"{BABBLE_TALKERS} talkers from {source}"}


# ----------------------------------------------------------------------------- modes
def _hyp(aln) -> dict:
    return {"words": aln.tier("words"),
            "phones": aln.tier(aln.unit_tier) if aln.unit_tier else []}


def run_mode(mode: str, data: list, *, jobs: int = 2) -> dict:
    """Run one mode on every utterance: ``{"hyps", "confs", "seconds", "info"}`` (a
    failed utterance's hypothesis is its exception, its confidences None)."""
    from vqalign.bench.align import _confidences, _run_pocketsphinx

    t0 = time.perf_counter()
    info: dict = {}
    if mode == "pocketsphinx":
        pr = _run_pocketsphinx(data)
        return {"hyps": pr.hyps, "confs": [None] * len(data), "seconds": pr.seconds,
                "info": {"n_retried": pr.info["n_retried"]}}
    from vqalign.align import Aligner, align

    hyps, confs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "corpus":
            a = Aligner(n_jobs=jobs).fit([(d["audio"], d["sr"], d["text"]) for d in data])
            results = [r if r is not None else
                       VQAlignError("; ".join(m for i, _, m in a.fit_failures_ if i == k)
                                    or "not aligned") for k, r in enumerate(a.alignments_)]
        else:
            sphinx = Aligner.from_sphinx("en-us") if mode == "sphinx" else None
            results = []
            for d in data:
                try:
                    if mode == "default":
                        r = align(d["audio"], d["text"], sr=d["sr"], n_jobs=jobs)
                    elif mode in ("selftrain", "flat"):
                        r = align(d["audio"], d["text"], sr=d["sr"], n_jobs=jobs,
                                  reference="none" if mode == "selftrain" else "flat")
                    else:
                        r = sphinx.align(d["audio"], d["text"], sr=d["sr"])
                except VQAlignError as exc:
                    r = exc
                results.append(r)
    for r in results:
        if isinstance(r, BaseException):
            hyps.append(r)
            confs.append(None)
        else:
            hyps.append(_hyp(r))
            confs.append(_confidences(r))
    return {"hyps": hyps, "confs": confs, "seconds": time.perf_counter() - t0, "info": info}


# ----------------------------------------------------------------------------- scoring
def _word_contexts(ref_words) -> tuple[dict, dict]:
    """``({start: "pause"|"between"}, {end: ...})`` of the reference words (rounded to
    the microsecond), and the first start / last end marked as edges."""
    ws = [(s, e) for s, e, lab in ref_words if fold_word(lab)]
    starts = np.array([s for s, _ in ws])
    ends = np.array([e for _, e in ws])
    on, off = {}, {}
    for i, (s, e) in enumerate(ws):
        prev = np.delete(ends, i)
        nxt = np.delete(starts, i)
        before = bool(np.any(np.abs(prev - s) <= PAUSE_GAP_S))
        after = bool(np.any(np.abs(nxt - e) <= PAUSE_GAP_S))
        on[round(s, 6)] = "between" if before else "pause"
        off[round(e, 6)] = "between" if after else "pause"
    return on, off


def _ms_stats(x) -> dict:
    x = 1000.0 * np.asarray(x, np.float64)
    if x.size == 0:
        nan = float("nan")
        return {"mean_ms": nan, "signed_mean_ms": nan, "signed_median_ms": nan, "n": 0}
    return {"mean_ms": float(np.mean(np.abs(x))), "signed_mean_ms": float(np.mean(x)),
            "signed_median_ms": float(np.median(x)), "median_ms": float(np.median(np.abs(x))),
            "n": int(x.size)}


def score_mode(data: list, hyps: list, confs: list) -> dict:
    """Every figure of one mode (see the module docstring)."""
    from vqalign.bench.align import confidence_report

    W, P, per_file, failed = [], [], {}, []
    ctx = {"pause": [], "between": []}
    first, last, swallowed = [], [], []
    on_s, off_s = [], []
    for d, h in zip(data, hyps):
        if isinstance(h, BaseException):
            failed.append(f"{d['id']}: {h}")
            continue
        try:
            w = compare_tier(h["words"], d["ref"]["words"])
            p = (compare_tier(h["phones"], d["ref"]["phones"], tier="phones",
                              hyp_phoneset="arpabet", ref_phoneset="arpabet")
                 if h.get("phones") and "phones" in d["ref"] else None)
        except VQAlignError as exc:
            failed.append(f"{d['id']}: scoring: {exc}")
            continue
        W.append(w)
        if p is not None:
            P.append(p)
        on_ctx, off_ctx = _word_contexts(d["ref"]["words"])
        ref_ws = [(s, e) for s, e, lab in d["ref"]["words"] if fold_word(lab)]
        for _lab, rs, re_, hs, he in w["pairs"]:
            for val, ref_t, table in ((hs - rs, rs, on_ctx), (he - re_, re_, off_ctx)):
                if val == val:
                    ctx[table.get(round(ref_t, 6), "pause")].append(val)
            if hs == hs:
                on_s.append(hs - rs)
            if he == he:
                off_s.append(he - re_)
            if ref_ws and abs(rs - ref_ws[0][0]) < 1e-6 and hs == hs:
                first.append(hs - rs)
                if hs <= SWALLOW_AT_S and rs >= SWALLOW_MIN_S:
                    swallowed.append(d["id"])
            if ref_ws and abs(re_ - ref_ws[-1][1]) < 1e-6 and he == he:
                last.append(he - re_)
        e = np.abs(np.concatenate([w["onset"], w["offset"]]))
        per_file[d["id"]] = {"voice": d["voice"],
                             "words_mean_ms": float(1000 * e.mean()) if e.size else None,
                             "n_missing": len(w["missing"])}
    out = {"n_utts": len(data), "n_failed": len(failed), "failed": failed[:20]}
    keep = ("mean_ms", "median_ms", "p90_ms", "pct_within_ms", "n_boundaries", "n_missing",
            "n_inserted", "n_untimed", "bias_onset_ms", "bias_offset_ms", "by_class")
    out["words"] = {k: v for k, v in summarize_tier(W).items() if k in keep}
    if P:
        out["phones"] = {k: v for k, v in summarize_tier(P).items() if k in keep}
    out["bias"] = {"word_start": _ms_stats(on_s), "word_end": _ms_stats(off_s),
                   "phone_boundaries": _ms_stats(np.concatenate(
                       [np.concatenate([p["onset"], p["offset"]]) for p in P]) if P else [])}
    out["context"] = {k: _ms_stats(v) for k, v in ctx.items()}
    out["edges"] = {"first_start": _ms_stats(first), "last_end": _ms_stats(last),
                    "swallowed_leading_silence": swallowed}
    conf = confidence_report(data, hyps, confs)
    out["confidence"] = {k: {"auc": c["auc"], "n": c["n"], "n_unknown": c["n_unknown"],
                             "bad_share": c["bad_share"], "ece": c["ece"]}
                         for k, c in conf.items()}
    worst = sorted(((v["words_mean_ms"], k) for k, v in per_file.items()
                    if v["words_mean_ms"] is not None), reverse=True)[:WORST]
    out["worst"] = [{"id": k, "words_mean_ms": m} for m, k in worst]
    out["per_file"] = per_file
    return out


# ----------------------------------------------------------------------------- output
def _f(v, w=6, d=1) -> str:
    return f"{v:{w}.{d}f}" if isinstance(v, (int, float)) and v == v else " " * (w - 3) + "  -"


def print_tables(result: dict) -> None:
    modes = result["modes"]
    noise = result.get("noise")
    print(f"vqalign bench timit: {result['n_utts']} utterances, {result['audio_seconds']:.1f} s "
          f"of audio, {len(result['voices'])} voice(s) from {result['corpus']}"
          + (f"; {noise['kind']} noise at {noise['snr_db']:g} dB SNR ({noise['source']}, "
             f"seed {noise['seed']})" if noise else ""))
    print("\n  boundary error against the hand labels (ms; start and end of every paired word "
          "or phone)")
    print(f"  {'mode':<13} {'ok':>5} | {'words: mean':>11} {'median':>6} {'p90':>6} {'<=20%':>6}"
          f" | {'phones: mean':>12} {'median':>6} {'p90':>6} {'<=20%':>6} | {'seconds':>7}")
    for name, s in modes.items():
        w = s["words"]
        p = s.get("phones")
        ok = f"{s['n_utts'] - s['n_failed']}/{s['n_utts']}"
        print(f"  {name:<13} {ok:>5} | {_f(w['mean_ms'], 11)} {_f(w['median_ms'])} "
              f"{_f(w['p90_ms'])} {_f(w['pct_within_ms']['20'])} | "
              + (f"{_f(p['mean_ms'], 12)} {_f(p['median_ms'])} {_f(p['p90_ms'])} "
                 f"{_f(p['pct_within_ms']['20'])}" if p else f"{'-':>12} {'-':>6} {'-':>6} "
                                                             f"{'-':>6}")
              + f" | {s['seconds']:7.1f}")
    print("\n  bias (signed error, hypothesis - reference, ms), word boundaries by context "
          "(mean absolute and mean signed ms), utterance edges (mean absolute ms)")
    print(f"  {'mode':<13} {'start mean':>10} {'median':>6} {'end mean':>8} {'median':>6} | "
          f"{'pause':>6} {'signed':>6} {'(n)':>5} {'between':>7} {'signed':>6} {'(n)':>5} | "
          f"{'1st start':>9} "
          f"{'last end':>8} {'swallowed':>9}")
    for name, s in modes.items():
        b, c, e = s["bias"], s["context"], s["edges"]
        print(f"  {name:<13} {_f(b['word_start'].get('signed_mean_ms'), 10)} "
              f"{_f(b['word_start']['signed_median_ms'])} "
              f"{_f(b['word_end'].get('signed_mean_ms'), 8)} "
              f"{_f(b['word_end']['signed_median_ms'])} | "
              f"{_f(c['pause']['mean_ms'])} {_f(c['pause'].get('signed_mean_ms'))} "
              f"{c['pause']['n']:>5} {_f(c['between']['mean_ms'], 7)} "
              f"{_f(c['between'].get('signed_mean_ms'))} {c['between']['n']:>5} | "
              f"{_f(e['first_start']['mean_ms'], 9)} {_f(e['last_end']['mean_ms'], 8)} "
              f"{len(e['swallowed_leading_silence']):>9}")
    print("\n  confidence: AUC for flagging words / phones whose boundary error exceeds 50 ms "
          "(share beyond)")
    for name, s in modes.items():
        cw = s["confidence"].get("words_50ms")
        cp = s["confidence"].get("phones_50ms")
        if not cw and not cp:
            print(f"  {name:<13} (no confidence)")
            continue
        txt = "   ".join(f"{lab} {_f(c['auc'], 5, 3)} ({100 * c['bad_share']:.1f} % beyond"
                         + (f", {c['n_unknown']} without one" if c["n_unknown"] else "") + ")"
                         for lab, c in (("words", cw), ("phones", cp)) if c)
        print(f"  {name:<13} {txt}")
    print("\n  worst utterances (mean word boundary error, ms)")
    for name, s in modes.items():
        print(f"  {name:<13} " + "; ".join(f"{x['id']} {x['words_mean_ms']:.0f}"
                                           for x in s["worst"]))
    for name, s in modes.items():
        if s["n_failed"]:
            print(f"\n  {name}: {s['n_failed']} utterance(s) failed, e.g.")
            for f in s["failed"][:5]:
                print(f"    {f}")
    probs = result["problems"]
    if probs:
        print(f"\n  {len(probs)} problem(s) with the references:")
        for p in probs[:50]:
            print(f"    {p['kind']}: {p['message']}")
        if len(probs) > 50:
            print(f"    ... and {len(probs) - 50} more (see --json)")


def run(args) -> int:
    modes = parse_modes(args.modes)
    if (args.noise is None) != (args.snr is None):
        raise ParameterError("--noise and --snr go together, e.g. --noise babble --snr 10")
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    if args.report is not None and args.report.exists() and not args.overwrite:
        raise ParameterError(f"{args.report} exists; pass --overwrite to replace it")
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    problems: list = []
    data = load_corpus(args.corpus, args.limit, problems)
    noise = add_noise(data, args.noise, args.snr, args.seed) if args.noise else None
    if "pocketsphinx" in modes:
        from vqalign.bench.peers import availability

        reason = availability("pocketsphinx")
        if reason is not None:
            say(f"  skipping pocketsphinx: {reason}")
            modes = [m for m in modes if m != "pocketsphinx"]
    result = {"corpus": str(args.corpus), "n_utts": len(data),
              "audio_seconds": round(float(sum(d["seconds"] for d in data)), 3),
              "voices": sorted({d["voice"] for d in data}), "noise": noise, "modes": {}}
    runs = {}
    for m in modes:
        say(f"  running {m} on {len(data)} utterance(s) ...")
        runs[m] = run_mode(m, data, jobs=args.jobs)
        s = score_mode(data, runs[m]["hyps"], runs[m]["confs"])
        s["seconds"] = round(runs[m]["seconds"], 2)
        s["info"] = runs[m]["info"]
        result["modes"][m] = s
    result["problems"] = problems
    result["n_problems"] = len(problems)
    if args.report is not None:
        from vqalign.bench.report import write_report

        utts = [{"id": d["id"], "voice": d["voice"], "audio": d["audio"], "sr": d["sr"],
                 "ref": d["ref"],
                 "systems": {m: r["hyps"][i] for m, r in runs.items()
                             if not isinstance(r["hyps"][i], BaseException)}}
                for i, d in enumerate(data)]
        write_report(args.report, utts, title=f"vqalign bench timit: {args.corpus}"
                     + (f" ({noise['kind']} noise, {noise['snr_db']:g} dB)" if noise else ""),
                     overwrite=args.overwrite,
                     problems=[dict(p, system="(reference)") for p in problems])
        say(f"  report written to {args.report}")
    if args.json:
        print(json.dumps(json_safe(result), indent=1))
    else:
        print_tables(result)
    return 0
