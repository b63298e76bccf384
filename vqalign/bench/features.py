"""``vqalign bench features``: MFCC speed and agreement against librosa (and others).

Every library computes 13 MFCCs from the same audio with the same frame settings
(25 ms Hann/povey window, 10 ms hop, 512-point FFT), after one warm-up call,
and the median of ``--repeat`` timed runs is reported. Ratios are
``peer_seconds / vqalign_seconds`` measured in this run, so > 1 means vqalign is
faster.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from vqalign._validation import check_positive_int
from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="length of the test audio in seconds (default 600)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per library after one warm-up; the median is kept")
    parser.add_argument("--sr", type=int, default=FEATURE_SR,
                        help=f"sample rate (default {FEATURE_SR})")
    parser.add_argument("--threads", type=int, default=None,
                        help="vqalign threads (default min(2, cores))")
    parser.add_argument("--no-peers", action="store_true",
                        help="only librosa (skip python_speech_features and kaldi-native-fbank)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _fallback_signal(seconds: float, sr: int) -> np.ndarray:
    """Deterministic harmonics with a moving pitch, noise bursts and pauses."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 16))
    gate = np.sin(2 * np.pi * 1.3 * t) > -0.2
    noise = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 0.9 * t + 1.0) > 0.6)
    return (0.2 * voiced * gate + 0.05 * noise).astype(np.float32)


