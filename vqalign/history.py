"""One history format for every loop that learns (LBG, Lloyd, EM).

A :class:`History` is a table with one row per step. Codebook training fills
``loss`` (MSE), ``entropy`` (nats), ``log_k``, ``perplexity``, ``utilization``
and ``dead_reseeded``; EM fills ``log_likelihood`` (per frame) and ``loss``
(its negative). Columns a loop does not fill are NaN, so plots and animations
read every history the same way::

    h = model.history_
    h["loss"]            # numpy array over steps
    h[-1]                # dict of the last step
    h.to_dict()          # JSON-ready {column: list}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np

FIELDS = (
    "step",            # 0, 1, 2, ... over the whole run
    "level",           # LBG doubling level (0 for one-level methods), EM stage
    "n_codes",         # current number of codes / Gaussians
    "samples_seen",    # cumulative training samples (frames) seen
    "loss",            # MSE for codebooks, -log-likelihood per frame for EM
    "entropy",         # code-usage entropy in nats
    "log_k",           # log(n_codes): the entropy's upper bound
    "perplexity",      # exp(entropy)
    "utilization",     # fraction of codes used at least once in the step's window
    "dead_reseeded",   # codes re-seeded during this step
    "log_likelihood",  # mean log-likelihood per frame (EM)
    "seconds",         # wall time since the start of the run
)


class History:
    """Per-step records of a learning loop; columns are :data:`FIELDS` plus any extras."""

    def __init__(self, name: str = "", records: Iterable[dict] | None = None):
        self.name = name
        self._columns: list[str] = list(FIELDS)
        self._rows: list[dict] = []
        for r in records or ():
            self.append(**r)

    def append(self, **values) -> dict:
        """Add one step; unknown keys become new columns (earlier rows get NaN)."""
        for key in values:
            if key not in self._columns:
                self._columns.append(key)
        row = {k: values.get(k, math.nan) for k in self._columns}
        if math.isnan(_as_float(row.get("step", math.nan))):
            row["step"] = len(self._rows)
        self._rows.append(row)
        return row

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self):
        for r in self._rows:
            yield {k: r.get(k, math.nan) for k in self._columns}

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self._columns:
                raise KeyError(f"history has no column {key!r}; columns: {', '.join(self._columns)}")
            vals = [r.get(key, math.nan) for r in self._rows]
            try:
                return np.asarray(vals, dtype=float)
            except (TypeError, ValueError):
                return np.asarray(vals, dtype=object)
        row = self._rows[key]
        return {k: row.get(k, math.nan) for k in self._columns}

    @property
    def last(self) -> dict | None:
        return self[-1] if self._rows else None

    def to_dict(self) -> dict:
        """``{"name": ..., "columns": {column: [values...]}}`` with NaN as None."""
        cols = {}
        for k in self._columns:
            cols[k] = [_json_value(r.get(k, math.nan)) for r in self._rows]
        return {"name": self.name, "columns": cols}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        cols = d.get("columns", {})
        n = max((len(v) for v in cols.values()), default=0)
        h = cls(name=d.get("name", ""))
        for i in range(n):
            h.append(**{k: (math.nan if v[i] is None else v[i]) for k, v in cols.items()})
        return h

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        last = self.last
        tail = ""
        if last:
            shown = {k: v for k, v in last.items() if not _is_nan(v)}
            tail = ", last=" + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
        return f"History({self.name!r}, {len(self)} steps{tail})"


def code_usage_stats(counts: np.ndarray) -> dict:
    """Entropy (nats), log K, perplexity and utilization of a code-usage count vector."""
    counts = np.asarray(counts, dtype=np.float64)
    k = counts.size
    total = counts.sum()
    if total <= 0:
        return {"entropy": 0.0, "log_k": math.log(k) if k else 0.0, "perplexity": 1.0,
                "utilization": 0.0}
    p = counts[counts > 0] / total
    ent = float(-(p * np.log(p)).sum())
    return {"entropy": ent, "log_k": math.log(k), "perplexity": math.exp(ent),
            "utilization": float(np.count_nonzero(counts) / k)}


def _as_float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _json_value(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.integer):
        return int(v)
    return v


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
