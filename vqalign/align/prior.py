"""vqalign's own English model: the speaker-independent prior of single-file alignment
without the CMU Sphinx model.

A model self-trained on one utterance from a flat start has a few hundred frames to learn
some forty phones from; on real speech it loses its place (TIMIT sample, 40 files: 76.6
ms mean word-boundary error). The CMU Sphinx en-us model fixes that by the median of three
(:mod:`vqalign.align.second_opinion`); without it (``reference="none"``, or "auto" when
pocketsphinx is missing) the same median is taken with this prior in its place: a
tied-mixture model of vqalign's own features, trained by ``align-corpus`` on synthetic
English that can be shipped (Festival and eSpeak NG voices reading sentences cut from
Debian's license texts; ``scripts/build_prior_corpus.py`` builds that corpus). No
recording of a person was used, and nothing of the TIMIT sample.

The prior's file is ``vqalign/align/data/prior_en.npz`` (an :meth:`Aligner.save` file).
"""

from __future__ import annotations

import functools
from pathlib import Path

from vqalign.align import second_opinion
from vqalign.exceptions import ParameterError

#: the shipped prior (an Aligner.save file)
PRIOR_FILE = Path(__file__).parent / "data" / "prior_en.npz"
#: what the prior is called in reasons and diagnostics
NAME = "vqalign's English prior"

_LOADED: dict = {}


def check_reference(reference) -> None:
    """A ParameterError naming the accepted values unless ``reference`` is one."""
    if reference not in ("auto", "sphinx", "none", None, "flat"):
        raise ParameterError(f"reference={reference!r}; use 'auto' (the Sphinx en-us model's "
                             "opinions when pocketsphinx is installed), 'sphinx' (required), "
                             "'none' (vqalign's own English prior) or 'flat' (the flat-start "
                             "model alone)")


def uses_prior(reference) -> bool:
    """Whether an Aligner's ``reference`` setting takes the prior's opinions: "none"
    (or None), and "auto" when pocketsphinx is not installed."""
    if reference in ("none", None):
        return True
    return reference == "auto" and not second_opinion.available()


def prior_aligner(load):
    """The prior as a fitted Aligner, loaded once per process with ``load(path)``
    (:meth:`vqalign.align.Aligner.load`; passed in, so this module does not import the
    Aligner)."""
    if "aligner" not in _LOADED:
        a = load(PRIOR_FILE)
        a.reference = "flat"   # its own alignment only: no second opinion of its own
        a.check_params()
        _LOADED["aligner"] = a
    return _LOADED["aligner"]


def ref_name(reference) -> str:
    """"prior" when the setting ``reference`` takes the prior's opinions, else "sphinx"."""
    return "prior" if uses_prior(reference) else "sphinx"


def for_setting(reference, load):
    """``own`` of :func:`second_opinion.opinions` under an Aligner's ``reference``
    setting: the prior's :func:`source`, or None (the Sphinx model's opinions). "auto"
    without pocketsphinx warns once that the documented default cannot run."""
    if not uses_prior(reference):
        return None
    if reference == "auto":
        second_opinion.warn_missing_sphinx()
    return source(load)


def in_median(reference, load):
    """``prior`` of :func:`second_opinion.with_reference` under an Aligner's ``reference``
    setting: when the Sphinx model gives the two other opinions, the prior's
    :func:`source` takes the flat start's place in their median; None otherwise (the
    prior already gives them, or "flat").

    Measured on the 40 TIMIT dev files (``vqalign bench timit``, word / phone boundary
    mean): flat start, Sphinx-seeded, Sphinx 18.8 / 15.0 ms; prior, Sphinx-seeded, Sphinx
    17.5 / 13.9 ms (pocketsphinx 23.6 / 17.7 ms); in white noise at 10 dB 31.2 -> 30.9 ms,
    babble at 10 dB 30.5 -> 29.8 ms. The range of the prior's, the seeded and the Sphinx
    estimates of a word's edges ranks its errors over 50 ms better than the range with the
    flat start's: AUC 0.75 against 0.65 (TIMIT), 0.81 against 0.73 (devdata synth)."""
    if reference == "flat" or uses_prior(reference):
        return None
    return source(load)


def source(load):
    """``own(p, hop_s) -> (Alignment, segments)`` for :func:`second_opinion.opinions`:
    the prior's alignment of a prepared utterance and its phone segmentation
    (:func:`second_opinion.model_reference`)."""
    return functools.partial(second_opinion.model_reference,
                             align=prior_aligner(load).align, name=NAME)
