"""Fit and check the confidence model of :mod:`vqalign.align.confidence`.

Two steps, so that the slow one (aligning) runs once and the fit is cheap to re-run::

    # 1. align utterances with known timings; keep every word's and phone's confidence
    #    features and its true boundary error
    python -m vqalign.eval.calibrate collect --corpus ../shared/devdata --mode single \\
        --out /tmp/dev_single.npz
    python -m vqalign.eval.calibrate collect --corpus ../shared/devdata --mode corpus \\
        --out /tmp/dev_corpus.npz
    python -m vqalign.eval.calibrate collect --synth 40 --seed 11 --mode single \\
        --out /tmp/synth_single.npz
    # 2. fit the logistic models on some sets, score them on others (never the same rows),
    #    with cross-validation by voice; print (or write) the coefficients
    python -m vqalign.eval.calibrate fit --train /tmp/dev_*.npz --test /tmp/synth_*.npz

A word (phone) is "good" at tolerance X when both its start and its end are within X ms
of the reference; the model predicts P(good). Phones are paired with the reference by
:func:`vqalign.eval.boundaries.match_phones` (ARPAbet); an unpaired phone is not good.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError

TOLS_MS = (20, 50)


def _errors(hyp, ref_words, ref_phones, unit_tier):
    """(word errors (n_words,), phone errors (n_phones,)) in ms: max(|start|, |end|) error
    of each hypothesis segment against its paired reference one (inf: unpaired)."""
    from vqalign.eval.boundaries import _phone_units, fold_word, match_phones

    hw = hyp.tiers["words"]
    rw = [(s, e, lab) for s, e, lab in ref_words if fold_word(lab)]
    werr = np.full(len(hw), np.inf)
    if len(rw) == len(hw):
        for i, (h, (rs, re_, _)) in enumerate(zip(hw, rw)):
            werr[i] = 1000.0 * max(abs(h.start - rs), abs(h.end - re_))
    hp = hyp.tiers.get(unit_tier, [])
    perr = np.full(len(hp), np.inf)
    if ref_phones and hp:
        h, _ = _phone_units([s.as_tuple() for s in hp], "arpabet")
        r, _ = _phone_units(ref_phones, "auto")

        def mids(units):
            return np.array([(s + e) / 2 for s, e, *_ in units], np.float64)

        for i, j in match_phones([x[2] for x in h], mids(h), [x[2] for x in r], mids(r)):
            hs, he, _, src = h[i]
            rs, re_, _, _ = r[j]
            perr[src] = 1000.0 * max(abs(hs - rs), abs(he - re_))
    return werr, perr


def _data(args):
    if args.synth:
        from vqalign.datasets.synth import synthesize_corpus

        voices = args.voices.split(",") if args.voices else None
        utts = synthesize_corpus(n=args.synth, seed=args.seed, voices=voices)
        return [{"id": u.id, "voice": u.voice, "audio": u.audio, "sr": u.sr, "text": u.text,
                 "ref": {"words": u.words, "phones": u.phones}} for u in utts]
    from vqalign.eval.corpus import find_utterances, load_utterances

    items, _ = find_utterances(Path(args.corpus), args.limit)
    if getattr(args, "subset", None):
        try:
            k, n = (int(x) for x in args.subset.split("/"))
            if not 0 <= k < n:
                raise ValueError
        except ValueError:
            raise ParameterError(f"--subset {args.subset!r}: give K/N with 0 <= K < N, e.g. "
                                 "3/20 (every 20th utterance from the 4th)") from None
        items = [it for i, it in enumerate(items) if i % n == k]
    return load_utterances(items)


#: collect modes whose alignments are the median of three (the Sphinx second opinion):
#: their sets hold vqalign.align.second_opinion.COMBINED_FEATURES
COMBINED_MODES = ("combined", "corpus-combined")


def _feature_names(mode: str):
    """The confidence cues a set collected in ``mode`` holds."""
    from vqalign.align.confidence import FEATURES
    from vqalign.align.second_opinion import COMBINED_FEATURES

    return COMBINED_FEATURES if mode in COMBINED_MODES else FEATURES


def collect(args, argv_of_run=None) -> int:
    from vqalign.align import Aligner

    data = _data(args)
    if args.noise:
        from vqalign.bench.timit import add_noise

        add_noise(data, args.noise, args.snr, args.noise_seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.mode in ("corpus", "corpus-combined"):
            # corpus: the corpus model alone; corpus-combined: a small corpus's alignments
            # with the Sphinx model's second opinion (the "corpus_combined" model)
            ref = "sphinx" if args.mode == "corpus-combined" else "flat"
            al = Aligner(n_jobs=args.jobs, reference=ref).fit(
                [(d["audio"], d["sr"], d["text"]) for d in data])
            res = al.align_many([(d["audio"], d["sr"], d["text"]) for d in data])
        else:
            # single: the flat-start self-training alone (the "self" model); combined: with
            # the Sphinx model's second opinion (the "combined" model, on its own features)
            ref = "sphinx" if args.mode == "combined" else "flat"
            res = []
            for k, d in enumerate(data):
                try:
                    res.append(Aligner(n_jobs=args.jobs, reference=ref).align(
                        d["audio"], d["text"], sr=d["sr"]))
                except Exception as exc:  # noqa: BLE001 - a failed utterance is skipped
                    res.append(exc)
                if (k + 1) % 20 == 0:
                    print(f"  {k + 1}/{len(data)} aligned ({time.perf_counter() - t0:.0f} s)",
                          file=sys.stderr)
    rows = {"words": [], "units": []}
    meta = {"words": [], "units": []}
    n_fail = 0
    for d, a in zip(data, res):
        if isinstance(a, BaseException) or "confidence" not in a.diagnostics:
            n_fail += 1
            continue
        c = a.diagnostics["confidence"]
        pre = "combined_" if args.mode in COMBINED_MODES else ""
        if f"{pre}word_features" not in c:
            n_fail += 1
            continue
        unit = a.unit_tier
        werr, perr = _errors(a, d["ref"]["words"], d["ref"].get("phones"), unit)
        for tier, feats, err in (("words", c[f"{pre}word_features"], werr),
                                 ("units", c[f"{pre}{unit}_features"], perr)):
            F = np.array([[np.nan if v is None else v for v in r] for r in feats], np.float64)
            if F.shape[0] != err.size:
                continue
            rows[tier].append(np.column_stack([F, err]))
            meta[tier] += [d["voice"]] * err.size
    names = _feature_names(args.mode)
    out = {"features": np.array(names), "mode": np.array(args.mode),
           "command": np.array("python -m vqalign.eval.calibrate " + " ".join(
               sys.argv[1:] if argv_of_run is None else argv_of_run)),
           "source": np.array(args.corpus and str(args.corpus) or f"synth seed {args.seed}")}
    for tier in rows:
        M = np.concatenate(rows[tier]) if rows[tier] else np.zeros((0, len(names) + 1))
        out[f"{tier}_X"] = M[:, :-1]
        out[f"{tier}_err_ms"] = M[:, -1]
        out[f"{tier}_group"] = np.array(meta[tier])
    np.savez(args.out, **out)
    print(f"collect: {len(data)} utterances ({args.mode} mode), {n_fail} failed, "
          f"{out['words_X'].shape[0]} words, {out['units_X'].shape[0]} phones, "
          f"{time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0


def _load_sets(paths):
    sets = []
    for p in paths:
        if not Path(p).is_file():
            raise ParameterError(f"{p} does not exist; make it with `python -m "
                                 "vqalign.eval.calibrate collect ... --out FILE.npz`")
        try:
            z = np.load(p, allow_pickle=False)
            _ = z["words_X"], z["units_X"], z["mode"]
        except Exception as exc:  # noqa: BLE001
            raise ParameterError(f"{p} is not a set written by `calibrate collect` ({exc})"
                                 ) from None
        sets.append({k: z[k] for k in z.files} | {"path": str(p)})
    return sets


def _stack(sets, tier):
    X = np.concatenate([s[f"{tier}_X"] for s in sets])
    e = np.concatenate([s[f"{tier}_err_ms"] for s in sets])
    g = np.concatenate([np.char.add(f"{s['mode']}:", s[f"{tier}_group"].astype(str))
                        for s in sets])
    ok = np.all(np.isfinite(X), axis=1)
    return X[ok], e[ok], g[ok]


def fit_logistic(X, y, *, C=1.0):
    """Standardized L2 logistic regression: dict(mean, scale, coef, intercept)."""
    from sklearn.linear_model import LogisticRegression

    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    sd[sd < 1e-9] = 1.0
    m = LogisticRegression(C=C, max_iter=2000).fit((X - mu) / sd, y)
    return {"mean": mu.tolist(), "scale": sd.tolist(), "coef": m.coef_[0].tolist(),
            "intercept": float(m.intercept_[0])}


def _predict(c, X):
    z = c["intercept"] + ((X - np.asarray(c["mean"])) / np.asarray(c["scale"])) @ np.asarray(
        c["coef"])
    return 1.0 / (1.0 + np.exp(-z))


MODES = {"single": "self", "corpus": "corpus", "combined": "combined",
         "corpus-combined": "corpus_combined"}


def _cv_by_group(X, y, g, C):
    """Predictions of each group's rows by a model fitted on the other groups."""
    pred = np.full(y.size, np.nan)
    for grp in np.unique(g):
        m = g == grp
        if m.all() or len(np.unique(y[~m])) < 2:
            continue
        pred[m] = _predict(fit_logistic(X[~m], y[~m], C=C), X[m])
    return pred


