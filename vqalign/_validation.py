"""Input checks shared by every stage.

Each check returns a cleaned value (dtype, contiguity) or raises
:class:`~vqalign.exceptions.ParameterError` with a message that names the
value, what was wrong with it and what to do instead.
"""

from __future__ import annotations

import numbers

import numpy as np

from vqalign.exceptions import ParameterError

MIN_SAMPLE_RATE = 8000


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def check_sample_rate(sr, *, name: str = "sr") -> int:
    """A sample rate as a positive int of at least 8 kHz."""
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not np.isfinite(sr):
        raise ParameterError(f"{name} must be a number of samples per second, got {_describe(sr)}")
    if sr != int(sr):
        raise ParameterError(f"{name}={sr} is not a whole number of samples per second")
    sr = int(sr)
    if sr < MIN_SAMPLE_RATE:
        raise ParameterError(
            f"{name}={sr} Hz is below the {MIN_SAMPLE_RATE} Hz minimum for speech features; "
            "resample the audio (vqalign.io.load_audio(path, sr=16000)) or pass the true rate"
        )
    return sr


def check_audio(y, sr=None, *, min_samples: int = 1, allow_silent: bool = False,
                name: str = "audio") -> np.ndarray:
    """Validate a mono waveform and return it as contiguous float32.

    Floating-point input is taken as is (nominal range [-1, 1]). Integer PCM is
    refused: convert it with ``y / np.iinfo(y.dtype).max`` (or load the file with
    :func:`vqalign.io.load_audio`, which does it for you).
    """
    if not isinstance(y, np.ndarray):
        if isinstance(y, (list, tuple)):
            y = np.asarray(y)
        else:
            raise ParameterError(f"{name} must be a numpy array of samples, got {_describe(y)}")
    if y.dtype.kind in "iu":
        info = np.iinfo(y.dtype)
        raise ParameterError(
            f"{name} has integer dtype {y.dtype}; pass floating-point samples in [-1, 1], "
            f"e.g. y.astype(np.float32) / {info.max}, or load the file with vqalign.io.load_audio"
        )
    if y.dtype.kind == "b" or y.dtype.kind not in "f":
        raise ParameterError(f"{name} must hold floating-point samples, got dtype {y.dtype}")
    if y.ndim != 1:
        hint = ("downmix to mono first (y.mean(axis=0) for (channels, samples) or "
                "y.mean(axis=1) for (samples, channels)), or load with vqalign.io.load_audio"
                if y.ndim == 2 else "pass a 1-D array of samples")
        raise ParameterError(f"{name} must be mono (1-D), got {y.ndim}-D shape {y.shape}; {hint}")
    if y.size == 0:
        raise ParameterError(f"{name} is empty (0 samples); check the file or the slice you passed")
    if sr is not None:
        sr = check_sample_rate(sr)
    if y.size < min_samples:
        dur = f" ({1000.0 * y.size / sr:.1f} ms at {sr} Hz)" if sr else ""
        raise ParameterError(
            f"{name} has {y.size} samples{dur}, shorter than one analysis window of "
            f"{min_samples} samples; pad it or use a shorter window"
        )
    # two reductions with no temporary: min/max propagate NaN and show Inf and silence
    lo, hi = y.min(), y.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        finite = np.isfinite(y)
        bad = int(y.size - np.count_nonzero(finite))
        first = int(np.argmin(finite))
        raise ParameterError(
            f"{name} contains {bad} NaN or Inf samples (first at index {first}); "
            "replace them (np.nan_to_num) or check the decoder that produced the audio"
        )
    if not allow_silent and lo == 0 and hi == 0:
        raise ParameterError(
            f"{name} is silent (all {y.size} samples are zero); nothing can be measured in it"
        )
    return np.ascontiguousarray(y, dtype=np.float32)


