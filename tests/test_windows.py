"""The linear-time schedule of long recordings (vqalign.align.windows): its pure parts
against brute-force references, the engine's resumed EM against an uninterrupted one, and
an interrupted long alignment resumed to the same words."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.align import longform as L
from vqalign.align import windows as W
from vqalign.exceptions import ParameterError
from vqalign.features import frontend as F


# --------------------------------------------------------------------------- frames
def _shortened_naive(speech, n_frames, hop_s, keep_s):
    on = [bool(speech[min(int(i * round(hop_s / 0.010) + 1e-6), len(speech) - 1)])
          for i in range(n_frames)]
    half = max(1, int(round(keep_s / 2 / hop_s)))
    out = []
    for i in range(n_frames):
        near = any(on[j] for j in range(max(0, i - half), min(n_frames, i + half + 1)))
        if on[i] or near:
            out.append(i)
    return np.array(out, np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shortened_frames_match_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    # speech runs and pauses of random length (some pauses long)
    runs = rng.integers(1, 120, size=60)
    speech = np.concatenate([np.full(r, i % 2 == 0) for i, r in enumerate(runs)])
    n_frames = speech.size if seed != 2 else speech.size // 2   # 20 ms hop when seed 2
    hop = 0.010 if seed != 2 else 0.020
    got = W.shortened_frames(speech, n_frames, hop, keep_s=0.3)
    ref = _shortened_naive(speech, n_frames, hop, 0.3)
    np.testing.assert_array_equal(got, ref)
    assert got.size < n_frames          # the long pauses were shortened


def test_shortened_frames_keep_everything_without_speech():
    np.testing.assert_array_equal(W.shortened_frames(np.zeros(50, bool), 50, 0.01),
                                  np.arange(50))


def test_cut_windows_cover_frames_and_words_in_order():
    rng = np.random.default_rng(5)
    # a path: words of 20-60 frames, pauses of 0-40 frames
    w, n_words = [], 300
    for k in range(n_words):
        w += [-1] * int(rng.integers(0, 40)) + [k] * int(rng.integers(20, 60))
    w += [-1] * 10
    w = np.array(w)
    wins = W.cut_windows(w, n_words, target=2000)
    assert wins[0][0] == 0 and wins[-1][1] == w.size
    assert wins[0][2] == 0 and wins[-1][3] == n_words
    for (a, b, wa, wb), nxt in zip(wins, wins[1:] + [None]):
        assert wb > wa                                   # every window has words
        if nxt is not None:
            assert nxt[0] == b and nxt[2] == wb          # contiguous
            assert w[b] == -1                            # cut inside a pause
            assert b - a >= 2000
            # the words of the window are exactly those on its frames
            on = np.unique(w[a:b][w[a:b] >= 0])
            np.testing.assert_array_equal(on, np.arange(wa, wb))
    assert len(wins) > 5


# --------------------------------------------------------------------------- front end
def test_frame_db_in_blocks_matches_the_whole_signal_formula():
    rng = np.random.default_rng(3)
    y = (0.1 * rng.standard_normal(F.MEM_BLOCK * 2 + 12345)).astype(np.float32)
    y[: F.MEM_BLOCK // 3] = 0.0
    c = np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])
    n = int(np.ceil(y.size / 160))
    a = np.arange(n) * 160
    b = np.minimum(a + 400, y.size)
    ref = 10 * np.log10((c[b] - c[a]) / np.maximum(b - a, 1) + 1e-12)
    got = F.frame_db(y)
    assert got.shape == ref.shape
    loud = ref > -100   # where the whole-signal cumsum is not rounding noise
    np.testing.assert_allclose(got[loud], ref[loud], rtol=0, atol=1e-6)
    assert np.all(got[~loud] < -100)


def test_dither_in_blocks_is_the_same_noise():
    rng = np.random.default_rng(4)
    y = (0.1 * rng.standard_normal(F.MEM_BLOCK + 777)).astype(np.float32)
    y[::2] = 0.0                          # digital silence: the dither applies
    X, c0 = F.features(y, 0.010, 1, dither=1e-3)
    noise = np.random.default_rng(0).standard_normal(y.size).astype(np.float32)
    X_ref, c0_ref = F.features(y + np.float32(1e-3) * noise, 0.010, 1, dither=0.0)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(c0, c0_ref)


def test_dither_in_place_changes_only_our_copy():
    rng = np.random.default_rng(5)
    y = (0.1 * rng.standard_normal(50000)).astype(np.float32)
    y[::2] = 0.0
    keep = y.copy()
    X, _ = F.features(y, 0.010, 1, dither=1e-3)
    np.testing.assert_array_equal(y, keep)              # the caller's samples untouched
    X2, _ = F.features(y, 0.010, 1, dither=1e-3, in_place=True)
    np.testing.assert_array_equal(X2, X)
    assert not np.array_equal(y, keep)                  # dithered where it lies


def test_long_array_input_is_not_changed_by_the_aligner(monkeypatch, tmp_path):
    """An array handed to align() is the caller's: its dither goes to a copy (a file path
    is read, dithered in place and let go)."""
    from vqalign.align import Aligner
    monkeypatch.setenv("VQALIGN_RESUME_DIR", str(tmp_path))
    y, sr, text, _ = _tile(95.0, 2)
    keep = y.copy()
    a = Aligner(unit="phones")
    a.check_params()
    p = a.prepare(y, sr, text)
    np.testing.assert_array_equal(y, keep)
    assert p.long_key is not None and p.speech is not None
    monkeypatch.setenv("VQALIGN_RESUME_DIR", str(tmp_path / "other"))  # computed again
    q = a.prepare(y.copy(), sr, text, own_audio=True)
    np.testing.assert_array_equal(q.X, p.X)             # the same features either way
    assert q.long_key == p.long_key
    np.testing.assert_array_equal(q.speech, p.speech)


def test_condition_audio_reports_dc_and_clipping_like_the_formulas():
    rng = np.random.default_rng(6)
    y = (0.05 * rng.standard_normal(F.MEM_BLOCK * 2 + 5)).astype(np.float32) + 0.02
    y[:5000] = 0.9
    out, warns = F.condition_audio(y, 16000)
    assert any("DC offset of +0.02" in w for w in warns)
    assert any("clipped" in w for w in warns)
    assert abs(float(out.mean())) < 1e-4


# --------------------------------------------------------------------------- memory
def test_memory_check_names_the_longest_recording_that_fits():
    W.memory_check(600.0, budget_mb=5000)
    longest = (1000 - W.MEMORY_BASE_MB) / W.MEMORY_MB_PER_MIN
    with pytest.raises(ParameterError, match=rf"up to {longest:.0f} min fit"):
        W.memory_check(3 * 3600.0, budget_mb=1000)


# --------------------------------------------------------------------------- resume
def test_work_folder_round_trip_and_key(tmp_path):
    f = W.WorkFolder(tmp_path, "abc")
    assert f.load("x") is None
    f.save("x", {"a": np.arange(3)})
    np.testing.assert_array_equal(f.load("x")["a"], np.arange(3))
    assert W.WorkFolder(tmp_path, "abc").load("x") is not None
    (tmp_path / "abc" / "y.pkl").write_bytes(b"not a pickle")
    assert f.load("y") is None                     # damaged: recomputed, not fatal
    f.clear()
    assert not (tmp_path / "abc").exists()
    assert W.WorkFolder(None, "k").load("x") is None


def test_recording_key_changes_with_audio_text_and_settings():
    y = np.zeros(100, np.float32)
    k = W.recording_key(y, None, [["a"]], {"n": 1})
    assert k == W.recording_key(y.copy(), None, [["a"]], {"n": 1})
    assert k != W.recording_key(y + 1, None, [["a"]], {"n": 1})
    assert k != W.recording_key(y, None, [["b"]], {"n": 1})
    assert k != W.recording_key(y, None, [["a"]], {"n": 2})


def _toy_data(seed=0):
    """Frames of two symbols with distinct means, three utterances."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(3):
        seq, X = [], []
        for _ in range(8):
            s = int(rng.integers(2))
            n = int(rng.integers(6, 14))
            X.append(rng.standard_normal((n, 4)) + 3 * s)
            seq.append("ab"[s])
        data.append((np.concatenate(X).astype(np.float32), seq))
    return data


