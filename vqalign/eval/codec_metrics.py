"""Decoded speech against the original: PESQ-WB, STOI, mel-cepstral distortion, F0, DNSMOS.

PESQ (ITU-T P.862.2 wideband) comes from the ``pesq`` package, STOI from
``pystoi``, DNSMOS from ``speechmos`` (Microsoft's ONNX models, needs
``onnxruntime``). Mel-cepstral distortion and the F0 figures are computed here:

- ``mcd_db``: ``10 / ln 10 * sqrt(2 * sum_{d=1}^{D} (c_d - c'_d) ** 2)`` averaged
  over the reference's non-silent frames, with ``c`` the cosine expansion
  (``log|H| = c_0 + 2 sum c_d cos(d w)``, a DCT-II) of the natural-log 80-band mel
  amplitude spectrum (25 ms Hann window, 10 ms hop), c0 left
  out. Other papers use SPTK mel-cepstra; values are comparable within a run.
- ``f0_metrics``: F0 by WORLD's Harvest on both signals (a different tracker from
  the codec's DIO, so the codec is not scored by its own analysis), RMSE in Hz and
  in cents over frames voiced in both, and the voicing error (share of frames whose
  voiced/unvoiced decision differs).

All functions take the reference first and expect equal sample rates; signals of
unequal length are cut to the shorter.
"""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_audio, check_sample_rate
from vqalign.exceptions import ParameterError


def _pair(ref, deg, sr):
    sr = check_sample_rate(sr)
    ref = check_audio(ref, sr, name="reference")
    deg = check_audio(deg, sr, name="decoded audio", allow_silent=True)
    n = min(ref.size, deg.size)
    return ref[:n], deg[:n], sr


def _to16k(y, sr):
    if sr == 16000:
        return y
    import soxr

    return soxr.resample(y, sr, 16000, quality="HQ").astype(np.float32)


def pesq_wb(ref, deg, sr: int = 16000) -> float:
    """PESQ wideband MOS-LQO (P.862.2) of ``deg`` against ``ref`` (resampled to 16 kHz)."""
    from pesq import pesq

    ref, deg, sr = _pair(ref, deg, sr)
    return float(pesq(16000, _to16k(ref, sr), _to16k(deg, sr), "wb"))


def stoi(ref, deg, sr: int = 16000, *, extended: bool = False) -> float:
    """Short-time objective intelligibility (pystoi) of ``deg`` against ``ref``."""
    from pystoi import stoi as _stoi

    ref, deg, sr = _pair(ref, deg, sr)
    return float(_stoi(ref.astype(np.float64), deg.astype(np.float64), sr, extended=extended))


def mel_cepstrum(y, sr: int, *, n_mels: int = 80, n_ceps: int = 25):
    """(n_frames, n_ceps) float64 DCT-II of the log mel power spectrum, and the frames'
    log energies (n_frames,)."""
    import librosa
    from scipy.fft import dct

    n_fft = int(round(0.025 * sr))
    hop = int(round(0.010 * sr))
    S = librosa.feature.melspectrogram(y=np.asarray(y, np.float32), sr=sr, n_fft=n_fft,
                                       hop_length=hop, win_length=n_fft, n_mels=n_mels,
                                       power=2.0, center=True)
    log_amp = 0.5 * np.log(np.maximum(S, 1e-10)).T
    # c_d of log|H(w)| = c_0 + 2 sum_d c_d cos(d w), sampled at the mel bands' centres
    c = dct(log_amp, type=2, norm=None, axis=1)[:, :n_ceps] / (2.0 * n_mels)
    return c, np.log(S.sum(axis=0) + 1e-10)


def mcd_db(ref, deg, sr: int = 16000, *, n_ceps: int = 25, floor_db: float = 40.0) -> float:
    """Mel-cepstral distortion (dB) over the reference's frames within ``floor_db`` of its
    loudest (c1..c{n_ceps-1}; see the module docstring)."""
    ref, deg, sr = _pair(ref, deg, sr)
    a, e = mel_cepstrum(ref, sr, n_ceps=n_ceps)
    b, _ = mel_cepstrum(deg, sr, n_ceps=n_ceps)
    keep = e > e.max() - floor_db * np.log(10) / 10
    d = a[keep, 1:] - b[keep, 1:]
    return float(np.mean(10.0 / np.log(10) * np.sqrt(2.0 * (d * d).sum(axis=1))))


def f0_track(y, sr: int) -> np.ndarray:
    """F0 (n_frames,) float64 Hz every 10 ms by WORLD's Harvest, 0 where unvoiced."""
    import pyworld

    f0, _ = pyworld.harvest(np.asarray(y, np.float64), sr, f0_floor=60.0, f0_ceil=600.0,
                            frame_period=10.0)
    return f0


