"""Praat TextGrid files (long text format) through praatio 6.

Tiers are plain Python: ``{tier name: [(start_s, end_s, label), ...]}``.

* :func:`write_textgrid` fills the gaps of each interval tier with empty
  intervals so every tier covers ``[0, duration]`` (what Praat expects), and
  writes the file atomically (a half-written TextGrid never replaces a good one).
* :func:`read_textgrid` returns the same structure, dropping empty intervals
  unless ``include_empty=True``. Point tiers are returned as ``(t, t, label)``.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from vqalign.exceptions import ParameterError
from vqalign.io.atomic import atomic_write

__all__ = ["read_textgrid", "write_textgrid"]

# praatio's default (1e-8) would silently merge shorter labelled intervals into their
# neighbours; we keep every interval the caller gave and only refuse empty/negative ones.
_MIN_INTERVAL = 0.0


def _clean_tier(name, entries, duration):
    if not isinstance(name, str) or not name:
        raise ParameterError(f"tier names must be non-empty strings, got {name!r}")
    out = []
    prev_end = 0.0
    for i, entry in enumerate(entries):
        try:
            start, end, label = entry
            start = float(start)
            end = float(end)
        except (TypeError, ValueError):
            raise ParameterError(
                f"tier {name!r} entry {i} is {entry!r}; each entry must be (start_s, end_s, label)"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ParameterError(f"tier {name!r} entry {i} has non-finite times ({start}, {end})")
        if start < 0:
            raise ParameterError(f"tier {name!r} entry {i} starts at {start} s, before 0")
        if end <= start:
            raise ParameterError(
                f"tier {name!r} entry {i} ({start}, {end}, {label!r}) has end <= start; "
                "drop zero-length intervals or fix their times"
            )
        if start < prev_end - 1e-9:
            raise ParameterError(
                f"tier {name!r} entry {i} starts at {start} s but the previous one ends at "
                f"{prev_end} s; intervals must be sorted and must not overlap"
            )
        start = max(start, prev_end)  # absorb float noise at shared boundaries
        out.append((start, end, "" if label is None else str(label)))
        prev_end = end
    if duration is not None and prev_end > duration + 1e-9:
        raise ParameterError(
            f"tier {name!r} ends at {prev_end} s, after duration={duration} s; "
            "pass the true duration (or None to use the last end time)"
        )
    return out


def write_textgrid(path, tiers, duration=None, *, overwrite: bool = True) -> Path:
    """Write interval tiers to a Praat TextGrid (long text format), atomically.

    Parameters
    ----------
    path : str or Path
        Output file.
    tiers : dict[str, list[(start_s, end_s, label)]]
        Sorted, non-overlapping intervals per tier (gaps are filled with "").
    duration : float, optional
        End of the TextGrid; defaults to the last end time over all tiers.
    overwrite : bool
        If False and ``path`` exists, raise :class:`ParameterError`.

    Returns the path written.
    """
    from praatio import textgrid as ptg

    if not isinstance(tiers, dict) or not tiers:
        raise ParameterError(
            "tiers must be a non-empty dict {tier name: [(start_s, end_s, label), ...]}, "
            f"got {type(tiers).__name__}"
        )
    if duration is not None:
        duration = float(duration)
        if not math.isfinite(duration) or duration <= 0:
            raise ParameterError(f"duration={duration} must be a positive number of seconds")
    cleaned = {name: _clean_tier(name, entries, duration) for name, entries in tiers.items()}
    if duration is None:
        ends = [t[-1][1] for t in cleaned.values() if t]
        if not ends:
            raise ParameterError("all tiers are empty and no duration was given; "
                                 "pass duration=<seconds>")
        duration = max(ends)
    tg = ptg.Textgrid(0.0, duration)
    for name, entries in cleaned.items():
        # snap an end within float noise of the duration, so praatio sees no overhang
        if entries and entries[-1][1] > duration:
            s, _, lab = entries[-1]
            entries[-1] = (s, duration, lab)
        tg.addTier(ptg.IntervalTier(name, entries, 0.0, duration))
    # praatio's public writer into a scratch file, then our atomic rename over ``path``
    with tempfile.TemporaryDirectory(prefix="vqalign-tg-") as tmp:
        scratch = Path(tmp) / "out.TextGrid"
        tg.save(str(scratch), format="long_textgrid", includeBlankSpaces=True,
                minTimestamp=0.0, maxTimestamp=duration, minimumIntervalLength=_MIN_INTERVAL)
        text = scratch.read_text(encoding="utf-8")
    path = Path(path)
    with atomic_write(path, "w", overwrite=overwrite) as fh:
        fh.write(text)
    return path


def read_textgrid(path, *, include_empty: bool = False) -> dict:
    """Read a TextGrid into ``{tier name: [(start_s, end_s, label), ...]}``.

    Empty-label intervals are dropped unless ``include_empty``; with it, interval
    tiers cover the whole TextGrid without gaps. Raises :class:`ParameterError`
    for a missing or unreadable file.
    """
    from praatio import textgrid as ptg

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"TextGrid {path} does not exist (or is not a file); check the path")
    try:
        tg = ptg.openTextgrid(str(path), includeEmptyIntervals=bool(include_empty),
                              reportingMode="silence")
    except Exception as exc:  # praatio raises many types for bad content
        raise ParameterError(
            f"could not read {path} as a Praat TextGrid ({type(exc).__name__}: {exc}); "
            "check that it is a text (long or short format) TextGrid and not truncated"
        ) from None
    out = {}
    for name in tg.tierNames:
        tier = tg.getTier(name)
        if isinstance(tier, ptg.IntervalTier):
            out[name] = [(float(s), float(e), str(lab)) for s, e, lab in tier.entries]
        else:
            out[name] = [(float(t), float(t), str(lab)) for t, lab in tier.entries]
    return out
