"""vqalign.io.sphinx: CMU Sphinx model files.

Files are written here from the formats' descriptions (the s3 header, byte-order magic
0x11223344 and rotate-add checksum of sphinxbase's bio.c; the BMDF layout printed at the
top of every binary mdef; the text mdef 0.3 columns; the sendump header strings), in both
byte orders, and read back. The bundled en-us model is compared with what pocketsphinx
itself logs when it loads it.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from vqalign.exceptions import ParameterError
from vqalign.io import sphinx as S

MAGIC = 0x11223344


def checksum(values_u32):
    c = 0
    for v in values_u32:
        c = (((c << 20) | (c >> 12)) + int(v)) & 0xFFFFFFFF
    return c


def write_s3(path, ints, floats, *, endian="<", chksum=True, extra_header=()):
    """An s3 file: header, magic, int32 fields, float32 data, checksum over all of them."""
    head = b"s3\nversion 1.0\n"
    if chksum:
        head += b"chksum0 yes\n"
    for line in extra_header:
        head += line.encode() + b"\n"
    head += b"endhdr\n"
    body = struct.pack(endian + "I", MAGIC)
    ints = [int(i) for i in ints]
    fl = np.asarray(floats, dtype=np.float32).ravel()
    body += struct.pack(endian + f"{len(ints)}i", *ints)
    body += fl.astype(endian + "f4").tobytes()
    if chksum:
        u = [i & 0xFFFFFFFF for i in ints] + list(fl.view(np.uint32))
        body += struct.pack(endian + "I", checksum(u))
    path.write_bytes(head + body)
    return path


# --------------------------------------------------------------------------- s3 files

@pytest.mark.parametrize("endian", ["<", ">"])
def test_gauden_roundtrip_both_byte_orders(tmp_path, endian):
    rng = np.random.default_rng(0)
    n_mgau, n_dens, veclen = 3, 4, [2, 3]
    data = {f: rng.standard_normal((n_mgau, n_dens, L)).astype(np.float32)
            for f, L in enumerate(veclen)}
    # file order: for each codebook, for each stream, n_density x veclen
    flat = np.concatenate([data[f][m].ravel() for m in range(n_mgau) for f in range(2)])
    p = write_s3(tmp_path / "means", [n_mgau, 2, n_dens, *veclen, flat.size], flat,
                 endian=endian)
    got = S.read_gauden(p)
    assert len(got) == 2
    for f in range(2):
        np.testing.assert_array_equal(got[f], data[f])


def test_checksum_matches_reference_loop():
    v = np.array([1, 0xFFFFFFFF, 12345, 7], dtype=np.uint32)
    c = 0
    for x in v.tolist():                       # bio.c: sum = (sum << 20 | sum >> 12) + x
        c = ((c << 20 | c >> 12) & 0xFFFFFFFF) + x
        c &= 0xFFFFFFFF
    assert S.s3_checksum(v) == c


def test_bad_checksum_truncation_and_garbage_are_named(tmp_path):
    flat = np.arange(8, dtype=np.float32)
    p = write_s3(tmp_path / "means", [1, 1, 2, 4, 8], flat)
    raw = bytearray(p.read_bytes())
    raw[-8] ^= 0x01                            # flip a bit in the data
    bad = tmp_path / "bad_means"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ParameterError, match="bad_means.*checksum mismatch"):
        S.read_gauden(bad)
    short = tmp_path / "short_means"
    short.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ParameterError, match="short_means.*truncated"):
        S.read_gauden(short)
    with pytest.raises(ParameterError, match="does not exist"):
        S.read_gauden(tmp_path / "nope")
    txt = tmp_path / "text"
    txt.write_text("hello\n")
    with pytest.raises(ParameterError, match="not an s3 binary file"):
        S.read_gauden(txt)


def test_file_without_checksum_reads(tmp_path):
    flat = np.arange(6, dtype=np.float32)
    p = write_s3(tmp_path / "v", [1, 1, 2, 3, 6], flat, chksum=False)
    np.testing.assert_array_equal(S.read_gauden(p)[0].ravel(), flat)


def test_tmat_normalized_and_floored_like_pocketsphinx(tmp_path):
    t = np.array([[[8, 2, 0, 0], [0, 9, 1, 0], [0, 0, 99999, 1]]], dtype=np.float32)
    p = write_s3(tmp_path / "transition_matrices", [1, 3, 4, t.size], t)
    got = S.read_tmat(p, floor=1e-4)
    # hand-computed: rows normalized; 1/100000 < 1e-4 raised to 1e-4, then renormalized
    np.testing.assert_allclose(got[0, 0], [0.8, 0.2, 0, 0])
    np.testing.assert_allclose(got[0, 1], [0, 0.9, 0.1, 0])
    r = np.array([0, 0, 0.99999, 1e-4])
    np.testing.assert_allclose(got[0, 2], r / r.sum(), rtol=1e-6)
    back = np.array([[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]], dtype=np.float32)
    p2 = write_s3(tmp_path / "tm_back", [1, 3, 4, back.size], back)
    with pytest.raises(ParameterError, match="tm_back.*backward"):
        S.read_tmat(p2)


def test_mixture_weights_normalized(tmp_path):
    w = np.array([[[1, 3]], [[0, 0]]], dtype=np.float32)        # 2 senones, 1 stream, 2 cw
    p = write_s3(tmp_path / "mixture_weights", [2, 1, 2, 4], w)
    got = S.read_mixture_weights(p, floor=1e-7)
    np.testing.assert_allclose(got[0, 0], [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(got[1, 0], [0.5, 0.5], rtol=1e-6)


def write_sendump(path, q, *, endian="<"):
    """sendump: title, header, key-value strings, 0, rows, cols, uint8 data per stream."""
    n_feat, rows, cols = q.shape

    def s(txt, nul=True):
        b = txt.encode() + (b"\0" if nul else b"")
        return struct.pack(endian + "i", len(b)) + b

    out = s("BEGIN FILE FORMAT DESCRIPTION") + s("(int32) <length(string)>")
    out += s("cluster_count 0") + s(f"feature_count {n_feat}") + s("!!!", nul=False)
    out += struct.pack(endian + "i", 0) + struct.pack(endian + "2i", rows, cols)
    out += q.astype(np.uint8).tobytes()
    path.write_bytes(out)
    return path


@pytest.mark.parametrize("endian", ["<", ">"])
def test_sendump(tmp_path, endian):
    q = np.random.default_rng(1).integers(0, 200, (3, 4, 5)).astype(np.uint8)
    p = write_sendump(tmp_path / "sendump", q, endian=endian)
    np.testing.assert_array_equal(S.read_sendump(p, n_sen=5), q)
    with pytest.raises(ParameterError, match="5 senones but the mdef defines 6"):
        S.read_sendump(p, n_sen=6)
    short = tmp_path / "sd_short"
    short.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(ParameterError, match="sd_short.*truncated"):
        S.read_sendump(short)


# --------------------------------------------------------------------------- mdef

CI = ["+NSN+", "AA", "B", "SIL"]            # sorted, two fillers
FILLER = {"+NSN+", "SIL"}
# (base, left, right, wpos, tmat, senones)
TRI = [("AA", "B", "B", "i", 1, (12, 13, 14)), ("AA", "SIL", "B", "b", 1, (15, 13, 16)),
       ("B", "AA", "SIL", "e", 2, (17, 18, 19)), ("B", "SIL", "SIL", "s", 2, (20, 21, 19))]
CI_SEN = {"+NSN+": (0, 1, 2), "AA": (3, 4, 5), "B": (6, 7, 8), "SIL": (9, 10, 11)}
CI_TMAT = {"+NSN+": 0, "AA": 1, "B": 2, "SIL": 3}
N_SEN = 22


def text_mdef():
    lines = ["0.3", f"{len(CI)} n_base", f"{len(TRI)} n_tri",
             f"{4 * (len(CI) + len(TRI))} n_state_map", f"{N_SEN} n_tied_state",
             "12 n_tied_ci_state", "4 n_tied_tmat", "#", "# Columns definitions",
             "#base lft  rt p attrib tmat      ... state id's ..."]
    for p in CI:
        attr = "filler" if p in FILLER else "n/a"
        lines.append(f"{p} - - - {attr} {CI_TMAT[p]} {' '.join(map(str, CI_SEN[p]))} N")
    for b, lc, rc, w, tm, sen in TRI:
        lines.append(f"{b} {lc} {rc} {w} n/a {tm} {' '.join(map(str, sen))} N")
    return "\n".join(lines) + "\n"


def bin_mdef(endian="<"):
    """BMDF as documented in the file's own format description."""
    e = endian
    idx = {p: i for i, p in enumerate(CI)}
    sseqs, phones = [], []
    for p in CI:
        sseqs.append(CI_SEN[p])
        phones.append((len(sseqs) - 1, CI_TMAT[p], bytes([p in FILLER, 0, 0, 0])))
    for b, lc, rc, w, tm, sen in TRI:
        sseqs.append(sen)
        phones.append((len(sseqs) - 1, tm, bytes([S.WPOS.index(w), idx[b], idx[lc], idx[rc]])))
    desc = b"BEGIN FILE FORMAT DESCRIPTION\n...\nEND FILE FORMAT DESCRIPTION\n\0"
    dlen = (len(desc) + 3) & ~3
    out = struct.pack(e + "I", 0x46444D42) if e == "<" else struct.pack(">I", 0x46444D42)
    out += struct.pack(e + "ii", 1, dlen) + desc + b"\0" * (dlen - len(desc))
    n_tree = 2
    out += struct.pack(e + "10i", len(CI), len(CI) + len(TRI), 3, 12, N_SEN, 4, len(sseqs),
                       3, n_tree, idx["SIL"])
    names = b"".join(p.encode() + b"\0" for p in CI)
    out += names + b"\0" * (((len(names) + 3) & ~3) - len(names))
    out += b"".join(struct.pack(e + "hhi", 0, 0, -1) for _ in range(n_tree))
    for ssid, tm, attr in phones:
        out += struct.pack(e + "ii", ssid, tm) + attr
    out += struct.pack(e + "i", 3 * len(sseqs))
    out += b"".join(struct.pack(e + "3H", *s) for s in sseqs)
    return out


