"""A long recording given as a file: prepared block by block, never loaded whole.

``vqalign align FILE TEXT`` on a recording of ``STREAM_MIN_S`` or more does not read the
file into memory: :func:`prepare_file` checks it, refuses it when it would not fit the
memory budget (:func:`vqalign.align.windows.memory_check`), and makes its features with
the blockwise front end (:func:`vqalign.features.blockwise.long_front_end`), which gives
the same features, VAD and warnings as :func:`vqalign.align.utterance.prepare` on the
loaded samples. With a work folder (an unfitted Aligner), the front end's result is kept
there under the digest of the file's bytes, the transcript's units and the settings, so a
resumed run neither reads the samples again nor recomputes the features.
"""

from __future__ import annotations

from dataclasses import dataclass

from vqalign.align import utterance as U
from vqalign.align.longform import WINDOWS_MIN_S
from vqalign.align.windows import file_digest, memory_check

#: files from this length (s) on are read block by block: the length from which an
#: unfitted Aligner takes the windows schedule, whose stages need only the features and
#: the VAD (shorter long files use the samples: edge silence of the whole-chain recipe)
STREAM_MIN_S = WINDOWS_MIN_S


def file_duration(path) -> float:
    """Length (s) of an audio file from its header (:func:`vqalign.io.blocks.audio_info`,
    with ``load_audio``'s errors for a missing or unreadable file)."""
    from vqalign.io.blocks import audio_info  # noqa: PLC0415
    return audio_info(path).duration


@dataclass(frozen=True)
class LongFile:
    """A long audio file to be prepared block by block (:func:`prepare_file`)."""

    path: str

    def prepare_utterance(self, text, **kwargs) -> U.Utterance:
        """:func:`prepare_file` of this file (the hook of
        :func:`vqalign.align.utterance.prepare`)."""
        return prepare_file(self.path, text, **kwargs)


def open_audio(path, *, blocks: bool = True):
    """``(audio, sr)`` of an audio file for ``Aligner.align``: a :class:`LongFile` and
    16 kHz for a file of ``STREAM_MIN_S`` or more (``blocks``), else its samples
    (:func:`vqalign.align.utterance.load_audio`).

    Parameters
    ----------
    path : str or Path
    blocks : bool
        Long files may be read block by block (False: always loaded whole).

    Returns
    -------
    (ndarray (n_samples,) float32 or LongFile, int)
    """
    from vqalign.features.constants import FEATURE_SR  # noqa: PLC0415
    if blocks and is_long_file(path):
        return LongFile(str(path)), FEATURE_SR
    return U.load_audio(path)


def is_long_file(path) -> bool:
    """Whether the audio file ``path`` lasts ``STREAM_MIN_S`` or more (False when its
    header cannot be read: the whole-file reader then gives the error)."""
    from vqalign.exceptions import ParameterError  # noqa: PLC0415
    try:
        return file_duration(path) >= STREAM_MIN_S
    except ParameterError:
        return False


def prepare_file(path, text, *, unit, hop_s, dither, oov="g2p", name=None, lexicon=None,
                 tokens=None, work_folder=None) -> U.Utterance:
    """A long recording's :class:`~vqalign.align.utterance.Utterance` from its file, read
    block by block.

    Parameters
    ----------
    path : str or Path
        The audio file.
    text : str or None
        The transcript (not read when ``tokens`` is given).
    unit : {"phones", "chars"}
    hop_s : float
        Frame hop (s).
    dither : float
        Dither RMS (:func:`vqalign.features.frontend.features`).
    oov : {"g2p", "error"}
    name : str, optional
        Shown in messages.
    lexicon : Lexicon, optional
    tokens : Tokens, optional
        The transcript already tokenized.
    work_folder : callable, optional
        ``work_folder(y16, units, X=None, source=None) -> WorkFolder``
        (:func:`vqalign.align.windows.work_folder` of the estimator): the front end's
        result is kept there for a resumed run.

    Returns
    -------
    Utterance
        ``y16`` None (the samples stay in the file), ``speech`` the VAD flags,
        ``long_key`` the work folder's key (None without one).
    """
    from vqalign.features.blockwise import long_front_end  # noqa: PLC0415
    from vqalign.features.constants import FEATURE_SR  # noqa: PLC0415
    from vqalign.io.blocks import BlockReader  # noqa: PLC0415

    reader = BlockReader(path, FEATURE_SR)
    memory_check(reader.n_samples / FEATURE_SR)  # before any sample is read
    if tokens is None:
        tokens = U.tokenize(text, unit, lexicon, oov)
    warn = []
    msg = U.oov_warning(tokens)
    if msg is not None:
        warn.append(msg)

    def compute():
        return long_front_end(reader, hop_s, delta_width=1, dither=dither, name=name)

    work = None
    if work_folder is not None:
        work = work_folder(None, tokens.units, source=file_digest(path))
        front = work.cached("front-end", compute)
    else:
        front = compute()
    warn.extend(front.warnings)
    if unit == "phones":
        miss = U.missing_speech_warning(front.speech, sum(map(len, tokens.units)), 0.0)
        if miss is not None:
            warn.append(miss)
    return U.Utterance(front.X, front.c0, tokens, front.duration, FEATURE_SR, name, warn,
                       None, None, long_key=None if work is None else work.key, source=str(path),
                       speech=front.speech)


__all__ = ["STREAM_MIN_S", "LongFile", "file_duration", "is_long_file", "open_audio",
           "prepare_file"]
