"""MAP adaptation of a CMU Sphinx model (SphinxAligner.adapt) and its saved model folder.

References: EM's own guarantee (with the graph fixed and weights only, the emission is
linear in the weights and the prior's mode is the Sphinx model, so the data
log-likelihood cannot fall); the posteriors' sums (one per frame and stream); the MAP
limits (a huge prior weight keeps the Sphinx weights); a saved model read back by the
model reader; the synthesizer's exact word times. Corpus: three sentences of
vqalign.datasets.synth (seeds fixed). Needs pocketsphinx (the en-us model).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from vqalign.exceptions import ParameterError

pytest.importorskip("pocketsphinx")

SENTENCES = ("the cat sat on the mat", "please open the window",
             "she bought seven green apples")


@pytest.fixture(scope="module")
def corpus():
    from vqalign.datasets.synth import synthesize

    out = []
    for k, text in enumerate(SENTENCES):
        u = synthesize(text, seed=11 + k)
        out.append((u.audio.astype(np.float32), u.sr, text, u))
    return out


@pytest.fixture(scope="module")
def base():
    from vqalign.align.sphinx import SphinxAligner

    return SphinxAligner("en-us")


@pytest.fixture(scope="module")
def adapted(base, corpus):
    return base.adapt([c[:3] for c in corpus], n_iter=2)


def test_weights_em_does_not_lower_the_likelihood(adapted):
    h = adapted.history_
    print("log-likelihood per step:", [round(x["log_likelihood"], 2) for x in h])
    assert len(h) == 3 and h[0]["n_frames"] > 300
    ll = [x["log_likelihood"] for x in h]
    obj = [x["objective"] for x in h]
    # the table log-add of the emissions errs by < 1/128 nat per addition
    tol = 1e-3 * h[0]["n_frames"]
    assert all(b >= a - tol for a, b in zip(ll, ll[1:]))
    assert all(b >= a - tol for a, b in zip(obj, obj[1:]))
    assert ll[-1] > ll[0] + 1.0                         # it does learn something


def test_adaptation_is_reproducible(base, corpus, adapted):
    again = base.adapt([c[:3] for c in corpus], n_iter=2)
    np.testing.assert_array_equal(again.model_.log_mixw, adapted.model_.log_mixw)
    assert [x["log_likelihood"] for x in again.history_] == \
        [x["log_likelihood"] for x in adapted.history_]


def test_posteriors_sum_to_frames_and_map_limits(base, corpus):
    """E-step counts: one per frame and stream; tau -> inf keeps the Sphinx weights."""
    items = [corpus[0][:3]]
    stiff = base.adapt(items, n_iter=1, tau=1e9)
    w0 = np.exp(base.model_.log_mixw.astype(np.float64))
    w0 /= w0.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.exp(stiff.model_.log_mixw.astype(np.float64)), w0,
                               rtol=1e-4, atol=1e-7)
    from vqalign.hmm import viterbi
    from vqalign.hmm.ptm import PTMStatistics

    X, senones, topo = base._adapt_graph(*items[0])
    em = base.emissions_
    cbs = np.unique(em.sen2cb[senones]).astype(np.int64)
    top = em.top_densities(X, cbs)
    path, _ = viterbi(em.senone_log_emit(top, senones), topo, hop_s=0.01)
    st = PTMStatistics(em, means=True).add_path(X, top, senones[topo.emit_ids[path]])
    st = {"counts": st.counts, "g": st.g, "gx": st.gx}
    T = X.shape[0]
    F = len(em.streams)
    np.testing.assert_allclose(st["counts"].sum(axis=(1, 2)), np.full(F, T), rtol=1e-9)
    for g in st["g"]:
        assert abs(g.sum() - T) < 1e-6 * T
    # only the senones on the path have counts, and only in their phone's codebook
    seen = np.flatnonzero(st["counts"].sum(axis=(0, 1)) > 0)
    assert set(seen.tolist()) <= set(senones.tolist())
    # against a frame-by-frame reference from the path and the top-N densities
    ref = np.zeros_like(st["counts"])
    ref_gx = [np.zeros_like(g) for g in st["gx"]]
    for t in range(T):
        s_ = senones[topo.emit_ids[path[t]]]
        c = int(np.searchsorted(cbs, em.sen2cb[s_]))
        for f, (a, b) in enumerate(em.streams):
            ix = top["idx"][f, t, c]
            z = em.log_mixw[f][ix, s_] + np.maximum(top["val"][f, t, c], top["floor"][f, t])
            p = np.exp(z - np.logaddexp.reduce(z.astype(np.float64)))
            for k, d in enumerate(ix):
                ref[f, d, s_] += p[k]
                ref_gx[f][em.sen2cb[s_], d] += p[k] * X[t, a:b]
    np.testing.assert_allclose(st["counts"], ref, rtol=1e-4, atol=1e-6)   # float32 sums
    for got, want in zip(st["gx"], ref_gx):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_means_update_moves_only_seen_codebooks(base, corpus):
    items = [c[:3] for c in corpus[:2]]
    m = base.adapt(items, update="means", n_iter=1)
    h = m.history_
    assert h[1]["log_likelihood"] >= h[0]["log_likelihood"] - 1e-3 * h[0]["n_frames"]
    moved = [np.any(a != b, axis=(1, 2)) for a, b in zip(m.model_.means, base.model_.means)]
    sil = base.model_.mdef.sil
    assert moved[0][sil]                       # silence is on every path
    used = set()
    for _y, _sr, text in items:
        used |= {base.model_.mdef.ci_index[p] for w in text.split() for p in base.pronounce(w)}
    assert not any(moved[0][c] for c in range(len(moved[0])) if c not in used | {sil})


def test_save_load_round_trip_and_alignment(adapted, corpus, tmp_path):
    from vqalign.align.sphinx import SphinxAligner

    d = adapted.save(tmp_path / "m")
    back = SphinxAligner(str(d))
    np.testing.assert_allclose(back.model_.log_mixw, adapted.model_.log_mixw, rtol=0,
                               atol=2e-6)
    for a, b in zip(back.model_.means, adapted.model_.means):
        np.testing.assert_array_equal(a, b)
    assert back.model_.adapted["adapt"]["tau"] == 10.0
    assert back.model_.adapted["feat_params"]["lowerf"] == "130"
    y, sr, text, u = corpus[1]
    a1 = adapted.align(y, text, sr=sr)
    a2 = back.align(y, text, sr=sr)
    assert [w[:2] for w in a1.tier("words")] == [w[:2] for w in a2.tier("words")]
    truth = [(w[0], w[1]) for w in u.words if w[2] not in ("", "sil", "<sil>")]
    got = [w[:2] for w in a2.tier("words")]
    assert len(got) == len(truth)
    err = np.abs(np.array(got) - np.array(truth)).mean()
    print(f"adapted model, synth truth: mean word boundary error {1000 * err:.1f} ms")
    assert err < 0.05
    with pytest.raises(ParameterError, match="exists and is not empty"):
        adapted.save(d)


def test_mismatched_feature_settings_are_refused_naming_both(adapted, tmp_path):
    from vqalign.io.sphinx import load_sphinx_model

    d = adapted.save(tmp_path / "m")
    fp = (d / "feat.params").read_text().replace("-lowerf 130", "-lowerf 200")
    (d / "feat.params").write_text(fp)
    with pytest.raises(ParameterError, match=r"-lowerf 130 .*-lowerf 200"):
        load_sphinx_model(str(d))


def test_bad_adaptation_input(base):
    with pytest.raises(ParameterError, match="corpus is empty"):
        base.adapt([])
    with pytest.raises(ParameterError, match="update='bogus'"):
        base.adapt([(np.zeros(16000, np.float32), 16000, "a")], update="bogus")
    with pytest.raises(ParameterError, match="tau must be a positive"):
        base.adapt([(np.zeros(16000, np.float32), 16000, "a")], tau=0)
    with pytest.raises(ParameterError, match="none of the 1 utterances"):
        base.adapt([(np.zeros(800, np.float32) + 1e-3, 16000,
                     "a long transcript that cannot fit in fifty milliseconds")])


def test_align_corpus_adapt_cli(corpus, tmp_path, capsys):
    import soundfile as sf

    from vqalign.cli import main

    src = tmp_path / "corpus"
    src.mkdir()
    for k, (y, sr, text, _) in enumerate(corpus[:2]):
        sf.write(src / f"u{k}.wav", y, sr)
        (src / f"u{k}.txt").write_text(text)
    out = tmp_path / "out"
    rc = main(["align-corpus", str(src), "--out", str(out), "--model", "sphinx:en-us",
               "--adapt", "--adapt-iter", "1", "--format", "TextGrid,json"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "aligned 2, failed 0" in printed
    assert (out / "u0.TextGrid").is_file() and (out / "u1.json").is_file()
    assert (out / "sphinx_adapted" / "mixture_weights").is_file()
    assert main(["align", str(src / "u0.wav"), str(src / "u0.txt"), "--model",
                 f"sphinx:{out / 'sphinx_adapted'}", "-o", str(tmp_path / "a.json")]) == 0
    assert main(["align-corpus", str(src), "--out", str(tmp_path / "o2"), "--adapt"]) != 0
    assert "give --model sphinx:en-us" in capsys.readouterr().err


def test_bench_agree_adapted_mode_and_paired_speed(corpus, tmp_path, capsys):
    import json

    import soundfile as sf

    from vqalign.cli import main

    src = tmp_path / "c"
    src.mkdir()
    for k, (y, sr, text, _) in enumerate(corpus[1:2]):
        sf.write(src / f"u{k}.wav", y, sr)
        (src / f"u{k}.txt").write_text(text)
    assert main(["bench", "agree", "--corpus", str(src), "--model", "sphinx:en-us",
                 "--adapt", "weights", "--modes", "single", "--no-plot",
                 "--speed-rounds", "1", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["modes"]["adapted"]["overall"]["n_boundaries"] == 2 * 4
    h = rep["adapt"]["history"]
    assert h[-1]["log_likelihood"] >= h[0]["log_likelihood"]
    sp = rep["paired_speed"]
    assert len(sp["speedups"]) == 1
    (ps_s,), (vq_s,) = sp["pocketsphinx_s"], sp["vqalign_s"]
    assert sp["median_speedup"] == pytest.approx(ps_s / vq_s, rel=1e-9)
    # our own clock on the same recording, both sides warm, one call each: the reported
    # times and ratio agree within a generous factor 4 (a loaded machine)
    from argparse import Namespace

    from vqalign.align.cli import make_aligner
    from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
    y, sr, text, _ = corpus[1]
    own = []
    for a in (PocketsphinxAligner(), make_aligner(Namespace(model="sphinx:en-us"))):
        a.align(y, text, sr=sr)
        t0 = time.perf_counter()
        a.align(y, text, sr=sr)
        own.append(time.perf_counter() - t0)
    print("reported", ps_s, vq_s, "own", own)
    assert own[0] / 4 < ps_s < own[0] * 4 and own[1] / 4 < vq_s < own[1] * 4
    assert (own[0] / own[1]) / 4 < sp["median_speedup"] < (own[0] / own[1]) * 4
    assert sp["threads"] == {"vqalign": 1, "pocketsphinx": 1}
    assert main(["bench", "agree", "--corpus", str(src), "--adapt", "weights",
                 "--no-plot"]) != 0
    assert "--model sphinx:en-us" in capsys.readouterr().err