def check_mdef(md):
    assert md.ciphones == CI
    assert md.filler.tolist() == [p in FILLER for p in CI]
    assert (md.n_emit_state, md.n_ci_sen, md.n_sen, md.n_phone) == (3, 12, N_SEN, 8)
    assert md.sil == 3
    ix = md.ci_index
    for k, (b, lc, rc, w, tm, sen) in enumerate(TRI):
        p = md.phone_id(ix[b], ix[lc], ix[rc], S.WPOS.index(w))
        assert p == len(CI) + k
        assert md.senones[p].tolist() == list(sen) and md.tmat[p] == tm
    # a filler in context is looked up as SIL
    assert md.phone_id(ix["AA"], ix["+NSN+"], ix["B"], 1) == len(CI) + 1
    # missing triphone: back off over word positions, then silence context, then CI
    assert md.phone_id_nearest(ix["AA"], ix["B"], ix["B"], 2) == len(CI)
    assert md.phone_id_nearest(ix["B"], ix["AA"], ix["AA"], 3) == len(CI) + 3
    assert md.phone_id_nearest(ix["AA"], ix["AA"], ix["AA"], 0) == ix["AA"]
    assert md.sen2ci[:12].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert md.sen2ci[17] == ix["B"] and md.sen2ci[15] == ix["AA"]


