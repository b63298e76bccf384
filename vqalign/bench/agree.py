"""``vqalign bench agree``: word boundaries of vqalign against pocketsphinx on real recordings.

Real recordings have no exact truth; pocketsphinx 5's forced alignment (acoustic model
trained on real speech) is the yardstick. In one run, on the same audio and text:

* ``single``: every recording aligned alone by a model self-trained on it, through the
  public ``vqalign.align.align(y, text, sr=sr)``;
* ``corpus``: ``vqalign.align.Aligner().fit(corpus)`` on all the recordings, then
  ``align_many`` (default settings, ``--jobs`` threads: 1 by default, as pocketsphinx);
* ``single-self`` / ``corpus-self`` (asked for with ``--modes``): the same with
  ``reference="flat"``, without the Sphinx en-us model's second opinion, whose third
  alignment uses pocketsphinx's own acoustic model and so flatters the agreement;
* ``model`` / ``codebook`` (only with ``--model FILE`` / ``--codebook FILE``, made by
  ``vqalign align-corpus`` / ``vqalign codebook`` on other data; or ``--model
  sphinx:en-us``, pocketsphinx's acoustic model run by vqalign): every recording
  aligned alone with that pretrained model (as ``vqalign align --model``) or codebook
  (``align(y, text, sr=sr, codebook=FILE)``);
* ``adapted`` (only with ``--model sphinx:NAME --adapt weights|means``): that Sphinx
  model adapted to these recordings by ``SphinxAligner.adapt`` (MAP EM, transductive:
  the recordings it then aligns), its time including the adaptation;
* ``pocketsphinx``: :class:`vqalign.bench.peers.pocketsphinx.PocketsphinxAligner` (PEERS.md
  settings, one thread), after a one-recording warm-up.

With ``--model``, a paired speed test follows (``--speed-rounds``, default 5): in every
round each recording is aligned by pocketsphinx and by the model back to back (the
order alternating), so both meet the same machine load; the per-round ratios and their
median are printed, one thread each (the Sphinx aligner holds BLAS and numba to one).

Agreement is measured on word boundaries (start and end of every word, silences
ignored): mean and median absolute difference and the share within 20 / 50 / 100 ms,
pooled over recordings, and per recording, worst first, with the word that differs most.
The worst recording of each vqalign mode is drawn with :func:`vqalign.plots.plot_alignment`
(spectrogram, vqalign's tiers, pocketsphinx's below as ``ref``) into ``--plot-dir``.
When a ``<id>.TextGrid`` with a ``words`` tier lies beside a recording (hand timings),
every system is also scored against it. Times (wall clock, audio already loaded,
numba compiled by an untimed warm-up) are printed as ratios to pocketsphinx's in the same
run; corpus mode's time includes training.

Corpus layout (``--corpus DIR``, searched recursively): audio ``.wav .flac .ogg .aiff``
or ``.raw`` (headerless 16-bit little-endian mono, 16 kHz: the CMU Sphinx convention),
each with a transcript that is either

* a ``<id>.txt`` or ``<id>.lab`` beside it, or
* a line ``<s> words </s> (<id>)`` or ``words (<id>)`` in a CMU Sphinx transcription
  file (named ``transcription``, ``*.transcription`` or ``*.lsn``) anywhere under DIR,
  or in ``--transcripts FILE``.

So Debian's ``pocketsphinx-testdata`` works as it is::

    apt-get download pocketsphinx-testdata && dpkg -x pocketsphinx-testdata_*.deb /tmp/pstd
    vqalign bench agree --corpus /tmp/pstd/usr/share/pocketsphinx/test/data --peer pocketsphinx

Its ten LibriVox and cards recordings have transcripts in the package; its four ``.raw``
files do not (they are listed as skipped): give theirs in a ``--transcripts`` file
(``go forward ten meters (goforward)``).
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".raw")
RAW_SR = 16000
THRESHOLDS_MS = (20, 50, 100)
#: single-self / corpus-self: the same without the Sphinx en-us model's second opinion
#: (reference="flat"), whose third alignment shares pocketsphinx's acoustic model
MODES = ("single", "corpus", "single-self", "corpus-self")
_SPHINX_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^()\s]+?)(?:\s+-?\d+(?:\.\d+)?)?\)\s*$")
_SPHINX_FILLERS = re.compile(r"</?s>|<sil>|\[[^\]]*\]|\+\+?[A-Z_]+\+?\+")


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", type=Path, required=True,
                        help="folder of recordings with transcripts (searched recursively; "
                             ".txt/.lab beside the audio or CMU Sphinx transcription files)")
    parser.add_argument("--peer", choices=("pocketsphinx",), default="pocketsphinx",
                        help="the aligner to compare with (default pocketsphinx)")
    parser.add_argument("--modes", default="single,corpus",
                        help="vqalign modes, comma-separated: single (self-trained per file) "
                             "and/or corpus (one model fitted on all); single-self / "
                             "corpus-self: the same without the Sphinx model's second opinion "
                             "(which shares pocketsphinx's acoustic model); default "
                             "single,corpus")
    parser.add_argument("--model", default=None,
                        help="also align each recording alone with this pretrained model "
                             "(.npz from align-corpus, or sphinx:en-us): mode 'model'")
    parser.add_argument("--codebook", type=Path, default=None,
                        help="also align each recording alone starting from this codebook "
                             "(.npz from vqalign codebook): mode 'codebook'")
    parser.add_argument("--adapt", choices=("weights", "means"), default=None,
                        help="with --model sphinx:NAME: also adapt that model to these "
                             "recordings (MAP EM, SphinxAligner.adapt; weights, or weights "
                             "and means) and align each with it: mode 'adapted' (its time "
                             "includes the adaptation)")
    parser.add_argument("--speed-rounds", type=int, default=5,
                        help="with --model: rounds of the paired speed test (every recording "
                             "aligned by pocketsphinx and by the model back to back; the "
                             "median ratio is printed); 0 to skip (default 5)")
    parser.add_argument("--transcripts", type=Path, default=None,
                        help="extra CMU Sphinx transcription file: lines 'words (id)'")
    parser.add_argument("--limit", type=int, default=None, help="use at most N recordings")
    parser.add_argument("--jobs", type=int, default=1,
                        help="threads for vqalign (default 1, as pocketsphinx, so the time "
                             "ratio compares equal threads; pass 2 for the all-core ratio)")
    parser.add_argument("--worst", type=int, default=3, help="worst recordings listed per mode")
    parser.add_argument("--plot-dir", type=Path, default=Path("bench_agree_plots"),
                        help="where the worst recordings' plots go (default ./bench_agree_plots)")
    parser.add_argument("--no-plot", action="store_true", help="draw no plot")
    parser.add_argument("--overwrite", action="store_true", help="replace existing plots")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")


# ----------------------------------------------------------------------------- corpus
@dataclass
class Recording:
    """One recording: ``id`` (path under the corpus without suffix), audio and text."""

    id: str
    audio: Path
    text: str
    transcript_source: str
    reference: Path | None = None
    data: dict = field(default_factory=dict, repr=False)


def read_sphinx_transcription(path) -> dict[str, str]:
    """``{id: text}`` from a CMU Sphinx transcription file (``<s> words </s> (id)`` lines).

    Sentence markers, ``<sil>``, ``[NOISE]``-style and ``++NOISE++``-style fillers are
    removed; a score after the id (``(id -1234)``, hypothesis files) is allowed. Lines
    without ``(id)`` raise a ParameterError naming the line.
    """
    from vqalign.align.text import read_transcript

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"transcription file {path} does not exist")
    out: dict[str, str] = {}
    bad = []
    for lineno, line in enumerate(read_transcript(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith(("#", ";;")):
            continue
        m = _SPHINX_LINE.match(line.strip())
        if not m:
            bad.append(f"line {lineno}: {line.strip()[:60]!r}")
            continue
        text = " ".join(_SPHINX_FILLERS.sub(" ", m["text"]).split())
        out[m["id"]] = text
    if bad:
        raise ParameterError(f"transcription file {path}: {len(bad)} line(s) without a final "
                             "'(id)'; each line must be 'words (id)' or '<s> words </s> (id)': "
                             + "; ".join(bad[:5]))
    return out


def _is_transcription_file(p: Path) -> bool:
    n = p.name.lower()
    return n == "transcription" or n.endswith(".transcription") or n.endswith(".lsn")


def find_recordings(root, *, transcripts=None) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Recordings under ``root`` with their transcripts, and ``(path, reason)`` skipped.

    A ``.txt``/``.lab`` beside the audio wins over a transcription-file line; ids in
    transcription files match the audio's name (``001``) or its path under the corpus
    (``cards/001``).
    """
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"corpus folder {root} does not exist or is not a folder; pass "
                             "--corpus DIR")
    audio: list[Path] = []
    sphinx: dict[str, tuple[str, str]] = {}
    for p in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(root).parts) or not p.is_file():
            continue
        if p.suffix.lower() in AUDIO_EXTS:
            audio.append(p)
        elif _is_transcription_file(p):
            for k, v in read_sphinx_transcription(p).items():
                sphinx.setdefault(k, (v, str(p)))
    if transcripts is not None:
        for k, v in read_sphinx_transcription(transcripts).items():
            sphinx[k] = (v, str(transcripts))       # the user's file wins
    recs, skipped = [], []
    for a in audio:
        rid = a.relative_to(root).with_suffix("").as_posix()
        text = source = None
        for ext in (".txt", ".lab"):
            t = a.with_suffix(ext)
            if t.is_file():
                from vqalign.align.text import read_transcript
                text, source = read_transcript(t), str(t)
                break
        if text is None:
            for key in (rid, a.stem):
                if key in sphinx:
                    text, source = sphinx[key]
                    break
        if text is None or not text.strip():
            skipped.append((str(a), f"no transcript: no {a.stem}.txt/.lab beside it and no "
                                     f"'({a.stem})' line in a transcription file; give one with "
                                     "--transcripts FILE"))
            continue
        ref = a.with_suffix(".TextGrid")
        recs.append(Recording(rid, a, text, source, ref if ref.is_file() else None))
    if not recs:
        raise ParameterError(f"no recording under {root} has a transcript ({len(skipped)} audio "
                             "file(s) without one); see `vqalign bench agree --help` for the "
                             "layouts read")
    return recs, skipped