def fit(args) -> int:
    from vqalign.eval.reliability import expected_calibration_error, reliability_curve, roc_auc

    train = _load_sets(args.train)
    test = _load_sets(args.test) if args.test else []
    for s in train + test:
        if list(s["features"]) != list(_feature_names(str(s["mode"]))):
            raise ParameterError(f"{s['path']} was collected with other features than "
                                 f"vqalign's {str(s['mode'])}-mode confidence features; "
                                 "collect it again")
    coefs = {}
    report = {"train": [s["path"] for s in train], "test": [s["path"] for s in test]}
    for mode_name, mode in MODES.items():
        # the one-feature baseline each model is compared with: the frame ratio (the
        # confidence of old), or for the combined model the spread of its three estimates
        comb = mode_name in COMBINED_MODES
        fr = _feature_names(mode_name).index("log1p_spread_ms" if comb else "log_frame_ratio")
        sgn, base = (1.0, "spread_auc") if comb else (-1.0, "frame_ratio_auc")
        tr = [s for s in train if str(s["mode"]) == mode_name]
        te = [s for s in test if str(s["mode"]) == mode_name]
        if not tr:
            continue
        for tier in ("words", "units"):
            X, e, g = _stack(tr, tier)
            for tol in TOLS_MS:
                y = (e <= tol).astype(int)
                key = f"{mode}_{tier}_{tol}"
                c = fit_logistic(X, y, C=args.C)
                coefs[key] = c
                cv = _cv_by_group(X, y, g, args.C)
                have = np.isfinite(cv)
                line = {"n": int(y.size), "bad_share": round(float(1 - y.mean()), 4),
                        "cv_by_voice_auc": roc_auc(-cv[have], 1 - y[have]),
                        "cv_by_voice_ece": expected_calibration_error(
                            reliability_curve(cv[have], y[have])),
                        base: roc_auc(sgn * X[:, fr], 1 - y)}
                for s in te:
                    Xt, et, _ = _stack([s], tier)
                    yt = (et <= tol).astype(int)
                    pt = _predict(c, Xt)
                    curve = reliability_curve(pt, yt, n_bins=5)
                    line[f"held-out {Path(s['path']).name}"] = {
                        "n": int(yt.size), "bad_share": round(float(1 - yt.mean()), 4),
                        "auc": roc_auc(-pt, 1 - yt),
                        base: roc_auc(sgn * Xt[:, fr], 1 - yt),
                        "ece": expected_calibration_error(curve),
                        "reliability": [(round(b["mean_predicted"], 3), round(b["observed"], 3),
                                         b["n"]) for b in curve]}
                report[key] = line
    print(json.dumps(report, indent=1, default=float))
    cmd = ("python -m vqalign.eval.calibrate fit --train "
           + " ".join(Path(p).name for p in args.train) + f" --C {args.C}"
           + (f" --classes {Path(args.classes).name}" if args.classes else "")
           + (f" --update {Path(args.update).name}" if args.update else ""))
    if args.write_module:
        from vqalign.align.confidence import CLASS_MODEL

        cm = json.loads(Path(args.classes).read_text()) if args.classes else CLASS_MODEL
        sources = {Path(s["path"]).name: str(s.get("command", s["source"])) for s in train}
        block = {"command": cmd, "train": sources, "class_model": cm.get("command"),
                 "report": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("held")}
                            for k, v in report.items() if isinstance(v, dict)}}
        kept_note = ""
        if args.update:
            coefs, block, kept_note = _keep_others(args.update, coefs, block)
        text = (f'''"""Coefficients of the confidence model (generated; do not edit by hand).

Written by::

    {cmd} --write-module {Path(args.write_module).name}

on the sets (made by ``python -m vqalign.eval.calibrate collect``):
{chr(10).join(f"    {k}: {v}" for k, v in sources.items())}
{kept_note}
CLASS_MODEL (frame broad classes) by ``{cm.get("command")}``.
CALIBRATION["report"] holds the cross-validated (by voice) AUC of each model.
"""

CLASS_MODEL = {json.dumps(cm)}

COEFFICIENTS = {json.dumps(coefs, indent=1)}

CALIBRATION = {json.dumps(block, indent=1, default=float)}
''')
        text = text.replace("NaN", "float(\'nan\')").replace(": null", ": None")
        Path(args.write_module).write_text(text)
        print(f"coefficients written to {args.write_module}")
    return 0


