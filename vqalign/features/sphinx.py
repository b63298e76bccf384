"""The CMU Sphinx front end (pocketsphinx's ``fe`` and ``feat`` modules) in numpy.

Cepstra (:func:`mfcc_sphinx`, also ``vqalign.features.mfcc(y, convention="sphinx")``):

1. samples scaled to int16 range (x 32768), pre-emphasis ``y[n] - alpha y[n-1]``
   (``-alpha``, 0.97) over the whole signal;
2. frames of ``-wlen`` seconds (0.025625: 410 samples at 16 kHz) every ``1 / -frate``
   seconds (160 samples), the last, partial frame zero-padded (pocketsphinx's
   ``fe_end_utt``), a symmetric Hamming window, an FFT of ``-nfft`` points (default the
   next power of two);
3. power spectrum times triangular mel filters (mel = 2595 log10(1 + f/700), ``-nfilt``
   filters between ``-lowerf`` and ``-upperf`` whose edges are rounded to FFT bins
   (``-round_filters``), each of unit area (``-unit_area``));
4. ``-remove_noise``: noise estimation and spectral subtraction on the mel energies
   (``fe_noise.c``);
5. ``log(energy + 1e-4)``, then ``-transform``: ``dct`` (orthonormal DCT-II), ``legacy``
   (Sphinx's original ``fe_spec2cep``) or ``htk``; ``-lifter L``: ``c_i *= 1 + L/2
   sin(pi i / L)``.

Features (:func:`sphinx_features`): ``-cmn batch`` (subtract the utterance mean of every
cepstrum) or ``none``, then ``-feat 1s_c_d_dd``: ``[c_t, c_{t+2} - c_{t-2},
(c_{t+3} - c_{t-1}) - (c_{t+1} - c_{t-3})]`` with the first and last frames repeated at
the edges. Options this module does not implement (``-feat`` other than ``1s_c_d_dd``,
``-lda``, ``-agc`` other than none, ``-varnorm yes``, ``-cmn live``, ``-dither yes``,
frequency warping, ``-logspec``/``-smoothspec``, ``-doublebw``) raise
:class:`~vqalign.exceptions.ParameterError`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from vqalign._validation import check_audio, check_sample_rate
from vqalign.exceptions import ParameterError
from vqalign.features import _kernels as K
from vqalign.features.constants import FEATURE_SR

__all__ = ["SphinxFrontEnd", "front_end_from_params", "mfcc_sphinx", "sphinx_features",
           "cmn_batch", "deltas_1s_c_d_dd", "sphinx_filterbank", "n_frames_sphinx",
           "read_feat_params"]

#: what a Sphinx model directory holds (named when one of its files is missing)
MODEL_FILES = ("mdef, means, variances, transition_matrices, sendump (or mixture_weights), "
               "feat.params and noisedict")


def read_feat_params(path) -> dict:
    """A Sphinx model's ``feat.params`` file (its front-end options).

    Here, below :mod:`vqalign.io.sphinx` (which re-exports it), so that the front end
    reads its own options without importing ``io``.

    Parameters
    ----------
    path : str or Path
        The ``feat.params`` file: one ``-option value`` per line, ``#`` comments.

    Returns
    -------
    dict of str to str
        ``{"lowerf": "130", ...}`` (option names without the dash).

    Raises
    ------
    ParameterError
        A missing file, or a line that is not ``-option value``.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"Sphinx model file {path} does not exist; a Sphinx model "
                             f"directory needs {MODEL_FILES}")
    text = path.read_bytes().decode("utf-8", errors="replace")
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if len(f) != 2 or not f[0].startswith("-"):
            raise ParameterError(f"Sphinx model file {path}: line {lineno} {line.strip()!r} "
                                 "is not '-option value'")
        out[f[0][1:]] = f[1]
    return out

LOG_FLOOR = 1e-4


def _bool(v, name, source):
    s = str(v).lower()
    if s in ("yes", "true", "1", "on"):
        return True
    if s in ("no", "false", "0", "off"):
        return False
    raise ParameterError(f"{source}: -{name} {v!r} is not yes/no")