def load_recording(rec: Recording, sr: int = FEATURE_SR) -> tuple[np.ndarray, int]:
    """Float32 mono samples at ``sr``; ``.raw`` is read as 16 kHz 16-bit little-endian."""
    if rec.audio.suffix.lower() == ".raw":
        raw = np.fromfile(rec.audio, dtype="<i2")
        if raw.size == 0:
            raise ParameterError(f"{rec.audio} holds no samples")
        y = raw.astype(np.float32) / 32768.0
        if sr != RAW_SR:
            import soxr
            y = soxr.resample(y, RAW_SR, sr).astype(np.float32)
        return y, sr
    from vqalign.io.audio import load_audio

    return load_audio(rec.audio, sr)


# ----------------------------------------------------------------------------- agreement
def word_differences(hyp, ref) -> np.ndarray:
    """Absolute differences (s) of every word start and end, ``hyp`` against ``ref``."""
    from vqalign.eval.boundaries import boundary_errors

    return boundary_errors(hyp, ref, tier="words")["errors"]


def summarize(diffs_s) -> dict:
    """Mean / median absolute difference (ms) and the share within each threshold."""
    ms = 1000.0 * np.abs(np.asarray(diffs_s, dtype=np.float64).ravel())
    out = {"n_boundaries": int(ms.size)}
    if ms.size == 0:
        return {**out, "mean_ms": math.nan, "median_ms": math.nan,
                **{f"within_{t}ms": math.nan for t in THRESHOLDS_MS}}
    out["mean_ms"] = float(ms.mean())
    out["median_ms"] = float(np.median(ms))
    out.update({f"within_{t}ms": float(np.mean(ms <= t + 1e-6)) for t in THRESHOLDS_MS})
    return out