def test_text_mdef(tmp_path):
    p = tmp_path / "mdef"
    p.write_text(text_mdef())
    check_mdef(S.read_mdef(p))


@pytest.mark.parametrize("endian", ["<", ">"])
def test_binary_mdef(tmp_path, endian):
    p = tmp_path / "mdef"
    p.write_bytes(bin_mdef(endian))
    check_mdef(S.read_mdef(p))


def test_mdef_errors_name_the_file(tmp_path):
    p = tmp_path / "short_mdef"
    p.write_text("\n".join(text_mdef().splitlines()[:-2]) + "\n")
    with pytest.raises(ParameterError, match="short_mdef.*truncated"):
        S.read_mdef(p)
    b = tmp_path / "short_bmdef"
    b.write_bytes(bin_mdef()[:-9])
    with pytest.raises(ParameterError, match="short_bmdef.*truncated"):
        S.read_mdef(b)
    g = tmp_path / "garbage_mdef"
    g.write_text("hello world\n")
    with pytest.raises(ParameterError, match="garbage_mdef.*neither"):
        S.read_mdef(g)


def test_feat_params_noisedict_dictionary(tmp_path):
    fp = tmp_path / "feat.params"
    fp.write_text("-lowerf 130\n-upperf 6800\n\n-transform dct\n")
    assert S.read_feat_params(fp) == {"lowerf": "130", "upperf": "6800", "transform": "dct"}
    bad = tmp_path / "bad.params"
    bad.write_text("-lowerf\n")
    with pytest.raises(ParameterError, match="bad.params: line 1"):
        S.read_feat_params(bad)
    nd = tmp_path / "noisedict"
    nd.write_text("<s> SIL\n</s> SIL\n[NOISE] +NSN+\n")
    assert S.read_noisedict(nd) == {"<s>": [["SIL"]], "</s>": [["SIL"]], "[NOISE]": [["+NSN+"]]}
    d = tmp_path / "d.dict"
    d.write_text("read R IY D\nread(2) R EH D\nab AE B # comment\n")
    assert S.read_dictionary(d) == {"read": [["R", "IY", "D"], ["R", "EH", "D"]],
                                    "ab": [["AE", "B"]]}