def test_fit_resumed_from_a_saved_step_equals_the_uninterrupted_fit():
    import copy

    from vqalign.hmm import TiedMixtureHMM
    data = _toy_data()
    kw = dict(n_components=6, n_iter=8, tol=0.0, random_state=0, update="wtmv",
              gaussians_every=2, optional_silence="sil")
    full = TiedMixtureHMM(**kw).fit(data)
    saved = []
    TiedMixtureHMM(**kw).fit(data, on_step=lambda it, m, s: saved.append(
        (it, copy.deepcopy({k: v for k, v in m.__dict__.items()
                            if k not in ("selection_", "_last_selection")}))))
    it, state = saved[2]                       # "killed" after its third step
    m = object.__new__(TiedMixtureHMM)
    m.__dict__.update(state)
    m.init_params = ""                         # continue, do not start again
    # the Gaussians moved at step 2: the selection is re-scored from the start's candidates
    start = TiedMixtureHMM(**kw)
    start.initialize(data)
    X = np.concatenate([d[0] for d in data])
    sel = m.rescore(X, start.select(X, candidates=True))
    m.fit(data, selection=sel, resume=state["history_"])
    assert len(m.history_["log_likelihood"]) == len(full.history_["log_likelihood"]) == 8
    np.testing.assert_allclose(m.history_["log_likelihood"], full.history_["log_likelihood"],
                               rtol=1e-12)
    np.testing.assert_array_equal(m.weights_, full.weights_)


