"""`vqalign bench timit`: its figures against an independent computation on a tiny
synthesized folder (exact TextGrids), bad references named and counted, seeded noise at
the asked SNR, and (when the TIMIT dev set is present) the measured levels on real speech."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from vqalign.bench import timit
from vqalign.cli import main

ROOT = Path(__file__).resolve().parents[1]
TIMIT = Path(os.environ.get("VQALIGN_DEVDATA", ROOT.parent / "shared" / "devdata")) / "timit"
# sentences outside vqalign.datasets.sentences
SENTENCES = ["the old boat drifted slowly toward the shore",
             "she found three copper coins under the bench",
             "a cold wind blew across the empty field",
             "my brother painted the fence a bright green"]


def _write_textgrid(path, tiers, end):
    from vqalign.io.textgrid import write_textgrid

    write_textgrid(path, tiers, end, overwrite=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four good synthesized utterances (two voices) and three bad references."""
    import soundfile as sf

    from vqalign.datasets.synth import synthesize

    root = tmp_path_factory.mktemp("timitlike")
    utts = []
    for k, s in enumerate(SENTENCES):
        u = synthesize(s, voice=("adam", "clara")[k % 2], seed=700 + k)
        u.id = f"{u.voice}/u{k}"
        (root / u.voice).mkdir(exist_ok=True)
        sf.write(root / f"{u.id}.wav", u.audio, u.sr, subtype="PCM_16")
        (root / f"{u.id}.txt").write_text(u.text + "\n", encoding="utf-8")
        u.write_textgrid(root / f"{u.id}.TextGrid")
        utts.append(u)
    bad = root / "bad"
    bad.mkdir()
    u = utts[0]
    for name in ("differ", "notier", "phoneset"):
        sf.write(bad / f"{name}.wav", u.audio, u.sr, subtype="PCM_16")
        (bad / f"{name}.txt").write_text(u.text + "\n", encoding="utf-8")
    words = [(s, e, "goat" if lab == "boat" else lab) for s, e, lab in u.words]
    _write_textgrid(bad / "differ.TextGrid", {"words": words, "phones": u.phones}, u.duration)
    _write_textgrid(bad / "notier.TextGrid", {"phones": u.phones}, u.duration)
    phones = [(s, e, "XX" if lab == "B" else lab) for s, e, lab in u.phones]
    _write_textgrid(bad / "phoneset.TextGrid", {"words": u.words, "phones": phones},
                    u.duration)
    return {"root": root, "utts": utts}


@pytest.fixture(scope="module")
def sphinx_run(folder):
    pytest.importorskip("pocketsphinx")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["bench", "timit", "--corpus", str(folder["root"]), "--modes",
                   "sphinx,pocketsphinx", "--json"])
    assert rc == 0
    return json.loads(out.getvalue())


def _independent(utts, hyps, confs):
    """Figures from the definition, sharing no code with vqalign.bench: words paired in
    order (forced alignment keeps every word), errors hyp - ref."""
    from sklearn.metrics import roc_auc_score

    errs, starts, ends, pause, between, first, last = [], [], [], [], [], [], []
    worst, conf, bad = [], [], []
    for u, h, c in zip(utts, hyps, confs):
        ref = [(s, e, lab) for s, e, lab in u.words if lab]
        hw = [(s, e, lab) for s, e, lab in h if lab]
        assert [x[2] for x in hw] == [x[2] for x in ref]
        fe = []
        for i, ((hs, he, _), (rs, re_, _)) in enumerate(zip(hw, ref)):
            fe += [hs - rs, he - re_]
            starts.append(hs - rs)
            ends.append(he - re_)
            touch_before = i > 0 and abs(ref[i - 1][1] - rs) <= 0.010
            touch_after = i + 1 < len(ref) and abs(ref[i + 1][0] - re_) <= 0.010
            (between if touch_before else pause).append(abs(hs - rs))
            (between if touch_after else pause).append(abs(he - re_))
            conf.append(c[i])
            bad.append(max(abs(hs - rs), abs(he - re_)) > 0.05)
        first.append(abs(hw[0][0] - ref[0][0]))
        last.append(abs(hw[-1][1] - ref[-1][1]))
        errs += fe
        worst.append(1000 * np.mean(np.abs(fe)))
    a = 1000 * np.abs(errs)
    return {"mean": a.mean(), "median": np.median(a), "p90": np.percentile(a, 90),
            "within20": 100 * np.mean(a <= 20 + 1e-6),
            "bias_start": 1000 * np.mean(starts), "bias_end": 1000 * np.mean(ends),
            "pause": 1000 * np.mean(pause), "n_pause": len(pause),
            "between": 1000 * np.mean(between), "n_between": len(between),
            "first": 1000 * np.mean(first), "last": 1000 * np.mean(last),
            "auc": roc_auc_score(bad, -np.asarray(conf)) if 0 < sum(bad) < len(bad)
            else float("nan"),
            "worst": max(worst)}