def test_lazy_dictionary_equals_the_full_reader(tmp_path):
    d = tmp_path / "d.dict"
    d.write_text(";; header\nread R IY D\nab AE B # comment\nread(2) R EH D\n\n"
                 "# note\nbad\nx(3) K S\n")
    lazy = S.LazyDictionary(d)
    assert lazy["read"] == [["R", "IY", "D"], ["R", "EH", "D"]]
    assert lazy["ab"] == [["AE", "B"]] and lazy["x"] == [["K", "S"]]
    assert "nope" not in lazy and "Read" not in lazy and lazy.get("nope") is None
    with pytest.raises(ParameterError, match="line 7 'bad' has a word but no phones"):
        lazy["bad"]
    with pytest.raises(ParameterError, match="line 7 'bad' has a word but no phones"):
        S.read_dictionary(d)
    empty = tmp_path / "e.dict"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ParameterError, match="e.dict: dictionary holds no entries"):
        S.LazyDictionary(empty)


def test_lazy_dictionary_on_cmudict_en_us():
    pytest.importorskip("pocketsphinx")
    from vqalign.io.sphinx import load_sphinx_model

    p = load_sphinx_model("en-us").dictionary_path
    full = S.read_dictionary(p)
    lazy = S.LazyDictionary(p)
    assert len(lazy) == len(full)
    for w in sorted(full)[::97] + ["read", "live", "the", "a"]:
        assert lazy[w] == full[w], w

