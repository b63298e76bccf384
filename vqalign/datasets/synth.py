"""A small source-filter speech synthesizer with exact phone and word times.

English text -> ARPAbet phones (CMUdict, first pronunciation, stress stripped;
a letter-to-sound fallback for other words) -> per-phone acoustic targets ->
per-sample parameter tracks -> audio:

* voicing: a Rosenberg glottal pulse (flow derivative, i.e. with lip radiation)
  driven by an f0 contour (declination, pitch accents on stressed vowels, slow
  random drift and fast jitter) plus breathiness noise;
* a cascade of five time-varying formant resonators (vowel targets after
  Hillenbrand et al. 1995 / Peterson & Barney 1952 male averages, diphthongs
  glide from an onset to an offset target; nasals, liquids and glides with
  plausible steady targets; consonant "loci" so neighbouring vowels show
  formant transitions);
* frication: high-passed white noise through a parallel resonator whose centre
  and bandwidth depend on the fricative (S, Z high; SH, ZH mid; F, V, TH, DH
  weak and flat; HH is aspiration noise through the vocal-tract cascade);
* stops: closure (silent, or a low voice bar for B D G), a place-specific
  burst and, for P T K, aspiration; affricates CH JH: closure, burst, frication.

Boundaries are exact: a phone starts at the sample where its excitation and
filter targets switch (time = sample / sr). Amplitude changes ramp over
+-1.5 ms centred on that sample; formant tracks interpolate over +-12 ms
(smooth transitions that stay centred on the true boundary); bandwidths switch
within +-1.5 ms (wide in pauses, so a phone before a pause ends crisply).
Everything is vectorized (numpy) except the resonator recursion, which runs in a
numba kernel (vqalign.datasets._kernels).

Words missing from CMUdict are pronounced by the aligner's own letter-to-sound
rules (:func:`vqalign.align.lexicon.letter_to_sound`), so the synthesizer and the
aligner agree on every word; the first vowel of such a word carries the stress.
"""

from __future__ import annotations

import json
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqalign._validation import check_positive_int, check_sample_rate
from vqalign.align.lexicon import cmudict_with_stress, letter_to_sound
from vqalign.datasets.sentences import SENTENCES
from vqalign.exceptions import ParameterError
from vqalign.features.constants import FEATURE_SR

__all__ = [
    "PHONES",
    "SENTENCES",
    "VOICES",
    "Utterance",
    "Voice",
    "letter_to_sound",
    "synthesize",
    "synthesize_corpus",
    "text_to_phones",
    "write_corpus",
]

SIL = "sil"


# --------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class Voice:
    """Speaker settings: mean f0 (Hz), formant scale (vocal-tract length),
    breathiness (aspiration mixed into voicing), Rosenberg pulse shape
    (opening and closing fractions of the period), jitter (relative f0 noise)."""

    name: str
    f0: float
    formant_scale: float
    breathiness: float
    open_frac: float = 0.40
    close_frac: float = 0.16
    jitter: float = 0.01
    f0_range: float = 0.12  # depth of accents / declination, relative


VOICES = {
    "adam": Voice("adam", f0=108.0, formant_scale=1.00, breathiness=0.03),
    "bruno": Voice("bruno", f0=128.0, formant_scale=0.94, breathiness=0.05,
                   open_frac=0.42, close_frac=0.18),
    "clara": Voice("clara", f0=205.0, formant_scale=1.16, breathiness=0.08,
                   open_frac=0.46, close_frac=0.22),
    "dana": Voice("dana", f0=232.0, formant_scale=1.22, breathiness=0.12,
                  open_frac=0.50, close_frac=0.24, jitter=0.012),
}


# --------------------------------------------------------------------------- phones
# kind, base duration (ms), F1 F2 F3 (onset) [, F1 F2 F3 (offset) for diphthongs]
_V = "vowel"
PHONES: dict[str, dict] = {}


def _ph(name, kind, dur, f, f_end=None, bw=(80.0, 100.0, 150.0), **kw):
    PHONES[name] = dict(kind=kind, dur=dur, f=tuple(float(x) for x in f),
                        f_end=tuple(float(x) for x in (f_end or f)), bw=bw, **kw)