@dataclass(frozen=True)
class SphinxFrontEnd:
    """Sphinx front-end settings (pocketsphinx 5 defaults; names as in ``feat.params``)."""

    samprate: float = 16000.0
    frate: int = 100
    wlen: float = 0.025625
    nfft: int = 0
    alpha: float = 0.97
    nfilt: int = 40
    ncep: int = 13
    lowerf: float = 133.33334
    upperf: float = 6855.4976
    transform: str = "legacy"
    lifter: int = 0
    remove_noise: bool = False
    remove_dc: bool = False
    round_filters: bool = True
    unit_area: bool = True
    feat: str = "1s_c_d_dd"
    cmn: str = "batch"
    varnorm: bool = False
    agc: str = "none"
    svspec: str | None = None

    @property
    def frame_shift(self) -> int:
        return int(self.samprate / self.frate + 0.5)

    @property
    def frame_size(self) -> int:
        return int(self.wlen * self.samprate + 0.5)

    @property
    def boundary_offset_s(self) -> float:
        """Seconds from ``t / frate`` to the time between frames ``t - 1`` and ``t``.

        Frame ``t`` covers samples ``[t * shift, t * shift + size)``, so its centre lies
        ``size / 2`` samples after its start, and the midpoint of the centres of frames
        ``t - 1`` and ``t`` (where a change of state between them is best placed) lies
        ``(size - shift) / 2`` samples after ``t * shift``: 7.8 ms with the default 410-sample
        window and 160-sample shift. pocketsphinx reports a segment starting at frame ``t``
        at ``t / frate`` (the start of the frame's window), that much early."""
        return 0.5 * (self.frame_size - self.frame_shift) / self.samprate

    @property
    def fft_size(self) -> int:
        if self.nfft:
            return int(self.nfft)
        n = 1
        while n < self.frame_size:
            n *= 2
        return n

    @property
    def streams(self) -> list[tuple[int, int]]:
        """``[(first, last + 1), ...]`` of each feature stream (``-svspec``)."""
        dim = 3 * self.ncep
        if not self.svspec:
            return [(0, dim)]
        out = []
        for part in self.svspec.split("/"):
            idx = []
            for rng in part.split(","):
                a, _, b = rng.partition("-")
                idx.extend(range(int(a), int(b or a) + 1))
            if idx != list(range(idx[0], idx[-1] + 1)):
                raise ParameterError(f"-svspec {self.svspec!r}: only contiguous streams are "
                                     "implemented")
            out.append((idx[0], idx[-1] + 1))
        return out


# options accepted only with their default (unimplemented otherwise): name -> allowed values
_FIXED = {"dither": ("no", "false"), "warp_type": ("inverse_linear",), "warp_params": (),
          "logspec": ("no", "false"), "smoothspec": ("no", "false"),
          "doublebw": ("no", "false"), "lda": (), "ldadim": ("0",), "input_endian": None,
          "model": None, "ceplen": None, "agcthresh": None, "cmninit": None}


