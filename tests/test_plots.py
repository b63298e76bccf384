"""Diagnostics: figures and animations are written, have the expected frames and content.

References: librosa (MFCC stages, mel filters), plain-numpy nearest codes, the
synthesizer's exact tiers, and the inputs themselves (what was asked to be drawn).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402

from tests.naive import naive_nearest
from vqalign.exceptions import ParameterError  # noqa: E402
from vqalign.history import History, code_usage_stats  # noqa: E402
from vqalign.plots import animate as A  # noqa: E402
from vqalign.plots import static as S  # noqa: E402
from vqalign.plots._stages import mfcc_stages, power_db  # noqa: E402

MIN_VARIANCE = 50.0  # grey-level variance of a frame with real content (blank = 0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def frames_of(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("L"), dtype=np.float64) for f in ImageSequence.Iterator(im)]


def assert_content(img: np.ndarray) -> None:
    assert img.var() > MIN_VARIANCE, f"image looks blank (variance {img.var():.1f})"


def savefig(fig, path):
    fig.savefig(path, dpi=60)
    return frames_of(path)[0]


@pytest.fixture(scope="module")
def utt():
    from vqalign.datasets.synth import synthesize

    return synthesize("the blue folder", seed=3)


def lloyd_snapshots(X, levels=4, iters=3):
    """Plain-numpy LBG (split + Lloyd) producing the snapshot/history format."""
    h = History("naive lbg")
    snaps = []
    cb = X.mean(0, keepdims=True)
    step = 0
    for lvl in range(levels):
        if lvl:
            cb = np.concatenate([cb * 1.01, cb * 0.99])
        for _ in range(iters):
            lab, _ = naive_nearest(X, cb)
            cnt = np.bincount(lab, minlength=len(cb))
            cb = np.stack([X[lab == k].mean(0) if cnt[k] else cb[k] for k in range(len(cb))])
            st = code_usage_stats(cnt)
            h.append(step=step, level=lvl, n_codes=len(cb),
                     loss=float(((X - cb[lab]) ** 2).sum(1).mean()), **st)
            snaps.append((step, lvl, cb.astype(np.float32)))
            step += 1
    return snaps, h


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 4, (6, 4))
    return np.concatenate([rng.normal(c, 0.6, (150, 4)) for c in centres]).astype(np.float32)


# --------------------------------------------------------------------------- MFCC stages

def test_mfcc_stages_match_librosa(rng):
    librosa = pytest.importorskip("librosa")
    y = (0.1 * rng.standard_normal(12000)).astype(np.float32)
    st = mfcc_stages(y, 16000, n_mfcc=13, n_mels=40)
    ref = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_mels=40, n_fft=512, hop_length=160,
                               win_length=400).T
    assert st.mfcc.shape == ref.shape
    np.testing.assert_allclose(st.mfcc, ref, atol=1e-3 * np.ptp(ref))
    np.testing.assert_allclose(st.mel_fb,
                               librosa.filters.mel(sr=16000, n_fft=512, n_mels=40), atol=1e-7)
    p_ref = np.abs(librosa.stft(y, n_fft=512, hop_length=160, win_length=400)) ** 2
    np.testing.assert_allclose(st.power, p_ref.T, rtol=1e-4, atol=1e-6 * p_ref.max())
    db, freqs = power_db(y, 16000, block=7)  # several blocks
    np.testing.assert_allclose(db, librosa.power_to_db(p_ref, top_db=80.0).T, atol=1e-3)
    np.testing.assert_allclose(freqs, librosa.fft_frequencies(sr=16000, n_fft=512))


def test_mfcc_stages_match_vqalign_features(rng):
    from vqalign import features
    y = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    st = mfcc_stages(y, 16000)
    ref = features.mfcc(y, 16000)
    np.testing.assert_allclose(st.mfcc, ref, atol=1e-3 * np.ptp(ref))


def test_mfcc_stages_bad_input():
    with pytest.raises(ParameterError, match="n_fft=256 is shorter"):
        mfcc_stages(np.ones(4000, np.float32), 16000, n_fft=256)
    with pytest.raises(ParameterError, match="n_mfcc=50 exceeds n_mels=40"):
        mfcc_stages(np.ones(4000, np.float32), 16000, n_mfcc=50)


# --------------------------------------------------------------------------- static figures

def test_plot_alignment_from_synth_tiers(utt, tmp_path):
    truth = {"words": [w for w in utt.words if w[2]],
             "phones": [p for p in utt.phones if p[2] != "sil"]}
    conf = {k: [(*seg, c) for seg, c in zip(v, np.linspace(0, 1, len(v)))]
            for k, v in truth.items()}
    out = S.plot_alignment(utt.audio, utt.sr, conf, reference=truth)
    assert set(out) == {"waveform", "spectrogram", "words", "phones", "ref words", "ref phones"}
    for name in ("words", "phones"):
        bars = out[name]
        assert len(bars.patches) == len(truth[name])
        got = sorted((p.get_x(), p.get_x() + p.get_width()) for p in bars.patches)
        np.testing.assert_allclose(got, sorted((s, e) for s, e, _ in truth[name]), atol=1e-9)
        # confidence shading: low-confidence boxes red-ish, high ones green-ish
        first, last = bars.patches[0].get_facecolor(), bars.patches[-1].get_facecolor()
        assert first[0] > first[1] and last[1] > last[0]
    texts = {t.get_text() for t in out["words"].patches[0].axes.texts}
    assert "blue" in texts and "folder" in texts
    img = savefig(out["waveform"].figure, tmp_path / "a.png")
    assert_content(img)


def test_plot_alignment_inputs_agree(utt, tmp_path):
    """An Alignment, its to_dict(), a TextGrid and a JSON file draw the same boxes."""
    from vqalign.align import alignment
    tiers = {"words": utt.words, "phones": utt.phones}
    al = alignment.Alignment(tiers={k: [s for s in v if s[2] not in ("", "sil")]
                                    for k, v in tiers.items()},
                             audio="x.wav", sample_rate=utt.sr, duration=utt.duration)
    al.write(tmp_path / "x.TextGrid")
    al.write(tmp_path / "x.json")
    boxes = []
    for src in (al, al.to_dict(), tmp_path / "x.TextGrid", tmp_path / "x.json"):
        out = S.plot_alignment(utt.audio, utt.sr, src, features="mfcc")
        assert "mfcc" in out
        boxes.append([(p.get_x(), p.get_width()) for p in out["phones"].patches])
        plt.close("all")
    for b in boxes[1:]:
        np.testing.assert_allclose(b, boxes[0], atol=1e-6)
    assert len(boxes[0]) == sum(1 for p in utt.phones if p[2] != "sil")


def test_plot_alignment_bad_input(utt):
    with pytest.raises(ParameterError, match="features='cqt'"):
        S.plot_alignment(utt.audio, utt.sr, {"words": [(0, 1, "a")]}, features="cqt")
    with pytest.raises(ParameterError, match="start=0.5, end=0.2"):
        S.plot_alignment(utt.audio, utt.sr, {"words": [(0.5, 0.2, "a")]})
    with pytest.raises(ParameterError, match="3 panels but 1 Axes"):
        S.plot_alignment(utt.audio, utt.sr, {"words": [(0, 1, "a")]}, ax=plt.gca())
    with pytest.raises(ParameterError, match="does not exist"):
        S.plot_alignment(utt.audio, utt.sr, "/nonexistent/x.json")


def test_plot_observations(rng, tmp_path):
    T, K = 120, 15
    log_emit = rng.normal(-30, 5, (T, K))
    path = np.minimum(np.arange(T) * K // T, K - 1)
    labels = [u for u in ("sil", "DH", "AH", "B", "sil") for _ in range(3)]
    img = S.plot_observations({"log_emit": log_emit, "path": path, "labels": labels,
                               "hop_s": 0.01}, floor=-12)
    want = np.maximum(log_emit - log_emit.max(1, keepdims=True), -12).T
    np.testing.assert_allclose(img.get_array(), want)
    line = img.axes.lines[0]
    np.testing.assert_array_equal(line.get_ydata(), path)
    np.testing.assert_allclose(line.get_xdata(), np.arange(T) * 0.01)
    assert [t.get_text() for t in img.axes.get_yticklabels()] == ["sil", "DH", "AH", "B", "sil"]
    assert_content(savefig(img.figure, tmp_path / "o.png"))
    with pytest.raises(ParameterError, match="path has shape"):
        S.plot_observations(log_emit, path[:-1])
    with pytest.raises(ParameterError, match="outside 0..14"):
        S.plot_observations(log_emit, path + 5)
    with pytest.raises(ParameterError, match="4 state labels for 15 states"):
        S.plot_observations(log_emit, labels=["a"] * 4)


def test_plot_posteriors(rng, tmp_path):
    G = rng.random((80, 6))
    G /= G.sum(1, keepdims=True)
    img = S.plot_posteriors(G, G.argmax(1))
    np.testing.assert_allclose(img.get_array(), G.T)
    assert_content(savefig(img.figure, tmp_path / "p.png"))
    with pytest.raises(ParameterError, match="not within"):
        S.plot_posteriors(np.log(G))


def test_plot_codebook_counts_and_dead_codes(blobs, tmp_path):
    rng = np.random.default_rng(0)
    C = np.concatenate([blobs[rng.choice(len(blobs), 10, replace=False)],
                        np.full((3, 4), 60.0, np.float32)])
    out = S.plot_codebook(blobs, C)
    counts = np.bincount(naive_nearest(blobs, C)[0], minlength=len(C))
    assert len(out["dead"].get_offsets()) == int((counts == 0).sum()) >= 3
    assert len(out["codes"].get_offsets()) == int((counts > 0).sum())
    heights = np.array([b.get_height() for b in out["usage"]])
    np.testing.assert_allclose(heights, np.sort(counts)[::-1] / counts.sum())
    assert_content(savefig(out["data"].figure, tmp_path / "c.png"))
    with pytest.raises(ParameterError, match="3 features per row but 4"):
        S.plot_codebook(blobs, C[:, :3])
    with pytest.raises(ParameterError, match="counts has shape"):
        S.plot_codebook(blobs, C, counts=np.ones(4))


def test_plot_history_several_runs(blobs, tmp_path):
    _, h1 = lloyd_snapshots(blobs, levels=3)
    em = History("em")
    for i in range(12):
        em.append(log_likelihood=-20 + math.log1p(i))
    out = S.plot_history({"lbg": h1, "lbg json": h1.to_dict(), "em": em})
    assert set(out) == {"loss", "entropy", "utilization", "log_likelihood"}
    assert len(out["loss"]) == 2 and len(out["log_likelihood"]) == 1
    np.testing.assert_allclose(out["entropy"][0].get_xdata(), h1["log_k"])
    np.testing.assert_allclose(out["entropy"][0].get_ydata(), h1["entropy"])
    np.testing.assert_allclose(out["loss"][1].get_ydata(), h1["loss"])
    assert_content(savefig(out["loss"][0].figure, tmp_path / "h.png"))
    with pytest.raises(ParameterError, match="no history recorded 'log_likelihood'"):
        S.plot_history(h1, metrics=["log_likelihood"])
    with pytest.raises(ParameterError, match="history #0 is a str"):
        S.plot_history(["nope"])


# --------------------------------------------------------------------------- animations

def test_pick_frames():
    assert list(A.pick_frames(5, 10)) == [0, 1, 2, 3, 4]
    f = A.pick_frames(100, 12, keep=[37, 64])
    assert len(f) == 12 and f[0] == 0 and f[-1] == 99 and 37 in f and 64 in f
    assert np.all(np.diff(f) > 0)
    with pytest.raises(ParameterError, match="max_frames must be >= 1"):
        A.pick_frames(5, 0)


def test_animate_lbg_gif(blobs, tmp_path):
    snaps, h = lloyd_snapshots(blobs, levels=4, iters=3)  # 12 steps, K = 1, 2, 4, 8
    anim = A.animate_lbg(snaps, blobs, history=h, max_frames=10, fps=5)
    path = A.save_and_close(anim, tmp_path / "lbg.gif")
    frames = frames_of(path)
    assert len(frames) == 10
    for f in frames:
        assert_content(f)
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0  # codes and curves moved
    with pytest.raises(ParameterError, match="keep_snapshots"):
        A.animate_lbg([], blobs)


def test_animate_lbg_flags_dead_codes(blobs):
    snaps = [(0, 0, np.concatenate([blobs[:3], np.full((2, 4), 99.0, np.float32)]))]
    anim = A.animate_lbg(snaps, blobs, max_frames=5)
    dead = [c for c in anim._fig.axes[0].collections if c.get_label() == "dead codes"][0]
    np.testing.assert_allclose(dead.get_offsets(), (snaps[0][2][3:] - S.pca_basis(blobs)[0])
                               @ S.pca_basis(blobs)[1].T, rtol=1e-5)


def _fake_em(duration, n_units=8, n_steps=9):
    true = np.linspace(0, duration, n_units + 1)
    paths = []
    h = History("em")
    for k in range(n_steps):
        wobble = 0.08 * duration / n_units * (1 - k / (n_steps - 1))
        e = true + wobble * np.sin(np.arange(n_units + 1) * 1.7 + k)
        paths.append([float(x) for x in np.clip(e[1:-1], 0, duration)])
        h.append(log_likelihood=-30 + 3 * math.log1p(k))
    return {"em_paths": paths, "em_history": h.to_dict()}, true


def test_animate_em_gif_path_changes(utt, tmp_path):
    diag, true = _fake_em(utt.duration)
    diag["em_labels"] = [[f"u{j}" for j in range(len(p) + 1)] for p in diag["em_paths"]]
    anim = A.animate_em(diag, audio=utt.audio, sr=utt.sr, max_frames=6,
                        reference={"phones": [(a, b, "x") for a, b in zip(true[:-1], true[1:])]})
    assert {"u0", "u7"} <= {t.get_text() for t in anim._fig.axes[0].texts}
    path = A.save_and_close(anim, tmp_path / "em.gif")
    frames = frames_of(path)
    assert len(frames) == 6
    for f in frames:
        assert_content(f)
    assert np.abs(frames[0] - frames[-1]).mean() > 0.5
    with pytest.raises(ParameterError, match="keep_paths=True"):
        A.animate_em({"em_paths": []})


def test_animate_mfcc_gif_and_mp4(utt, tmp_path):
    anim = A.animate_mfcc(utt.audio, utt.sr, max_frames=4)
    path = A.save_and_close(anim, tmp_path / "m.gif")
    frames = frames_of(path)
    assert len(frames) == 4
    for f in frames:
        assert_content(f)
    ffmpeg = pytest.importorskip("imageio_ffmpeg")
    anim = A.animate_mfcc(utt.audio[:8000], utt.sr, max_frames=3, fps=3)
    mp4 = A.save_and_close(anim, tmp_path / "m.mp4")
    n_frames, _ = ffmpeg.count_frames_and_secs(str(mp4))
    assert n_frames == 3


def test_save_refusals(utt, tmp_path, monkeypatch):
    anim = A.animate_mfcc(utt.audio[:4000], utt.sr, max_frames=2)
    target = tmp_path / "x.gif"
    target.write_bytes(b"keep me")
    with pytest.raises(ParameterError, match="exists; pass overwrite=True"):
        A.save(anim, target)
    assert target.read_bytes() == b"keep me"
    with pytest.raises(ParameterError, match="unknown animation format '.avi'"):
        A.save(anim, tmp_path / "x.avi")
    monkeypatch.setattr(A, "_ffmpeg_exe", lambda: None)
    with pytest.raises(ParameterError, match="MP4 needs ffmpeg.*imageio-ffmpeg"):
        A.save(anim, tmp_path / "x.mp4")
    A.save(anim, target, overwrite=True)
    assert len(frames_of(target)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.gif"]  # no temp files left


# --------------------------------------------------------------------------- CLI

def _cli(argv):
    from vqalign.cli import main

    return main(argv)


def test_cli_plot_alignment_from_files(utt, tmp_path, capsys):
    import soundfile as sf

    sf.write(tmp_path / "u.wav", utt.audio, utt.sr)
    utt.write_textgrid(tmp_path / "u.TextGrid")
    out = tmp_path / "a.png"
    assert _cli(["plot", "alignment", str(tmp_path / "u.wav"), str(tmp_path / "u.TextGrid"),
                 "--out", str(out), "--dpi", "50"]) == 0
    assert_content(frames_of(out)[0])
    assert _cli(["plot", "alignment", str(tmp_path / "u.wav"), str(tmp_path / "u.TextGrid"),
                 "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert _cli(["plot", "alignment", str(tmp_path / "u.wav"), "--out",
                 str(tmp_path / "b.png")]) == 2
    assert "give both AUDIO and ALIGNMENT" in capsys.readouterr().err


def test_cli_animate_mfcc_builtin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _cli(["animate", "mfcc", "--out", "m.gif", "--max-frames", "3", "--duration",
                 "0.5"]) == 0
    assert len(frames_of(tmp_path / "m.gif")) == 3
    assert _cli(["animate", "mfcc", "--out", "m.webm"]) == 2


def test_demo_figures(utt, blobs, tmp_path):
    from types import SimpleNamespace

    from vqalign.plots import demo_figures

    snaps, h = lloyd_snapshots(blobs, levels=3, iters=2)
    vq = SimpleNamespace(snapshots_=snaps, history_=h, codebook_=snaps[-1][2])
    diag, _ = _fake_em(utt.duration, n_steps=4)
    alignment = {"tiers": {"words": [w for w in utt.words if w[2]],
                           "phones": [p for p in utt.phones if p[2] != "sil"]},
                 "diagnostics": diag}
    paths = demo_figures(tmp_path / "demo", audio=utt.audio, sr=utt.sr, alignment=alignment,
                         vq=vq, X=blobs, max_frames=4)
    assert [p.name for p in paths] == ["alignment.png", "lbg.gif", "em.gif"]
    assert_content(frames_of(paths[0])[0])
    assert len(frames_of(paths[1])) == 4 and len(frames_of(paths[2])) == 4
    with pytest.raises(ParameterError, match="alignment.png exists"):
        demo_figures(tmp_path / "demo", audio=utt.audio, sr=utt.sr, alignment=alignment)
    assert demo_figures(tmp_path / "demo", audio=utt.audio, sr=utt.sr, alignment=alignment,
                        overwrite=True, max_frames=2)[-1].name == "em.gif"


def test_cli_builtin_em_and_alignment(tmp_path, monkeypatch, capsys):
    """The MUST-SHOW verbs on built-in data: the EM path moves; the PNG has both tiers."""
    monkeypatch.chdir(tmp_path)
    assert _cli(["animate", "em", "--out", "em.gif", "--max-frames", "4"]) == 0
    frames = frames_of(tmp_path / "em.gif")
    assert len(frames) >= 2
    # the lower panel (path staircase) differs between the first and the last EM step
    h = frames[0].shape[0]
    assert np.abs(frames[0][h // 2:] - frames[-1][h // 2:]).mean() > 0.2
    assert _cli(["plot", "alignment", "--out", "a.png", "--dpi", "60"]) == 0
    assert_content(frames_of(tmp_path / "a.png")[0])
    assert "wrote a.png" in capsys.readouterr().out


def test_cli_builtin_lbg(tmp_path, monkeypatch, capsys):
    """`vqalign animate lbg` on built-in data: >= 10 frames through several doublings."""
    monkeypatch.chdir(tmp_path)
    assert _cli(["animate", "lbg", "--out", "lbg.gif", "--max-frames", "12",
                 "--n-codes", "16"]) == 0
    frames = frames_of(tmp_path / "lbg.gif")
    assert len(frames) == 12
    for f in frames:
        assert_content(f)
    assert "LBG to K=16" in capsys.readouterr().out


def test_plot_history_em_layout():
    """EM: loss = -log-likelihood is drawn once; constant K puts entropy against the steps."""
    em = History("em")
    for i in range(6):
        ll = -40 + math.log1p(i)
        em.append(log_likelihood=ll, loss=-ll, entropy=3.5 + 0.01 * i, log_k=math.log(64),
                  utilization=1.0)
    out = S.plot_history(em)
    assert list(out) == ["entropy", "utilization", "log_likelihood"]
    np.testing.assert_allclose(out["entropy"][0].get_xdata(), np.arange(6))
    assert any(np.allclose(ln.get_ydata(), math.log(64)) for ln in out["entropy"][0].axes.lines)


def test_cli_plot_history_and_codebook_from_files(blobs, tmp_path, capsys):
    from vqalign import lbg
    vq = lbg.VectorQuantizer(method="lbg", n_codes=8, random_state=0).fit(blobs)
    vq.save(tmp_path / "cb.npz")
    np.save(tmp_path / "X.npy", blobs)
    _, h = lloyd_snapshots(blobs, levels=2)
    (tmp_path / "naive.json").write_text(h.to_json())
    assert _cli(["plot", "history", str(tmp_path / "cb.npz"), str(tmp_path / "naive.json"),
                 "--out", str(tmp_path / "h.png"), "--dpi", "50"]) == 0
    assert_content(frames_of(tmp_path / "h.png")[0])
    assert _cli(["plot", "codebook", str(tmp_path / "X.npy"), str(tmp_path / "cb.npz"),
                 "--out", str(tmp_path / "c.svg")]) == 0
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    assert _cli(["plot", "history", str(tmp_path / "X.npy"), "--out",
                 str(tmp_path / "bad.png")]) == 2
    assert "is not JSON" in capsys.readouterr().err
