"""Mel-frequency cepstral coefficients in two conventions (librosa and Kaldi).

The pipeline runs over blocks of a few hundred frames so that every block stays
in a core's cache: a numba kernel cuts and windows the frames, numpy's pocketfft
(``numpy.fft``, float32 since numpy 2; scipy.fft's import alone cost 0.16 s of a
one-file alignment's 0.97 s start-up) takes their real FFTs, one fused kernel squares them and sums the power straight
into the mel bands using only each band's nonzero span of the filterbank (SIMD
across the frames of the block) with the floor, and numpy's vectorized ``np.log``
takes the log; the cepstra are then one small matrix product. Blocks are shared
among threads (all kernels release the GIL); BLAS is held to one thread for the
whole call (see :func:`vqalign._threads.one_blas_thread`).
"""

from __future__ import annotations

import functools
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from vqalign._threads import one_blas_thread
from vqalign._validation import check_audio, check_positive_int, check_sample_rate
from vqalign.exceptions import ParameterError
from vqalign.features import _kernels as K
from vqalign.features.constants import FEATURE_SR

CONVENTIONS = ("librosa", "kaldi", "sphinx")
_BLOCK = 256          # frames per block (256 x 512 float32 = 512 KiB: one L2)
_AMIN = np.float32(1e-10)
_FLT_EPS = np.float32(np.finfo(np.float32).eps)

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


# --------------------------------------------------------------------------- helpers

def _samples(value, sr: int, name: str) -> int:
    """A length given in seconds (float) or samples (int) as a number of samples."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ParameterError(f"{name} must be seconds (float, e.g. 0.025) or samples (int), "
                             f"got {value!r}")
    if isinstance(value, (numbers.Integral, np.integer)):
        n = int(value)
    else:
        n = int(round(float(value) * sr))
    if n < 1:
        raise ParameterError(f"{name}={value!r} is less than one sample at {sr} Hz; "
                             "give seconds as a float (0.025) or samples as an int (400)")
    return n


def _next_pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def _hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=32)
def slaney_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-style mel filterbank, area-normalized: (n_mels, 1 + n_fft // 2) float32.

    The same triangles as ``librosa.filters.mel(htk=False, norm="slaney")``.
    """
    fftfreqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_pts = np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2)
    mel_f = _mel_to_hz_slaney(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    out = weights.astype(np.float32)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=32)
def kaldi_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Kaldi's mel banks (mel = 1127 ln(1 + f / 700), triangles in mel): (n_mels, 1 + n_fft // 2).

    As in Kaldi, the Nyquist bin gets no weight.
    """
    n_bins = n_fft // 2
    bin_width = sr / n_fft

    def mel(f):
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    mlo, mhi = mel(fmin), mel(fmax)
    delta = (mhi - mlo) / (n_mels + 1)
    m_bins = mel(bin_width * np.arange(n_bins))
    left = mlo + delta * np.arange(n_mels)[:, None]
    center = left + delta
    right = center + delta
    up = (m_bins[None, :] - left) / (center - left)
    down = (right - m_bins[None, :]) / (right - center)
    w = np.where(m_bins[None, :] <= center, up, down)
    w = np.where((m_bins[None, :] > left) & (m_bins[None, :] < right), w, 0.0)
    out = np.zeros((n_mels, n_bins + 1), dtype=np.float32)
    out[:, :n_bins] = w
    out.flags.writeable = False
    return out


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows: (n_out, n_in) float32, ``C @ x == scipy.fft.dct(x, norm="ortho")[:n_out]``."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    c = np.cos(np.pi * k * (2 * n + 1) / (2.0 * n_in)) * np.sqrt(2.0 / n_in)
    c[0] *= np.sqrt(0.5)
    return c.astype(np.float32)


class _SparseBank(NamedTuple):
    """A mel filterbank as one nonzero span per band (for ``_kernels.mel_power``)."""

    n_mels: int
    bin_lo: int             # first bin any band touches
    bin_hi: int             # one past the last
    band_lo: np.ndarray     # (n_mels,) int64: first bin of band m
    band_off: np.ndarray    # (n_mels + 1,) int64: band m's weights are weights[off[m]:off[m+1]]
    weights: np.ndarray     # (sum of spans,) float32


def sparse_filterbank(fbank: np.ndarray) -> _SparseBank:
    """The (n_mels, n_bins) filterbank as per-band spans from first to last nonzero bin.

    Zeros inside a span are kept, so ``sum_k W[m, k] p[k]`` is the same sum of
    the same products as with the dense matrix.
    """
    W = np.asarray(fbank, dtype=np.float32)
    n_mels = W.shape[0]
    band_lo = np.zeros(n_mels, dtype=np.int64)
    band_off = np.zeros(n_mels + 1, dtype=np.int64)
    parts = []
    for m in range(n_mels):          # once per filterbank (cached), not per frame
        nz = np.flatnonzero(W[m])
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        band_lo[m] = lo
        band_off[m + 1] = band_off[m] + (hi - lo)
        parts.append(W[m, lo:hi])
    spans = band_off[1:] - band_off[:-1]
    used = spans > 0
    bin_lo = int(band_lo[used].min()) if used.any() else 0
    bin_hi = int((band_lo + spans)[used].max()) if used.any() else 0
    weights = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0),
                                   dtype=np.float32)
    for a in (band_lo, band_off, weights):
        a.flags.writeable = False
    return _SparseBank(n_mels, bin_lo, bin_hi, band_lo, band_off, weights)


@functools.lru_cache(maxsize=32)
def _filterbank_sparse(kind: str, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float):
    make = slaney_filterbank if kind == "slaney" else kaldi_filterbank
    return sparse_filterbank(make(sr, n_fft, n_mels, float(fmin), float(fmax)))


@functools.lru_cache(maxsize=32)
def _window(kind: str, length: int) -> np.ndarray:
    i = np.arange(length, dtype=np.float64)
    if kind == "hann":      # periodic Hann (scipy.signal.get_window("hann", L, fftbins=True))
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * i / length)
    else:                   # Kaldi's "povey": Hann (symmetric) to the power 0.85
        a = 2.0 * np.pi / (length - 1) if length > 1 else 0.0
        w = np.power(0.5 - 0.5 * np.cos(a * i), 0.85)
    out = w.astype(np.float32)
    out.flags.writeable = False
    return out


_pool_pid = 0


def _get_pool(n: int) -> ThreadPoolExecutor:
    """A shared thread pool; a new one after fork (the parent's threads do not exist there)."""
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_size < n or _pool_pid != os.getpid():
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="vqalign-mfcc")
            _pool_size = n
            _pool_pid = os.getpid()
        return _pool


