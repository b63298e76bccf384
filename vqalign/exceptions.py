"""Exceptions and warnings raised by vqalign.

Every error a user can cause is a :class:`ParameterError` (also a ``ValueError``)
whose message names the offending value and how to fix it.
"""


class VQAlignError(Exception):
    """Base class of every error raised by vqalign."""


class ParameterError(VQAlignError, ValueError):
    """A value given by the user is invalid (shape, dtype, range, file content)."""


class FormatError(ParameterError):
    """A file that cannot be read as any alignment format, or holds bad intervals."""


class AlignmentError(VQAlignError):
    """An alignment could not be computed (e.g. more HMM states than frames)."""


class ConvergenceWarning(UserWarning):
    """A learning loop stopped before converging, or its objective went the wrong way."""


class StoreWriteError(VQAlignError):
    """Writing the feature store failed (disk full, permissions): the message names the
    path."""


class RunWriteError(VQAlignError):
    """An output of a corpus run could not be written (disk full, permissions); names the
    path."""


class OOVWarning(UserWarning):
    """Words missing from the lexicon were pronounced by letter-to-sound rules."""


class CodecWarning(UserWarning):
    """The audio given to the codec is doubtful (clipped, very short)."""