def _tile(seconds, seed):
    from vqalign.datasets import synth
    base = synth.synthesize_corpus(12, seed=11)
    rng = np.random.default_rng(seed)
    audio, texts, words, off = [], [], [], 0.0
    while off < seconds:
        u = base[int(rng.integers(len(base)))]
        gap = np.zeros(int(rng.uniform(0.2, 0.8) * u.sr), np.float32)
        audio += [gap, u.audio]
        off += gap.size / u.sr
        texts.append(u.text)
        words += [(s + off, e + off, lab) for s, e, lab in u.words if lab]
        off += u.duration
    return np.concatenate(audio), u.sr, " ".join(texts), words


@pytest.mark.slow
def test_interrupted_long_alignment_resumes_to_the_same_words(tmp_path, monkeypatch):
    from vqalign.align import Aligner
    monkeypatch.setenv("VQALIGN_RESUME_DIR", str(tmp_path))
    monkeypatch.setenv("VQALIGN_PROGRESS", "0")
    monkeypatch.setattr(L, "WINDOWS_MIN_S", 90.0)   # the windows schedule at 100 s too
    y, sr, text, words = _tile(100.0, 1)
    first = Aligner(unit="phones").align(y, text, sr=sr)
    assert not any(tmp_path.iterdir())     # a finished alignment leaves nothing behind
    monkeypatch.setattr(W.WorkFolder, "clear", lambda self: None)  # keep every step
    ref = Aligner(unit="phones").align(y, text, sr=sr)
    assert [(w.start, w.end) for w in ref.tiers["words"]] == \
        [(w.start, w.end) for w in first.tiers["words"]]
    assert {f.name for f in next(tmp_path.iterdir()).iterdir()} >= {
        "features.pkl", "anchor.pkl", "anchor-path.pkl", "windows.pkl", "path.pkl",
        "windows-em-0.pkl", "flat-alignment.pkl", "models-g0.pkl", "seeded windows.pkl",
        "seeded windows-em-0.pkl", "extent.pkl"}
    assert ref.diagnostics["reference"]["method"].startswith("per-boundary median")
    long = ref.diagnostics["long_audio"]
    assert long["resumed"] == [] and long["windows"] >= 3
    assert set(long["stages_s"]) >= {"anchor", "windows", "decode"}
    err = [abs(p.start - w[0]) for p, w in zip(ref.tiers["words"], words)]
    assert [p.label for p in ref.tiers["words"]] == [w[2] for w in words]
    assert np.median(err) < 0.02
    # "killed" after the flat model's alignment, inside the seeded model's training: the
    # flat model is not trained or decoded again
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (folder / "seeded windows-em-0.pkl").unlink()
    from vqalign.align import extent

    def search_again(*a, **k):
        raise AssertionError("the extent was kept: a resumed run does not search again")

    monkeypatch.setattr(extent, "find", search_again)
    again = Aligner(unit="phones").align(y, text, sr=sr)
    resumed = again.diagnostics["long_audio"]["resumed"]
    assert resumed[0] == "flat alignment" and "seeded windows" in resumed
    assert not any("anchor" in r or r.startswith("windows") for r in resumed)
    assert [(w.start, w.end, w.label) for w in again.tiers["words"]] == \
        [(w.start, w.end, w.label) for w in ref.tiers["words"]]
    # "killed" inside the window EM and the re-training round: only their steps are left
    for name in ("windows", "windows-em-0", "flat-alignment"):
        (folder / f"{name}.pkl").unlink()
    again = Aligner(unit="phones").align(y, text, sr=sr)
    resumed = again.diagnostics["long_audio"]["resumed"]
    # the anchor's windows are kept whole: the resumed run does not refit or decode it
    assert resumed[0] == "anchor path" and any("windows from EM step" in r for r in resumed)
    assert any("windows-em-0 from EM step" in r for r in resumed)
    # the second opinions: the models' windows and the seeded model kept whole
    assert any(r.startswith("model windows, ") for r in resumed) and "seeded windows" in resumed
    assert [(w.start, w.end, w.label) for w in again.tiers["words"]] == \
        [(w.start, w.end, w.label) for w in ref.tiers["words"]]