def _run_blocks(n_frames: int, n_fft: int, frame_fn, bank: _SparseBank, floor, n_threads):
    """Frames -> rFFT -> power -> mel -> natural log, over blocks: (n_frames, n_mels) float32."""
    out = np.empty((n_frames, bank.n_mels), dtype=np.float32)
    n_bins = n_fft // 2 + 1
    floor = np.float32(floor)

    def work(lo, hi):
        nb0 = min(_BLOCK, hi - lo)
        buf = np.zeros((nb0, n_fft), dtype=np.float32)
        power_t = np.empty((n_bins, nb0), dtype=np.float32)
        acc = np.empty(nb0, dtype=np.float32)
        for t0 in range(lo, hi, _BLOCK):
            nb = min(_BLOCK, hi - t0)
            view = buf[:nb]
            frame_fn(t0, view)
            # bins x frames: the fused kernel then runs over frames (contiguous, SIMD)
            spec = np.ascontiguousarray(np.fft.rfft(view.T, axis=0))
            rows = out[t0:t0 + nb]
            K.mel_power(spec.view(np.float32), bank.bin_lo, bank.bin_hi, bank.band_lo,
                        bank.band_off, bank.weights, floor, power_t, acc, rows)
            np.log(rows, out=rows)
        return hi - lo

    n_threads = max(1, min(n_threads, n_frames // _BLOCK))
    if n_threads == 1:
        work(0, n_frames)
        return out
    # contiguous share per thread, cut at block boundaries
    n_blocks = -(-n_frames // _BLOCK)
    edges = [min(n_frames, _BLOCK * ((n_blocks * j) // n_threads)) for j in range(n_threads + 1)]
    pool = _get_pool(n_threads)
    futures = [pool.submit(work, edges[j], edges[j + 1]) for j in range(n_threads)
               if edges[j + 1] > edges[j]]
    for f in futures:
        f.result()
    return out


def default_threads(n_threads: int | None) -> int:
    """Threads an MFCC call uses: ``n_threads``, or by default min(2, cores).

    Parameters
    ----------
    n_threads : int or None
        Requested threads (checked to be a positive int); None for the default.

    Returns
    -------
    int
        The number of worker threads.
    """
    if n_threads is None:
        return min(2, os.cpu_count() or 1)
    return check_positive_int(n_threads, "n_threads")


# --------------------------------------------------------------------------- public

def mfcc(y, sr=FEATURE_SR, *, n_mfcc=13, n_mels=None, win_length=0.025, hop_length=0.010,
         n_fft=None, fmin=None, fmax=None, convention="librosa", center=None, top_db=80.0,
         lifter=None, use_energy=True, preemphasis=0.97, remove_dc=True,
         waveform_scale=None, n_threads=None, params=None) -> np.ndarray:
    """Mel-frequency cepstral coefficients of a mono waveform.

    Parameters
    ----------
    y : ndarray (n_samples,), float
        Mono audio in [-1, 1] (see :func:`vqalign.io.load_audio`).
    sr : int
        Sample rate in Hz (>= 8000).
    n_mfcc : int
        Number of cepstral coefficients kept (at most ``n_mels``).
    n_mels : int or None
        Mel bands; default 40 (librosa convention) or 23 (kaldi convention).
    win_length, hop_length : float seconds or int samples
        A float is seconds (0.025 -> 400 samples at 16 kHz); an int is samples.
    n_fft : int or None
        FFT size in samples; default the next power of two >= the window.
    fmin, fmax : float or None
        Mel band edges in Hz. Defaults: fmin 0 (librosa) or 20 (kaldi), fmax sr / 2.
    convention : "librosa" or "kaldi"
        ``"librosa"``: equal (max abs difference <= 1e-3 of the coefficient range,
        float32 rounding) to ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc, n_fft,
        hop_length, win_length, n_mels, fmin, fmax, center, pad_mode="constant").T``:
        periodic Hann window, power spectrum, Slaney mel filterbank,
        ``power_to_db(ref=1, amin=1e-10, top_db)`` with the ``top_db`` floor taken
        over the whole utterance, orthonormal DCT-II, optional librosa ``lifter``.

        ``"kaldi"``: Kaldi's ``compute-mfcc-feats`` / kaldi-native-fbank
        ``MfccOptions`` with dither 0: frames with snip_edges, DC offset removed,
        log raw energy, pre-emphasis ``preemphasis`` (0.97), povey window, Kaldi mel
        banks (1127 ln(1 + f/700)), natural log with a FLT_EPSILON floor,
        orthonormal DCT-II, cepstral lifter ``lifter`` (default 22), and with
        ``use_energy`` C0 replaced by the log raw frame energy. Matches
        kaldi-native-fbank (float32 throughout) within 5e-3 * (1 + |value|) per
        coefficient on speech (largest seen on the 200 dev utterances: 2.2e-3,
        in liftered C8; tests/test_features.py); ``top_db`` is ignored.
    center : bool or None
        librosa convention only: pad ``n_fft // 2`` zeros at both ends so frame t
        is centred at ``t * hop`` (default True). The kaldi convention always snips
        edges (``n_frames = 1 + (n - win) // hop``); ``center=True`` is refused there.
    waveform_scale : float or None
        Samples are multiplied by this before analysis. Default 1 (librosa) or
        32768 (kaldi), since Kaldi reads int16 PCM as values in [-32768, 32767]:
        with [-1, 1] input this reproduces Kaldi's numbers on the same file.
    n_threads : int or None
        Threads sharing the blocks of frames (default min(2, cpu count)).
    params : dict, path or SphinxFrontEnd, optional
        ``convention="sphinx"`` only: the Sphinx front end of
        :mod:`vqalign.features.sphinx` with the settings of a ``feat.params`` (default:
        pocketsphinx's defaults); the other keywords must keep their defaults there.

    Returns
    -------
    ndarray (n_frames, n_mfcc) float32
    """
    if convention not in CONVENTIONS:
        raise ParameterError(f"convention={convention!r} is not one of {CONVENTIONS}")
    if convention == "sphinx":  # every setting comes from feat.params: vqalign.features.sphinx
        from vqalign.features.sphinx import mfcc_sphinx_checked
        return mfcc_sphinx_checked(y, sr, params, locals())
    if params is not None:
        raise ParameterError("params= (a Sphinx feat.params) is for convention='sphinx' only")
    kaldi = convention == "kaldi"
    sr = check_sample_rate(sr)
    win = _samples(win_length, sr, "win_length")
    hop = _samples(hop_length, sr, "hop_length")
    if n_fft is None:
        n_fft = _next_pow2(win)
    else:
        n_fft = check_positive_int(n_fft, "n_fft", minimum=2)
        if n_fft < win:
            raise ParameterError(f"n_fft={n_fft} is shorter than the window of {win} samples; "
                                 f"use n_fft >= {win} (e.g. {_next_pow2(win)}) or a shorter window")
    n_mels = (23 if kaldi else 40) if n_mels is None else check_positive_int(n_mels, "n_mels")
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
    if n_mfcc > n_mels:
        raise ParameterError(f"n_mfcc={n_mfcc} exceeds n_mels={n_mels}; a DCT of {n_mels} mel "
                             f"energies has only {n_mels} coefficients: lower n_mfcc or raise n_mels")
    fmin = (20.0 if kaldi else 0.0) if fmin is None else float(fmin)
    nyq = sr / 2.0
    fmax = nyq if fmax is None else float(fmax)
    if not (np.isfinite(fmin) and np.isfinite(fmax)) or fmin < 0 or fmax > nyq or fmin >= fmax:
        raise ParameterError(f"mel band edges fmin={fmin} Hz, fmax={fmax} Hz must satisfy "
                             f"0 <= fmin < fmax <= sr/2 = {nyq:g} Hz")
    if center is None:
        center = not kaldi
    if kaldi and center:
        raise ParameterError("convention='kaldi' always snips edges (frames start at 0, "
                             "like Kaldi's snip_edges=true); pass center=False or leave it None")
    scale = (32768.0 if kaldi else 1.0) if waveform_scale is None else float(waveform_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ParameterError(f"waveform_scale={waveform_scale!r} must be a positive number")
    n_threads = default_threads(n_threads)
    if top_db is not None:
        top_db = float(top_db)
        if not top_db >= 0:
            raise ParameterError(f"top_db={top_db} must be >= 0 (or None for no floor)")

    min_samples = win if (kaldi or center) else n_fft
    y = check_audio(y, sr, min_samples=min_samples)
    n = y.shape[0]

    def compute():
        if kaldi:
            n_frames = 1 + (n - win) // hop
            window = _window("povey", win)
            log_energy = np.empty(n_frames, dtype=np.float32)
            pre = float(preemphasis)
            rdc = bool(remove_dc)

            def frame_fn(t0, view):
                K.frame_kaldi(y, hop, window, scale, pre, rdc, t0, view, log_energy)

            fb = _filterbank_sparse("kaldi", sr, n_fft, n_mels, fmin, fmax)
            logmel = _run_blocks(n_frames, n_fft, frame_fn, fb, _FLT_EPS, n_threads)
            C = dct_matrix(n_mfcc, n_mels)
            out = logmel @ C.T
            L = 22.0 if lifter is None else float(lifter)
            if L != 0.0:
                out *= (1.0 + 0.5 * L * np.sin(np.pi * np.arange(n_mfcc) / L)).astype(np.float32)
            if use_energy:
                out[:, 0] = log_energy
            return out

        # librosa convention
        lpad = (n_fft - win) // 2
        if center:
            n_frames = 1 + (n + 2 * (n_fft // 2) - n_fft) // hop
            start = lpad - n_fft // 2
        else:
            n_frames = 1 + (n - n_fft) // hop
            start = lpad
        window = _window("hann", win)
        if scale != 1.0:
            window = (window * np.float32(scale)).astype(np.float32)

        # The window is written at column 0 rather than at lpad: a circular shift of
        # the frame changes only the phase of its FFT, not the power spectrum.
        def frame_fn(t0, view):
            K.frame_window(y, start, hop, window, t0, view)

        fb = _filterbank_sparse("slaney", sr, n_fft, n_mels, fmin, fmax)
        # natural log of the mel power; dB = 10 / ln(10) * ln, folded into the DCT below
        lnmel = _run_blocks(n_frames, n_fft, frame_fn, fb, _AMIN, n_threads)
        if top_db is not None:
            np.maximum(lnmel, lnmel.max() - np.float32(top_db * np.log(10.0) / 10.0), out=lnmel)
        C = dct_matrix(n_mfcc, n_mels) * np.float32(10.0 / np.log(10.0))
        out = lnmel @ C.T
        L = 0.0 if lifter is None else float(lifter)
        if L > 0:
            out *= (1.0 + (L / 2.0) * np.sin(np.pi * np.arange(1, n_mfcc + 1) / L)).astype(np.float32)
        return out

    with one_blas_thread():
        return compute()


def n_frames(n_samples: int, sr=FEATURE_SR, *, win_length=0.025, hop_length=0.010, n_fft=None,
             convention="librosa", center=None) -> int:
    """How many frames :func:`mfcc` returns for ``n_samples`` samples with these settings."""
    sr = check_sample_rate(sr)
    win = _samples(win_length, sr, "win_length")
    hop = _samples(hop_length, sr, "hop_length")
    n_fft = _next_pow2(win) if n_fft is None else int(n_fft)
    if convention == "kaldi":
        return max(0, 1 + (n_samples - win) // hop)
    if center is None or center:
        return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop
    return max(0, 1 + (n_samples - n_fft) // hop)


__all__ = ["mfcc", "n_frames", "slaney_filterbank", "kaldi_filterbank", "dct_matrix"]