def _worst_word(hyp, ref) -> dict:
    from vqalign.phones import is_silence

    h = [x for x in hyp if not is_silence(x[2])]
    r = [x for x in ref if not is_silence(x[2])]
    best = None
    for a, b in zip(h, r):
        d = max(abs(a[0] - b[0]), abs(a[1] - b[1]))
        if best is None or d > best["diff_ms"] / 1000:
            best = {"word": a[2], "diff_ms": 1000 * d, "vqalign": [a[0], a[1]],
                    "peer": [b[0], b[1]]}
    return best or {}


# ----------------------------------------------------------------------------- systems
def _tiers(aln) -> dict:
    return {"words": aln.tier("words"),
            "phones": aln.tier(aln.unit_tier) if aln.unit_tier else []}


def _run_single(recs, jobs, *, model=None, codebook=None, reference="auto"):
    from vqalign.align import align
    from vqalign.exceptions import VQAlignError

    out, alns = [], []
    fitted = None
    if model is not None:       # an .npz, or sphinx:en-us / sphinx:DIR (as `vqalign align`)
        from argparse import Namespace

        from vqalign.align.cli import make_aligner
        fitted = make_aligner(Namespace(model=str(model)))
        # untimed warm-up, as pocketsphinx's: the model, its dictionary and the kernels
        # are loaded once per process, not per recording
        warm = min(recs, key=lambda r: r.data["audio"].size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fitted.align(warm.data["audio"], warm.text, sr=warm.data["sr"])
            except VQAlignError:
                pass
    t0 = time.perf_counter()
    for r in recs:
        try:
            if fitted is not None:
                a = fitted.align(r.data["audio"], r.text, sr=r.data["sr"])
            elif codebook is not None:
                a = align(r.data["audio"], r.text, sr=r.data["sr"], n_jobs=jobs,
                          codebook=str(codebook))
            else:
                a = align(r.data["audio"], r.text, sr=r.data["sr"], n_jobs=jobs,
                          reference=reference)
            out.append(_tiers(a))
            alns.append(a)
        except VQAlignError as exc:
            out.append(exc)
            alns.append(None)
    return out, alns, time.perf_counter() - t0


def _run_corpus(recs, jobs, reference="auto"):
    from vqalign.align import Aligner
    from vqalign.exceptions import VQAlignError

    corpus = [(r.data["audio"], r.data["sr"], r.text) for r in recs]
    t0 = time.perf_counter()
    try:
        aligner = Aligner(n_jobs=jobs, reference=reference).fit(corpus)
        res = aligner.align_many(corpus, n_jobs=jobs)
    except VQAlignError as exc:
        res = [exc] * len(recs)
    seconds = time.perf_counter() - t0
    out = [r if isinstance(r, BaseException) else _tiers(r) for r in res]
    return out, [None if isinstance(r, BaseException) else r for r in res], seconds


def _run_pocketsphinx(recs):
    from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
    from vqalign.exceptions import VQAlignError

    ps = PocketsphinxAligner()
    warm = min(recs, key=lambda r: r.data["audio"].size)
    try:
        ps.align(warm.data["audio"], warm.text, sr=warm.data["sr"])
    except VQAlignError:
        pass
    out = []
    t0 = time.perf_counter()
    for r in recs:
        try:
            out.append(ps.align(r.data["audio"], r.text, sr=r.data["sr"]))
        except VQAlignError as exc:
            out.append(exc)
    return out, time.perf_counter() - t0, {"added_words": ps.added_words_,
                                           "n_retried": ps.n_retried_}


def _run_adapted(recs, spec, update):
    """Adapt the Sphinx model ``spec`` to the recordings, then align each with it."""
    from vqalign.align.sphinx import SphinxAligner
    from vqalign.exceptions import VQAlignError

    base = SphinxAligner(str(spec)[len("sphinx:"):] or "en-us")
    warm = min(recs, key=lambda r: r.data["audio"].size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            base.align(warm.data["audio"], warm.text, sr=warm.data["sr"])
        except VQAlignError:
            pass
    t0 = time.perf_counter()
    corpus = [(r.data["audio"], r.data["sr"], r.text) for r in recs]
    try:
        fitted = base.adapt(corpus, update=update)
    except VQAlignError as exc:
        return [exc] * len(recs), [None] * len(recs), time.perf_counter() - t0, None
    out, alns = [], []
    for r in recs:
        try:
            a = fitted.align(r.data["audio"], r.text, sr=r.data["sr"])
            out.append(_tiers(a))
            alns.append(a)
        except VQAlignError as exc:
            out.append(exc)
            alns.append(None)
    return out, alns, time.perf_counter() - t0, fitted.history_


def paired_speed(recs, model, rounds: int) -> dict:
    """Speed of ``--model`` against pocketsphinx, paired: in each round every recording
    is aligned by both, back to back (which goes first alternates), so both meet the same
    machine load; the per-round ratios and their median are returned. Both sides are
    warmed up untimed and run on one thread (the Sphinx aligner holds BLAS and numba to
    one; pocketsphinx is single-threaded)."""
    import statistics
    from argparse import Namespace

    from vqalign.align.cli import make_aligner
    from vqalign.bench.peers.pocketsphinx import PocketsphinxAligner
    from vqalign.exceptions import VQAlignError

    fitted = make_aligner(Namespace(model=str(model)))
    ps = PocketsphinxAligner()
    sides = (lambda r: ps.align(r.data["audio"], r.text, sr=r.data["sr"]),
             lambda r: fitted.align(r.data["audio"], r.text, sr=r.data["sr"]))
    warm = min(recs, key=lambda r: r.data["audio"].size)
    vq_s, ps_s = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in sides:
            try:
                f(warm)
            except VQAlignError:
                pass
        for k in range(rounds):
            tot = [0.0, 0.0]
            for i, r in enumerate(recs):
                for who in ((0, 1) if (i + k) % 2 == 0 else (1, 0)):
                    t0 = time.perf_counter()
                    try:
                        sides[who](r)
                    except VQAlignError:
                        pass
                    tot[who] += time.perf_counter() - t0
            ps_s.append(tot[0])
            vq_s.append(tot[1])
    ratios = [p / v for p, v in zip(ps_s, vq_s)]
    return {"rounds": rounds, "model": str(model), "vqalign_s": vq_s, "pocketsphinx_s": ps_s,
            "speedups": ratios, "median_speedup": statistics.median(ratios),
            "threads": {"vqalign": 1, "pocketsphinx": 1}}


def _warm_up(recs, modes):
    """Compile (or load) the numba kernels on the shortest recording, untimed."""
    from vqalign.align import Aligner, align

    r = min(recs, key=lambda r: r.data["audio"].size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if "single" in modes or "single-self" in modes:
                align(r.data["audio"], r.text, sr=r.data["sr"], n_iter=2)
            if "corpus" in modes or "corpus-self" in modes:
                one = [(r.data["audio"], r.data["sr"], r.text)]
                Aligner(n_iter=2).fit(one).align_many(one, n_jobs=1)
        except Exception:  # noqa: BLE001 - a warm-up failure shows again in the timed run
            pass


def compare(recs, hyps, peer) -> dict:
    """Pooled and per-recording agreement of ``hyps`` with ``peer`` (lists per recording)."""
    per, pooled, failed = [], [], []
    for r, h, p in zip(recs, hyps, peer):
        if isinstance(h, BaseException) or isinstance(p, BaseException):
            who = "vqalign" if isinstance(h, BaseException) else "peer"
            failed.append({"id": r.id, "who": who, "error": str(h if who == "vqalign" else p)})
            continue
        try:
            d = word_differences(h["words"], p["words"])
        except ParameterError as exc:
            failed.append({"id": r.id, "who": "scoring", "error": str(exc)})
            continue
        pooled.append(d)
        per.append({"id": r.id, "seconds": r.data["seconds"], **summarize(d),
                    "worst_word": _worst_word(h["words"], p["words"])})
    per.sort(key=lambda x: -x["mean_ms"])
    return {"overall": summarize(np.concatenate(pooled) if pooled else []),
            "recordings": per, "failed": failed}


def _against_reference(recs, systems) -> dict:
    """Each system's word errors against hand timings, where a TextGrid exists."""
    from vqalign.io.textgrid import read_textgrid

    with_ref = [(k, r) for k, r in enumerate(recs) if r.reference is not None]
    if not with_ref:
        return {}
    refs = {}
    for k, r in with_ref:
        tiers = read_textgrid(r.reference)
        if "words" in tiers:
            refs[k] = tiers
    out = {}
    for name, hyps in systems.items():
        diffs, phone_diffs, n = [], [], 0
        for k, tiers in refs.items():
            h = hyps[k]
            if isinstance(h, BaseException):
                continue
            try:
                diffs.append(word_differences(h["words"], tiers["words"]))
                n += 1
                if h.get("phones") and "phones" in tiers:
                    from vqalign.eval.boundaries import boundary_errors
                    phone_diffs.append(boundary_errors(h["phones"], tiers["phones"],
                                                       tier="phones")["errors"])
            except ParameterError:
                continue
        out[name] = {"n_recordings": n,
                     "words": summarize(np.concatenate(diffs) if diffs else []),
                     "phones": summarize(np.concatenate(phone_diffs) if phone_diffs else [])}
    return out


def _plot_worst(rec, aln, peer_tiers, mode, path, overwrite) -> str:
    import matplotlib.pyplot as plt

    from vqalign.io.atomic import atomic_write
    from vqalign.plots import plot_alignment

    arts = plot_alignment(rec.data["audio"], rec.data["sr"], aln, reference=peer_tiers,
                          figsize=(12, 7), title=f"{rec.id}: vqalign {mode} mode (top tiers) "
                                                 "vs pocketsphinx (ref tiers)")
    fig = arts["waveform"].axes.figure
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as fh:
            fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return str(path)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.floating):
        return _json_safe(float(obj))
    return obj


# ----------------------------------------------------------------------------- run
def run(args) -> int:
    from vqalign._validation import check_positive_int

    modes = [m.strip() for m in str(args.modes).split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ParameterError(f"--modes {args.modes!r}: use single, corpus, single-self, "
                             "corpus-self, comma-separated (e.g. single,corpus)")
    for opt, path in (("--model", args.model), ("--codebook", args.codebook)):
        if path is not None:
            if not Path(path).is_file() and not (opt == "--model"
                                                 and str(path).startswith("sphinx:")):
                raise ParameterError(f"{opt} file {path} does not exist")
            modes.append(opt[2:])
    if getattr(args, "adapt", None):
        if not str(args.model or "").startswith("sphinx:"):
            raise ParameterError("--adapt adapts a Sphinx model: give --model sphinx:en-us "
                                 "(or sphinx:DIR) with it")
        modes.append("adapted")
    jobs = check_positive_int(args.jobs, "--jobs")
    n_worst = check_positive_int(args.worst, "--worst")
    recs, skipped = find_recordings(args.corpus, transcripts=args.transcripts)
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        raise ParameterError("bench agree compares with pocketsphinx, which is not installed: "
                             "pip install pocketsphinx (or pip install 'vqalign[bench]')") from None
    if args.limit is not None:
        recs = recs[:check_positive_int(args.limit, "--limit")]
    plots = {}
    if not args.no_plot:
        for m in modes:
            plots[m] = Path(args.plot_dir) / f"agree_worst_{m}.png"
            if plots[m].exists() and not args.overwrite:
                raise ParameterError(f"{plots[m]} exists; pass --overwrite to replace it, "
                                     "--plot-dir DIR for another folder, or --no-plot")
    for r in recs:
        y, sr = load_recording(r)
        r.data.update(audio=y, sr=sr, seconds=y.size / sr)
    audio_s = sum(r.data["seconds"] for r in recs)
    say = (lambda *a: None) if args.json else print
    say(f"bench agree: {len(recs)} recording(s), {audio_s:.1f} s of audio under {args.corpus}"
        + (f"; {len(skipped)} skipped (no transcript)" if skipped else ""))
    for path, why in skipped:
        say(f"  skipped {path}: {why.split(':')[0]}")

    _warm_up(recs, modes)
    systems, alns, seconds = {}, {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peer, seconds["pocketsphinx"], ps_info = _run_pocketsphinx(recs)
        systems["pocketsphinx"] = peer
        if "single" in modes:
            systems["single"], alns["single"], seconds["single"] = _run_single(recs, jobs)
        if "corpus" in modes:
            systems["corpus"], alns["corpus"], seconds["corpus"] = _run_corpus(recs, jobs)
        if "single-self" in modes:
            systems["single-self"], alns["single-self"], seconds["single-self"] = \
                _run_single(recs, jobs, reference="flat")
        if "corpus-self" in modes:
            systems["corpus-self"], alns["corpus-self"], seconds["corpus-self"] = \
                _run_corpus(recs, jobs, reference="flat")
        for m, kw in (("model", {"model": args.model}), ("codebook", {"codebook": args.codebook})):
            if m in modes:
                systems[m], alns[m], seconds[m] = _run_single(recs, jobs, **kw)
        adapt_history = None
        if "adapted" in modes:
            systems["adapted"], alns["adapted"], seconds["adapted"], adapt_history = \
                _run_adapted(recs, args.model, args.adapt)
    oov = sorted({m for w in caught if "letter-to-sound" in str(w.message)
                  for m in re.findall(r"(\S+) /[A-Z ]+/", str(w.message))})
    report = {"corpus": str(args.corpus), "n_recordings": len(recs), "audio_s": audio_s,
              "skipped": [{"path": p, "reason": w} for p, w in skipped],
              "peer": args.peer, "threads": {"vqalign": jobs, "pocketsphinx": 1},
              "seconds": seconds, "oov_words": oov,
              "pocketsphinx_added_words": sorted(ps_info["added_words"]),
              "modes": {}, "plots": {}}
    for m in modes:
        report["modes"][m] = compare(recs, systems[m], peer)
    # every system's word times, so the figures can be checked or re-scored
    report["alignments"] = [
        {"id": r.id, "text": r.text, "seconds": r.data["seconds"],
         "words": {name: (f"error: {h[k]}" if isinstance(h[k], BaseException)
                          else [[float(a), float(b), w] for a, b, w in h[k]["words"]])
                   for name, h in systems.items()}}
        for k, r in enumerate(recs)]
    ref = _against_reference(recs, systems)
    if ref:
        report["against_reference"] = ref
    if adapt_history is not None:
        report["adapt"] = {"update": args.adapt, "corpus": "the recordings themselves",
                           "history": adapt_history}
    rounds = int(getattr(args, "speed_rounds", 0) or 0)
    if "model" in modes and rounds > 0:
        report["paired_speed"] = paired_speed(recs, args.model, rounds)
    for m in modes:
        worst = report["modes"][m]["recordings"]
        if m in plots and worst:
            k = next(i for i, r in enumerate(recs) if r.id == worst[0]["id"])
            report["plots"][m] = _plot_worst(recs[k], alns[m][k], peer[k], m, plots[m],
                                             args.overwrite)
    if args.json:
        print(json.dumps(_json_safe(report), indent=1))
        return 0
    ps_s = seconds["pocketsphinx"]
    print(f"word boundaries against {args.peer} (its alignment is the yardstick); vqalign "
          f"{jobs} thread(s), pocketsphinx 1")
    print(f"  {'mode':<8} {'n':>4} {'mean ms':>8} {'median':>7} "
          + " ".join(f"{'<=' + str(t) + 'ms':>8}" for t in THRESHOLDS_MS)
          + f" {'time s':>7} {'time / ps':>9}")
    for m in modes:
        o = report["modes"][m]["overall"]
        print(f"  {m:<8} {o['n_boundaries']:>4} {o['mean_ms']:8.1f} {o['median_ms']:7.1f} "
              + " ".join(f"{100 * o[f'within_{t}ms']:7.1f}%" for t in THRESHOLDS_MS)
              + f" {seconds[m]:7.2f} {seconds[m] / ps_s:9.2f}")
    print(f"  pocketsphinx: {ps_s:.2f} s for {audio_s:.1f} s of audio")
    for m in modes:
        per = report["modes"][m]["recordings"]
        n_ok = sum(1 for x in per if x["within_20ms"] >= 0.9)
        print(f"  {m}: {n_ok} of {len(per)} recordings with >= 90 % of word boundaries "
              "within 20 ms of pocketsphinx")
    if "adapt" in report:
        h = report["adapt"]["history"]
        print(f"adapted ({args.adapt}, EM on these {len(recs)} recordings): data log-likelihood "
              f"per frame {h[0]['frame_loglik']:.3f} -> {h[-1]['frame_loglik']:.3f} over "
              f"{len(h) - 1} steps")
    if "paired_speed" in report:
        sp = report["paired_speed"]
        print(f"paired speed, --model {sp['model']} vs pocketsphinx (one thread each, "
              f"{sp['rounds']} rounds, both on every recording back to back): median "
              f"{sp['median_speedup']:.2f}x pocketsphinx's speed (rounds: "
              + ", ".join(f"{x:.2f}x" for x in sp["speedups"])
              + f"; vqalign {min(sp['vqalign_s']):.2f}-{max(sp['vqalign_s']):.2f} s, "
              f"pocketsphinx {min(sp['pocketsphinx_s']):.2f}-{max(sp['pocketsphinx_s']):.2f} s)")
    for m in modes:
        res = report["modes"][m]
        print(f"worst recordings, {m} mode (mean abs difference; the word that differs most):")
        for x in res["recordings"][:n_worst]:
            w = x["worst_word"]
            print(f"  {x['id']:<48} {x['mean_ms']:7.1f} ms  {w.get('word', '')!r}: vqalign "
                  f"{w['vqalign'][0]:.2f}-{w['vqalign'][1]:.2f} s, pocketsphinx "
                  f"{w['peer'][0]:.2f}-{w['peer'][1]:.2f} s")
        for f in res["failed"]:
            print(f"  FAILED {f['id']} ({f['who']}): {f['error']}")
        if m in report["plots"]:
            print(f"  plot of the worst: {report['plots'][m]}")
    if ref:
        print("against hand timings (TextGrids beside the audio):")
        for name, s in ref.items():
            print(f"  {name:<12} {s['n_recordings']:>3} rec  words {s['words']['mean_ms']:6.1f} ms"
                  f" mean, phones {s['phones']['mean_ms']:6.1f} ms mean")
    if oov:
        print(f"OOV words (letter-to-sound): {', '.join(oov)}")
    if report["pocketsphinx_added_words"]:
        print(f"words added to pocketsphinx's dictionary: "
              f"{', '.join(report['pocketsphinx_added_words'])}")
    return 0