def test_stray_seconds_of_a_path_against_its_diagonal():
    T, S = 1000, 250
    diag = np.floor(np.arange(T) * S / T).astype(np.int64)
    assert W.stray_seconds(diag, 0.01) < 0.05
    late = diag.copy()
    late[:500] = 0                      # the first half waits in state 0, then catches up
    late[-1] = S - 1
    # at frame 499 the diagonal is at state 124.75: 124.75 / (S / T) frames = 4.99 s
    assert abs(W.stray_seconds(late, 0.01) - 4.99) < 0.02


def test_group_bounds_match_a_brute_force_reference():
    rng = np.random.default_rng(3)
    for _ in range(20):
        lengths = rng.integers(100, 3000, size=int(rng.integers(1, 40)))
        hop, group_s = 0.01, float(rng.uniform(5, 60))
        # brute force: a group ends with the window whose end first reaches k * group_s
        ends = np.cumsum(lengths) * hop
        want, k = [0], 1
        for i, e in enumerate(ends):
            if e >= k * group_s and i + 1 < len(lengths):
                want.append(i + 1)
                while k * group_s <= e:
                    k += 1
        assert W.group_bounds(lengths, hop, group_s) == sorted(set(want + [len(lengths)]))


def test_grouped_first_e_step_gives_the_fit_of_the_whole_e_step(tmp_path):
    from vqalign.hmm import TiedMixtureHMM
    data = _toy_data() + _toy_data(1)
    kw = dict(n_components=6, n_iter=6, tol=0.0, random_state=0, update="wt",
              optional_silence="sil")
    full = TiedMixtureHMM(**kw).fit(data)
    work = W.WorkFolder(tmp_path, "k")
    m = TiedMixtureHMM(**kw)
    m.fit(data, estep=W.grouped_estep(m, [0, 2, 3, 6], work, "x"))
    np.testing.assert_allclose(m.history_["log_likelihood"], full.history_["log_likelihood"],
                               rtol=1e-10)
    np.testing.assert_allclose(m.weights_, full.weights_, rtol=1e-6, atol=1e-9)
    # the first step's three groups were saved, and a fit that finds them uses them
    assert {f.name for f in (tmp_path / "k").iterdir()} == {f"x-e0-g{g}.pkl" for g in range(3)}
    kept = []
    again = TiedMixtureHMM(**kw)
    again.fit(data, estep=W.grouped_estep(again, [0, 2, 3, 6], work, "x", kept))
    assert kept == [0, 1, 2]
    np.testing.assert_array_equal(again.weights_, m.weights_)


