"""vqalign.phones (every phone table once) and the public scoring library vqalign.eval."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from vqalign import phones as P
from vqalign.cli import main
from vqalign.exceptions import FormatError, ParameterError

DATA = Path(__file__).parent / "data" / "bench"


def test_every_arpabet_phone_has_one_broad_class():
    assert len(P.ARPABET) == 39
    assert set(P.PHONE_CLASS) == P.ARPABET
    assert set(P.PHONE_CLASS.values()) == set(P.CLASSES) - {"silence"}
    assert P.phone_class("ZH") == "fricative" and P.phone_class("?x") == "other"


def test_class_sets_are_subsets_of_their_classes():
    assert P.FRICATIVES == {"CH", "JH", "DH", "F", "HH", "S", "SH", "TH", "V", "Z", "ZH"}
    assert P.VOWEL_LIKE - {"L", "R", "W", "Y"} == {p for p in P.ARPABET
                                                   if P.phone_class(p) == "vowel"}
    # the confidence cue's set is narrower than the class: no DH, V, HH
    arpa_low_tilt = {p for p in P.LOW_TILT_FRICATIVES if p.isupper()}
    assert arpa_low_tilt < P.FRICATIVES and not arpa_low_tilt & {"DH", "V", "HH"}
    assert {p for p in P.VOWELS if p.isupper()} <= P.ARPABET


@pytest.mark.parametrize("table", ["FESTIVAL_TO_ARPABET", "ESPEAK_TO_ARPABET",
                                   "IPA_TO_ARPABET"])
def test_scoring_maps_land_in_arpabet(table):
    values = set(getattr(P, table).values())
    assert values <= P.ARPABET | {"sil"}, values - P.ARPABET


def test_g2p_map_gives_arpabet_pronunciations():
    for ipa, phones in P.ESPEAK_IPA_TO_ARPABET.items():
        assert 1 <= len(phones) <= 2 and set(phones) <= P.ARPABET, ipa


def test_the_two_phone_set_detectors_differ_where_documented():
    # eSpeak mnemonics made of IPA-looking ASCII letters: the IPA-aware detector reads
    # IPA ("a" -> AA), the older one eSpeak ("a" -> AE); unknown labels differ too
    labs = ["h", "a", "l"]
    assert P.detect_phoneset(labs) == "ipa" and P.to_arpabet("a", "ipa") == "AA"
    assert P.detect_phoneset_no_ipa(labs) == "espeak" and P.map_phone("a", "espeak") == "AE"
    assert P.to_arpabet("Q", "arpabet") == "?Q" and P.map_phone("Q", "arpabet") == "Q"
    with pytest.raises(ParameterError, match="phoneset='klingon' is not one of"):
        P.to_arpabet("a", "klingon")
    with pytest.raises(ParameterError, match="phoneset='ipa' is not one of auto, arpabet, "
                                             "festival, espeak"):
        P.map_phone("a", "ipa")


def test_misaki_examples_from_its_documentation():
    # examples of misaki's EN_PHONES.md / README, against CMUdict's pronunciations
    assert P.misaki_to_arpabet("kˈOkəɹO") == ["K", "OW", "K", "AH", "R", "OW"]  # Kokoro
    assert P.misaki_to_arpabet("hˈA") == ["HH", "EY"]                           # hey
    assert P.misaki_to_arpabet("ʤˈʌmp") == ["JH", "AH", "M", "P"]               # jump
    assert P.misaki_to_arpabet("bˈʌɾəɹ") == ["B", "AH", "T", "AH", "R"]         # butter
    assert P.misaki_to_arpabet("sˈY hˌW") == ["S", "OY", "HH", "AW"]            # soy how
    assert set(P.MISAKI_TO_ARPABET.values()) <= P.ARPABET
    with pytest.raises(ParameterError, match=r"character 4 '\.' is not a misaki"):
        P.misaki_to_arpabet("hˈA .")


def test_silence_labels():
    for lab in ("", " SIL ", "sp", "<sil>", "+NSN+", "[noise]", "pau", "h#"):
        assert P.is_silence(lab), lab
    assert not P.is_silence("s")


def _score_json(capsys, *args) -> dict:
    assert main(["bench", "score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def test_eval_score_is_what_bench_score_prints(tmp_path, capsys):
    from vqalign.eval import score

    (tmp_path / "ref").mkdir()
    shutil.copy(DATA / "ref.TextGrid", tmp_path / "ref" / "utt.TextGrid")
    for name in ("whisperx.json", "mfa_short.TextGrid", "nfa_words.ctm"):
        d = tmp_path / name.split(".")[0]
        d.mkdir()
        shutil.copy(DATA / name, d / f"utt{Path(name).suffix}")
    hyps = {n: tmp_path / n for n in ("whisperx", "mfa_short", "nfa_words")}
    got = score(tmp_path / "ref", hyps)
    assert set(got["systems"]) == set(hyps) and got["n_references"] == 1
    assert all(s["n_files"] == 1 for s in got["systems"].values())
    printed = _score_json(capsys, "--ref", str(tmp_path / "ref"),
                          *[f"--hyp={n}={p}" for n, p in hyps.items()])
    assert _nan_to_none(got) == printed


def test_eval_score_single_path_and_errors(tmp_path):
    from vqalign.eval import score

    (tmp_path / "ref").mkdir()
    shutil.copy(DATA / "ref.TextGrid", tmp_path / "ref" / "utt.TextGrid")
    (tmp_path / "wx").mkdir()
    shutil.copy(DATA / "whisperx.json", tmp_path / "wx" / "utt.json")
    got = score(tmp_path / "ref", tmp_path / "wx")
    assert list(got["systems"]) == ["wx"]
    with pytest.raises(ParameterError, match="is not a folder"):
        score(tmp_path / "nope", tmp_path / "wx")
    with pytest.raises(ParameterError, match="no such file or folder"):
        score(tmp_path / "ref", {"x": tmp_path / "missing"})


def test_format_error_is_a_parameter_error():
    from vqalign.io.formats import read_hypothesis

    assert issubclass(FormatError, ParameterError)
    with pytest.raises(FormatError, match=r"unknown\.align line 1: unknown alignment format"):
        read_hypothesis(DATA / "unknown.align")


def test_output_phonesets_cover_arpabet_and_map_back():
    from vqalign.phones import (
        ARPABET,
        ARPABET_TO_IPA,
        ARPABET_TO_MISAKI,
        arpabet_to,
        ipa_to_arpabet,
        misaki_to_arpabet,
    )

    assert set(ARPABET_TO_IPA) == set(ARPABET) == set(ARPABET_TO_MISAKI)
    for a in sorted(ARPABET):
        assert ipa_to_arpabet(arpabet_to(a + "1", "ipa")) == a          # the scorer's map
        want = ["AH", "R"] if a == "ER" else [a]                        # misaki: ER is əɹ
        assert misaki_to_arpabet(arpabet_to(a, "misaki")) == want
    assert arpabet_to("sil", "ipa") == "sil"
    with pytest.raises(ParameterError, match=r"phone set 'xsampa' is not one of arpabet, "
                                             r"ipa, misaki"):
        arpabet_to("AA", "xsampa")


def test_alignment_with_phoneset_relabels_phones_only(tmp_path):
    from vqalign.align.alignment import Alignment, read_alignment

    a = Alignment(tiers={"words": [(0.0, 0.3, "church", 0.9)],
                         "phones": [(0.0, 0.1, "CH", 0.8), (0.1, 0.2, "ER", 0.7),
                                    (0.2, 0.3, "CH", 0.6)]}, duration=0.3)
    m = a.with_phoneset("misaki")
    assert [s.label for s in m.tiers["phones"]] == ["ʧ", "əɹ", "ʧ"]
    assert [s.as_tuple()[:2] for s in m.tiers["phones"]] == [s.as_tuple()[:2]
                                                              for s in a.tiers["phones"]]
    assert m.tiers["words"] == a.tiers["words"] and m.diagnostics["phoneset"] == "misaki"
    i = a.with_phoneset("ipa")
    i.write(tmp_path / "x.json")
    assert [s.label for s in read_alignment(tmp_path / "x.json").tiers["phones"]] == \
        ["tʃ", "ɚ", "tʃ"]
    assert a.with_phoneset("arpabet") is a


def test_timit_tier_with_glottal_stop_is_lower_case_arpabet():
    """A TIMIT phones tier (lower-case ARPAbet, 'pau', and the glottal stop 'q') is
    detected as such, so its vowels pair; 'q' itself never pairs with a real phone."""
    from vqalign.phones import detect_phoneset, to_arpabet

    labs = ["pau", "sh", "iy", "hh", "ae", "d", "q", "y", "er", "pau"]
    ps = detect_phoneset(labs)
    assert [to_arpabet(x, ps) for x in labs] == ["sil", "SH", "IY", "HH", "AE", "D", "?q", "Y",
                                                 "ER", "sil"]