# vowels (Hillenbrand et al. 1995, adult male means, rounded)
_ph("IY", _V, 110, (342, 2322, 3000))
_ph("IH", _V, 75, (427, 2034, 2684))
_ph("EH", _V, 90, (580, 1799, 2605))
_ph("AE", _V, 120, (660, 1720, 2410))
_ph("AA", _V, 125, (768, 1333, 2522))
_ph("AO", _V, 125, (652, 997, 2538))
_ph("UH", _V, 75, (469, 1122, 2434))
_ph("UW", _V, 110, (378, 997, 2343))
_ph("AH", _V, 80, (623, 1200, 2550))
_ph("ER", _V, 110, (474, 1379, 1710))
# diphthongs: onset -> offset
_ph("EY", _V, 140, (520, 1950, 2600), (360, 2250, 2850))
_ph("AY", _V, 150, (750, 1300, 2500), (400, 2050, 2650))
_ph("AW", _V, 150, (750, 1300, 2500), (450, 950, 2400))
_ph("OY", _V, 160, (580, 900, 2450), (400, 1950, 2600))
_ph("OW", _V, 140, (520, 1000, 2450), (390, 850, 2350))
# sonorants
_ph("M", "nasal", 65, (280, 1000, 2300), bw=(100.0, 300.0, 400.0), av=0.55)
_ph("N", "nasal", 55, (280, 1600, 2600), bw=(100.0, 300.0, 400.0), av=0.55)
_ph("NG", "nasal", 70, (280, 2000, 2700), bw=(100.0, 300.0, 400.0), av=0.55)
_ph("L", "liquid", 60, (360, 1000, 2800), bw=(90.0, 150.0, 250.0), av=0.75)
_ph("R", "liquid", 60, (350, 1100, 1500), bw=(90.0, 120.0, 150.0), av=0.75)
_ph("W", "glide", 55, (300, 650, 2200), bw=(80.0, 120.0, 200.0), av=0.75)
_ph("Y", "glide", 50, (270, 2200, 3000), bw=(80.0, 120.0, 200.0), av=0.75)
# fricatives: frication centre / bandwidth (Hz), gain, bypass (flat noise), voicing
_ph("S", "fric", 100, (300, 1700, 2600), fc=5500.0, fb=1600.0, af=0.40, bp=0.0, av=0.0)
_ph("Z", "fric", 75, (300, 1700, 2600), fc=5300.0, fb=1600.0, af=0.28, bp=0.0, av=0.30)
_ph("SH", "fric", 105, (300, 1900, 2500), fc=2800.0, fb=900.0, af=0.50, bp=0.0, av=0.0)
_ph("ZH", "fric", 75, (300, 1900, 2500), fc=2700.0, fb=900.0, af=0.35, bp=0.0, av=0.30)
_ph("F", "fric", 90, (300, 1000, 2300), fc=6500.0, fb=5000.0, af=0.05, bp=0.05, av=0.0)
_ph("V", "fric", 55, (300, 1000, 2300), fc=6500.0, fb=5000.0, af=0.035, bp=0.035, av=0.35)
_ph("TH", "fric", 85, (300, 1500, 2600), fc=4500.0, fb=3500.0, af=0.07, bp=0.03, av=0.0)
_ph("DH", "fric", 45, (300, 1500, 2600), fc=4500.0, fb=3500.0, af=0.05, bp=0.02, av=0.35)
_ph("HH", "aspirate", 60, (500, 1500, 2500), ah=0.6)
# stops: (closure, burst, release) ms; burst centre/bandwidth
_ph("P", "stop", 91, (300, 900, 2300), parts=(55, 8, 28), fc=1000.0, fb=1800.0, voiced=False)
_ph("B", "stop", 57, (250, 900, 2300), parts=(45, 6, 6), fc=1000.0, fb=1800.0, voiced=True)
_ph("T", "stop", 90, (300, 1700, 2600), parts=(52, 8, 30), fc=4500.0, fb=2000.0, voiced=False)
_ph("D", "stop", 57, (250, 1700, 2600), parts=(45, 6, 6), fc=4300.0, fb=2000.0, voiced=True)
_ph("K", "stop", 95, (300, 1900, 2400), parts=(55, 10, 30), fc=2000.0, fb=800.0, voiced=False)
_ph("G", "stop", 60, (250, 1900, 2400), parts=(45, 8, 7), fc=1900.0, fb=800.0, voiced=True)
_ph("CH", "affricate", 110, (300, 1900, 2500), parts=(45, 5, 60), fc=2800.0, fb=900.0,
    voiced=False)