@pytest.mark.slow
def test_a_run_killed_inside_the_first_window_e_step_resumes_from_its_groups(tmp_path,
                                                                              monkeypatch):
    """Killed (an exception) in the third group of the windows stage's first E-step: the
    re-run redoes neither the anchor nor the two groups done, and gives the same words."""
    from vqalign.align import Aligner
    from vqalign.hmm import TiedMixtureHMM
    monkeypatch.setenv("VQALIGN_RESUME_DIR", str(tmp_path))
    monkeypatch.setenv("VQALIGN_PROGRESS", "0")
    monkeypatch.setenv("VQALIGN_LONG_REFERENCE", "0")   # the schedule's own E-steps only
    monkeypatch.setattr(L, "WINDOWS_MIN_S", 90.0)   # the windows schedule at 100 s too
    monkeypatch.setattr(W, "GROUP_S", 20.0)         # a few groups of windows
    y, sr, text, _ = _tile(100.0, 1)
    real, calls, kill = TiedMixtureHMM.estep, [], []

    class Killed(Exception):
        pass

    def estep(self, X, frame_off, batch, sel, **kw):
        names = kw.get("names")
        kind = ("retrain" if names is None else
                "window" if names[0].endswith(" s") else "anchor")
        calls.append((kind, len(frame_off) - 1, int(X.shape[0])))
        if kill and len(calls) == kill[0]:
            raise Killed
        return real(self, X, frame_off, batch, sel, **kw)

    monkeypatch.setattr(TiedMixtureHMM, "estep", estep)
    ref = Aligner(unit="phones").align(y, text, sr=sr)
    full = list(calls)
    win = [c for c in full if c[0] == "window"]
    n_windows = max(c[1] for c in win)
    n_groups = [c[1] for c in win].index(n_windows)   # the first step's calls come first
    assert n_groups >= 3 and sum(c[1] for c in win[:n_groups]) == n_windows
    assert any(c[0] == "anchor" for c in full)
    first_window = full.index(win[0])
    calls.clear()
    kill.append(first_window + 3)                     # inside the third group
    with pytest.raises(Killed):
        Aligner(unit="phones").align(y, text, sr=sr)
    assert calls[-1] == win[2]
    calls.clear()
    kill.clear()
    again = Aligner(unit="phones").align(y, text, sr=sr)
    # no anchor step, and the first E-step only from its third group on
    assert calls == [c for c in full if c[0] != "anchor" and c not in win[:2]]
    resumed = again.diagnostics["long_audio"]["resumed"]
    assert resumed[0] == "anchor path"
    assert f"windows from its start, 2 of {n_groups} groups of its first E-step" in resumed
    assert [(w.start, w.end, w.label) for w in again.tiers["words"]] == \
        [(w.start, w.end, w.label) for w in ref.tiers["words"]]
    assert not any(tmp_path.iterdir())               # a finished run leaves nothing
    # the windows model alone, and the alignment says why
    assert again.diagnostics["reference"].startswith("none: switched off by "
                                                     "VQALIGN_LONG_REFERENCE=0")


def test_windows_of_one_array_are_joined_without_a_copy():
    from vqalign.hmm.stats import join_frames as _joined
    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    parts = [X[0:3], X[3:7], X[7:10]]
    J = _joined(parts)
    assert np.shares_memory(J, X)
    np.testing.assert_array_equal(J, X)
    gap = [X[0:3], X[4:7]]                      # not consecutive: a copy
    J2 = _joined(gap)
    assert not np.shares_memory(J2, X)
    np.testing.assert_array_equal(J2, np.concatenate(gap))
    other = [X[0:3], X.copy()[3:7]]
    np.testing.assert_array_equal(_joined(other), X[:7])


