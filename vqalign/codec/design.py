"""Bitrate bookkeeping: how a requested bit rate becomes streams of codes.

A token is one *superframe* of ``frames_per_token`` analysis frames
(default 4 x 10 ms, 25 tokens per second). Its bits are spent on three kinds
of stream, each an integer code per token:

- ``voicing``: the voiced/unvoiced pattern of the superframe's frames
  (``frames_per_token`` bits, raw);
- ``f0``: a vector-quantized log-F0 contour over the superframe's frames;
- ``env_k``: the stages of a residual VQ of the stacked mel-cepstra (at most
  ``max_stage_bits`` bits per stage; the last stage takes the remainder).

Nominal bit rate = bits per token x tokens per second; a rate is reachable
when it is a whole number of bits per token and leaves at least one envelope
stage of ``MIN_ENV_BITS`` bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vqalign.exceptions import ParameterError

#: smallest envelope budget (bits per token) the design accepts
MIN_ENV_BITS = 6
#: largest bit rate the design offers (bits per second)
MAX_BPS = 12800


@dataclass(frozen=True)
class Design:
    """The streams of one codec configuration.

    Attributes
    ----------
    bitrate : int, nominal bits per second
    frame_ms : float, analysis frame step
    frames_per_token : int
    voicing_bits, f0_bits : int
    env_bits : tuple of int, bits of each envelope stage
    """

    bitrate: int
    frame_ms: float
    frames_per_token: int
    voicing_bits: int
    f0_bits: int
    env_bits: tuple

    @property
    def token_rate(self) -> float:
        """Tokens per second."""
        return 1000.0 / (self.frame_ms * self.frames_per_token)

    @property
    def stream_bits(self) -> list[int]:
        return [self.voicing_bits, self.f0_bits, *self.env_bits]

    @property
    def stream_sizes(self) -> list[int]:
        """Codes per stream (2 ** bits)."""
        return [1 << b for b in self.stream_bits]

    @property
    def stream_names(self) -> list[str]:
        return ["voicing", "f0"] + [f"env_{k}" for k in range(len(self.env_bits))]

    @property
    def bits_per_token(self) -> int:
        return sum(self.stream_bits)

    @property
    def nominal_bps(self) -> float:
        return self.bits_per_token * self.token_rate


def f0_bits_for(bits_per_token: int) -> int:
    """Bits of the F0 contour VQ: 6 up to 64 bits per token, then 7."""
    return 6 if bits_per_token <= 64 else 7


def _split_env(env: int, max_stage_bits: int) -> tuple:
    n = math.ceil(env / max_stage_bits)
    base, extra = divmod(env, n)
    return tuple(base + (1 if k < extra else 0) for k in range(n))


def _budget(bitrate, frame_ms, frames_per_token):
    per_token = bitrate * frame_ms * frames_per_token / 1000.0
    return per_token


def reachable(frame_ms: float = 10.0, frames_per_token: int = 4) -> tuple[int, int, float]:
    """(lowest, highest, step) of the reachable bit rates in bits per second."""
    rate = 1000.0 / (frame_ms * frames_per_token)
    fixed = frames_per_token + f0_bits_for(0)
    lo = (fixed + MIN_ENV_BITS) * rate
    return int(math.ceil(lo)), MAX_BPS, rate


def design(bitrate, *, frame_ms: float = 10.0, frames_per_token: int = 4,
           max_stage_bits: int = 8, f0_bits: int | None = None) -> Design:
    """The streams that spend exactly ``bitrate`` bits per second.

    Raises
    ------
    ParameterError
        When the rate is not a whole number of bits per token or is out of range;
        the message names the nearest reachable rates.
    """
    try:
        b = float(bitrate)
    except (TypeError, ValueError):
        raise ParameterError(f"bitrate must be a number of bits per second, got {bitrate!r}") from None
    lo, hi, step = reachable(frame_ms, frames_per_token)
    per_token = _budget(b, frame_ms, frames_per_token)
    if not math.isfinite(b) or b < lo or b > hi or abs(per_token - round(per_token)) > 1e-9:
        below = max(lo, min(hi, math.floor(b / step) * step)) if math.isfinite(b) else lo
        above = max(lo, min(hi, math.ceil(b / step) * step)) if math.isfinite(b) else hi
        near = sorted({_fmt(below), _fmt(above)})
        raise ParameterError(
            f"bitrate {bitrate} bit/s cannot be reached with {frames_per_token} frames of "
            f"{frame_ms:g} ms per token (rates are multiples of {step:g} bit/s from {lo} to "
            f"{hi}); the nearest reachable rates are {' and '.join(near)} bit/s")
    per_token = int(round(per_token))
    fb = f0_bits_for(per_token) if f0_bits is None else int(f0_bits)
    env = per_token - frames_per_token - fb
    if fb < 1 or env < MIN_ENV_BITS:
        raise ParameterError(f"f0_bits={fb} leaves {env} bits per token for the envelope at "
                             f"{bitrate} bit/s; at least {MIN_ENV_BITS} are needed")
    return Design(bitrate=int(round(b)), frame_ms=float(frame_ms),
                  frames_per_token=int(frames_per_token), voicing_bits=int(frames_per_token),
                  f0_bits=fb, env_bits=_split_env(env, int(max_stage_bits)))


def _fmt(x: float) -> str:
    return f"{x:g}"
