"""vqalign's own English prior (vqalign.align.prior): the shipped model, and the median of
three it makes without the Sphinx model, against the built-in synthesizer's exact times
(a synthesizer the prior never heard: it was trained on Festival and eSpeak NG voices)."""

import warnings

import numpy as np
import pytest

from tests.naive import word_errors_ms
from vqalign.align import Aligner, prior
from vqalign.align.recipe import REL_DUR
from vqalign.datasets.synth import synthesize_corpus
from vqalign.exceptions import ParameterError


def test_the_shipped_prior_is_a_fitted_english_phone_model():
    a = Aligner.load(prior.PRIOR_FILE)
    assert a.model_ is not None and a.unit == "phones"
    assert a.train_seconds_ > 3600           # hours of speech: not a small corpus
    # as an opinion it never asks for opinions itself (a corpus model's median would)
    assert prior.prior_aligner(Aligner.load).reference == "flat"
    syms = {s.rstrip("012") for s in a.model_.symbols_}
    assert set(REL_DUR) <= syms               # every ARPAbet phone has a trained model


def test_reference_none_is_the_median_with_the_prior_and_beats_the_flat_start():
    utts = synthesize_corpus(n=3, seed=5)
    flat, own = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for u in utts:
            f = Aligner(reference="flat").align(u.audio, u.text, sr=u.sr)
            n = Aligner(reference="none").align(u.audio, u.text, sr=u.sr)
            assert "reference" not in f.diagnostics
            ref = n.diagnostics["reference"]
            assert "vqalign English prior" in ref["method"]
            assert set(ref["words"]) == {"flat", "seeded", "prior"}
            flat.append(word_errors_ms(f.words, u.words))
            own.append(word_errors_ms(n.words, u.words))
    flat, own = np.concatenate(flat), np.concatenate(own)
    # measured (seed 5, these 3 utterances): flat 11.6 ms, none 5.5 ms mean
    assert own.mean() < flat.mean()
    assert own.mean() < 10.0


@pytest.mark.parametrize("bad", ["prior", "yes", 0])
def test_reference_values_are_named(bad):
    with pytest.raises(ParameterError, match="'none' \\(vqalign's own English prior\\)"):
        prior.check_reference(bad)
