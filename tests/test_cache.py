"""The parsed-lexicon cache: the same pronunciations as a fresh parse, keyed by the
dictionary file's digest, and harmless when the cache cannot be used."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.align import lexicon as L
from vqalign.io import cache as C


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("VQALIGN_CACHE_DIR", str(tmp_path / "cache"))
    L._cmudict_cached.cache_clear()
    yield tmp_path / "cache"
    L._cmudict_cached.cache_clear()


def test_cached_table_equals_a_fresh_parse(fresh):
    ref = L.Lexicon(L.cmudict_with_stress(), name="ref")       # parsed, no cache
    first = L.Lexicon.cmudict()
    assert len(list(fresh.glob("cmudict-*.npz"))) == 1
    L._cmudict_cached.cache_clear()
    second = L.Lexicon.cmudict()                                # read from the cache
    assert isinstance(second._entries, L._Table)
    assert len(second) == len(first) == len(ref) > 100000
    for w, prons in ref.items():
        assert second.pronunciations(w) == prons
    assert "speech" in second and "xqzvkk" not in second and 3 not in second._entries
    assert second.oov(["speech", "xqzvkk"]) == ["xqzvkk"]
    user = L.Lexicon({"speech": [["S", "P", "IY", "CH", "IH"]], "blorf": [["B", "L"]]})
    both = second.merged(user)
    assert both.pronounce("speech") == ["S", "P", "IY", "CH", "IH"]
    assert both.pronounce("blorf") == ["B", "L"] and both.pronounce("cat") == ["K", "AE", "T"]
    assert len(both) == len(ref) + 1


def test_key_follows_the_file_digest(fresh, tmp_path, monkeypatch):
    src = tmp_path / "dict.txt"
    src.write_text("a b\n")
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(3)}

    key = lambda: f"v1-{C.file_digest(src)}"   # noqa: E731
    assert C.cached("t", key(), build)["x"].tolist() == [0, 1, 2]
    assert C.cached("t", key(), build)["x"].tolist() == [0, 1, 2] and len(calls) == 1
    src.write_text("a c\n")                     # the source changed: parsed again
    C.cached("t", key(), build)
    assert len(calls) == 2
    # a damaged entry is rebuilt, not trusted
    for f in fresh.glob("t-*.npz"):
        f.write_bytes(b"not a zip")
    assert C.cached("t", key(), build)["x"].tolist() == [0, 1, 2] and len(calls) == 3


def test_cache_off_or_unwritable(monkeypatch, tmp_path):
    monkeypatch.setenv("VQALIGN_CACHE_DIR", "off")
    assert C.cache_dir() is None
    ro = tmp_path / "ro"
    ro.write_text("a file where the cache folder should be")
    monkeypatch.setenv("VQALIGN_CACHE_DIR", str(ro))
    assert C.cached("t", "k", lambda: {"x": np.ones(2)})["x"].sum() == 2


def test_sphinx_dictionary_index_is_cached_and_exact(fresh, tmp_path):
    from vqalign.io.sphinx import LazyDictionary

    d = tmp_path / "tiny.dict"
    d.write_bytes(b"hello HH AH L OW\nhello(2) HH EH L OW\n;; comment\nworld W ER L D # note\n"
                  b"a AH\nbad\n\nzebra Z IY B R AH")
    x = LazyDictionary(d)
    assert len(list(fresh.glob("sphinx-dict-*.npz"))) == 1
    y = LazyDictionary(d)                          # from the cache
    for lex in (x, y):
        assert lex["hello"] == [["HH", "AH", "L", "OW"], ["HH", "EH", "L", "OW"]]
        assert lex["world"] == [["W", "ER", "L", "D"]] and lex["zebra"][0][0] == "Z"
        assert "nope" not in lex and len(lex) == 5
        with pytest.raises(Exception, match=r"line 6 'bad' has a word but no phones"):
            lex["bad"]


def test_s3_checksum_checked_once_per_content(fresh, tmp_path, monkeypatch):
    """A Sphinx s3 file's checksum is computed the first time its bytes are read and not
    again; the same file with one bit flipped is checked, and refused."""
    from tests.test_sphinx_io import write_s3
    from vqalign.exceptions import ParameterError
    from vqalign.io import sphinx_s3 as S

    p = write_s3(tmp_path / "means", [1, 1, 2, 4, 8], np.arange(8, dtype=np.float32))
    calls = []
    real = S.s3_checksum
    monkeypatch.setattr(S, "s3_checksum", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = S.read_gauden(p)
    assert calls and len(list((fresh / "s3-verified").iterdir())) == 1
    calls.clear()
    again = S.read_gauden(p)
    assert calls == [] and all(np.array_equal(a, b) for a, b in zip(first, again))
    raw = bytearray(p.read_bytes())
    raw[-8] ^= 0x01
    (tmp_path / "bad_means").write_bytes(bytes(raw))
    with pytest.raises(ParameterError, match="bad_means.*checksum mismatch"):
        S.read_gauden(tmp_path / "bad_means")


def test_digest_remembered_only_for_an_unchanged_file(fresh, tmp_path, monkeypatch):
    """A file's digest is read back from the cache while its stat is unchanged (shown by a
    planted wrong digest coming back), and hashed again once the file changes."""
    import hashlib
    import os

    src = tmp_path / "dict.txt"
    src.write_bytes(b"a b\n")
    real = hashlib.sha256(b"a b\n").hexdigest()
    assert C.file_digest(src) == real
    assert not (fresh / "digests").exists()        # just written: too fresh to remember
    monkeypatch.setattr(C, "RACY_NS", -1)
    assert C.file_digest(src) == real
    (memo,) = (fresh / "digests").iterdir()
    memo.write_text("f" * 64)
    assert C.file_digest(src) == "f" * 64          # the remembered digest is what is used
    src.write_bytes(b"a c d\n")
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert C.file_digest(src) == hashlib.sha256(b"a c d\n").hexdigest()


def test_entries_are_memory_mapped_read_only_and_exact(fresh):
    value = {"words": np.array([b"ab", b"abc", b"b"]), "offsets": np.arange(4, dtype=np.int64),
             "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "empty": np.zeros((0, 2))}
    C.cached("m", "k", lambda: value)
    back = C.cached("m", "k", lambda: pytest.fail("rebuilt a readable entry"))
    assert sorted(back) == sorted(value)
    for k, v in value.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert np.array_equal(back[k], v)
    assert not back["offsets"].flags.writeable and back["f"].flags.f_contiguous
    (entry,) = fresh.glob("m-*.npz")
    entry.write_bytes(entry.read_bytes()[:-20])    # truncated: rebuilt, not trusted
    assert C.cached("m", "k", lambda: value)["offsets"].tolist() == [0, 1, 2, 3]
