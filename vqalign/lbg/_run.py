"""Bookkeeping shared by every training loop: history, snapshots, progress."""

from __future__ import annotations

import time

import numpy as np

from vqalign.history import History, code_usage_stats


class Snapshots:
    """At most ``capacity`` (step, level, codebook copy) tuples spread over a run.

    Every ``stride``-th step is kept; when the list is full every other entry is
    dropped and the stride doubles, so memory stays bounded and the kept steps
    stay evenly spread whatever the run's length.
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.stride = 1
        self.items: list[tuple[int, int, np.ndarray]] = []

    def offer(self, step: int, level: int, codebook: np.ndarray) -> None:
        if self.capacity <= 0 or step % self.stride:
            return
        self.items.append((int(step), int(level), np.array(codebook, dtype=np.float32)))
        if len(self.items) > self.capacity:
            self.items = self.items[::2]
            self.stride *= 2


class Run:
    """One training run: a History plus snapshots, sample counter and progress bar."""

    def __init__(self, name: str, *, keep_snapshots: int = 0, progress=None):
        self.history = History(name)
        self.snapshots = Snapshots(keep_snapshots)
        self.t0 = time.perf_counter()
        self.samples_seen = 0
        self.step = 0
        self.progress = progress  # a tqdm bar or None

    def record(self, *, level: int, codebook: np.ndarray, n_samples: int, mse: float,
               counts: np.ndarray, dead_reseeded: int, **extra) -> dict:
        self.samples_seen += int(n_samples)
        stats = code_usage_stats(counts)
        row = self.history.append(
            step=self.step, level=int(level), n_codes=int(codebook.shape[0]),
            samples_seen=self.samples_seen, loss=float(mse), entropy=stats["entropy"],
            log_k=stats["log_k"], perplexity=stats["perplexity"],
            utilization=stats["utilization"], dead_reseeded=int(dead_reseeded),
            seconds=time.perf_counter() - self.t0, **extra,
        )
        self.snapshots.offer(self.step, level, codebook)
        self.step += 1
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(K=int(codebook.shape[0]), mse=f"{mse:.4g}",
                                      util=f"{stats['utilization']:.3f}", refresh=False)
        return row
