"""Reading audio files: soundfile (WAV, FLAC, OGG, ...), mono downmix, soxr resampling."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from vqalign._validation import check_sample_rate
from vqalign.exceptions import ParameterError
from vqalign.features.constants import FEATURE_SR

#: a channel whose RMS is below this share of the loudest channel's is left out of the
#: mono downmix (-40 dB)
SILENT_CHANNEL = 0.01


def check_audio_path(p: Path) -> None:
    """A ParameterError for a path that is missing or a folder (the audio readers' first
    check)."""
    if not p.exists():
        raise ParameterError(f"audio file {str(p)!r} does not exist; check the path "
                             "(relative paths are taken from the current directory)")
    if p.is_dir():
        raise ParameterError(f"{str(p)!r} is a directory, not an audio file; pass one file "
                             "(for a corpus use `vqalign features DIR OUT`)")


def unreadable_audio(p: Path, exc: Exception) -> ParameterError:
    """The error for a file libsndfile could not read (its own message's last line)."""
    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return ParameterError(
        f"cannot read audio file {str(p)!r}: {reason}; it may be truncated, corrupt or in "
        "a format libsndfile does not support (convert it to WAV or FLAC, e.g. with "
        "`ffmpeg -i IN -ar 16000 -ac 1 OUT.wav`)")


def no_samples(p: Path) -> ParameterError:
    """The error for an audio file of 0 frames."""
    return ParameterError(f"audio file {str(p)!r} holds no samples (0 frames); "
                          "re-export or remove it")


def load_audio(path, sr=FEATURE_SR, *, mono=True):
    """Read an audio file as float32 samples in [-1, 1].

    Parameters
    ----------
    path : str or Path
        Any format libsndfile reads (WAV, FLAC, OGG/Vorbis, ...).
    sr : int or None
        Target sample rate; the audio is resampled with soxr ("HQ" quality) when
        the file's rate differs. ``None`` keeps the file's own rate.
    mono : bool
        Average the channels (default); a channel more than 40 dB quieter than the
        loudest is left out of the average, with a warning naming it. With
        ``mono=False`` the result is (n_channels, n_samples), also for a one-channel
        file.

    Returns
    -------
    (y, sr) : (ndarray float32, int)
        ``y`` is (n_samples,) when ``mono``; ``sr`` the rate of ``y`` (the file's
        own rate when ``sr=None``).

    Raises
    ------
    ParameterError
        The file is missing, is not audio libsndfile can decode, or holds no samples.
    """
    import soundfile as sf

    p = Path(path)
    if sr is not None:
        sr = check_sample_rate(sr)
    check_audio_path(p)
    try:
        data, native_sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's errors differ by version (LibsndfileError, RuntimeError)
        raise unreadable_audio(p, exc) from None
    if data.shape[0] == 0:
        raise no_samples(p)
    if mono and data.shape[1] > 1:
        # a channel far quieter than the loudest (a dead microphone, a mono signal on
        # one side of a stereo file) would only add its noise and halve the level
        rms = np.sqrt(np.mean(np.square(data, dtype=np.float64), axis=0))
        keep = rms >= SILENT_CHANNEL * rms.max()
        if not keep.all():
            quiet = ", ".join(str(int(c)) for c in np.flatnonzero(~keep))
            warnings.warn(f"audio file {str(p)!r}: channel(s) {quiet} of {data.shape[1]} are "
                          f"silent (more than {-20 * np.log10(SILENT_CHANNEL):.0f} dB below the "
                          "loudest); only the other channel(s) are used", UserWarning,
                          stacklevel=2)
            data = data[:, keep]
    y = data.mean(axis=1, dtype=np.float32) if mono else np.ascontiguousarray(data.T)
    if mono and data.shape[1] == 1:
        y = data[:, 0]
    if sr is not None and sr != native_sr:
        import soxr

        if y.ndim == 1:
            y = soxr.resample(y, native_sr, sr, quality="HQ")
        else:
            y = np.ascontiguousarray(soxr.resample(y.T, native_sr, sr, quality="HQ").T)
        out_sr = sr
    else:
        out_sr = int(native_sr)
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.shape[-1] == 0:
        raise ParameterError(f"audio file {str(p)!r} is too short to resample to {sr} Hz")
    return y, out_sr


__all__ = ["load_audio"]