def _keep_others(path, coefs, block):
    """The coefficients of the module at ``path`` whose models ``coefs`` does not refit,
    kept beside ``coefs``: (all coefficients, the calibration block with the kept models'
    report and training command, a note for the module's docstring)."""
    import runpy

    old = runpy.run_path(str(path))
    kept = [k for k in old["COEFFICIENTS"] if k not in coefs]
    if not kept:
        return coefs, block, ""
    merged = {k: coefs.get(k, old["COEFFICIENTS"].get(k))
              for k in list(old["COEFFICIENTS"]) + [k for k in coefs
                                                    if k not in old["COEFFICIENTS"]]}
    prev = old["CALIBRATION"]
    block = dict(block)
    block["report"] = {**{k: v for k, v in prev.get("report", {}).items() if k in kept},
                       **block["report"]}
    block["kept"] = {"models": kept, "command": prev.get("command"),
                     "train": prev.get("train"), "kept": prev.get("kept")}
    note = ("\nThe other models (" + ", ".join(kept) + ") were kept from the module before, "
            "written by::\n\n    " + str(prev.get("command")) + "\n\non the sets:\n"
            + "\n".join(f"    {k}: {v}" for k, v in (prev.get("train") or {}).items()) + "\n")
    return merged, block, note


def classes(args) -> int:
    """Fit the frame broad-class model (multinomial logistic regression on the aligner's
    39-d features, 10 ms and 5 ms hops pooled) on reference phone timings."""
    from sklearn.linear_model import LogisticRegression

    from vqalign.features.frontend import features, resample
    from vqalign.phones import CLASSES, detect_phoneset, phone_class, to_arpabet

    data = _data(args)
    Xs, ys = [], []
    for d in data:
        y16 = resample(np.asarray(d["audio"], np.float32), d["sr"])
        ph = d["ref"]["phones"]
        pset = detect_phoneset([lab for _, _, lab in ph])
        starts = np.array([s for s, _, _ in ph])
        cls = []
        for _, _, lab in ph:
            a = to_arpabet(lab, pset)
            c = "silence" if a == "sil" else phone_class(a)
            cls.append(CLASSES.index(c) if c in CLASSES else -1)
        cls = np.array(cls)
        for hop in (0.010, 0.005):
            X, _ = features(y16, hop, 1, dither=0.0)
            t = np.arange(X.shape[0]) * hop
            k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(ph) - 1)
            lab = cls[k]
            keep = lab >= 0
            Xs.append(X[keep])
            ys.append(lab[keep])
    X = np.concatenate(Xs).astype(np.float64)
    y = np.concatenate(ys)
    m = LogisticRegression(C=1.0, max_iter=500).fit(X, y)
    acc = float(np.mean(m.predict(X) == y))
    print(f"classes: {X.shape[0]} frames of {len(data)} utterances, training accuracy "
          f"{acc:.3f}; shares " + ", ".join(f"{c} {np.mean(y == i):.2f}"
                                             for i, c in enumerate(CLASSES)))
    out = {"classes": list(CLASSES), "coef": m.coef_.tolist(),
           "intercept": m.intercept_.tolist(),
           "command": "python -m vqalign.eval.calibrate classes "
                      + (f"--corpus {args.corpus}" if args.corpus else
                         f"--synth {args.synth} --seed {args.seed}"),
           "training_accuracy": acc, "n_frames": int(X.shape[0])}
    Path(args.out).write_text(json.dumps(out))
    print(f"written to {args.out}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vqalign.eval.calibrate",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="align utterances with reference timings and save "
                                       "each segment's confidence features and error")
    c.add_argument("--corpus", type=Path, default=None)
    c.add_argument("--synth", type=int, default=0, help="N built-in synthesized utterances")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--voices", default=None)
    c.add_argument("--limit", type=int, default=None)
    c.add_argument("--subset", default=None, metavar="K/N",
                   help="only utterances i with i %% N == K (a small corpus spread over the "
                        "voices: a corpus model trained on little data fails differently)")
    c.add_argument("--mode", choices=("single", "corpus", "combined", "corpus-combined"),
                   default="single",
                   help="single: self-trained, flat starts alone; combined: self-trained with "
                        "the Sphinx model's second opinion (needs pocketsphinx); corpus: the "
                        "corpus model alone; corpus-combined: a small corpus (under 300 s) "
                        "with the Sphinx model's second opinion")
    c.add_argument("--noise", choices=("white", "babble"), default=None,
                   help="mix noise into every utterance first (as vqalign bench timit does)")
    c.add_argument("--snr", type=float, default=None, help="dB, with --noise")
    c.add_argument("--noise-seed", type=int, default=0)
    c.add_argument("--jobs", type=int, default=1)
    c.add_argument("--out", type=Path, required=True)
    k = sub.add_parser("classes", help="fit the frame broad-class model on reference "
                                       "phone timings")
    k.add_argument("--corpus", type=Path, default=None)
    k.add_argument("--synth", type=int, default=0)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--voices", default=None)
    k.add_argument("--limit", type=int, default=None)
    k.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fit", help="fit the logistic models; report AUC and reliability")
    f.add_argument("--train", nargs="+", required=True)
    f.add_argument("--test", nargs="*", default=[])
    f.add_argument("--C", type=float, default=1.0)
    f.add_argument("--classes", default=None, help="the frame class model (JSON of "
                                                   "'classes') to write beside them")
    f.add_argument("--update", default=None, metavar="MODULE",
                   help="keep the models of this coefficient module that --train does not "
                        "refit (e.g. refit the combined models alone)")
    f.add_argument("--write-module", default=None,
                   help="write the coefficients as a Python module here (e.g. "
                        "vqalign/align/_confidence_coefficients.py)")
    args = ap.parse_args(argv)
    if args.cmd == "classes":
        if bool(args.corpus) == bool(args.synth):
            raise ParameterError("give --corpus DIR or --synth N (one of them)")
        return classes(args)
    if args.cmd == "collect":
        if bool(args.corpus) == bool(args.synth):
            raise ParameterError("give --corpus DIR or --synth N (one of them)")
        if args.out.exists():
            raise ParameterError(f"{args.out} exists; choose another --out")
        if (args.noise is None) != (args.snr is None):
            raise ParameterError("--noise and --snr go together: give both or neither")
        return collect(args, argv)
    return fit(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ParameterError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        sys.exit(2)