_ph("JH", "affricate", 85, (250, 1900, 2500), parts=(35, 5, 45), fc=2700.0, fb=900.0,
    voiced=True)
# silence: wide bandwidths (open glottis) so resonances die out within ~1 ms of a pause
_ph(SIL, "sil", 200, (500, 1500, 2500), bw=(600.0, 600.0, 700.0))

_F45 = (3500.0, 4500.0)
_B45 = (250.0, 300.0)
_VOWEL_LIKE = {"vowel", "nasal", "liquid", "glide"}


# --------------------------------------------------------------------------- text
def normalize_text(text) -> list[str]:
    """Lower-case words of ``text``: letters and inner apostrophes; every other
    character separates words. Digits are refused (write numbers as words)."""
    if not isinstance(text, str):
        raise ParameterError(f"text must be a string of English words, got {type(text).__name__}")
    t = text.lower()
    digits = re.search(r"[0-9]+", t)
    if digits:
        raise ParameterError(
            f"text {text[:60]!r} contains the number {digits.group()!r}; write numbers as "
            "words (e.g. 'twelve'), the synthesizer only reads letters"
        )
    t = re.sub(r"[^a-z']+", " ", t)
    words = [w.strip("'") for w in t.split()]
    return [w for w in words if w]


def text_to_phones(text) -> tuple[list[str], list[list[str]], list[list[int]]]:
    """Words, their phones (stress stripped) and stress marks (-1 for consonants)."""
    words = normalize_text(text)
    if not words:
        raise ParameterError(
            f"text {text!r} contains no letters; pass English words, e.g. 'the cat sat'"
        )
    d = cmudict_with_stress()
    prons, stresses = [], []
    for w in words:
        if w in d:
            raw = d[w][0]
            prons.append([re.sub(r"\d", "", p) for p in raw])
            stresses.append([int(p[-1]) if p[-1].isdigit() else -1 for p in raw])
        else:
            ph = letter_to_sound(w)
            prons.append(ph)
            first = True
            st = []
            for p in ph:
                if PHONES[p]["kind"] == _V:
                    st.append(1 if first else 0)
                    first = False
                else:
                    st.append(-1)
            stresses.append(st)
    return words, prons, stresses


# --------------------------------------------------------------------------- utterance
@dataclass(eq=False)
class Utterance:
    """Synthesized speech with exact tiers.

    ``words`` / ``phones``: lists of ``(start_s, end_s, label)`` covering
    ``[0, duration]`` without gaps; silence is ``""`` in words and ``"sil"`` in
    phones; every word boundary is a phone boundary; times are sample / sr.
    """

    audio: np.ndarray
    sr: int
    text: str
    words: list
    phones: list
    voice: str
    seed: int
    rate: float = 1.0
    id: str = ""

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / self.sr

    def write_textgrid(self, path, overwrite: bool = True):
        """Write tiers ``words`` and ``phones`` to a Praat TextGrid (atomically)."""
        from vqalign.io.textgrid import write_textgrid

        return write_textgrid(path, {"words": self.words, "phones": self.phones},
                              self.duration, overwrite=overwrite)

    def to_dict(self) -> dict:
        """JSON-ready description (everything but the samples)."""
        return {
            "id": self.id, "text": self.text, "voice": self.voice, "seed": self.seed,
            "rate": self.rate, "sample_rate": self.sr, "n_samples": int(self.audio.shape[0]),
            "duration": self.duration,
            "words": [[s, e, lab] for s, e, lab in self.words],
            "phones": [[s, e, lab] for s, e, lab in self.phones],
        }