def build_audio(seconds: float, sr: int) -> tuple[np.ndarray, str]:
    """Test audio of ``seconds`` and a description of where it came from.

    Synthesized speech (vqalign.datasets.synth) when available: up to 60 s is
    synthesized and tiled to the requested length (synthesis runs at ~12x real
    time, so 600 s would take longer than the benchmark itself).
    """
    n = int(round(seconds * sr))
    try:
        from vqalign.datasets.synth import synthesize_corpus
        utts = synthesize_corpus(seconds=min(seconds, 60.0), seed=0, sr=sr)
        base = np.concatenate([np.asarray(u.audio, dtype=np.float32) for u in utts])
        if base.size == 0 or not np.any(base):
            raise ValueError("synthesizer returned no audio")
        source = (f"synthesized speech (vqalign.datasets.synth, {len(utts)} utterances, "
                  f"{base.size / sr:.1f} s" + (", tiled)" if base.size < n else ")"))
    except Exception as exc:  # synthesizer missing or broken: say so, use the fallback
        base = _fallback_signal(min(seconds, 60.0), sr)
        source = f"fallback harmonics+noise signal (synthesizer unavailable: {exc})"
    reps = -(-n // base.size)
    y = np.tile(base, reps)[:n] if reps > 1 else base[:n]
    return np.ascontiguousarray(y, dtype=np.float32), source


def _time(fn, repeat: int) -> tuple[float, object]:
    out = fn()                      # warm-up (JIT compilation, caches, FFT plans)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run_bench(seconds=600.0, repeat=5, sr=FEATURE_SR, threads=None, peers=True) -> dict:
    """Run the benchmark; returns the result dict printed by the CLI."""
    from vqalign.features import mfcc

    if not seconds > 0:
        raise ParameterError(f"--seconds must be > 0, got {seconds}")
    repeat = check_positive_int(repeat, "--repeat")
    y, source = build_audio(seconds, sr)
    win, hop, n_fft, n_mels, n_mfcc = int(0.025 * sr), int(0.010 * sr), 512, 40, 13
    if n_fft < win:
        n_fft = 1 << (win - 1).bit_length()
    res: dict = {"seconds_audio": y.size / sr, "sr": sr, "audio": source, "repeat": repeat,
                 "settings": dict(n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, win_length=win,
                                  hop_length=hop)}

    vq_s, ours = _time(lambda: mfcc(y, sr, n_mfcc=n_mfcc, n_mels=n_mels, win_length=win,
                                    hop_length=hop, n_fft=n_fft, n_threads=threads), repeat)
    res["vqalign_s"] = vq_s

    import librosa
    lib_s, ref = _time(lambda: librosa.feature.mfcc(
        y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop, win_length=win, n_mels=n_mels,
        center=True, pad_mode="constant"), repeat)
    ref = ref.T
    res["librosa_s"] = lib_s
    res["ratio_vs_librosa"] = lib_s / vq_s
    # threads: vqalign's own pool and librosa's BLAS, then both held to one thread
    from threadpoolctl import threadpool_info, threadpool_limits  # noqa: PLC0415

    from vqalign.features.mfcc import default_threads  # noqa: PLC0415
    res["vqalign_threads"] = int(default_threads(threads))
    res["librosa_threads"] = max([i.get("num_threads", 1) for i in threadpool_info()] or [1])
    vq1, _ = _time(lambda: mfcc(y, sr, n_mfcc=n_mfcc, n_mels=n_mels, win_length=win,
                                hop_length=hop, n_fft=n_fft, n_threads=1), repeat)
    with threadpool_limits(1):
        lib1, _ = _time(lambda: librosa.feature.mfcc(
            y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop, win_length=win,
            n_mels=n_mels, center=True, pad_mode="constant"), repeat)
    res["vqalign_1thread_s"] = vq1
    res["librosa_1thread_s"] = lib1
    res["ratio_vs_librosa_1thread"] = lib1 / vq1
    res["max_abs_diff_vs_librosa"] = float(np.abs(ours - ref).max())
    res["librosa_coef_range"] = float(ref.max() - ref.min())
    res["max_abs_diff_rel_range"] = res["max_abs_diff_vs_librosa"] / res["librosa_coef_range"]

    vk_s, ours_k = _time(lambda: mfcc(y, sr, convention="kaldi", win_length=win, hop_length=hop,
                                      n_fft=n_fft, n_threads=threads), repeat)
    res["vqalign_kaldi_s"] = vk_s

    if peers:
        try:
            import kaldi_native_fbank as knf

            def run_knf():
                o = knf.MfccOptions()
                o.frame_opts.dither = 0.0
                o.frame_opts.samp_freq = sr
                m = knf.OnlineMfcc(o)
                m.accept_waveform(sr, y * np.float32(32768.0))
                m.input_finished()
                return np.array([m.get_frame(i) for i in range(m.num_frames_ready)],
                                dtype=np.float32)

            knf_s, ref_k = _time(run_knf, repeat)
            res["kaldi_native_fbank_s"] = knf_s
            res["ratio_kaldi_vs_kaldi_native_fbank"] = knf_s / vk_s
            res["max_abs_diff_kaldi_vs_kaldi_native_fbank"] = float(np.abs(ours_k - ref_k).max())
        except ImportError:
            res["kaldi_native_fbank_s"] = None
        try:
            import python_speech_features as psf
            psf_s, _ = _time(lambda: psf.mfcc(y, sr, winlen=win / sr, winstep=hop / sr,
                                              numcep=n_mfcc, nfilt=26, nfft=n_fft), repeat)
            res["python_speech_features_s"] = psf_s
            res["ratio_vs_python_speech_features"] = psf_s / vq_s
        except ImportError:
            res["python_speech_features_s"] = None
    return res


def run(args) -> int:
    res = run_bench(args.seconds, args.repeat, args.sr, args.threads, peers=not args.no_peers)
    if args.json:
        print(json.dumps(res))
        return 0
    dur = res["seconds_audio"]
    w = sys.stdout.write
    w(f"MFCC on {dur:.0f} s of {res['audio']} at {res['sr']} Hz; median of {res['repeat']} "
      "runs after a warm-up\n")
    rows = [("vqalign (librosa convention)", res["vqalign_s"], None),
            ("librosa.feature.mfcc", res["librosa_s"], res["librosa_s"] / res["vqalign_s"]),
            ("vqalign (kaldi convention)", res["vqalign_kaldi_s"], None)]
    if res.get("kaldi_native_fbank_s"):
        rows.append(("kaldi-native-fbank", res["kaldi_native_fbank_s"],
                     res["ratio_kaldi_vs_kaldi_native_fbank"]))
    if res.get("python_speech_features_s"):
        rows.append(("python_speech_features", res["python_speech_features_s"],
                     res["ratio_vs_python_speech_features"]))
    for name, s, ratio in rows:
        extra = f"   vqalign is {ratio:.2f}x faster" if ratio else ""
        w(f"  {name:30s} {s:8.3f} s  {dur / s:8.0f}x real time{extra}\n")
    w(f"threads: vqalign {res['vqalign_threads']}, librosa's BLAS {res['librosa_threads']}; "
      f"one thread each: vqalign {res['vqalign_1thread_s']:.3f} s, librosa "
      f"{res['librosa_1thread_s']:.3f} s, ratio {res['ratio_vs_librosa_1thread']:.2f}\n")
    w(f"ratio_vs_librosa = {res['ratio_vs_librosa']:.2f}; max |vqalign - librosa| = "
      f"{res['max_abs_diff_vs_librosa']:.2e} ({res['max_abs_diff_rel_range']:.1e} of the "
      f"coefficient range {res['librosa_coef_range']:.1f})\n")
    if "max_abs_diff_kaldi_vs_kaldi_native_fbank" in res:
        w(f"max |vqalign kaldi - kaldi-native-fbank| = "
          f"{res['max_abs_diff_kaldi_vs_kaldi_native_fbank']:.2e}\n")
    return 0
