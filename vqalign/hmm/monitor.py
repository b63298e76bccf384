"""Convergence monitor for EM loops, recording a :class:`vqalign.history.History`.

Modelled on hmmlearn's ``ConvergenceMonitor``: each iteration reports the total
log-likelihood of the current parameters; the loop stops after ``n_iter``
reports or when the mean log-likelihood per frame improves by less than ``tol``.
A decrease (beyond rounding) raises a :class:`~vqalign.exceptions.ConvergenceWarning`:
exact EM never lowers the likelihood, so a drop means a bug or a floor at work.
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

from vqalign.exceptions import ConvergenceWarning
from vqalign.history import History, code_usage_stats

__all__ = ["ConvergenceMonitor"]


class ConvergenceMonitor:
    """Stop rule and per-step history of an EM loop.

    Parameters
    ----------
    tol : float
        Minimum gain of the mean log-likelihood per frame between two reports.
    relative : bool
        Stop once ``|gain| < tol * max(1, |ll|)`` instead (a drop then stops only when small).
    min_iter : int
        Reports before the tolerance may stop the loop (at least 2).
    drop_tol : float
        A fall larger than this (relative to ``max(1, |ll|)``) warns.
    n_iter : int
        Maximum number of reports.
    verbose : bool
        Print one line per report to stderr.
    name : str
        Name of the history.
    """

    def __init__(self, tol=1e-4, n_iter=10, *, verbose=False, name="EM", relative=False,
                 min_iter=2, drop_tol=1e-9):
        self.relative = bool(relative)
        self.min_iter = max(2, int(min_iter))
        self.drop_tol = float(drop_tol)
        self.tol = float(tol)
        self.n_iter = int(n_iter)
        self.verbose = verbose
        self.history = History(name)
        self.iter = 0
        self._t0 = time.perf_counter()
        self._prev = None
        self._delta = math.nan

    def resume(self, history: History) -> ConvergenceMonitor:
        """Continue from the steps of an earlier run's ``history`` (its name is kept):
        the step count and the last gain are those the earlier monitor had."""
        name = self.history.name
        self.history = History.from_dict(history.to_dict())
        self.history.name = name
        ll = self.history["log_likelihood"]
        self.iter = len(ll)
        self._prev = float(ll[-1]) if len(ll) else None
        self._delta = float(ll[-1] - ll[-2]) if len(ll) > 1 else math.nan
        return self

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def report(self, log_likelihood: float, n_frames: int, *, counts=None, **extra) -> dict:
        """Record the total ``log_likelihood`` over ``n_frames`` frames for this step.

        ``counts`` (optional, per Gaussian/code) adds entropy, perplexity and
        utilization columns; other keywords become columns as they are.
        """
        per_frame = float(log_likelihood) / max(int(n_frames), 1)
        row = dict(step=self.iter, log_likelihood=per_frame, loss=-per_frame,
                   seconds=self.elapsed, **extra)
        if counts is not None:
            row.update(code_usage_stats(np.asarray(counts)))
        self.history.append(**row)
        if self._prev is not None:
            self._delta = per_frame - self._prev
            if self._delta < -self.drop_tol * max(1.0, abs(per_frame)):
                warnings.warn(
                    f"{self.history.name}: log-likelihood per frame went down from "
                    f"{self._prev:.8g} to {per_frame:.8g} at step {self.iter} (floors on "
                    "weights/variances or Gaussian selection can cause small drops)",
                    ConvergenceWarning, stacklevel=3)
        if self.verbose:
            print(f"{self.history.name} step {self.iter}: log-likelihood/frame {per_frame:.6f} "
                  f"(delta {self._delta:+.3g}) {self.elapsed:.2f} s", file=sys.stderr)
        self._prev = per_frame
        self.iter += 1
        return row

    @property
    def reached_tol(self) -> bool:
        """True once the last gain is below ``tol`` (a drop also stops the loop)."""
        if self.iter < self.min_iter:
            return False
        if self.relative:
            last = self.history["log_likelihood"][-1]
            return abs(self._delta) < self.tol * max(1.0, abs(last))
        return self._delta < self.tol

    @property
    def converged(self) -> bool:
        """True when the loop should stop: tolerance reached or ``n_iter`` reports made."""
        return self.reached_tol or self.iter >= self.n_iter

    def __repr__(self):
        return f"ConvergenceMonitor(tol={self.tol}, n_iter={self.n_iter}, iter={self.iter})"
