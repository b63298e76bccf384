"""An independent word-boundary scorer, written from issue 13's definition only.

It shares no code with ``vqalign.bench``: references and hypotheses are read with
praatio, words are normalized here, and pairs come from a textbook LCS table. Used by
tests/test_bench_score.py to check ``vqalign bench score``; also runnable::

    python tests/independent_scorer.py REF_DIR HYP_DIR      # TextGrids, same names

Definition (issue 13): drop silences and fillers on both sides; normalize words (NFC,
lower case, punctuation and apostrophes removed); pair identical words by edit
distance; every pair gives |start error| and |end error|, pooled.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

SILENCE = {"", "sil", "sp", "spn", "pau", "<sil>", "<s>", "</s>", "<eps>", "<unk>"}
FILLERS = {"uh", "um", "uhm", "er", "erm", "ah", "eh", "hmm", "mm"}


def norm(label: str) -> str:
    s = unicodedata.normalize("NFC", label).strip().lower()
    if s.endswith(")") and "(" in s:          # pocketsphinx alternates: word(2)
        s = s[: s.rindex("(")]
    return "".join(ch for ch in s if ch.isalnum() or ch.isspace()).strip()


def words_of(intervals):
    out = []
    for start, end, label in intervals:
        low = label.strip().lower()
        if low in SILENCE or (low.startswith("[") and low.endswith("]")):
            continue
        w = norm(label)
        if w and w not in FILLERS:
            out.append((float(start), float(end), w))
    return out


def lcs_pairs(a, b):
    n, m = len(a), len(b)
    t = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            t[i][j] = t[i + 1][j + 1] + 1 if a[i] == b[j] else max(t[i + 1][j], t[i][j + 1])
    i = j = 0
    pairs = []
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i += 1
            j += 1
        elif t[i + 1][j] >= t[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def errors(hyp, ref):
    h, r = words_of(hyp), words_of(ref)
    out = []
    for i, j in lcs_pairs([x[2] for x in h], [x[2] for x in r]):
        out.append(abs(h[i][0] - r[j][0]))
        out.append(abs(h[i][1] - r[j][1]))
    return out


def read_words(path):
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    name = next(n for n in tg.tierNames if n.lower().endswith("words"))
    return [(e.start, e.end, e.label) for e in tg.getTier(name).entries]


def score_dirs(ref_dir, hyp_dir) -> dict:
    errs = []
    for ref in sorted(Path(ref_dir).rglob("*.TextGrid")):
        hyp = Path(hyp_dir) / ref.relative_to(ref_dir)
        if hyp.is_file():
            errs += errors(read_words(hyp), read_words(ref))
    ms = sorted(1000.0 * e for e in errs)
    n = len(ms)
    return {"n_boundaries": n, "mean_ms": sum(ms) / n if n else float("nan"),
            "pct_within_20": 100.0 * sum(1 for e in ms if e <= 20.0 + 1e-6) / n if n
            else float("nan")}


if __name__ == "__main__":
    print(json.dumps(score_dirs(sys.argv[1], sys.argv[2]), indent=1))
