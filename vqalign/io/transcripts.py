"""Transcript files: read as UTF-8 text (tokenizing is :mod:`vqalign.align.text`'s job)."""

from __future__ import annotations

from pathlib import Path

from vqalign.exceptions import ParameterError


def read_transcript(path) -> str:
    """Read a transcript file (``.txt``/``.lab``) as UTF-8 (a byte-order mark is allowed).

    Raises
    ------
    ParameterError
        If the file does not exist, or is not valid UTF-8 (the message names the byte
        offset and says how to re-encode the file).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ParameterError(f"transcript file {path} does not exist") from None
    except IsADirectoryError:
        raise ParameterError(f"transcript path {path} is a directory, not a file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 4]
        raise ParameterError(
            f"transcript file {path} is not valid UTF-8: byte 0x{data[exc.start]:02x} at byte "
            f"offset {exc.start} ({bad!r}...) cannot be decoded; re-encode the file as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.txt"
        ) from None
    return text.strip()