def front_end_from_params(params=None, *, source: str = "feat.params") -> SphinxFrontEnd:
    """A :class:`SphinxFrontEnd` from a ``feat.params`` dict (or file path, or None).

    Raises ParameterError naming the option for anything not implemented here.
    """
    if params is None:
        return SphinxFrontEnd()
    if isinstance(params, SphinxFrontEnd):
        return params
    if not isinstance(params, dict):
        source = str(params)
        params = read_feat_params(Path(params))
    known = {f.name: f for f in fields(SphinxFrontEnd)}
    kw = {}
    for name, value in params.items():
        if name in _FIXED:
            allowed = _FIXED[name]
            if allowed is None:
                continue
            if str(value).lower() not in allowed:
                raise ParameterError(f"{source} asks for -{name} {value}, which vqalign's "
                                     "Sphinx front end does not implement; use a model "
                                     "trained without it")
            continue
        if name not in known:
            raise ParameterError(f"{source} has the option -{name} {value}, which vqalign's "
                                 "Sphinx front end does not know; remove it or use another "
                                 "model")
        typ = known[name].type
        try:
            if typ in ("bool",):
                kw[name] = _bool(value, name, source)
            elif typ in ("int",):
                kw[name] = int(value)
            elif typ in ("float",):
                kw[name] = float(value)
            else:
                kw[name] = str(value)
        except ValueError:
            raise ParameterError(f"{source}: -{name} {value!r} is not a valid value") from None
    fe = SphinxFrontEnd(**kw)
    checks = [
        (fe.transform in ("dct", "legacy", "htk"), f"-transform {fe.transform}"),
        (fe.feat == "1s_c_d_dd", f"-feat {fe.feat}"),
        (fe.cmn in ("batch", "none"), f"-cmn {fe.cmn}"),
        (not fe.varnorm, "-varnorm yes"),
        (fe.agc == "none", f"-agc {fe.agc}"),
    ]
    for ok, what in checks:
        if not ok:
            raise ParameterError(f"{source} asks for {what}, which vqalign's Sphinx front end "
                                 "does not implement (implemented: -transform dct/legacy/htk, "
                                 "-feat 1s_c_d_dd, -cmn batch/none, -agc none, -varnorm no)")
    if not 0 < fe.lowerf < fe.upperf <= fe.samprate / 2:
        raise ParameterError(f"{source}: -lowerf {fe.lowerf} / -upperf {fe.upperf} must satisfy "
                             f"0 < lowerf < upperf <= samprate/2 = {fe.samprate / 2:g}")
    if fe.ncep > fe.nfilt or fe.ncep < 1:
        raise ParameterError(f"{source}: -ncep {fe.ncep} must be between 1 and -nfilt "
                             f"{fe.nfilt}")
    if fe.fft_size < fe.frame_size or fe.fft_size & (fe.fft_size - 1):
        raise ParameterError(f"{source}: -nfft {fe.nfft} must be a power of two >= the "
                             f"{fe.frame_size}-sample window")
    return fe


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _melinv(m):
    return 700.0 * (np.power(10.0, np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def sphinx_filterbank(samprate: float, nfft: int, nfilt: int, lowerf: float, upperf: float,
                      round_filters: bool = True, unit_area: bool = True) -> np.ndarray:
    """Sphinx's mel filters as a dense ``(nfilt, nfft // 2 + 1)`` float64 matrix.

    Follows ``fe_build_melfilters``: filter edges equally spaced in mel, rounded to the
    nearest FFT bin, triangles ``min(rising, falling)`` scaled by ``2 / (f_hi - f_lo)``
    for unit area.
    """
    n_bins = nfft // 2 + 1
    fftfreq = np.float32(samprate) / np.float32(nfft)
    melmin, melmax = _mel(lowerf), _mel(upperf)
    melbw = (melmax - melmin) / (nfilt + 1)
    W = np.zeros((nfilt, n_bins))
    for i in range(nfilt):
        fr = np.float32(_melinv((i + np.arange(3)) * melbw + melmin))
        if round_filters:
            fr = (np.floor(fr / fftfreq + np.float32(0.5)) * fftfreq).astype(np.float32)
        f0, f1, f2 = (float(v) for v in fr)
        start = -1
        for j in range(n_bins):
            hz = float(np.float32(j) * fftfreq)
            if hz < f0:
                continue
            if hz > f2 or j == nfft // 2:
                break
            if start < 0:
                start = j
            lo = (hz - f0) / (f1 - f0)
            hi = (f2 - hz) / (f2 - f1)
            if unit_area:
                lo *= 2.0 / (f2 - f0)
                hi *= 2.0 / (f2 - f0)
            W[i, j] = min(lo, hi)
    W.flags.writeable = False
    return W


@functools.lru_cache(maxsize=16)
def _dct(kind: str, ncep: int, nfilt: int) -> np.ndarray:
    i = np.arange(ncep)[:, None]
    j = np.arange(nfilt)[None, :]
    cos = np.cos(np.pi / nfilt * i * (j + 0.5))
    if kind == "legacy":
        beta = np.where(j == 0, 0.5, 1.0)
        C = cos * beta / nfilt
    else:
        C = cos * math.sqrt(2.0 / nfilt)
        C[0] = math.sqrt((2.0 if kind == "htk" else 1.0) / nfilt)
    return C


@functools.lru_cache(maxsize=16)
def _hamming(n: int) -> np.ndarray:
    w = np.empty(n)
    half = n // 2
    i = np.arange(half)
    w[:half] = 0.54 - 0.46 * np.cos(2 * np.pi * i / (n - 1.0))
    w[n - half:] = w[:half][::-1]
    if n % 2:
        w[half] = 1.0   # pocketsphinx leaves the middle sample of an odd window unscaled
    return w


def n_frames_sphinx(n_samples: int, fe: SphinxFrontEnd | None = None) -> int:
    """Frames pocketsphinx makes from ``n_samples``: full frames plus one partial frame of
    the samples left over (``fe_end_utt``)."""
    fe = fe or SphinxFrontEnd()
    size, shift = fe.frame_size, fe.frame_shift
    if n_samples < size:
        return 1 if n_samples > 0 else 0
    return -(-(n_samples - (size - shift)) // shift)


def mfcc_sphinx(y, sr=FEATURE_SR, *, params=None, n_threads=None) -> np.ndarray:
    """Sphinx cepstra (before CMN) of a mono waveform in [-1, 1]: (n_frames, ncep) float32.

    ``params``: a ``feat.params`` dict, path or :class:`SphinxFrontEnd` (default:
    pocketsphinx's defaults). ``sr`` must equal ``-samprate``.
    """
    fe = front_end_from_params(params)
    sr = check_sample_rate(sr)
    if abs(sr - fe.samprate) > 1e-6:
        raise ParameterError(f"the audio is at {sr} Hz but the Sphinx front end expects "
                             f"-samprate {fe.samprate:g}; resample it "
                             f"(vqalign.io.load_audio(path, sr={int(fe.samprate)}))")
    y = check_audio(y, sr, min_samples=1)
    x = y.astype(np.float64) * 32768.0
    pre = np.empty_like(x)
    pre[0] = x[0]
    pre[1:] = x[1:] - fe.alpha * x[:-1] if fe.alpha else x[1:]
    size, shift, nfft = fe.frame_size, fe.frame_shift, fe.fft_size
    T = n_frames_sphinx(x.size, fe)
    need = (T - 1) * shift + size
    padded = np.zeros(max(need, x.size))
    padded[:x.size] = pre
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::shift][:T].copy()
    if fe.remove_dc:
        frames -= frames.mean(axis=1, keepdims=True)
    frames *= _hamming(size)
    spec = np.fft.rfft(frames, n=nfft, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    W = sphinx_filterbank(fe.samprate, nfft, fe.nfilt, fe.lowerf, fe.upperf,
                          fe.round_filters, fe.unit_area)
    mel = np.ascontiguousarray(power @ W.T)
    if fe.remove_noise:
        scratch = [np.empty(fe.nfilt) for _ in range(6)]
        K.sphinx_remove_noise(mel, *scratch)
    logmel = np.log(mel + LOG_FLOOR)
    cep = logmel @ _dct(fe.transform, fe.ncep, fe.nfilt).T
    if fe.lifter:
        L = float(fe.lifter)
        cep *= 1.0 + L / 2.0 * np.sin(np.arange(fe.ncep) * np.pi / L)
    return cep.astype(np.float32)


def cmn_batch(cep) -> np.ndarray:
    """Subtract the mean of every coefficient over the utterance (``-cmn batch``)."""
    c = np.asarray(cep, dtype=np.float32)
    return (c - c.mean(axis=0, dtype=np.float64).astype(np.float32)).astype(np.float32)


def deltas_1s_c_d_dd(cep) -> np.ndarray:
    """``-feat 1s_c_d_dd``: (T, 3 * ncep) float32 ``[c, d, dd]``, edges repeated."""
    c = np.asarray(cep, dtype=np.float32)
    T = c.shape[0]
    pad = np.concatenate([np.repeat(c[:1], 3, axis=0), c, np.repeat(c[-1:], 3, axis=0)])
    s = 3

    def at(k):
        return pad[s + k:s + k + T]

    d = at(2) - at(-2)
    dd = (at(3) - at(-1)) - (at(1) - at(-3))
    return np.ascontiguousarray(np.concatenate([c, d, dd], axis=1), dtype=np.float32)


def sphinx_features(y, sr=FEATURE_SR, *, params=None) -> np.ndarray:
    """The full Sphinx front end: cepstra, CMN, 1s_c_d_dd: (n_frames, 3 * ncep) float32."""
    fe = front_end_from_params(params)
    cep = mfcc_sphinx(y, sr, params=fe)
    if fe.cmn == "batch":
        cep = cmn_batch(cep)
    return deltas_1s_c_d_dd(cep)


_MFCC_DEFAULTS = {"n_mfcc": 13, "n_mels": None, "win_length": 0.025, "hop_length": 0.010,
                  "n_fft": None, "fmin": None, "fmax": None, "center": None, "top_db": 80.0,
                  "lifter": None, "use_energy": True, "preemphasis": 0.97, "remove_dc": True,
                  "waveform_scale": None}
_SPHINX_NAME = {"n_mfcc": "ncep", "n_mels": "nfilt", "win_length": "wlen", "hop_length": "frate",
                "n_fft": "nfft", "fmin": "lowerf", "fmax": "upperf", "lifter": "lifter",
                "preemphasis": "alpha", "remove_dc": "remove_dc"}


def mfcc_sphinx_checked(y, sr, params, kwargs: dict) -> np.ndarray:
    """``mfcc(..., convention="sphinx")``: refuse librosa/kaldi keywords, then :func:`mfcc_sphinx`."""
    for name, default in _MFCC_DEFAULTS.items():
        v = kwargs.get(name, default)
        if v is not default and v != default:
            alt = _SPHINX_NAME.get(name)
            hint = (f"give the Sphinx option {alt!r} in params (e.g. params={{'{alt}': ...}})"
                    if alt else "it has no Sphinx equivalent")
            raise ParameterError(f"convention='sphinx' takes its settings from params "
                                 f"(feat.params), not {name}={v!r}; {hint}")
    return mfcc_sphinx(y, sr, params=params, n_threads=kwargs.get("n_threads"))
