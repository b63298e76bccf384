"""Runners for the other aligners that install here: viter, aeneas-ng and bfa.

This module (with :mod:`vqalign.bench.peers.pocketsphinx` for pocketsphinx) is THE place for the
peers' settings and install steps; ``vqalign bench align --peers ...`` uses exactly
these, and the README's comparison figures come only from runs of that verb.

==============  ===========================================================================
peer            install and settings
==============  ===========================================================================
pocketsphinx    ``pip install pocketsphinx`` (5.x, bundled en-US model). Settings in
                :mod:`vqalign.bench.peers.pocketsphinx` (``PS_SETTINGS``, PEERS.md): 1 thread.
viter           ``pip install viter`` (0.5.1, Rust MFA-style GMM-HMM). Trains on the corpus
                itself, as MFA's ``train-and-align``: ``viter train CORPUS --dict DICT
                -o model.viter`` (:data:`VITER_RECIPES`: ``mono`` adds ``--no-tri``,
                ``full`` runs mono -> tri -> LDA+MLLT -> SAT), then ``viter align CORPUS
                model.viter --dict DICT --no-refine`` (its 1 ms refinement made synthetic
                speech worse, PEERS.md). DICT: every corpus word with its CMUdict
                pronunciations (vqalign's CMUdict copy, stress removed), words missing
                from CMUdict by vqalign's letter-to-sound rules, the same guesses
                pocketsphinx gets. Threads: ``RAYON_NUM_THREADS`` = ``--jobs``.
aeneas          ``apt-get install espeak-ng libespeak-ng-dev ffmpeg festival-dev
                libestools-dev``; ``pip install numpy && pip install aeneas-ng`` (1.7.4).
                One word per line (``is_text_type=plain``), ``task_language=eng``, sync
                map as JSON (:data:`AENEAS_CONFIG`), with aeneas's own word-level presets
                (``--presets-word``: MFCC masking of non-speech) and its non-speech
                removal (``task_adjust_boundary_nonspeech_min=0.050``, ``..._string=
                REMOVE``); on 7 dev utterances the word mean error was 75.9 ms with the
                defaults, 62.1 with the removal, 47.3 with both. Head/tail detection
                (``is_audio_file_detect_head_max``) hung here. Each utterance runs in its
                own child process (its in-process eSpeak call can hang on the second
                file), ``--jobs`` processes at a time. Words only.
bfa             needs CPU torch and torchaudio (python.md: ``pip install torch==2.9.1
                'torchaudio==2.9.*'``), then ``pip install --no-deps
                --ignore-requires-python bfa`` and ``pip install cyclopts misaki==0.9
                spacy num2words``. ``bfa align AUDIO_DIR TEXT_DIR OUT --language EN-US
                --n-jobs JOBS``; words and IPA phones in TextGrids.
==============  ===========================================================================

Each runner takes the loaded utterances (``{"id", "audio", "sr", "text", "voice"}``
dicts, audio float32), writes the corpus it needs to a temporary folder before any clock
starts, and returns a :class:`PeerRun`: one hypothesis per utterance (``{"words": [...],
"phones": [...]}`` or the exception that utterance raised), the one-time load/training
seconds and the alignment seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vqalign.exceptions import AlignmentError, ParameterError

PEERS = ("pocketsphinx", "viter", "aeneas", "bfa")
VITER_RECIPES = {"mono": ["--no-tri"], "full": []}
VITER_ALIGN_ARGS = ["--no-refine"]
AENEAS_CONFIG = ("task_language=eng|is_text_type=plain|os_task_file_format=json"
                 "|task_adjust_boundary_nonspeech_min=0.050"
                 "|task_adjust_boundary_nonspeech_string=REMOVE")
AENEAS_ARGS = ["--presets-word"]
AENEAS_TIMEOUT_S = 300


@dataclass
class PeerRun:
    """What one peer produced on the corpus."""

    hyps: list
    load_seconds: float
    align_seconds: float
    info: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.load_seconds + self.align_seconds


def availability(name: str) -> str | None:
    """``None`` if peer ``name`` can run here, else the reason it cannot (one line)."""
    if name == "pocketsphinx":
        if importlib.util.find_spec("pocketsphinx") is None:
            return "pocketsphinx is not installed (pip install pocketsphinx)"
        return None
    if name == "viter":
        if shutil.which("viter") is None:
            return "viter is not installed (pip install viter)"
        return None
    if name == "aeneas":
        if importlib.util.find_spec("aeneas") is None:
            return "aeneas-ng is not installed (pip install aeneas-ng; see vqalign.bench.peers)"
        if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
            return "aeneas-ng needs eSpeak NG (apt-get install espeak-ng libespeak-ng-dev)"
        if shutil.which("ffmpeg") is None:
            return "aeneas-ng needs ffmpeg (apt-get install ffmpeg)"
        return None
    if name == "bfa":
        if importlib.util.find_spec("BFA") is None or shutil.which("bfa") is None:
            return "bfa is not installed (see vqalign.bench.peers for its install steps)"
        for mod in ("torch", "torchaudio", "misaki"):
            if importlib.util.find_spec(mod) is None:
                return f"bfa needs {mod}, which is not installed (see vqalign.bench.peers)"
        return None
    raise ParameterError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")


def parse_peers(text: str) -> list[str]:
    """``"pocketsphinx,viter"`` -> ``["pocketsphinx", "viter"]`` (checked, order kept)."""
    names = [p.strip().lower() for p in (text or "").split(",") if p.strip()]
    names = ["aeneas" if n in ("aeneas-ng", "aeneas_ng") else n for n in names]
    bad = [n for n in names if n not in PEERS]
    if bad:
        raise ParameterError(f"--peers: unknown peer(s) {', '.join(bad)}; choose from "
                             f"{', '.join(PEERS)} (comma-separated)")
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- corpus
def _words(text: str) -> list[str]:
    from vqalign.align.text import normalize_words

    return normalize_words(text, unit="phones")


def write_corpus_dir(data, root: Path) -> dict[str, Path]:
    """``root/<voice>/<id>.wav`` (16-bit PCM) + ``.txt`` (normalized words, one line).

    Returns ``{id: wav path}``. Ids are made file-safe (``/`` -> ``__``).
    """
    import soundfile as sf

    paths = {}
    for d in data:
        voice = "".join(c if c.isalnum() or c in "-_." else "_" for c in d["voice"]) or "spk"
        stem = d["id"].replace("/", "__")
        folder = root / voice
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / f"{stem}.wav"
        sf.write(wav, d["audio"], d["sr"], subtype="PCM_16")
        (folder / f"{stem}.txt").write_text(" ".join(_words(d["text"])) + "\n", encoding="utf-8")
        paths[d["id"]] = wav
    return paths


def write_dictionary(data, path: Path) -> list[str]:
    """An MFA/CMUdict-format dictionary of every word in ``data``; returns the words that
    were pronounced by letter-to-sound rules."""
    from vqalign.align.lexicon import Lexicon, letter_to_sound

    lex = Lexicon.cmudict()
    phoneset = set(lex.phone_set)
    lines, guessed = [], []
    for w in sorted({w for d in data for w in _words(d["text"])}):
        if w in lex:
            prons = lex.pronunciations(w)
        else:
            prons = [[p for p in letter_to_sound(w) if p in phoneset] or ["AH"]]
            guessed.append(w)
        for pron in prons:
            lines.append(f"{w} {' '.join(pron)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return guessed


def _read_tiers(path: Path) -> dict:
    from vqalign.io.formats import read_hypothesis

    return read_hypothesis(path).tiers


def _thread_env(jobs: int) -> dict:
    env = dict(os.environ)
    for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        env[var] = str(jobs)
    return env


# ----------------------------------------------------------------------------- viter
def run_viter(data, *, jobs: int = 2, recipe: str = "mono", keep_dir: Path | None = None,
              say=print) -> PeerRun:
    """Train viter on the corpus itself, then align it (see the module table)."""
    if recipe not in VITER_RECIPES:
        raise ParameterError(f"viter recipe {recipe!r} is not one of {', '.join(VITER_RECIPES)}")
    tmp = Path(tempfile.mkdtemp(prefix="vqalign-viter-", dir=keep_dir))
    try:
        corpus = tmp / "corpus"
        wavs = write_corpus_dir(data, corpus)
        guessed = write_dictionary(data, tmp / "dict.txt")
        env = _thread_env(jobs)
        train = ["viter", "train", str(corpus), "--dict", str(tmp / "dict.txt"),
                 "-o", str(tmp / "model.viter"), "--work-dir", str(tmp / "work"),
                 *VITER_RECIPES[recipe]]
        t0 = time.perf_counter()
        _run(train, env, tmp / "train.log", "viter train")
        load_s = time.perf_counter() - t0
        say(f"    viter: trained ({recipe} recipe) in {load_s:.1f} s")
        align = ["viter", "align", str(corpus), str(tmp / "model.viter"), "-o",
                 str(tmp / "aligned"), "--dict", str(tmp / "dict.txt"), *VITER_ALIGN_ARGS]
        t0 = time.perf_counter()
        _run(align, env, tmp / "align.log", "viter align")
        align_s = time.perf_counter() - t0
        hyps = []
        for d in data:
            tg = tmp / "aligned" / wavs[d["id"]].relative_to(corpus).with_suffix(".TextGrid")
            if not tg.is_file():
                hyps.append(AlignmentError(f"viter wrote no TextGrid for {d['id']}"))
                continue
            try:
                hyps.append(_read_tiers(tg))
            except ParameterError as exc:
                hyps.append(exc)
        return PeerRun(hyps, load_s, align_s,
                       {"n_jobs": jobs, "recipe": recipe, "train_args": VITER_RECIPES[recipe],
                        "align_args": VITER_ALIGN_ARGS,
                        "letter_to_sound": guessed})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(cmd, env, log: Path, what: str) -> None:
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise AlignmentError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


# ----------------------------------------------------------------------------- aeneas
def _aeneas_one(wav: Path, words: list[str], out: Path) -> dict:
    txt = out.with_suffix(".words.txt")
    txt.write_text("\n".join(words) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING="UTF-8")
    try:
        proc = subprocess.run([sys.executable, "-m", "aeneas.tools.execute_task", str(wav),
                               str(txt), AENEAS_CONFIG, str(out), *AENEAS_ARGS], env=env,
                              capture_output=True, text=True, timeout=AENEAS_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise AlignmentError(f"aeneas did not finish within {AENEAS_TIMEOUT_S} s") from None
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        raise AlignmentError(f"aeneas failed (exit {proc.returncode}): {' | '.join(tail)}")
    return _read_tiers(out)


def run_aeneas(data, *, jobs: int = 2, say=print) -> PeerRun:
    """aeneas-ng on every utterance, one child process each, ``jobs`` at a time."""
    tmp = Path(tempfile.mkdtemp(prefix="vqalign-aeneas-"))
    try:
        wavs = write_corpus_dir(data, tmp / "corpus")
        (tmp / "out").mkdir()
        words = {d["id"]: _words(d["text"]) for d in data}
        # warm-up: one child process, so disk caches hold Python, aeneas and eSpeak NG
        warm = min(data, key=lambda d: d["audio"].size)
        try:
            _aeneas_one(wavs[warm["id"]], words[warm["id"]], tmp / "warm.json")
        except AlignmentError:
            pass

        def one(d):
            try:
                return _aeneas_one(wavs[d["id"]], words[d["id"]],
                                   tmp / "out" / (wavs[d["id"]].stem + ".json"))
            except (AlignmentError, ParameterError) as exc:
                return exc

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            hyps = list(pool.map(one, data))
        align_s = time.perf_counter() - t0
        return PeerRun(hyps, 0.0, align_s, {"n_jobs": jobs, "config": AENEAS_CONFIG, "args": AENEAS_ARGS,
                                            "note": "no model to load; each utterance's "
                                                    "process start is in the alignment time"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- bfa
def run_bfa(data, *, jobs: int = 2, say=print) -> PeerRun:
    """bfa's CLI on the corpus (audio and text folders), ``--n-jobs`` = ``jobs``."""
    tmp = Path(tempfile.mkdtemp(prefix="vqalign-bfa-"))
    try:
        wavs = write_corpus_dir(data, tmp / "corpus")
        audio_dir, text_dir, out_dir = tmp / "audio", tmp / "text", tmp / "out"
        audio_dir.mkdir()
        text_dir.mkdir()
        for wav in wavs.values():
            shutil.copy(wav, audio_dir / wav.name)
            shutil.copy(wav.with_suffix(".txt"), text_dir / wav.with_suffix(".txt").name)
        cmd = ["bfa", "align", str(audio_dir), str(text_dir), str(out_dir), "--language",
               "EN-US", "--n-jobs", str(jobs)]
        t0 = time.perf_counter()
        _run(cmd, _thread_env(jobs), tmp / "bfa.log", "bfa align")
        align_s = time.perf_counter() - t0
        hyps = []
        for d in data:
            found = list(out_dir.rglob(wavs[d["id"]].stem + ".TextGrid"))
            if not found:
                hyps.append(AlignmentError(f"bfa wrote no TextGrid for {d['id']}"))
                continue
            try:
                hyps.append(_read_tiers(found[0]))
            except ParameterError as exc:
                hyps.append(exc)
        return PeerRun(hyps, 0.0, align_s, {"n_jobs": jobs, "note": "model loading is inside "
                                            "the CLI run (counted as alignment)"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
