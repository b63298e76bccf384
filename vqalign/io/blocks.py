"""Reading a long audio file block by block: the same samples as
:func:`vqalign.io.audio.load_audio`, never the whole signal in memory.

A three-hour recording at 16 kHz holds 173 M samples (690 MB as float32); the
long-recording front end (:mod:`vqalign.features.blockwise`) reads it several times in
blocks instead::

    info = audio_info(path)                   # frames, rate, channels; errors as load_audio
    for y in audio_blocks(path, 1 << 20):     # float32 mono blocks at 16 kHz
        ...

Mono downmix and the silent-channel rule are those of ``load_audio``; a file at another
rate is resampled by soxr's streaming resampler (same "HQ" filter as ``load_audio``'s
one-shot call; the samples agree to float32 rounding, not bit for bit).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqalign.features.constants import FEATURE_SR
from vqalign.io.audio import SILENT_CHANNEL, check_audio_path, no_samples, unreadable_audio


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: ``frames`` per channel, ``sr`` (Hz), ``channels``."""

    path: str
    frames: int
    sr: int
    channels: int

    @property
    def duration(self) -> float:
        """Length (s)."""
        return self.frames / self.sr


def audio_info(path) -> AudioInfo:
    """The header of an audio file, with :func:`vqalign.io.audio.load_audio`'s errors
    for a missing, unreadable or empty file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    AudioInfo
    """
    import soundfile as sf  # noqa: PLC0415

    p = Path(path)
    check_audio_path(p)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile's errors differ by version
        raise unreadable_audio(p, exc) from None
    if info.frames <= 0:
        raise no_samples(p)
    return AudioInfo(str(p), int(info.frames), int(info.samplerate), int(info.channels))


def _kept_channels(path, info: AudioInfo, block: int):
    """Channels of the mono downmix (load_audio's rule: a channel more than 40 dB below
    the loudest is left out, with a warning): bool (channels,) or None for all."""
    import soundfile as sf  # noqa: PLC0415
    if info.channels == 1:
        return None
    ss = np.zeros(info.channels)
    for data in sf.blocks(info.path, blocksize=block, dtype="float32", always_2d=True):
        ss += np.einsum("ij,ij->j", data, data, dtype=np.float64)
    rms = np.sqrt(ss / info.frames)
    keep = rms >= SILENT_CHANNEL * rms.max()
    if keep.all():
        return None
    quiet = ", ".join(str(int(c)) for c in np.flatnonzero(~keep))
    warnings.warn(f"audio file {str(path)!r}: channel(s) {quiet} of {info.channels} are "
                  f"silent (more than {-20 * np.log10(SILENT_CHANNEL):.0f} dB below the "
                  "loudest); only the other channel(s) are used", UserWarning, stacklevel=3)
    return keep


class BlockReader:
    """A long file as a source of float32 mono blocks at ``sr``, readable many times.

    Parameters
    ----------
    path : str or Path
    sr : int
        Rate of the blocks (resampled with soxr when the file's differs).
    block : int
        Samples per block read from the file.
    """

    def __init__(self, path, sr: int = FEATURE_SR, block: int = 1 << 20):
        self.info = audio_info(path)
        self.sr = int(sr)
        self.block = int(block)
        self._keep = _kept_channels(path, self.info, self.block)

    @property
    def n_samples(self) -> int:
        """Samples of the blocks at ``sr`` (soxr's output length)."""
        if self.info.sr == self.sr:
            return self.info.frames
        return int(round(self.info.frames * self.sr / self.info.sr))

    def __iter__(self):
        """Float32 mono blocks (n,) at ``sr``, in order, covering the file."""
        import soundfile as sf  # noqa: PLC0415
        rs = None
        if self.info.sr != self.sr:
            import soxr  # noqa: PLC0415
            rs = soxr.ResampleStream(self.info.sr, self.sr, 1, dtype="float32",
                                     quality="HQ")
        it = sf.blocks(self.info.path, blocksize=self.block, dtype="float32",
                       always_2d=True)
        for data in it:
            if data.shape[1] == 1:
                y = data[:, 0]
            else:
                d = data if self._keep is None else data[:, self._keep]
                y = d.mean(axis=1, dtype=np.float32) if d.shape[1] > 1 else d[:, 0]
            y = np.ascontiguousarray(y, dtype=np.float32)
            if rs is not None:
                y = rs.resample_chunk(y, last=False)
            if y.size:
                yield y
        if rs is not None:
            tail = rs.resample_chunk(np.zeros(0, np.float32), last=True)
            if tail.size:
                yield np.ascontiguousarray(tail, dtype=np.float32)


def audio_blocks(path, block: int = 1 << 20, sr: int = FEATURE_SR):
    """Float32 mono blocks of the audio file ``path`` at ``sr`` (see :class:`BlockReader`).

    Parameters
    ----------
    path : str or Path
    block : int
        Samples per block read.
    sr : int

    Returns
    -------
    iterator of ndarray, shape (n,), float32
    """
    return iter(BlockReader(path, sr, block))


__all__ = ["AudioInfo", "BlockReader", "audio_blocks", "audio_info"]
