"""Feature store: write, open, resume, failures, settings mismatch, CLI."""

from __future__ import annotations

import gc
import json
import os

import numpy as np
import pytest
import soundfile as sf

from vqalign.exceptions import ParameterError
from vqalign.io.store import list_sources, open_store, write_store


@pytest.fixture
def corpus(tmp_path, rng):
    d = tmp_path / "corpus"
    (d / "spk1").mkdir(parents=True)
    t = np.arange(40000) / 16000
    for i in range(3):
        y = 0.2 * np.sin(2 * np.pi * (150 + 50 * i) * t[: 16000 + 4000 * i])
        y = y + 0.02 * rng.standard_normal(y.size)
        sf.write(d / f"a{i}.wav", y.astype(np.float32), 16000)
    y = 0.1 * rng.standard_normal(22050)
    sf.write(d / "spk1" / "b.flac", y.astype(np.float32), 22050)
    (d / "notes.txt").write_text("not audio, not listed")
    return d


def _librosa_ref(path):
    librosa = pytest.importorskip("librosa")
    from vqalign.io import load_audio
    y, sr = load_audio(path, 16000)
    return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=512, hop_length=160,
                                win_length=400, n_mels=40, pad_mode="constant").T


def test_write_and_open(corpus, tmp_path):
    out = tmp_path / "store"
    st = write_store(corpus, out, jobs=1)
    assert (st.n_computed, st.n_reused, st.failed) == (4, 0, [])
    st = open_store(out)
    assert len(st) == 4 and sorted(st) == ["a0", "a1", "a2", "spk1/b"]
    assert isinstance(st.X, np.memmap) and st.X.dtype == np.float32 and not st.X.flags.writeable
    assert st.X.shape == (sum(u["n_frames"] for u in st.utterances), 13)
    starts = [u["start"] for u in st.utterances]
    assert starts[0] == 0 and starts == sorted(starts)
    for uid, feats in st.items():
        path = corpus / (uid + (".flac" if uid.startswith("spk1") else ".wav"))
        ref = _librosa_ref(path)
        assert feats.shape == ref.shape
        assert np.abs(feats - ref).max() <= 1e-3 * (ref.max() - ref.min())
    assert st[0].shape == st["a0"].shape
    assert st.settings["n_mfcc"] == 13 and st.settings["dim"] == 13
    with pytest.raises(KeyError, match="no utterance 'zz'"):
        st["zz"]


def test_resume_computes_nothing_new(corpus, tmp_path):
    out = tmp_path / "store"
    write_store(corpus, out, jobs=1)
    shards = sorted((out / "shards").glob("*.npz"))
    mtimes = [p.stat().st_mtime_ns for p in shards]
    st = write_store(corpus, out, jobs=1)
    assert (st.n_computed, st.n_reused) == (0, 4)
    assert [p.stat().st_mtime_ns for p in shards] == mtimes
    # interrupted before consolidation, one shard lost: only that one is recomputed
    X_before = np.array(open_store(out).X)
    os.unlink(out / "index.json")
    os.unlink(out / "features.f32")
    os.unlink(shards[0])
    st = write_store(corpus, out, jobs=1)
    assert (st.n_computed, st.n_reused) == (1, 3)
    np.testing.assert_array_equal(np.asarray(st.X), X_before)


