"""``vqalign demo``: the whole pipeline on built-in synthesized speech.

Needs no network and no user data. Stages, each printing what it did:

1. synthesize a small corpus with exact word and phone times (``datasets.synth``);
2. MFCC features for every utterance (``features.mfcc``);
3. an LBG codebook over all frames, with its per-step history (``lbg``);
4. a tied-mixture HMM aligner trained on the corpus, then every utterance aligned,
   with word and phone boundary errors against the synthesizer's exact truth;
5. TextGrid and JSON alignments, an alignment PNG and an LBG GIF under ``--out``.

Existing files under ``--out`` are kept: the demo refuses to write into a folder
that already holds demo outputs unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="vqalign_demo", help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--n-utts", type=int, default=12,
                   help="utterances to synthesize (default: %(default)s)")
    p.add_argument("--codes", type=int, default=128,
                   help="codebook size for the LBG stage (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG and GIF")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs of an earlier demo in --out")


def _say(stage: str, msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f} s] {stage:<9} {msg}", flush=True)


def _fmt_err(e: dict) -> str:
    return (f"mean {e['mean_ms']:.1f} ms, median {e['median_ms']:.1f} ms, "
            f"{100 * e['within_20']:.0f}% within 20 ms ({e['n']} boundaries)")


def run(args) -> int:
    from vqalign.align import Aligner
    from vqalign.datasets import synthesize_corpus, write_corpus
    from vqalign.eval.boundaries import boundary_errors, summarize_errors
    from vqalign.features import mfcc
    from vqalign.lbg import VectorQuantizer

    t0 = time.perf_counter()
    out = Path(args.out)
    if args.n_utts < 2:
        raise ParameterError(f"--n-utts={args.n_utts}: the corpus stage needs at least 2")
    marker = out / "demo_summary.json"
    if marker.exists() and not args.overwrite:
        raise ParameterError(f"{out} already holds demo outputs ({marker.name}); "
                             "pass --overwrite or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    print(f"vqalign demo: outputs under {out.resolve()} (seed {args.seed})")

    # 1. speech with exact truth
    utts = synthesize_corpus(args.n_utts, seed=args.seed)
    total_s = sum(u.duration for u in utts)
    write_corpus(utts, out / "corpus", overwrite=args.overwrite)
    voices = sorted({u.voice for u in utts})
    _say("synth", f"{len(utts)} utterances, {total_s:.1f} s of speech, voices {', '.join(voices)}"
         f" -> {out / 'corpus'} (wav, txt, exact TextGrid)", t0)

    # 2. features
    t = time.perf_counter()
    feats = [mfcc(u.audio, u.sr) for u in utts]
    n_frames = sum(f.shape[0] for f in feats)
    dt = time.perf_counter() - t
    _say("features", f"MFCC {feats[0].shape[1]} coefficients, {n_frames} frames "
         f"({total_s / max(dt, 1e-9):.0f}x real time, first call includes JIT compile)", t0)

    # 3. codebook
    X = np.concatenate(feats)
    k = min(args.codes, X.shape[0] // 4)
    vq = VectorQuantizer(method="lbg", n_codes=k, random_state=args.seed,
                         keep_snapshots=0 if args.no_plots else 40).fit(X)
    h = vq.history_
    last = h[-1]
    _say("codebook", f"LBG K={k} over {X.shape[0]} frames in {len(h)} steps: "
         f"MSE {last['loss']:.3f}, entropy {last['entropy']:.2f} of log K {last['log_k']:.2f} "
         f"nats, utilization {last['utilization']:.2f}", t0)
    vq.save(out / "codebook.npz", overwrite=args.overwrite)

    # 4. alignment: train on the corpus, align every utterance, score against the truth
    corpus = [(u.audio, u.sr, u.text) for u in utts]
    t = time.perf_counter()
    aligner = Aligner(unit="phones", random_state=args.seed, keep_paths=not args.no_plots)
    aligner.fit(corpus)
    results = aligner.align_many(corpus)
    dt = time.perf_counter() - t
    failed = [(u.id, r) for u, r in zip(utts, results) if isinstance(r, Exception)]
    ok = [(u, r) for u, r in zip(utts, results) if not isinstance(r, Exception)]
    _say("align", f"tied-mixture HMM trained and {len(ok)} utterances aligned in {dt:.1f} s "
         f"({total_s / max(dt, 1e-9):.0f}x real time); failed {len(failed)}", t0)
    for uid, exc in failed:
        print(f"           {uid}: {exc}")
    if not ok:
        raise ParameterError("every utterance failed to align; see the reasons above")
    word_err = _pool([boundary_errors(r.tier("words"), u.words, tier="words") for u, r in ok],
                     summarize_errors)
    phone_err = _pool([boundary_errors(r.tier("phones"), u.phones, tier="phones")
                       for u, r in ok], summarize_errors)
    _say("accuracy", f"words vs exact truth: {_fmt_err(word_err)}", t0)
    _say("accuracy", f"phones vs exact truth: {_fmt_err(phone_err)}", t0)
    for u, r in ok:
        base = out / "alignments" / u.id
        r.write(base.with_suffix(".TextGrid"), overwrite=args.overwrite)
        r.write(base.with_suffix(".json"), overwrite=args.overwrite)
    _say("write", f"{len(ok)} TextGrid + JSON alignments -> {out / 'alignments'}", t0)

    # 5. pictures
    pictures = []
    if not args.no_plots:
        from vqalign.plots import demo_figures

        pick = int(rng.integers(len(ok)))
        u, r = ok[pick]
        pictures = demo_figures(out, audio=u.audio, sr=u.sr, alignment=r, vq=vq, X=X,
                                reference={"words": u.words, "phones": u.phones},
                                overwrite=args.overwrite)
        _say("plots", ", ".join(str(p) for p in pictures), t0)

    import json

    from vqalign.io.atomic import atomic_write

    summary = {
        "n_utts": len(utts), "seconds": total_s, "n_frames": int(n_frames),
        "codebook": {"n_codes": k, "mse": last["loss"], "utilization": last["utilization"]},
        "aligned": len(ok), "failed": len(failed),
        "word_boundary": word_err, "phone_boundary": phone_err,
        "pictures": [str(p) for p in pictures],
        "wall_s": time.perf_counter() - t0,
    }
    with atomic_write(marker, overwrite=True) as fh:
        json.dump(summary, fh, indent=1)
    _say("done", f"summary -> {marker}", t0)
    return 0


def _pool(results: list[dict], summarize) -> dict:
    """Pool per-utterance boundary errors into one summary (JSON-ready)."""
    errs = np.concatenate([np.asarray(r["errors"], float) for r in results])
    return {k: v for k, v in summarize(errs).items() if k != "errors"}
