"""``vqalign codec train|encode|decode``: the speech codec from the command line.

::

    vqalign codec train CORPUS --bitrate 1200 --out model.npz
    vqalign codec encode model.npz speech.wav --out speech.tokens.npz [--json]
    vqalign codec decode model.npz speech.tokens.npz --out decoded.wav
"""

from __future__ import annotations

import json
import resource
import sys
import time


def add_arguments(parser):
    sub = parser.add_subparsers(dest="codec_cmd", metavar="CMD", required=True)
    t = sub.add_parser("train", help="learn the codebooks from a folder of speech")
    t.add_argument("corpus", help="folder of audio files (searched recursively) or one file")
    t.add_argument("--bitrate", type=float, required=True,
                   help="nominal bit/s (multiples of 25 from 400; e.g. 1200, 2400, 3200)")
    t.add_argument("--out", required=True, help="model file (.npz)")
    t.add_argument("--synthesis", choices=("world", "fast"), default="world",
                   help="decoder's synthesizer (default %(default)s)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--overwrite", action="store_true", help="replace --out")
    e = sub.add_parser("encode", help="audio file -> tokens (.npz)")
    e.add_argument("model")
    e.add_argument("input", help="audio file")
    e.add_argument("--out", required=True, help="token file (.npz)")
    e.add_argument("--json", action="store_true",
                   help="print {frames, seconds, nominal_bps, entropy_bps, ...}")
    e.add_argument("--overwrite", action="store_true")
    d = sub.add_parser("decode", help="tokens (.npz) -> audio file")
    d.add_argument("model")
    d.add_argument("tokens")
    d.add_argument("--out", required=True, help="audio file (.wav)")
    d.add_argument("--overwrite", action="store_true")


def run(args) -> int:
    from vqalign.codec import Codec

    if args.codec_cmd == "train":
        t = time.perf_counter()
        rate = int(args.bitrate) if float(args.bitrate).is_integer() else args.bitrate
        codec = Codec(rate, synthesis=args.synthesis, random_state=args.seed,
                      progress=not args.quiet)
        codec._design()  # an unreachable rate fails before any audio is read
        codec.fit(args.corpus)
        codec.save(args.out, overwrite=args.overwrite)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps({"model": str(args.out), "nominal_bps": codec.nominal_bps_,
                          "entropy_bps_train": codec.entropy_bps_,
                          "stream_bits": codec.design_.stream_bits,
                          "train_seconds_audio": codec.n_train_seconds_,
                          "train_files": codec.n_train_files_,
                          "wall_seconds": time.perf_counter() - t, "max_rss_mb": rss}))
        return 0
    codec = Codec.load(args.model)
    if args.codec_cmd == "encode":
        from vqalign.io import load_audio

        y, sr = load_audio(args.input, sr=None)
        tokens = codec.encode(y, sr)
        n_out = int(round(y.size * codec.sample_rate / sr))
        codec.save_tokens(args.out, tokens, n_samples=n_out, overwrite=args.overwrite)
        info = {"frames": int(tokens.shape[0] * codec.design_.frames_per_token),
                "tokens": int(tokens.shape[0]), "streams": int(tokens.shape[1]),
                "seconds": y.size / sr, "nominal_bps": codec.nominal_bps_,
                "entropy_bps": codec.entropy_bps(tokens), "model_id": codec.model_id_}
        if args.json:
            print(json.dumps(info))
        else:
            print(f"{args.out}: {info['tokens']} tokens x {info['streams']} streams, "
                  f"{info['seconds']:.2f} s, {info['nominal_bps']:.0f} bit/s nominal, "
                  f"{info['entropy_bps']:.0f} bit/s entropy-coded", file=sys.stderr)
        return 0
    # decode
    import soundfile as sf

    from vqalign.io.atomic import atomic_write

    tokens, n_samples = codec.load_tokens(args.tokens)
    y = codec.decode(tokens, n_samples)
    peak = float(abs(y).max()) if y.size else 0.0
    if peak > 1.0:
        y = y / peak
    with atomic_write(args.out, "wb", overwrite=args.overwrite) as fh:
        sf.write(fh, y, int(codec.sample_rate), format="WAV", subtype="PCM_16")
    return 0