def test_corrupt_file_is_reported_and_others_succeed(corpus, tmp_path):
    (corpus / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    (corpus / "short.wav").parent.mkdir(exist_ok=True)
    sf.write(corpus / "short.wav", np.full(100, 0.1, np.float32), 16000)
    out = tmp_path / "store"
    st = write_store(corpus, out, jobs=1)
    assert len(st) == 4 and st.n_computed == 4
    failed = dict(st.failed)
    assert set(failed) == {str(corpus / "broken.wav"), str(corpus / "short.wav")}
    assert "cannot read audio file" in failed[str(corpus / "broken.wav")]
    assert "shorter than one analysis window" in failed[str(corpus / "short.wav")]
    on_disk = json.loads((out / "failed.json").read_text())
    assert {d["path"] for d in on_disk} == set(failed)


def test_all_failed_raises(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "x.wav").write_bytes(b"nope")
    with pytest.raises(ParameterError, match=r"(?s)all 1 files failed.*x\.wav"):
        write_store(d, tmp_path / "out", jobs=1)


def test_settings_mismatch_refused(corpus, tmp_path):
    out = tmp_path / "store"
    write_store(corpus, out, jobs=1)
    with pytest.raises(ParameterError, match=r"other settings \(n_mfcc: store has 13, asked 20"):
        write_store(corpus, out, n_mfcc=20, jobs=1)
    with pytest.raises(ParameterError, match="convention"):
        write_store(corpus, out, convention="kaldi", jobs=1)
    assert open_store(out).dim == 13     # the store is untouched


def test_deltas_cmvn_and_list_file(corpus, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(f"# two files\ncorpus/a1.wav\n\n{corpus / 'spk1' / 'b.flac'}\ncorpus/a1.wav\n")
    assert [u for u, _ in list_sources(lst)] == ["a1", "spk1/b"]
    st = write_store(lst, tmp_path / "s2", deltas=2, cmvn="utterance", jobs=1)
    assert st.X.shape[1] == 39 and len(st) == 2
    np.testing.assert_allclose(np.asarray(st["a1"]).mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(st["a1"]).std(0), 1.0, atol=1e-3)


def test_bad_sources_and_stores(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        write_store(tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="no audio files"):
        write_store(tmp_path / "empty", tmp_path / "o")
    with pytest.raises(ParameterError, match="cmvn"):
        write_store(tmp_path / "empty", tmp_path / "o", cmvn="sliding")
    with pytest.raises(ParameterError, match="not a complete feature store"):
        open_store(tmp_path / "empty")


def test_truncated_store_refused(corpus, tmp_path):
    out = tmp_path / "store"
    write_store(corpus, out, jobs=1)
    with open(out / "features.f32", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(ParameterError, match="incomplete"):
        open_store(out)


def test_cli_parallel_jobs(corpus, tmp_path, capsys):
    from vqalign.cli import main
    out = tmp_path / "store"
    assert main(["features", str(corpus), str(out), "--jobs", "2", "--quiet"]) == 0
    assert "computed 4, reused 0, failed 0" in capsys.readouterr().out
    assert main(["features", str(corpus), str(out), "--quiet"]) == 0
    assert "computed 0, reused 4" in capsys.readouterr().out
    assert main(["features", str(corpus), str(out), "--n-mfcc", "20", "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err
    serial = write_store(corpus, tmp_path / "serial", jobs=1)
    np.testing.assert_array_equal(np.asarray(open_store(out).X), np.asarray(serial.X))


def test_write_error_names_the_path_and_keeps_the_shards(corpus, tmp_path, monkeypatch):
    import errno

    import vqalign.io.store as S

    ref = np.asarray(write_store(corpus, tmp_path / "ref", jobs=1).X)
    real = S.atomic_write

    def full(path, *a, **k):
        if os.path.basename(path) == "features.f32":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    out = tmp_path / "store"
    monkeypatch.setattr(S, "atomic_write", full)
    with pytest.raises(S.StoreWriteError, match=r"cannot write '.*features\.f32': No space "
                                                r"left on device.*re-run the same command"):
        write_store(corpus, out, jobs=1)
    assert len(list((out / "shards").glob("*.npz"))) == 4
    assert not (out / "features.f32").exists() and not (out / "index.json").exists()
    monkeypatch.setattr(S, "atomic_write", real)
    st = write_store(corpus, out, jobs=1)
    assert (st.n_computed, st.n_reused) == (0, 4)
    np.testing.assert_array_equal(np.asarray(st.X), ref)


def test_aligner_recipe_and_old_settings_files(corpus, tmp_path):
    from vqalign.io.audio import load_audio
    from vqalign.io.store import aligner_front_end, describe_settings, settings_differ

    st = write_store(corpus, tmp_path / "al", recipe="aligner", hop_length=0.005, jobs=1)
    assert st.dim == 39 and st.extra_names == ["energy"] and st.settings["recipe"] == "aligner"
    y, _ = load_audio(corpus / "a1.wav", 16000)
    X, energy = aligner_front_end()(y, 0.005, 1)
    np.testing.assert_array_equal(np.asarray(st["a1"]), X)
    np.testing.assert_array_equal(np.asarray(st.side("a1")), energy)
    assert st.duration("a1") == y.size / 16000
    assert describe_settings(st.settings).startswith("aligner recipe, 39-D at 5 ms hop")
    with pytest.raises(ParameterError, match=r"recipe: store has 'aligner', asked 'mfcc'"):
        write_store(corpus, tmp_path / "al", jobs=1)
    # a settings.json written before "recipe" and "extra" existed reads as the mfcc recipe
    old = {k: v for k, v in open_store(tmp_path / "al").settings.items()}
    old["recipe"] = "mfcc"
    legacy = dict(old)
    del legacy["recipe"], legacy["extra"]
    assert settings_differ(legacy, dict(old, extra=[])) == []


def test_aligner_recipe_removes_a_dc_offset_as_the_aligner_does(tmp_path):
    """The store's aligner recipe conditions the audio as Aligner does (a DC offset above
    DC_OFFSET of the RMS removed), so a model trained from the store meets the features
    Aligner computes; the removal is reported per utterance, and a store written before
    the conditioning existed is refused by its settings."""
    from vqalign.datasets.synth import synthesize
    from vqalign.features import frontend as AL
    from vqalign.io.audio import load_audio
    from vqalign.io.store import settings_differ

    src = tmp_path / "src"
    src.mkdir()
    u = synthesize("the cat sat on the mat", seed=1)
    rms = float(np.sqrt(np.mean(np.square(u.audio))))
    sf.write(src / "dc.wav", u.audio + np.float32(0.2 * rms), u.sr, subtype="FLOAT")
    sf.write(src / "clean.wav", u.audio, u.sr, subtype="FLOAT")
    st = write_store(src, tmp_path / "st", recipe="aligner", hop_length=0.005, jobs=1)
    for name in ("dc", "clean"):
        y, _ = load_audio(src / f"{name}.wav", 16000)
        y, notes = AL.condition_audio(y, 16000, f"{name}.wav")
        X, energy = AL.features(y, 0.005, 1)
        np.testing.assert_array_equal(np.asarray(st[name]), X)
        np.testing.assert_array_equal(np.asarray(st.side(name)), energy)
        assert st.warnings(name) == notes
    assert any("DC offset" in m for m in st.warnings("dc")) and st.warnings("clean") == []
    y, _ = load_audio(src / "dc.wav", 16000)
    raw, _ = AL.features(y, 0.005, 1)
    assert not np.array_equal(raw, np.asarray(st["dc"]))
    older = dict(st.settings)
    del older["dc_offset"]
    assert [d for d in settings_differ(older, st.settings) if "dc_offset" in d]


def test_read_rows_equals_the_mapped_rows(corpus, tmp_path):
    st = write_store(corpus, tmp_path / "al", recipe="aligner", hop_length=0.005, jobs=1)
    for uid in st.keys():
        a, b = st.span(uid)
        X, side = st.read_rows(a, b)
        np.testing.assert_array_equal(X, np.asarray(st[uid]))
        np.testing.assert_array_equal(side[:, 0], np.asarray(st.side(uid)))
        assert X.flags.writeable and not isinstance(X, np.memmap)   # a copy, not a map
    X, side = st.read_rows(0, st.n_frames)
    np.testing.assert_array_equal(X, np.asarray(st.X))
    assert st.read_rows(3, 3)[0].shape == (0, st.dim)
    with pytest.raises(ParameterError, match="outside the store"):
        st.read_rows(0, st.n_frames + 1)


def _mapped_rss(psutil, path) -> int:
    """Bytes of ``path``'s mappings resident in this process (/proc/self/smaps)."""
    return sum(m.rss for m in psutil.Process().memory_maps(grouped=True)
               if m.path == str(path))


def test_streaming_a_memmap_keeps_its_pages_out_of_rss(tmp_path):
    """iter_blocks (every LBG pass over a store) releases each block's mapped pages."""
    psutil = pytest.importorskip("psutil")
    from vqalign.lbg._data import iter_blocks

    path = tmp_path / "big.f32"
    n, d = 2_000_000, 39                  # 312 MB
    w = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
    w[:] = 1.0
    w.flush()
    del w
    size = n * d * 4
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    total = 0.0
    for _, block in iter_blocks(X):
        total += float(block[:, 0].sum())
    # the quantity itself: this process's resident pages of the file's mapping (smaps),
    # not the whole process's RSS (which other allocations move)
    kept = _mapped_rss(psutil, path)
    assert total == n
    assert kept < 0.35 * size, f"{kept / 2**20:.0f} MB of the 312 MB file left resident"
    del X, block
    gc.collect()
    # without the release the same pass keeps the whole file resident
    Y = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    float(np.asarray(Y)[:, 0].sum())
    assert _mapped_rss(psutil, path) > 0.65 * size


def test_sampled_rows_are_read_not_faulted_in(tmp_path):
    """take_rows (LBG's subsample, the GMM start) reads scattered memmap rows from
    the file: through the mapping each row faults in its neighbours' pages too."""
    psutil = pytest.importorskip("psutil")
    from vqalign.lbg._data import sample_rows, take_rows

    rng = np.random.default_rng(0)
    n, d = 2_000_000, 39                  # 312 MB
    path = tmp_path / "big.f32"
    w = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
    w[:] = np.arange(n, dtype=np.float32)[:, None]
    w.flush()
    del w
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    idx = np.linspace(0, n - 1, 20_000).astype(np.int64)      # sparse: one read per row
    got = take_rows(X, idx)
    assert _mapped_rss(psutil, path) < 60 * 2**20       # the file's pages, not faulted in
    np.testing.assert_array_equal(got[:, 0], idx.astype(np.float32))
    dense = np.sort(rng.choice(n, 500_000, replace=False))      # dense: block reads
    np.testing.assert_array_equal(take_rows(X, dense)[:, 3], dense.astype(np.float32))
    sub = sample_rows(X, 1000, np.random.default_rng(1))
    assert sub.shape == (1000, d) and np.all(sub[:, 0] == sub[:, -1])
    assert take_rows(X, np.zeros(0, np.int64)).shape == (0, d)


def test_take_rows_of_a_memmap_slice_reads_the_slice(tmp_path):
    """A row slice of a memmap shares its parent's mapping and ``offset``: rows are
    read at the slice's own place in the file."""
    from vqalign.lbg._data import release_pages, take_rows

    A = np.arange(50_000 * 7, dtype=np.float32).reshape(-1, 7)
    np.save(tmp_path / "a.npy", A)
    Z = np.load(tmp_path / "a.npy", mmap_mode="r")
    (tmp_path / "a.f32").write_bytes(A[123:].tobytes())
    W = np.memmap(tmp_path / "a.f32", dtype=np.float32, mode="r", shape=(50_000 - 123, 7))
    rng = np.random.default_rng(0)
    for M, ref in ((Z[1000:], A[1000:]), (Z[5:40], A[5:40]), (W[77:], A[200:]), (Z, A)):
        for n in (3, 2000):                 # the sparse and the dense path
            idx = np.sort(rng.choice(ref.shape[0], min(n, ref.shape[0]), replace=False))
            np.testing.assert_array_equal(take_rows(M, idx), ref[idx])
        release_pages(M)
        np.testing.assert_array_equal(np.asarray(M), ref)


def test_jobs_without_a_scheduler_is_refused(corpus, tmp_path):
    """The store runs no worker processes of its own: jobs > 1 needs a scheduler."""
    with pytest.raises(ParameterError, match=r"jobs=2 needs a scheduler: pass scheduler="):
        write_store(corpus, tmp_path / "o", jobs=2)
    assert not (tmp_path / "o").exists()
