"""A classical VQ speech codec: WORLD parameters coded with vqalign's codebooks.

``Codec(bitrate=2400).fit(corpus)``, ``encode(y, sr) -> tokens`` (n_tokens,
n_streams) int32, ``decode(tokens) -> y``, ``save`` / ``load``;
``nominal_bps_`` and ``entropy_bps(tokens)``. See ``docs/codec.md``.
"""

from vqalign.codec.codec import Codec, CodecWarning, entropy_bits
from vqalign.codec.design import Design, design, reachable

__all__ = ["Codec", "CodecWarning", "Design", "design", "reachable", "entropy_bits"]