def test_sphinx_mode_figures_match_an_independent_computation(folder, sphinx_run):
    from vqalign.align import Aligner

    sph = Aligner.from_sphinx("en-us")
    hyps, confs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for u in folder["utts"]:
            a = sph.align(u.audio, u.text, sr=u.sr)
            hyps.append(a.tier("words"))
            confs.append([s.confidence for s in a.tiers["words"]])
    ind = _independent(folder["utts"], hyps, confs)
    s = sphinx_run["modes"]["sphinx"]
    # only the good files are scored: 4 utterances and the phone-set one (words only)
    assert sphinx_run["n_utts"] == 5
    print(ind, s["words"], s["bias"], s["context"], s["edges"])
    # the phone-set file repeats utterance 0, so pool it twice in the reference figures
    ind2 = _independent(folder["utts"] + folder["utts"][:1], hyps + hyps[:1],
                        confs + confs[:1])
    w = s["words"]
    assert w["mean_ms"] == pytest.approx(ind2["mean"], abs=1e-6)
    assert w["median_ms"] == pytest.approx(ind2["median"], abs=1e-6)
    assert w["p90_ms"] == pytest.approx(ind2["p90"], abs=1e-6)
    assert w["pct_within_ms"]["20"] == pytest.approx(ind2["within20"], abs=1e-6)
    assert s["bias"]["word_start"]["signed_mean_ms"] == pytest.approx(ind2["bias_start"],
                                                                     abs=1e-6)
    assert s["bias"]["word_end"]["signed_mean_ms"] == pytest.approx(ind2["bias_end"], abs=1e-6)
    assert s["context"]["pause"]["mean_ms"] == pytest.approx(ind2["pause"], abs=1e-6)
    assert s["context"]["pause"]["n"] == ind2["n_pause"]
    assert s["context"]["between"]["mean_ms"] == pytest.approx(ind2["between"], abs=1e-6)
    assert s["context"]["between"]["n"] == ind2["n_between"]
    assert s["edges"]["first_start"]["mean_ms"] == pytest.approx(ind2["first"], abs=1e-6)
    assert s["edges"]["last_end"]["mean_ms"] == pytest.approx(ind2["last"], abs=1e-6)
    auc = s["confidence"]["words_50ms"]["auc"]
    assert (auc is None and ind2["auc"] != ind2["auc"]) or auc == pytest.approx(ind2["auc"])
    assert s["worst"][0]["words_mean_ms"] == pytest.approx(ind2["worst"], abs=1e-6)
    # phones scored on the good files only (upper-case ARPAbet against the Sphinx phones)
    assert s["phones"]["n_boundaries"] > 0
    # pocketsphinx ran in the same run, on the same files
    assert sphinx_run["modes"]["pocketsphinx"]["n_failed"] == 0
    assert sphinx_run["modes"]["pocketsphinx"]["words"]["n_boundaries"] == w["n_boundaries"]


def test_bad_references_are_named_counted_and_skipped(folder, sphinx_run):
    probs = {p["kind"]: p["message"] for p in sphinx_run["problems"]}
    assert sphinx_run["n_problems"] == 3
    assert "differ.TextGrid" in probs["words differ"]
    assert "'goat' vs 'boat'" in probs["words differ"]
    assert "notier.TextGrid" in probs["missing tier"] and "'words'" in probs["missing tier"]
    assert "phoneset.TextGrid" in probs["phone set"] and "XX" in probs["phone set"]
    files = sphinx_run["modes"]["sphinx"]["per_file"]
    assert "bad/phoneset" in files and "bad/differ" not in files and "bad/notier" not in files


def test_check_reference_missing_phones_tier_keeps_words():
    ref = {"words": [(0.1, 0.4, "hello"), (0.4, 0.8, "there")]}
    tiers, probs = timit.check_reference(ref, "Hello, there!", "x.TextGrid")
    assert tiers == {"words": ref["words"]}
    assert len(probs) == 1 and probs[0]["kind"] == "missing tier"
    assert "x.TextGrid: no 'phones' tier" in probs[0]["message"]
    ph = {**ref, "phones": [(0.0, 0.1, "pau"), (0.1, 0.2, "hh"), (0.2, 0.3, "q"),
                            (0.3, 0.4, "ow1")]}
    tiers, probs = timit.check_reference(ph, "hello there", "y.TextGrid")
    assert probs == []
    assert [lab for _, _, lab in tiers["phones"]] == ["sil", "HH", "Q", "OW"]