# --------------------------------------------------------------------------- synthesis
def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of odd ``width`` along the last axis (edges held)."""
    if width <= 1:
        return x
    h = width // 2
    pad = np.concatenate([np.repeat(x[..., :1], h + 1, axis=-1), x,
                          np.repeat(x[..., -1:], h, axis=-1)], axis=-1)
    c = np.cumsum(pad, axis=-1)
    return (c[..., width:] - c[..., :-width]) / width


def _ramped_tracks(values: np.ndarray, seg_n: np.ndarray, half: float) -> np.ndarray:
    """Per-sample tracks of piecewise-constant segment values with linear ramps.

    values: (n_seg, n_tracks); seg_n: samples per segment. At each boundary
    sample B the value ramps linearly over samples B-h .. B+h-1, with
    h = min(half, a quarter of the shorter neighbouring segment) (no ramp when
    that is 0): the ramp's midpoint lies half-way between B-1 and B, so B is the
    first sample past it. Returns (n_tracks, n).
    """
    out = np.repeat(values.T, seg_n, axis=1)
    if seg_n.size < 2:
        return out
    bounds = np.cumsum(seg_n)[:-1]
    hk = np.floor(np.minimum(half, 0.25 * np.minimum(seg_n[:-1], seg_n[1:]))).astype(np.int64)
    cnt = 2 * hk
    total = int(cnt.sum())
    if total == 0:
        return out
    kk = np.repeat(np.arange(bounds.size), cnt)
    first = np.cumsum(cnt) - cnt
    j = np.arange(total) - first[kk] - hk[kk]                 # -h .. h-1
    w = (j + 0.5 + hk[kk]) / cnt[kk]
    prev = values[:-1].T[:, kk]
    nxt = values[1:].T[:, kk]
    out[:, bounds[kk] + j] = prev + (nxt - prev) * w
    return out


# per-segment parameter columns
_COLS = ("f1", "f2", "f3", "g1", "g2", "g3", "b1", "b2", "b3", "av", "ah", "af", "bp",
         "fc", "fb", "acc")
_C = {name: i for i, name in enumerate(_COLS)}


def _segments_for_phone(ph, stress, nxt, ms, sr):
    """Sub-segments (n_samples, parameter row) of one phone lasting ``ms`` ms."""
    p = PHONES[ph]
    kind = p["kind"]
    row = np.zeros(len(_COLS))
    row[0:3] = p["f"]
    row[3:6] = p["f_end"]
    row[6:9] = p["bw"]
    row[_C["fc"]] = 3000.0
    row[_C["fb"]] = 1000.0
    nxt_f = PHONES[nxt]["f"] if nxt is not None and PHONES[nxt]["kind"] in _VOWEL_LIKE else None
    n_total = max(1, int(round(ms * sr / 1000.0)))
    if kind == _V:
        row[_C["av"]] = 1.0
        row[_C["acc"]] = 1.0 if stress == 1 else 0.0
        return [(n_total, row)]
    if kind in ("nasal", "liquid", "glide"):
        row[_C["av"]] = p["av"]
        return [(n_total, row)]
    if kind == "fric":
        row[_C["av"]] = p["av"]
        row[_C["af"]] = p["af"]
        row[_C["bp"]] = p["bp"]
        row[_C["fc"]] = p["fc"]
        row[_C["fb"]] = p["fb"]
        if p["av"] > 0:
            row[6] = 120.0
        return [(n_total, row)]
    if kind == "aspirate":
        if nxt_f is not None:
            row[0:3] = nxt_f
            row[3:6] = nxt_f
        row[_C["ah"]] = p["ah"]
        return [(n_total, row)]
    if kind == "sil":
        return [(n_total, row)]
    # stops and affricates: closure, burst, release
    parts = np.asarray(p["parts"], dtype=float)
    n_parts = np.maximum(1, np.round(parts / parts.sum() * n_total).astype(int))
    n_parts[0] = max(1, n_total - n_parts[1] - n_parts[2])
    clos = row.copy()
    if p["voiced"]:
        clos[_C["av"]] = 0.12
        clos[0] = clos[3] = 180.0
        clos[6:9] = (80.0, 400.0, 500.0)
    burst = row.copy()
    burst[_C["af"]] = 0.9
    burst[_C["bp"]] = 0.08
    burst[_C["fc"]] = p["fc"]
    burst[_C["fb"]] = p["fb"]
    rel = row.copy()
    if nxt_f is not None:
        rel[3:6] = nxt_f
    if kind == "affricate":
        rel[_C["af"]] = 0.45
        rel[_C["fc"]] = p["fc"]
        rel[_C["fb"]] = p["fb"]
        rel[_C["av"]] = 0.3 if p["voiced"] else 0.0
    elif p["voiced"]:
        rel[_C["av"]] = 0.5
    else:
        rel[_C["ah"]] = 0.5
    return [(int(n_parts[0]), clos), (int(n_parts[1]), burst), (int(n_parts[2]), rel)]


def _check_voice(voice) -> Voice:
    if voice is None:
        return next(iter(VOICES.values()))
    if isinstance(voice, Voice):
        return voice
    if isinstance(voice, str) and voice in VOICES:
        return VOICES[voice]
    raise ParameterError(
        f"voice={voice!r} is not a built-in voice; choose one of {sorted(VOICES)} "
        "(vqalign.datasets.synth.VOICES) or pass a Voice(...)"
    )


def _check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not np.isfinite(rate):
        raise ParameterError(f"rate must be a positive number (1.0 = normal speed), got {rate!r}")
    if rate <= 0:
        raise ParameterError(f"rate={rate} must be > 0 (1.0 = normal speed, 1.2 = 20% faster)")
    if rate < 0.2 or rate > 5:
        raise ParameterError(f"rate={rate} is outside the supported range 0.2-5 "
                             "(1.0 = normal speed)")
    return float(rate)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ParameterError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def synthesize(text, *, voice=None, rate=1.0, seed=0, sr=FEATURE_SR,
               pause_prob=0.25) -> Utterance:
    """Synthesize English ``text``; return audio and exact word/phone tiers.

    Parameters
    ----------
    text : str
        English words (case and punctuation are ignored; numbers must be written as words).
    voice : str or Voice, optional
        A name in :data:`VOICES` (default: the first, ``"adam"``).
    rate : float
        Speaking-rate factor; phone durations are divided by it.
    seed : int
        Seeds durations, pauses, pitch and noise; same seed -> identical samples.
    sr : int
        Sample rate (>= 8000 Hz).
    pause_prob : float
        Probability of a short pause between two words.
    """
    from vqalign._validation import check_probability

    v = _check_voice(voice)
    rate = _check_rate(rate)
    seed = _check_seed(seed)
    sr = check_sample_rate(sr)
    pause_prob = check_probability(pause_prob, "pause_prob")
    words, prons, stresses = text_to_phones(text)
    rng = np.random.default_rng(seed)

    # ---- phone sequence with durations (ms)
    seq = [(SIL, -1, None, rng.uniform(180.0, 320.0))]  # label, stress, word index, ms
    n_words = len(words)
    pause_after = rng.random(n_words) < pause_prob
    pause_after[-1] = False
    jit = np.exp(rng.normal(0.0, 0.08, size=sum(len(p) for p in prons)))
    k = 0
    for wi, (pron, st) in enumerate(zip(prons, stresses)):
        final = wi == n_words - 1 or pause_after[wi]
        for j, (ph, s) in enumerate(zip(pron, st)):
            ms = PHONES[ph]["dur"] * jit[k]
            k += 1
            if s == 1:
                ms *= 1.15
            elif s == 0:
                ms *= 0.72
            if final and j >= len(pron) - 3:
                ms *= 1.2
            seq.append((ph, s, wi, max(ms / rate, 32.0)))
        if pause_after[wi]:
            seq.append((SIL, -1, None, rng.uniform(110.0, 280.0) / rate))
    seq.append((SIL, -1, None, rng.uniform(200.0, 350.0)))

    # ---- sub-segments
    seg_n, seg_rows, phone_n = [], [], []
    for i, (ph, s, _, ms) in enumerate(seq):
        nxt = seq[i + 1][0] if i + 1 < len(seq) else None
        parts = _segments_for_phone(ph, s, nxt, ms, sr)
        phone_n.append(sum(n for n, _ in parts))
        for n, row in parts:
            seg_n.append(n)
            seg_rows.append(row)
    seg_n = np.asarray(seg_n, dtype=np.int64)
    rows = np.asarray(seg_rows)
    n = int(seg_n.sum())
    starts = np.concatenate([[0], np.cumsum(seg_n)[:-1]])
    idx = np.repeat(np.arange(seg_n.size), seg_n)

    # ---- per-sample amplitude and frication tracks: +-1.5 ms ramps centred on boundaries
    scale = v.formant_scale
    amp_cols = [_C["av"], _C["ah"], _C["af"], _C["bp"], _C["fc"], _C["fb"]]
    av, ah, af, bp, fc, fb = _ramped_tracks(rows[:, amp_cols], seg_n, 0.0015 * sr)
    fc = fc * np.sqrt(scale)

    # ---- formant tracks at control points every `hop` samples, smoothed over +-12 ms
    hop = max(1, sr // 2000)
    ci = np.arange(0, n, hop)
    cseg = idx[ci]
    cfrac = (ci - starts[cseg]) / seg_n[cseg]
    crow = rows[cseg]
    f123 = crow[:, 0:3] + (crow[:, 3:6] - crow[:, 0:3]) * cfrac[:, None]
    m = ci.size
    freqs = np.empty((5, m))
    bws = np.empty((5, m))
    w_form = 2 * int(0.012 * sr / hop) + 1
    freqs[0:3] = _smooth(f123.T * scale, w_form)
    bws[0:3] = _smooth(crow[:, 6:9].T, 2 * int(0.0015 * sr / hop) + 1)
    freqs[3] = _F45[0] * scale
    freqs[4] = _F45[1] * scale
    bws[3] = _B45[0]
    bws[4] = _B45[1]

    # ---- f0: declination, accents on stressed vowels, drift, jitter
    dur = n / sr
    tc_ = ci / sr
    decl = 1.0 + v.f0_range * (0.6 - 1.2 * tc_ / dur)
    acc = _smooth(crow[:, _C["acc"]][None, :], 2 * int(0.04 * sr / hop) + 1)[0]
    n_ctrl = int(dur * 50) + 4                                  # 20 ms control points
    drift = np.interp(tc_, np.arange(n_ctrl) * 0.02, rng.normal(0.0, 0.03, n_ctrl))
    jit_ctrl = rng.normal(0.0, v.jitter, int(dur * 400) + 4)    # 2.5 ms control points
    jitter = np.interp(tc_, np.arange(jit_ctrl.size) * 0.0025, jit_ctrl)
    f0c = v.f0 * decl * (1.0 + v.f0_range * acc) * (1.0 + drift + jitter)
    phase0 = float(rng.random())
    seed_a, seed_f, seed_floor = (int(x) for x in rng.integers(1, 2**62, size=3))

    from vqalign.datasets import _kernels

    out = np.empty(n)
    status = _kernels.render(f0c, hop, phase0, v.open_frac, v.close_frac, v.breathiness,
                             av, ah, af, bp, seed_a, seed_f, freqs, bws, fc, fb,
                             float(sr), out)
    if status != 0:  # pragma: no cover - shapes are built above
        raise RuntimeError(f"synthesizer kernel failed with status {status}")

    peak = np.max(np.abs(out))
    out *= 0.5 / peak
    floor = np.empty(n)
    _kernels.white_noise(seed_floor, floor)
    out += (0.5 * 10 ** (-58 / 20)) * floor                      # noise floor, -58 dB re peak
    audio = out.astype(np.float32)

    # ---- tiers (exact sample boundaries)
    bounds = np.concatenate([[0], np.cumsum(phone_n)])
    phones = []
    words_tier = []
    cur_word, w_start = None, 0
    for i, (lab, _, wi, _) in enumerate(seq):
        a, b = int(bounds[i]), int(bounds[i + 1])
        phones.append((a / sr, b / sr, lab))
        if wi != cur_word:
            if i > 0:
                words_tier.append((w_start / sr, a / sr,
                                   "" if cur_word is None else words[cur_word]))
            cur_word, w_start = wi, a
    words_tier.append((w_start / sr, n / sr, "" if cur_word is None else words[cur_word]))
    return Utterance(audio=audio, sr=sr, text=" ".join(words), words=words_tier, phones=phones,
                     voice=v.name, seed=seed, rate=rate)


# --------------------------------------------------------------------------- corpora
def synthesize_corpus(n=None, *, seconds=None, seed=0, voices=None,
                      sr=FEATURE_SR) -> list[Utterance]:
    """Synthesize utterances cycling through :data:`SENTENCES` and ``voices``.

    Each utterance gets a random speaking rate in [0.85, 1.2] and its own seed,
    both drawn from ``seed``. Stops after ``n`` utterances or once ``seconds`` of
    audio are made (whichever comes first); with neither, one pass over SENTENCES.
    Ids are ``<voice>-<index:05d>``.
    """
    if n is None and seconds is None:
        n = len(SENTENCES)
    if n is not None:
        n = check_positive_int(n, "n")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) \
                or not np.isfinite(seconds) or seconds <= 0:
            raise ParameterError(f"seconds={seconds!r} must be a positive number of seconds")
    seed = _check_seed(seed)
    sr = check_sample_rate(sr)
    if voices is None:
        voices = list(VOICES)
    elif isinstance(voices, (str, Voice)):
        voices = [voices]
    voices = [_check_voice(x) for x in voices]
    if not voices:
        raise ParameterError("voices is empty; pass None (all voices) or a list of names")
    rng = np.random.default_rng(seed)
    out: list[Utterance] = []
    total = 0.0
    i = 0
    n_s = len(SENTENCES)
    while True:
        if n is not None and i >= n:
            break
        if seconds is not None and total >= seconds:
            break
        voice = voices[(i + i // n_s) % len(voices)]
        rate = float(rng.uniform(0.85, 1.2))
        useed = int(rng.integers(0, 2**31 - 1))
        u = synthesize(SENTENCES[i % n_s], voice=voice, rate=rate, seed=useed, sr=sr)
        u.id = f"{voice.name}-{i:05d}"
        out.append(u)
        total += u.duration
        i += 1
    return out


def write_corpus(utts, out_dir, *, overwrite: bool = False) -> list[Path]:
    """Write ``<id>.wav`` (16-bit PCM), ``<id>.txt`` and ``<id>.TextGrid`` per utterance,
    and ``corpus.json`` (every utterance's :meth:`Utterance.to_dict`: voice, rate, seed, tiers).

    Files are written atomically; existing files raise :class:`ParameterError`
    unless ``overwrite=True`` (checked for all files before anything is written).
    Returns the list of WAV paths.
    """
    import soundfile as sf

    from vqalign.io.atomic import atomic_write

    out_dir = Path(out_dir)
    utts = list(utts)
    ids = [u.id or f"utt{i:05d}" for i, u in enumerate(utts)]
    if len(set(ids)) != len(ids):
        raise ParameterError("utterance ids are not unique; give each Utterance a distinct .id")
    if not overwrite:
        targets = [out_dir / f"{uid}{ext}" for uid in ids for ext in (".wav", ".txt", ".TextGrid")]
        for p in [*targets, out_dir / "corpus.json"]:
            if p.exists():
                raise ParameterError(
                    f"{p} exists; pass overwrite=True (CLI: --overwrite) or choose "
                    "another output directory"
                )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, u in zip(ids, utts):
        wav = out_dir / f"{uid}.wav"
        with atomic_write(wav, "wb", overwrite=True) as fh:
            sf.write(fh, u.audio, u.sr, format="WAV", subtype="PCM_16")
        with atomic_write(out_dir / f"{uid}.txt", "w", overwrite=True) as fh:
            fh.write(u.text + "\n")
        u.write_textgrid(out_dir / f"{uid}.TextGrid", overwrite=True)
        paths.append(wav)
    with atomic_write(out_dir / "corpus.json", "w", overwrite=True) as fh:
        json.dump([dict(u.to_dict(), id=uid) for uid, u in zip(ids, utts)], fh)
    return paths
