"""PTM emissions (vqalign.hmm.ptm) and alignment with a Sphinx model (vqalign.align.sphinx).

References: a brute-force PTM score (every Gaussian, sorted top-N, exact log-sum-exp) on a
random model; pocketsphinx's own senone scores (-senlogdir with -compallsen) and its own
forced alignment on the same audio with the same model; the synthesizer's exact times.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from vqalign.exceptions import AlignmentError, ParameterError
from vqalign.hmm import _ptm_kernels as K
from vqalign.hmm.ptm import PTMEmissions


def _naive_ptm(X, means, variances, log_w, sen2cb, streams, topn, clamp):
    T = X.shape[0]
    out = np.zeros((T, log_w.shape[2]))
    for f, (a, b) in enumerate(streams):
        x = X[:, a:b].astype(np.float64)
        m, v = means[f].astype(np.float64), variances[f].astype(np.float64)
        # (T, n_cb, D) log densities
        ll = -0.5 * (np.log(2 * np.pi * v).sum(-1)[None] +
                     (((x[:, None, None, :] - m[None]) ** 2) / v[None]).sum(-1))
        order = np.argsort(-ll, axis=2, kind="stable")[:, :, :topn]
        top = np.take_along_axis(ll, order, 2)
        if clamp is not None:
            top = np.maximum(top, top[:, :, 0].max(axis=1)[:, None, None] - clamp)
        for s in range(log_w.shape[2]):
            c = sen2cb[s]
            terms = log_w[f][order[:, c, :], s] + top[:, c, :]
            mx = terms.max(axis=1)
            out[:, s] += mx + np.log(np.exp(terms - mx[:, None]).sum(axis=1))
    return out


@pytest.mark.parametrize("clamp", [None, 3.0])
def test_ptm_matches_brute_force(clamp):
    rng = np.random.default_rng(7)
    n_cb, D, streams = 5, 32, [(0, 3), (3, 7)]
    means = [rng.standard_normal((n_cb, D, b - a)).astype(np.float32) for a, b in streams]
    var = [(0.3 + rng.random((n_cb, D, b - a))).astype(np.float32) for a, b in streams]
    n_sen = 12
    w = rng.dirichlet(np.ones(D), size=(2, n_sen)).transpose(0, 2, 1)
    log_w = np.log(w).astype(np.float32)
    sen2cb = rng.integers(0, n_cb, n_sen)
    X = rng.standard_normal((40, 7)).astype(np.float32)
    pe = PTMEmissions(means, var, log_w, sen2cb, streams, topn=4, clamp=clamp)
    got = pe.log_emit(X, np.arange(n_sen))
    ref = _naive_ptm(X, means, var, log_w, sen2cb, streams, 4, clamp)
    # table log-add: < 1/128 nat per addition, 3 additions per stream
    np.testing.assert_allclose(got, ref, atol=0.05, rtol=0)
    # a subset of senones in another order gives the same columns (the clamp's reference,
    # the best density over the codebooks in use, changes with the subset: no clamp here)
    if clamp is None:
        sub = np.array([7, 2, 11])
        np.testing.assert_allclose(pe.log_emit(X, sub), got[:, sub], atol=1e-5)


def test_topn_kernel_is_a_stable_descending_sort_with_windows_and_nan():
    rng = np.random.default_rng(2)
    for D in (128, 20):
        s3 = rng.standard_normal((3, 30, D)).astype(np.float32)
        s3[1, 4, [7, 9, 15]] = 5.0                       # ties: lower index first
        lo, hi = np.array([0, 2, 10]), np.array([30, 25, 10])
        idx = np.empty((30, 3, 4), np.int32)
        val = np.empty((30, 3, 4), np.float32)
        assert K.topn_per_codebook(s3, 4, lo, hi, idx, val) == K.OK
        order = np.argsort(-s3, axis=2, kind="stable")[:, :, :4].transpose(1, 0, 2)
        for c in range(3):
            inside = (np.arange(30) >= lo[c]) & (np.arange(30) < hi[c])
            np.testing.assert_array_equal(idx[inside, c], order[inside, c])
            np.testing.assert_array_equal(val[inside, c],
                                          np.take_along_axis(s3[c], order[:, c], 1)[inside])
            assert np.all(val[~inside, c] == -np.inf)
        assert list(idx[4, 1, :3]) == [7, 9, 15]
        s3[2, 17, D - 3] = np.nan                        # not the row's first value
        assert K.topn_per_codebook(s3, 4, lo, np.array([30, 25, 30]), idx, val) == \
            K.BAD_VALUE
        assert idx[0, 0, 0] == 17


def test_top_densities_with_windows_match_brute_force(utt, aligner):
    """The engine's Gaussian selection (as the aligner calls it, with frame windows)
    against float64 log densities sorted by numpy."""
    u, _ = utt
    X = aligner.features(u.audio, u.sr)
    T = X.shape[0]
    em = aligner.emissions_
    cbs = np.array([0, 3, 17, 32])
    win = np.array([[0, T], [5, 60], [0, 0], [40, T]])
    top = em.top_densities(X, cbs, frames=win)
    np.testing.assert_array_equal(top["lo"], win[:, 0])
    np.testing.assert_array_equal(top["hi"], win[:, 1])
    m = aligner.model_
    floor = np.full((len(em.streams), T), -np.inf)
    for f, (a, b) in enumerate(em.streams):
        x = X[:, None, a:b].astype(np.float64)
        for k, c in enumerate(cbs):
            mu = m.means[f][c].astype(np.float64)
            var = m.variances[f][c].astype(np.float64)
            ll = -0.5 * (np.log(2 * np.pi * var).sum(axis=1)[None, :] +
                         (((x - mu) ** 2) / var).sum(axis=2))       # (T, 128)
            inside = np.zeros(T, bool)
            inside[win[k, 0]:win[k, 1]] = True
            ref = -np.sort(-ll, axis=1)[:, :4]
            got = top["val"][f, :, k]
            assert np.all(got[~inside] == -np.inf)
            np.testing.assert_allclose(got[inside], ref[inside], rtol=1e-4, atol=2e-2)
            # the indices give those densities (to float32 rounding)
            np.testing.assert_allclose(
                np.take_along_axis(ll, top["idx"][f, :, k].astype(np.int64), 1)[inside],
                ref[inside], rtol=1e-4, atol=2e-2)
            floor[f, inside] = np.maximum(floor[f, inside], ref[inside, 0])
    clamp = em.clamp
    np.testing.assert_allclose(top["floor"], floor - clamp, rtol=1e-5, atol=2e-2)


def test_ptm_input_errors():
    rng = np.random.default_rng(0)
    means = [rng.standard_normal((2, 8, 3)).astype(np.float32)]
    var = [np.ones((2, 8, 3), np.float32)]
    pe = PTMEmissions(means, var, np.zeros((1, 8, 4), np.float32), [0, 1, 1, 0], [(0, 3)])
    with pytest.raises(ParameterError, match="4 columns but the model's streams need 3"):
        pe.log_emit(np.zeros((5, 4), np.float32), [0])
    X = np.zeros((5, 3), np.float32)
    X[2, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN or inf at frame 2"):
        pe.log_emit(X, [0])
    with pytest.raises(ParameterError, match="senones must be"):
        pe.log_emit(np.zeros((5, 3), np.float32), [9])


# --------------------------------------------------------------------------- en-us

@pytest.fixture(scope="module")
def utt():
    from vqalign.datasets.synth import synthesize

    u = synthesize("could you tell me where the nearest post office is", seed=5)
    y16 = np.clip(np.round(u.audio * 32767), -32768, 32767).astype(np.int16)
    return u, y16


@pytest.fixture(scope="module")
def aligner():
    pytest.importorskip("pocketsphinx")
    from vqalign.align.sphinx import SphinxAligner

    return SphinxAligner("en-us")


def test_refine_keeps_words_and_local_scores_equal_single_decodes(utt, aligner):
    """refine=True: the batched local decodes give the same scores as one-by-one calls."""
    from vqalign.align.sphinx import SphinxAligner

    u, y16 = utt
    a = SphinxAligner("en-us", refine=True)
    seen = []
    orig = a._chain_scores

    def spy(jobs, cols):
        got = orig(jobs, cols)
        if len(jobs) > 1:
            single = np.array([orig([j], cols)[0] for j in jobs])
            seen.append((got, single))
        return got

    a._chain_scores = spy
    al = a.align(y16 / 32768.0, u.text, sr=16000)
    assert [s.label for s in al.words] == u.text.split()
    assert seen
    for got, single in seen:
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(single))
        ok = np.isfinite(single)
        np.testing.assert_allclose(got[ok], single[ok], rtol=0, atol=1e-3)


def test_senone_scores_match_pocketsphinx(tmp_path, utt, aligner):
    ps = pytest.importorskip("pocketsphinx")
    from vqalign.io.sphinx import LOG_SENDUMP_UNIT

    _, y16 = utt
    d = tmp_path / "sen"
    d.mkdir()
    dec = ps.Decoder(lm=None, senlogdir=str(d), compallsen=True, loglevel="FATAL")
    dec.set_align_text("hello")
    dec.start_utt()
    dec.process_raw(y16.tobytes(), full_utt=True)
    dec.end_utt()
    raw = (d / os.listdir(d)[0]).read_bytes()
    pos = raw.find(b"endhdr\n") + 7 + 4
    n_sen = aligner.model_.mdef.n_sen
    frames = []
    while pos < len(raw):                     # per frame: int16 count, int16 score per senone
        n = int(np.frombuffer(raw, "<i2", 1, pos)[0])
        assert n == n_sen
        frames.append(np.frombuffer(raw, "<i2", n, pos + 2))
        pos += 2 + 2 * n
    theirs = -np.array(frames, dtype=np.float64) * LOG_SENDUMP_UNIT   # 0 = frame's best
    ours = aligner.emissions_.log_emit(aligner.features(y16 / 32768.0, 16000), np.arange(n_sen))
    assert ours.shape == theirs.shape
    ours = ours - ours.max(axis=1, keepdims=True)
    err = np.abs(ours - theirs)
    # pocketsphinx quantizes to 0.1 nat and log-adds by table; measured median 0.13, p95 0.45
    assert np.median(err) < 0.25 and np.percentile(err, 95) < 0.8
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.995


def _ps_align(y16, text):
    import pocketsphinx as ps

    dec = ps.Decoder(lm=None, bestpath=False, beam=1e-200, pbeam=1e-200, wbeam=1e-150,
                     loglevel="FATAL")
    dec.set_align_text(text)
    dec.start_utt()
    dec.process_raw(y16.tobytes(), full_utt=True)
    dec.end_utt()
    dec.set_alignment()
    dec.reinit_feat()
    dec.start_utt()
    dec.process_raw(y16.tobytes(), full_utt=True)
    dec.end_utt()
    return [(w.name, w.start * 0.01, (w.start + w.duration) * 0.01)
            for w in dec.get_alignment() if not w.name.startswith(("<", "["))]


def test_alignment_agrees_with_pocketsphinx_and_truth(utt, aligner):
    from vqalign.align.alignment import Alignment

    u, y16 = utt
    a = aligner.align(y16 / 32768.0, u.text, sr=16000)
    assert isinstance(a, Alignment)
    words = [s.label for s in a.words]
    assert words == u.text.split()
    assert all(0.0 <= s.confidence <= 1.0 for s in a.words)
    assert {s.label for s in a.tiers["phones"]} <= set(aligner.model_.mdef.ciphones)
    ref = _ps_align(y16, u.text)
    b_ps = np.array([t for _, s, e in ref for t in (s, e)])
    b_vq = np.array([t for s in a.words for t in (s.start, s.end)])
    assert np.mean(np.abs(b_ps - b_vq) <= 0.0201) >= 0.8
    truth = [(s, e) for s, e, lab in u.words if lab]
    b_true = np.array([t for s, e in truth for t in (s, e)])
    err_vq = np.mean(np.abs(b_vq - b_true))
    err_ps = np.mean(np.abs(b_ps - b_true))
    assert err_vq < max(0.04, 1.5 * err_ps), (err_vq, err_ps)


def test_oov_uses_letter_to_sound_and_unpronounceable_word_is_named(utt, aligner):
    u, y16 = utt
    text = u.text.replace("office", "officx")
    a = aligner.align(y16 / 32768.0, text, sr=16000)
    assert [s.label for s in a.words][-2] == "officx"
    with pytest.raises(ParameterError, match="'офис'"):
        aligner.align(y16 / 32768.0, u.text + " офис", sr=16000)


def test_too_short_audio_and_bad_rate(aligner):
    y = np.zeros(1600, np.float32) + 1e-3 * np.random.default_rng(0).standard_normal(1600)
    with pytest.raises(AlignmentError, match="needs at least .* frames"):
        aligner.align(y.astype(np.float32), "could you tell me where", sr=16000)
    with pytest.raises(ParameterError, match="samprate"):
        aligner.align(y.astype(np.float32), "hello", sr=8000)


def test_load_sphinx_model_by_name_and_path():
    pytest.importorskip("pocketsphinx")
    from vqalign.align.sphinx import load_sphinx_model

    m = load_sphinx_model("en-us")
    assert load_sphinx_model(m.path).mdef.n_sen == m.mdef.n_sen
    with pytest.raises(ParameterError, match="does not exist"):
        load_sphinx_model("/no/such/model/dir")


def test_model_asking_for_unimplemented_front_end_is_named(tmp_path):
    from tests.test_sphinx_io import write_model
    from vqalign.align.sphinx import SphinxAligner

    d = tmp_path / "m"
    write_model(d)
    (d / "feat.params").write_text("-feat s2_4x\n-nfilt 20\n")
    with pytest.raises(ParameterError, match=r"m/feat.params asks for -feat s2_4x"):
        SphinxAligner(d).align(np.zeros(16000, np.float32) + 1e-3, "ab", sr=16000)


def _senone_scores_reference(idx, val, floor, log_w, sen_cb, lo, hi, table):
    """The kernel's sum in plain Python, senone by senone, in float32 as it does."""
    from vqalign.hmm._ptm_kernels import LOGADD_STEP

    F, T, _, topn = idx.shape
    out = np.zeros((T, sen_cb.size), np.float32)
    for t in range(T):
        for s, c in enumerate(sen_cb):
            if not lo[c] <= t < hi[c]:
                out[t, s] = -np.inf
                continue
            for f in range(F):
                fl = floor[f, t]
                r = log_w[f, idx[f, t, c, 0], s] + max(val[f, t, c, 0], fl)
                for k in range(1, topn):
                    v = log_w[f, idx[f, t, c, k], s] + max(val[f, t, c, k], fl)
                    d = abs(v - r)
                    r = max(r, v)
                    q = int(d * LOGADD_STEP)
                    if q < table.size:
                        r = np.float32(r + table[q])
                out[t, s] = np.float32(out[t, s] + r)
    return out