def _gap_case(case):
    """100-120 s of tiled speech with a minute of near-silence in the middle ("gap"), or
    40 s of speech missing from the end ("tail") or the start ("head") of the transcript;
    (audio, sr, text, true words)."""
    y1, sr, t1, w1 = _tile(60.0, 3)
    y2, _, t2, w2 = _tile(60.0, 4)
    lead = 0.0
    if case == "gap":
        mid = (1e-4 * np.random.default_rng(0).standard_normal(60 * sr)).astype(np.float32)
        y = np.concatenate([y1, mid, y2])
    elif case == "tail":
        mid = np.zeros(0, np.float32)
        y = np.concatenate([y1, y2, _tile(40.0, 5)[0]])
    else:
        mid, extra = np.zeros(0, np.float32), _tile(40.0, 5)[0]
        y = np.concatenate([extra, y1, y2])
        lead = extra.size / sr
    shift = (y1.size + mid.size) / sr
    words = w1 + [(s + shift, e + shift, lab) for s, e, lab in w2]
    return y, sr, t1 + " " + t2, [(s + lead, e + lead, lab) for s, e, lab in words]


def _gap_errors(case, monkeypatch):
    from vqalign.align import Aligner
    monkeypatch.setenv("VQALIGN_RESUME_DIR", "0")
    monkeypatch.setenv("VQALIGN_PROGRESS", "0")
    monkeypatch.setattr(L, "WINDOWS_MIN_S", 90.0)   # the windows schedule at 120 s too
    y, sr, text, words = _gap_case(case)
    aln = Aligner(unit="phones").align(y, text, sr=sr)
    pred = aln.tiers["words"]
    assert [p.label for p in pred] == [w[2] for w in words]
    err = np.array([max(abs(p.start - w[0]), abs(p.end - w[1])) for p, w in zip(pred, words)])
    print(case, "worst word error", err.max(), "median", np.median(err))
    return aln, err


@pytest.mark.slow
def test_a_minute_of_silence_inside_is_not_given_to_a_word(monkeypatch):
    aln, err = _gap_errors("gap", monkeypatch)
    assert np.median(err) < 0.03
    assert err.max() < 1.0          # no word stretched over the minute of silence


def _untranscribed_span(aln, case, y, sr, words):
    """The one span reported as untranscribed: inside the untranscribed audio, most of it,
    and named (seconds from-to) by a warning that says what to do."""
    (a, b), = aln.diagnostics["untranscribed_s"]
    if case == "tail":
        assert words[-1][1] < a < words[-1][1] + 2.0 and b == pytest.approx(y.size / sr, abs=0.02)
    else:
        assert a == 0.0 and words[0][0] - 2.0 < b < words[0][0]
    assert b - a > 35.0
    said = [w for w in aln.diagnostics["warnings"] if f"{a:.1f}-{b:.1f} s" in w]
    assert said and "not cover" in said[0] and "add the missing text" in said[0]


@pytest.mark.slow
def test_speech_missing_from_the_transcripts_end_leaves_the_words_in_place(monkeypatch):
    aln, err = _gap_errors("tail", monkeypatch)
    assert "speech" in " ".join(aln.diagnostics["warnings"])
    assert np.median(err) < 0.03
    assert err.max() < 1.0          # no word stretched over the untranscribed 40 s
    y, sr, _, words = _gap_case("tail")
    _untranscribed_span(aln, "tail", y, sr, words)


@pytest.mark.slow
def test_speech_missing_from_the_transcripts_start_leaves_the_words_in_place(monkeypatch):
    aln, err = _gap_errors("head", monkeypatch)
    assert np.median(err) < 0.03
    assert err.max() < 1.0          # no word stretched over the untranscribed 40 s
    y, sr, _, words = _gap_case("head")
    _untranscribed_span(aln, "head", y, sr, words)