def f0_metrics(ref, deg, sr: int = 16000, *, ref_f0=None) -> dict:
    """F0 RMSE (Hz and cents, frames voiced in both) and voicing error (share of frames).

    ``ref_f0`` may pass a precomputed :func:`f0_track` of the reference.
    """
    ref, deg, sr = _pair(ref, deg, sr)
    fa = f0_track(ref, sr) if ref_f0 is None else np.asarray(ref_f0)
    fb = f0_track(deg, sr)
    n = min(fa.size, fb.size)
    fa, fb = fa[:n], fb[:n]
    va, vb = fa > 0, fb > 0
    both = va & vb
    if both.any():
        rmse = float(np.sqrt(np.mean((fa[both] - fb[both]) ** 2)))
        cents = float(np.sqrt(np.mean((1200 * np.log2(fb[both] / fa[both])) ** 2)))
    else:
        rmse = cents = float("nan")
    return {"f0_rmse_hz": rmse, "f0_rmse_cents": cents,
            "voicing_error": float(np.mean(va != vb)) if n else float("nan")}


def dnsmos(y, sr: int = 16000) -> dict:
    """DNSMOS P.835 (``speechmos``): ``ovrl``, ``sig``, ``bak`` and ``p808`` MOS.

    Raises ParameterError when speechmos or onnxruntime is missing.
    """
    try:
        from speechmos import dnsmos as _dns
    except ImportError as exc:
        raise ParameterError("DNSMOS needs speechmos and onnxruntime: "
                             "`pip install speechmos onnxruntime`") from exc
    sr = check_sample_rate(sr)
    y = _to16k(check_audio(y, sr, name="audio", allow_silent=True), sr)
    peak = float(np.abs(y).max())
    if peak > 1.0:
        y = y / peak
    r = _dns.run(y.astype(np.float32), sr=16000)
    return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]),
            "bak": float(r["bak_mos"]), "p808": float(r["p808_mos"])}


def align_delay(ref, deg, *, max_lag: int) -> np.ndarray:
    """``deg`` shifted by the lag (|lag| <= max_lag samples) that maximizes its
    cross-correlation with ``ref``, same length as ``ref`` (zero padded)."""
    ref = np.asarray(ref, np.float64)
    deg = np.asarray(deg, np.float64)
    if max_lag < 0:
        raise ParameterError(f"max_lag={max_lag} must be >= 0")
    from scipy.signal import correlate

    n = ref.size
    d = np.pad(deg, (0, max(0, n - deg.size)))[: n + max_lag]
    c = correlate(d, ref, mode="full", method="fft")
    lags = np.arange(-n + 1, d.size)
    ok = np.abs(lags) <= max_lag
    lag = int(lags[ok][np.argmax(c[ok])])
    out = np.zeros(n)
    if lag >= 0:
        seg = d[lag:lag + n]
        out[:seg.size] = seg
    else:
        seg = d[: n + lag]
        out[-lag:-lag + seg.size] = seg
    return out.astype(np.float32)


def envelope_lag(ref, deg, *, max_lag: int, smooth: int = 64) -> int:
    """Lag (samples, |lag| <= max_lag) maximizing the cross-correlation of the two signals'
    amplitude envelopes (|analytic signal|, moving average of ``smooth`` samples).

    For codecs that synthesize their own phases (Codec2) the waveform cross-correlation
    peak wanders by several ms from file to file; the envelopes' does not.
    """
    from scipy.signal import correlate, hilbert

    k = np.ones(int(smooth)) / float(smooth)
    a = np.convolve(np.abs(hilbert(np.asarray(ref, np.float64))), k, "same")
    b = np.convolve(np.abs(hilbert(np.asarray(deg, np.float64))), k, "same")
    a -= a.mean()
    b -= b.mean()
    b = np.pad(b, (0, max(0, a.size - b.size)))[: a.size + max_lag]
    c = correlate(b, a, mode="full", method="fft")
    lags = np.arange(-a.size + 1, b.size)
    ok = np.abs(lags) <= max_lag
    return int(lags[ok][np.argmax(c[ok])])


def shift(deg, lag: int, n: int) -> np.ndarray:
    """``deg`` advanced by ``lag`` samples (delayed when negative), zero padded to ``n``."""
    d = np.asarray(deg, np.float32)
    out = np.zeros(n, np.float32)
    if lag >= 0:
        seg = d[lag:lag + n]
        out[:seg.size] = seg
    else:
        seg = d[: max(0, n + lag)]
        out[-lag:-lag + seg.size] = seg
    return out


def score(ref, deg, sr: int = 16000, *, ref_f0=None, with_dnsmos: bool = True) -> dict:
    """Every metric of this module for one decoded file, as a flat dict."""
    out = {"pesq_wb": pesq_wb(ref, deg, sr), "stoi": stoi(ref, deg, sr),
           "mcd_db": mcd_db(ref, deg, sr)}
    out.update(f0_metrics(ref, deg, sr, ref_f0=ref_f0))
    if with_dnsmos:
        out.update({f"dnsmos_{k}": v for k, v in dnsmos(deg, sr).items()})
    return out