def test_senone_scores_grouped_by_codebook_equal_the_senone_by_senone_sum():
    """The PTM emissions (senones grouped by codebook in the kernel, written to their own
    columns) against the plain sum per senone, bit for bit, with frame windows."""
    from vqalign.hmm import ptm

    rng = np.random.default_rng(4)
    F, T, n_cb, topn, n_dens, n_sen = 2, 23, 5, 4, 16, 17
    idx = rng.integers(0, n_dens, (F, T, n_cb, topn)).astype(np.int32)
    val = rng.normal(-20, 5, (F, T, n_cb, topn)).astype(np.float32)
    floor = rng.normal(-26, 2, (F, T)).astype(np.float32)
    lo = rng.integers(0, 8, n_cb)
    hi = lo + rng.integers(0, T, n_cb)
    log_mixw = np.log(rng.dirichlet(np.ones(n_dens), (F, n_sen)).transpose(0, 2, 1)
                      ).astype(np.float32)                       # (F, n_dens, n_sen)
    sen_cb = rng.integers(0, n_cb, n_sen)                        # shuffled codebooks
    em = ptm.PTMEmissions.__new__(ptm.PTMEmissions)
    em.log_mixw, em.sen2cb = log_mixw, sen_cb
    em._check_senones = lambda s: np.asarray(s, np.int64)
    top = {"codebooks": np.arange(n_cb), "lo": lo, "hi": hi, "idx": idx, "val": val,
           "floor": floor}
    got = em.senone_log_emit(top, np.arange(n_sen))
    want = _senone_scores_reference(idx, val, floor, log_mixw, sen_cb, lo, hi, ptm._LOGADD)
    np.testing.assert_array_equal(got, want)
    assert np.isinf(got).any() and np.isfinite(got).any()