def check_features(X, *, name: str = "X", n_features: int | None = None,
                   min_rows: int = 1, dtype=np.float32, copy: bool = False,
                   allow_memmap: bool = True) -> np.ndarray:
    """Validate a ``(n_frames, n_features)`` float matrix.

    Integer or boolean input is refused (features are measurements, not labels).
    Memory-mapped input is returned as is (not copied) when ``allow_memmap`` and
    the dtype already matches; it is then not scanned for NaN here (callers that
    stream over it check each block with :func:`check_finite_block`).
    """
    if not isinstance(X, np.ndarray):
        if isinstance(X, (list, tuple)):
            X = np.asarray(X)
        elif hasattr(X, "__array__") and hasattr(X, "shape"):
            X = np.asarray(X)
        else:
            raise ParameterError(f"{name} must be a 2-D numpy array (n_frames, n_features), "
                                 f"got {_describe(X)}")
    if X.dtype.kind not in "f":
        raise ParameterError(
            f"{name} has dtype {X.dtype}; features must be floating point "
            f"(convert with {name}.astype(np.float32))"
        )
    if X.ndim != 2:
        hint = f" (reshape with {name}.reshape(-1, 1) for one feature)" if X.ndim == 1 else ""
        raise ParameterError(f"{name} must be 2-D (n_frames, n_features), got shape {X.shape}{hint}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ParameterError(f"{name} is empty (shape {X.shape})")
    if X.shape[0] < min_rows:
        raise ParameterError(f"{name} has {X.shape[0]} rows but at least {min_rows} are needed")
    if n_features is not None and X.shape[1] != n_features:
        raise ParameterError(
            f"{name} has {X.shape[1]} features per row but {n_features} were expected; "
            "use features computed with the same settings as the model"
        )
    if isinstance(X, np.memmap) and allow_memmap and X.dtype == dtype:
        return X
    check_finite_block(X, name=name)
    out = np.asarray(X, dtype=dtype, order="C")
    if copy and out is X:
        out = out.copy()
    return out


def check_finite_block(X, *, name: str = "X", offset: int = 0) -> None:
    """Raise if a block of rows holds NaN or Inf, naming the first bad row."""
    finite = np.isfinite(X)
    if not finite.all():
        rows = np.flatnonzero(~finite.reshape(X.shape[0], -1).all(axis=1))
        raise ParameterError(
            f"{name} has {rows.size} rows with NaN or Inf values (first at row {rows[0] + offset}); "
            "drop or repair those rows (e.g. X[np.isfinite(X).all(axis=1)])"
        )


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """An int >= minimum (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise ParameterError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_probability(value, name: str, *, low_open: bool = False, high_open: bool = False) -> float:
    """A float in [0, 1] (ends optionally open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ParameterError(f"{name} must be a probability in [0, 1], got {_describe(value)}")
    v = float(value)
    if v < 0 or v > 1 or (low_open and v == 0) or (high_open and v == 1):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ParameterError(f"{name}={v} is outside {lo}0, 1{hi}")
    return v


def check_random_state(seed) -> np.random.Generator:
    """A numpy Generator from None, an int seed, or a Generator."""
    if seed is None or isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    raise ParameterError(f"random_state/seed must be None, an int or a numpy Generator, "
                         f"got {_describe(seed)}")


def check_lengths(n_frames: int, n_states: int, *, hop_s: float | None = None,
                  what: str = "transcript") -> None:
    """Refuse a model with more (non-skippable) HMM states than frames.

    The message gives both numbers and, with ``hop_s``, what they mean in seconds.
    """
    if n_states > n_frames:
        if hop_s:
            need = n_states * hop_s
            have = n_frames * hop_s
            extra = (f" ({have:.2f} s at {1000 * hop_s:g} ms hop; the {what} needs at least "
                     f"{need:.2f} s, one frame per state)")
        else:
            extra = ""
        raise ParameterError(
            f"{what} has {n_states} HMM states but the audio has only {n_frames} frames{extra}; "
            f"shorten the {what}, use fewer states per unit, or check that the audio and "
            f"{what} belong together"
        )


def check_hop(hop, *, sr=None) -> float:
    """A frame hop in seconds within [0.002, 0.05] (and a whole number of samples at
    ``sr`` when given), as a float."""
    if not isinstance(hop, (int, float)) or isinstance(hop, bool) or not 0.002 <= hop <= 0.05:
        raise ParameterError(f"hop_length={hop!r} s is outside [0.002, 0.05]; use 0.010 "
                             "(10 ms) or 0.005 (5 ms)")
    if sr is not None and round(hop * sr) != hop * sr:
        raise ParameterError(f"hop_length={hop} s is not a whole number of samples at "
                             f"{sr} Hz; use e.g. 0.010 or 0.005")
    return float(hop)
