"""The console command's fast exit (vqalign.cli.console) is not blocked by the idle
worker threads of vqalign's own shared pools, and is by any other live thread."""

import threading

import numpy as np

from vqalign import cli
from vqalign.features import mfcc


def test_idle_mfcc_workers_do_not_count_as_live_threads():
    y = np.random.default_rng(0).standard_normal(16000 * 4).astype(np.float32)
    mfcc(y, sr=16000, hop_length=80, n_threads=2)     # 800 frames: two pool threads
    names = [t.name for t in threading.enumerate()]
    assert any(n.startswith("vqalign-mfcc") for n in names), names
    assert not any(t.name.startswith("vqalign-mfcc") for t in cli._live_threads())


def test_another_live_thread_keeps_the_normal_exit():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="user-thread")
    t.start()
    try:
        assert t in cli._live_threads()
    finally:
        stop.set()
        t.join()
    assert t not in cli._live_threads()
