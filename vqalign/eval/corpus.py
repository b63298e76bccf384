"""Reference corpora: utterances with their hand (or synthesized) reference TextGrids.

:func:`find_utterances` pairs every audio file under a folder with its ``.txt``
transcript and ``.TextGrid`` reference (the dev-set layout
``<voice>/<id>.wav|.txt|.TextGrid``, optionally listed in ``MANIFEST.tsv``);
:func:`load_utterances` loads them for scoring. Used by ``vqalign bench align`` and the
confidence calibration.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vqalign.exceptions import ParameterError


def find_utterances(root: Path, limit: int | None = None) -> tuple[list, int]:
    """Items with a reference TextGrid, round-robin over voices when limited.

    Parameters
    ----------
    root : Path
        Corpus folder: ``<id>.wav`` + ``<id>.txt`` + ``<id>.TextGrid`` (searched
        recursively); a ``MANIFEST.tsv`` (``path``, ``voice``) limits and groups them.
    limit : int, optional
        At most this many utterances, taken in turn from each voice.

    Returns
    -------
    items : list of CorpusItem
        Sorted by id when limited.
    n_skipped : int
        Files that could not be paired or have no reference.
    """
    from vqalign.align.corpus import pair_corpus

    items, failures = pair_corpus(root)
    with_ref = [it for it in items if it.reference is not None]
    skipped = len(failures) + len(items) - len(with_ref)
    manifest = Path(root) / "MANIFEST.tsv"
    if manifest.is_file():
        # devdata: MANIFEST.tsv lists the evaluation utterances and their voices
        import csv

        with open(manifest, encoding="utf-8", newline="") as fh:
            rows = {Path(r["path"]).with_suffix("").as_posix(): r
                    for r in csv.DictReader(fh, delimiter="\t") if r.get("path")}
        listed = [it for it in with_ref if it.id in rows]
        skipped += len(with_ref) - len(listed)
        with_ref = listed
        for it in with_ref:
            voice = rows[it.id].get("voice")
            if voice:
                it.group = voice
    if not with_ref:
        raise ParameterError(f"no utterance under {root} has audio, a .txt transcript and a "
                             "reference .TextGrid beside each other")
    if limit is not None:
        if limit < 1:
            raise ParameterError(f"--limit must be >= 1, got {limit}")
        by_voice: dict[str, list] = defaultdict(list)
        for it in with_ref:
            by_voice[voice_of(it)].append(it)
        chosen = []
        queues = [list(v) for v in by_voice.values()]
        while len(chosen) < limit and any(queues):
            for q in queues:
                if q and len(chosen) < limit:
                    chosen.append(q.pop(0))
        with_ref = sorted(chosen, key=lambda it: it.id)
    return with_ref, skipped


def voice_of(item) -> str:
    """The voice of a corpus item: the name of its group (folder or MANIFEST voice)."""
    return Path(item.group).name if item.group else "(root)"


def load_utterances(items) -> list[dict]:
    """Load the audio, transcript and reference tiers of each item.

    Parameters
    ----------
    items : list of CorpusItem
        From :func:`find_utterances`.

    Returns
    -------
    list of dict
        One per item: ``item``, ``id``, ``voice``, ``audio`` (float32, ``(n_samples,)``),
        ``sr``, ``text``, ``ref`` (tiers of the reference TextGrid: ``{"words": [(start_s,
        end_s, label), ...], ...}``), ``seconds``.

    Raises
    ------
    ParameterError
        A reference without a ``words`` tier.
    """
    from vqalign.align.corpus import load_item
    from vqalign.io.textgrid import read_textgrid

    data = []
    for it in items:
        y, sr, text = load_item(it)
        ref = read_textgrid(it.reference)
        if "words" not in ref:
            raise ParameterError(f"reference {it.reference} has no 'words' tier")
        data.append({"item": it, "id": it.id, "voice": voice_of(it), "audio": y, "sr": sr,
                     "text": text, "ref": ref, "seconds": y.size / sr})
    return data
