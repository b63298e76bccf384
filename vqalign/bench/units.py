"""``vqalign bench units --corpus DIR``: how phonetic discrete units are.

Frame-level phone labels come from each file's TextGrid ``phones`` tier (hand or
reference alignments; empty intervals and ``pau``/``sil``/``sp`` are silence) or,
when the folder has no TextGrids, from vqalign's own alignment of the transcripts
(``<name>.txt``). Units, all learned on the corpus itself (as HuBERT's teacher
quality is measured), each scored by phone purity, cluster purity, PNMI
(:mod:`vqalign.eval.units`) and bit rate (entropy x frame rate):

- k-means (scikit-learn MiniBatchKMeans) on 13 MFCCs and on MFCC + deltas +
  delta-deltas (39-D, HuBERT's first-iteration targets) at K = 50, 100, 500: the
  classical baseline;
- vqalign LBG codebooks on the same 39-D features as k-means and on the aligner's
  features (39-D, per-utterance CMVN);
- context units: LBG, and k-means beside it, on each frame's 13 MFCCs with 2 frames
  either side (65-D, z-scored over the corpus), the classical units with the most phone
  information here;
- residual-VQ tokens on the same features (2 stages; units = the pair of codes);
- the codec's tokens (its first envelope stage, and whole tokens) at 25 per second;
- the aligner's tied HMM states (Viterbi path of a model fitted on the corpus; these
  use the transcripts, so they are not unsupervised units).

Units are learned and scored on the same frames, as HuBERT's teacher quality is; on a
small corpus, units with few frames each (large K, whole codec tokens) get inflated
PNMI and purity and deflated bits: the table prints frames per unit.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError

SILENCE = {"", "pau", "sil", "sp", "spn", "h#", "<sil>"}
HOP_S = 0.010


def add_arguments(parser):
    parser.add_argument("--corpus", required=True,
                        help="folder of audio with <name>.TextGrid (phones tier) or <name>.txt")
    parser.add_argument("--ks", default="50,100,500", help="K values (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--no-codec", action="store_true", help="skip the codec's tokens")
    parser.add_argument("--no-hmm", action="store_true", help="skip the aligner's HMM states")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _corpus(d, limit):
    p = Path(d)
    if not p.is_dir():
        raise ParameterError(f"--corpus {d} is not a folder")
    wavs = sorted(p.glob("*.wav"))[:limit]
    if not wavs:
        raise ParameterError(f"--corpus {d} holds no .wav files")
    return wavs


def _phone_tier(tg):
    from vqalign.io.textgrid import read_textgrid

    tiers = read_textgrid(tg)
    if "phones" not in tiers:
        raise ParameterError(f"{tg} has no 'phones' tier (tiers: {', '.join(tiers)})")
    return [(s, e, "sil" if lab.strip().lower() in SILENCE else lab.strip().lower())
            for s, e, lab in tiers["phones"]]


def _own_alignment(wavs):
    from vqalign.align.aligner import Aligner

    items = []
    for w in wavs:
        txt = w.with_suffix(".txt")
        if not txt.is_file():
            raise ParameterError(f"{w.name} has neither a TextGrid nor a transcript {txt.name}")
        items.append((str(w), txt.read_text().strip()))
    al = Aligner(trim_silence=False).fit(items)
    out = []
    for path, text in items:
        a = al.align(path, text)
        out.append([(g.start, g.end, "sil" if g.label.lower() in SILENCE else g.label.lower())
                    for g in a.tiers["phones"]])
    return out, al, items


#: frames either side stacked onto each frame's 13 MFCCs for the context units: a phone
#: lasts 5-15 frames, so +-2 frames see its neighbourhood (TIMIT dev, 40 files, PNMI of LBG
#: at K = 50 / 100 / 500: 0.400 / 0.465 / 0.648 with +-2, 0.400 / 0.458 / 0.649 with +-3,
#: 0.380 / 0.435 / 0.603 on MFCC + deltas)
CONTEXT = 2
CTX_NAME = f"MFCC +-{CONTEXT} frames, z-scored ({13 * (2 * CONTEXT + 1)})"


def context_frames(ceps: list, width: int) -> np.ndarray:
    """Each frame's cepstra with ``width`` frames either side (edges repeated), z-scored
    per dimension over the corpus.

    Parameters
    ----------
    ceps : list of ndarray, each (n_frames, n_ceps)
        One utterance each.
    width : int

    Returns
    -------
    ndarray of float32, shape (total frames, n_ceps * (2 * width + 1))
    """
    out = []
    for c in ceps:
        p = np.pad(c, ((width, width), (0, 0)), mode="edge")
        out.append(np.concatenate([p[i:i + c.shape[0]] for i in range(2 * width + 1)], axis=1))
    X = np.concatenate(out).astype(np.float64)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    return np.ascontiguousarray(X, dtype=np.float32)


def run_units(args) -> dict:
    from sklearn.cluster import MiniBatchKMeans

    from vqalign.eval.units import frame_labels, unit_bits, unit_scores
    from vqalign.features import delta, mfcc
    from vqalign.features.frontend import features as aligner_features
    from vqalign.io import load_audio
    from vqalign.lbg import ResidualVQ, VectorQuantizer

    ks = [int(k) for k in str(args.ks).split(",") if k.strip()]
    wavs = _corpus(args.corpus, args.limit)
    tgs = [w.with_suffix(".TextGrid") for w in wavs]
    aligner = items = None
    if all(t.is_file() for t in tgs):
        tiers = [_phone_tier(t) for t in tgs]
        label_source = "TextGrid phones tiers"
    else:
        print("no TextGrids: labelling frames with vqalign's own alignment", file=sys.stderr)
        tiers, aligner, items = _own_alignment(wavs)
        label_source = "vqalign alignment"
    audio = [load_audio(w, sr=16000)[0] for w in wavs]
    m13, f39, f39c, labs = [], [], [], []
    for y, tier in zip(audio, tiers):
        c = mfcc(y, 16000, n_mfcc=13, n_mels=40, win_length=0.025, hop_length=160, center=True)
        X, _ = aligner_features(y, HOP_S)
        n = min(c.shape[0], X.shape[0])
        m13.append(c[:n])
        f39.append(delta(c, order=2, width=1)[:n])
        f39c.append(X[:n])
        labs.append(frame_labels(tier, np.arange(n) * HOP_S))
    phones = np.concatenate(labs)
    M13, F39, F39C = (np.ascontiguousarray(np.concatenate(a), dtype=np.float32)
                      for a in (m13, f39, f39c))
    CTX = context_frames(m13, CONTEXT)
    rows = []

    def add(name, family, units, rate, lab=phones, K=None, seconds=None):
        s = unit_scores(lab, units)
        s.update(name=name, family=family, K=K, frame_rate=rate,
                 bits_per_second=unit_bits(units, rate), seconds=seconds,
                 frames_per_unit=s["n_frames"] / max(s["n_units"], 1))
        rows.append(s)
        print(f"  {name:>34s}  PNMI {s['pnmi']:.3f}  phone purity {s['phone_purity']:.3f}  "
              f"cluster purity {s['cluster_purity']:.3f}  {s['bits_per_second']:.0f} bit/s",
              file=sys.stderr)

    for K in ks:
        for feats, what in ((M13, "MFCC 13"), (F39, "MFCC+d+dd 39")):
            t = time.perf_counter()
            km = MiniBatchKMeans(K, batch_size=4096, n_init=3, random_state=args.seed).fit(feats)
            add(f"k-means {what} K={K}", "kmeans", km.predict(feats), 1 / HOP_S, K=K,
                seconds=time.perf_counter() - t)
        t = time.perf_counter()
        km = MiniBatchKMeans(K, batch_size=4096, n_init=3, random_state=args.seed).fit(CTX)
        add(f"k-means {CTX_NAME} K={K}", "kmeans", km.predict(CTX), 1 / HOP_S, K=K,
            seconds=time.perf_counter() - t)
        for feats, what in ((F39, "MFCC+d+dd 39"), (F39C, "39+CMVN"), (CTX, CTX_NAME)):
            t = time.perf_counter()
            vq = VectorQuantizer("lbg", K, random_state=args.seed).fit(feats)
            add(f"vqalign LBG {what} K={K}", "lbg", vq.encode(feats), 1 / HOP_S, K=K,
                seconds=time.perf_counter() - t)
        k2 = int(round(np.sqrt(K)))
        t = time.perf_counter()
        rvq = ResidualVQ(2, k2, "lbg", random_state=args.seed).fit(F39C)
        add(f"vqalign RVQ 2x{k2} 39+CMVN", "rvq", rvq.encode(F39C), 1 / HOP_S, K=k2 * k2,
            seconds=time.perf_counter() - t)
    if not args.no_codec:
        from vqalign.codec import Codec

        t = time.perf_counter()
        codec = Codec(1200).fit([(y, 16000) for y in audio])
        toks, clabs = [], []
        for y, tier in zip(audio, tiers):
            tk = codec.encode(y, 16000)
            dur = codec.design_.frame_ms * codec.design_.frames_per_token / 1000.0
            toks.append(tk)
            clabs.append(frame_labels(tier, (np.arange(tk.shape[0]) + 0.5) * dur))
        T = np.concatenate(toks)
        L = np.concatenate(clabs)
        rate = codec.design_.token_rate
        sec = time.perf_counter() - t
        k1 = codec.design_.stream_sizes[2]
        add(f"codec 1200 env stage 1 (K={k1})", "codec", T[:, 2], rate, lab=L, K=k1, seconds=sec)
        add("codec 1200 whole tokens", "codec", T, rate, lab=L, seconds=sec)
    if not args.no_hmm:
        from vqalign.align.aligner import Aligner

        t = time.perf_counter()
        texts = []
        for w in wavs:
            txt = w.with_suffix(".txt")
            texts.append(txt.read_text().strip() if txt.is_file() else None)
        if all(x is not None for x in texts):
            if aligner is None:
                items = [(str(w), x) for w, x in zip(wavs, texts)]
                aligner = Aligner(trim_silence=False).fit(items)
            st, slabs = [], []
            for (_path, text), y, tier in zip(items, audio, tiers):
                ob = aligner.observations(y, text, sr=16000)
                names = np.array(ob["labels"], dtype=object)[ob["path"]]
                st.append(names)
                slabs.append(frame_labels(tier, np.arange(names.size) * ob["hop_s"]))
            add("aligner tied HMM states (Viterbi)", "hmm", np.concatenate(st),
                1 / ob["hop_s"], lab=np.concatenate(slabs), seconds=time.perf_counter() - t)
        else:
            print("no transcripts (.txt): aligner states skipped", file=sys.stderr)
    return {"bench": "units", "corpus": str(args.corpus), "n_files": len(wavs),
            "n_frames": int(phones.size), "labels": label_source,
            "n_phones": int(len(set(phones.tolist()))), "units": rows}


def run(args) -> int:
    res = run_units(args)
    if args.json:
        print(json.dumps(res, indent=1))
    print(f"{'units':>34s} {'K':>5s} {'PNMI':>6s} {'ph.pur':>6s} {'cl.pur':>6s} {'bit/s':>6s} "
          f"{'PNMI per kbit':>13s} {'frames/unit':>11s}", file=sys.stderr)
    for r in res["units"]:
        K = "" if r["K"] is None else str(r["K"])
        print(f"{r['name']:>34s} {K:>5s} {r['pnmi']:6.3f} {r['phone_purity']:6.3f} "
              f"{r['cluster_purity']:6.3f} {r['bits_per_second']:6.0f} "
              f"{1000 * r['pnmi'] / max(r['bits_per_second'], 1e-9):13.3f} "
              f"{r['frames_per_unit']:11.1f}", file=sys.stderr)
    if any(r["frames_per_unit"] < 20 for r in res["units"]):
        print("note: rows with fewer than 20 frames per unit overstate PNMI and purity and "
              "understate bits (plug-in estimates from few frames; whole codec tokens are "
              "nearly all distinct on a small corpus)", file=sys.stderr)
    return 0