def test_noise_is_seeded_and_at_the_asked_snr():
    rng = np.random.default_rng(3)
    y = (0.1 * np.sin(np.arange(16000) * 0.05) * rng.uniform(0.2, 1, 16000)).astype(np.float32)
    n = rng.standard_normal(16000)
    for snr in (0.0, 10.0, 20.0):
        z = timit.mix_at_snr(y, n, snr).astype(np.float64)
        d = z - y
        assert 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(d ** 2)) == \
            pytest.approx(snr, abs=1e-3)
    data = [{"id": f"u{k}", "audio": y.copy()} for k in range(7)]
    again = [{"id": f"u{k}", "audio": y.copy()} for k in range(7)]
    desc = timit.add_noise(data, "babble", 10.0, seed=5)
    timit.add_noise(again, "babble", 10.0, seed=5)
    assert desc["kind"] == "babble" and "5 talkers" in desc["source"]
    for a, b in zip(data, again):
        assert np.array_equal(a["audio"], b["audio"])
        assert not np.array_equal(a["audio"], y)
    other = [{"id": "u0", "audio": y.copy()}]
    timit.add_noise(other, "white", 10.0, seed=6)
    assert not np.array_equal(other[0]["audio"], data[0]["audio"])


def test_bad_arguments(folder, tmp_path):
    from vqalign.exceptions import ParameterError

    with pytest.raises(ParameterError, match="unknown mode.*nope"):
        timit.parse_modes("default,nope")
    assert timit.parse_modes("pocketsphinx,default") == ["default", "pocketsphinx"]
    assert main(["bench", "timit", "--corpus", str(folder["root"]), "--noise", "white"]) == 2
    assert main(["bench", "timit", "--corpus", str(tmp_path / "none")]) == 2
    only_bad = tmp_path / "onlybad"
    shutil.copytree(folder["root"] / "bad", only_bad)
    for f in only_bad.glob("phoneset.*"):
        f.unlink()
    with pytest.raises(ParameterError, match="no utterance .* usable reference"):
        timit.load_corpus(only_bad, None, [])


# ----------------------------------------------------------------------------- real speech
@pytest.fixture(scope="module")
def timit_dev():
    if not (TIMIT / "info.tsv").is_file():
        pytest.skip(f"TIMIT dev set not found at {TIMIT} (set VQALIGN_DEVDATA)")
    return TIMIT


def test_timit_dev_sphinx_and_pocketsphinx(timit_dev, capsys):
    """The two fast modes on the 40 dev files. Measured (2026-12-07): sphinx words mean
    18.5 ms, phones 14.8 ms, word-start signed median +0.3 ms, first-word start 10.7 ms
    mean error; pocketsphinx 23.6 / 17.7 ms, -7.5 ms, 59.3 ms. No file has a reference
    problem (the glottal stop q is accepted)."""
    pytest.importorskip("pocketsphinx")
    assert main(["bench", "timit", "--corpus", str(timit_dev), "--modes",
                 "sphinx,pocketsphinx", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_utts"] == 40 and r["n_problems"] == 0
    assert len(r["voices"]) == 4
    sph, ps = r["modes"]["sphinx"], r["modes"]["pocketsphinx"]
    for s in (sph, ps):
        assert s["n_failed"] == 0
        # every reference phone of the dictionary's set can pair (q never does)
        assert s["phones"]["n_missing"] < 0.2 * s["phones"]["n_boundaries"]
    assert sph["words"]["mean_ms"] < 21.0 and sph["phones"]["mean_ms"] < 17.0
    assert ps["words"]["mean_ms"] < 27.0 and ps["phones"]["mean_ms"] < 20.0
    # no early bias left (frame centres; pause edges where the sound starts)
    assert abs(sph["bias"]["word_start"]["signed_median_ms"]) < 4.0
    assert abs(sph["bias"]["phone_boundaries"]["signed_median_ms"]) < 4.0
    assert sph["edges"]["first_start"]["mean_ms"] < 16.0
    assert sph["words"]["mean_ms"] < 0.9 * ps["words"]["mean_ms"]