def write_model(d, *, n_dens=4):
    """A complete tiny PTM model directory (4 CI phones, 22 senones, 3 streams)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "mdef").write_text(text_mdef())
    rng = np.random.default_rng(3)
    veclen = [2, 2, 2]
    n_cb = len(CI)
    means = rng.standard_normal((n_cb, 3, n_dens, 2)).astype(np.float32)
    var = (0.5 + rng.random((n_cb, 3, n_dens, 2))).astype(np.float32)
    for name, a in (("means", means), ("variances", var)):
        write_s3(d / name, [n_cb, 3, n_dens, *veclen, a.size], a.ravel())
    q = rng.integers(0, 60, (3, n_dens, N_SEN)).astype(np.uint8)
    write_sendump(d / "sendump", q)
    t = np.tile(np.array([[0.6, 0.4, 0, 0], [0, 0.7, 0.3, 0], [0, 0, 0.5, 0.5]], np.float32),
                (4, 1, 1))
    write_s3(d / "transition_matrices", [4, 3, 4, t.size], t.ravel())
    (d / "feat.params").write_text("-nfilt 20\n-ncep 2\n-svspec 0-1/2-3/4-5\n-cmn batch\n")
    (d / "noisedict").write_text("<s> SIL\n</s> SIL\n<sil> SIL\n[NOISE] +NSN+\n")
    (d / "dict").write_text("ab AA B\nb B\n")
    return means, var, q


def test_load_model_directory(tmp_path):
    means, var, q = write_model(tmp_path / "m")
    m = S.load_sphinx_model(tmp_path / "m")
    assert m.n_feat == 3 and m.n_density == 4 and m.veclen == [2, 2, 2]
    np.testing.assert_array_equal(m.means[1], means[:, 1])
    np.testing.assert_array_equal(m.variances[2], np.maximum(var[:, 2], 1e-4))
    np.testing.assert_allclose(m.log_mixw, -S.LOG_SENDUMP_UNIT * q.astype(np.float64),
                               rtol=1e-6)
    assert m.dictionary_path == tmp_path / "m" / "dict"
    assert m.noisedict["[NOISE]"] == [["+NSN+"]]


def test_missing_or_truncated_model_file_is_named(tmp_path):
    write_model(tmp_path / "m1")
    (tmp_path / "m1" / "variances").unlink()
    with pytest.raises(ParameterError, match="m1/variances does not exist"):
        S.load_sphinx_model(tmp_path / "m1")
    write_model(tmp_path / "m2")
    raw = (tmp_path / "m2" / "means").read_bytes()
    (tmp_path / "m2" / "means").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ParameterError, match="m2/means.*truncated"):
        S.load_sphinx_model(tmp_path / "m2")
    write_model(tmp_path / "m3")
    (tmp_path / "m3" / "noisedict").write_text("<sil> SIL\n[COUGH] +COUGH+\n")
    with pytest.raises(ParameterError, match="noisedict.*'\\+COUGH\\+'"):
        S.load_sphinx_model(tmp_path / "m3")


def test_en_us_without_pocketsphinx_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(ParameterError, match=re.escape('pip install pocketsphinx')):
        S.model_dir("en-us")


# --------------------------------------------------------------------------- en-us vs pocketsphinx

def test_en_us_model_matches_what_pocketsphinx_reads(tmp_path):
    ps = pytest.importorskip("pocketsphinx")
    log = tmp_path / "ps.log"
    ps.Decoder(lm=None, loglevel="INFO", logfn=str(log))
    text = log.read_text(errors="replace")
    m = S.load_sphinx_model("en-us")
    md = m.mdef
    got = re.search(r"(\d+) CI-phone, (\d+) CD-phone, (\d+) emitstate/phone, (\d+) CI-sen, "
                    r"(\d+) Sen, (\d+) Sen-Seq", text)
    assert got, text[:2000]
    n_ci, n_cd, n_emit, n_ci_sen, n_sen, _ = map(int, got.groups())
    assert (md.n_ci, md.n_phone - md.n_ci, md.n_emit_state, md.n_ci_sen, md.n_sen) == \
        (n_ci, n_cd, n_emit, n_ci_sen, n_sen)
    rc = re.search(r"Rows: (\d+), Columns: (\d+)", text)
    assert rc and (m.n_density, md.n_sen) == tuple(map(int, rc.groups()))
    g = re.search(r"(\d+) codebook, (\d+) feature, size:\s*((?:INFO: ms_gauden\.c\(\d+\):\s*"
                  r"\d+x\d+\s*)+)", text)
    assert g, text[:3000]
    sizes = re.findall(r"(\d+)x(\d+)", g.group(3))
    assert (m.means[0].shape[0], m.n_feat) == (int(g.group(1)), int(g.group(2)))
    assert [(m.n_density, L) for L in m.veclen] == [tuple(map(int, x)) for x in sizes[:m.n_feat]]
    # every row of every transition matrix is a distribution over stay/next/skip/exit
    np.testing.assert_allclose(m.tmat.sum(axis=2), 1.0, atol=1e-9)
    assert m.log_mixw.shape == (3, m.n_density, md.n_sen)
