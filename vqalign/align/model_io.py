"""Model files: a fitted Aligner's ``.npz`` and the codebooks it may start from.

A model file holds the engine's arrays plus a JSON header (``format``, ``version``, the
Aligner's parameters, the front end's settings, the user's lexicon, the training history)
so that a model never meets features made with other settings unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.io.atomic import atomic_write

MODEL_VERSION = 1
FORMAT = "vqalign.Aligner"
#: the Aligner parameters a model file keeps (``hop_length``: the hop it was trained at)
SAVED_PARAMS = ("unit", "n_codes", "states_per_unit", "n_iter", "hop_length", "silence",
                "top_n", "update_gaussians", "oov", "tol", "weight_floor", "trim_silence")


def aligner_header(params, features, model_header, lexicon, history, train_seconds) -> dict:
    """The JSON header of a fitted Aligner's model file.

    Parameters
    ----------
    params : dict
        The :data:`SAVED_PARAMS` values.
    features : dict
        The front end's settings (:func:`vqalign.features.frontend.recipe_settings`).
    model_header : dict
        The engine's own header (:meth:`vqalign.hmm.TiedMixtureHMM.get_state`).
    lexicon : Lexicon or None
        The user's lexicon, kept whole.
    history : vqalign.history.History or None
    train_seconds : float or None

    Returns
    -------
    dict
    """
    return {
        "params": params,
        "features": features,
        "model": model_header,
        "lexicon": ({w: [list(pr) for pr in prons] for w, prons in lexicon.items()}
                    if lexicon is not None else None),
        "history": history.to_dict() if history else None,
        "train_seconds": train_seconds,
    }


def saved_lexicon(header: dict, file_name: str):
    """The user's lexicon kept in a model file's header (a Lexicon), or None."""
    if not header.get("lexicon"):
        return None
    from vqalign.align.lexicon import Lexicon  # noqa: PLC0415
    return Lexicon({w: [list(p) for p in pr] for w, pr in header["lexicon"].items()},
                   name=f"lexicon saved in {file_name}")


def write_model(path, header: dict, arrays: dict, *, overwrite=False) -> Path:
    """Write a model file atomically.

    Parameters
    ----------
    path : str or Path
        Ends in ``.npz``.
    header : dict
        JSON-serializable; ``format`` and ``version`` are set here first.
    arrays : dict of str to ndarray
        The engine's arrays (:meth:`vqalign.hmm.TiedMixtureHMM.get_state`).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ParameterError(f"save() writes a .npz file, got {path.name!r}; use a name "
                             "ending in .npz")
    header = {"format": FORMAT, "version": MODEL_VERSION, **header}
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        np.savez(fh, header=np.array(json.dumps(header)), **arrays)
    return path


def read_model(path):
    """The header and arrays of a model file written by :func:`write_model`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    header : dict
    arrays : dict of str to ndarray

    Raises
    ------
    ParameterError
        A missing file, not a model, or a model of another version (the message says
        what to do).
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        header = json.loads(str(data["header"]))
    except FileNotFoundError:
        raise ParameterError(f"model file {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001
        raise ParameterError(f"{path} is not a vqalign Aligner model ({exc}); write one "
                             "with Aligner.save()") from None
    if header.get("format") != FORMAT:
        raise ParameterError(f"{path} is not a vqalign Aligner model")
    if header.get("version", 0) > MODEL_VERSION:
        raise ParameterError(f"{path} was written by a newer vqalign (model version "
                             f"{header['version']}); upgrade vqalign")
    if header.get("version", 0) < MODEL_VERSION or "model" not in header:
        raise ParameterError(f"{path} was written by vqalign 0.1 (model version "
                             f"{header.get('version', 0)}); re-train it with this version "
                             "(vqalign align-corpus) and save it again")
    arrays = {k: data[k] for k in data.files if k != "header"}
    return header, arrays


def read_codebook(path, expected_settings=None):
    """A codebook array from .npy, or a vqalign codebook .npz whose recorded feature
    settings must match the aligner's front end.

    Parameters
    ----------
    path : str or Path
    expected_settings : dict, optional
        The front end's settings (:func:`vqalign.features.frontend.recipe_settings`).

    Returns
    -------
    ndarray, shape (K, D)
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path)
        data = np.load(path, allow_pickle=False)
        if "header" in data.files and expected_settings is not None:
            head = json.loads(str(data["header"]))
            got = head.get("feature_settings") or head.get("features") or {}
            check_codebook_settings(path, got, expected_settings)
        for key in ("codebook", "codebook_", "means", "arr_0"):
            if key in data:
                return data[key]
        raise ParameterError(f"{path} holds no 'codebook' array (keys: {list(data.keys())})")
    except FileNotFoundError:
        raise ParameterError(f"codebook file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read codebook {path} ({exc}); give a .npy array or a "
                             ".npz with a 'codebook' array (VectorQuantizer.save)") from None


def check_codebook_settings(path, got, expected):
    """Refuse a codebook whose recorded front end differs from the aligner's.

    Parameters
    ----------
    path : str or Path
        Named in the message.
    got, expected : dict
        The codebook's recorded settings and the aligner's.

    Raises
    ------
    ParameterError
        Naming every setting that differs.
    """
    if not got:
        return
    pairs = {"sr": "sr", "n_mfcc": "n_mfcc", "n_mels": "n_mels", "win_length": "win_length",
             "hop_length": "hop_length", "delta_width": "delta_width"}
    diff = []
    for k_got, k_exp in pairs.items():
        if k_got in got and got[k_got] is not None and k_exp in expected:
            a, b = got[k_got], expected[k_exp]
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                if abs(float(a) - float(b)) > 1e-9:
                    diff.append(f"{k_got}: codebook {a!r} vs aligner {b!r}")
            elif a != b:
                diff.append(f"{k_got}: codebook {a!r} vs aligner {b!r}")
    if "deltas" in got and got["deltas"] not in (None, 2):
        diff.append(f"deltas: codebook {got['deltas']!r} vs aligner 2")
    if "cmvn" in got and got["cmvn"] not in (None, "utterance", "per-utterance"):
        diff.append(f"cmvn: codebook {got['cmvn']!r} vs aligner 'utterance'")
    if "convention" in got and got["convention"] not in (None, "librosa"):
        diff.append(f"convention: codebook {got['convention']!r} vs aligner 'librosa'")
    if diff:
        raise ParameterError(
            f"codebook {path} was trained on features made with other settings than the "
            f"aligner's ({'; '.join(diff)}); train it on the aligner's features (vqalign "
            "features --recipe aligner, then vqalign codebook) or leave --codebook out")


def codebook_array(codebook, expected_settings, dim):
    """The codebook given to an Aligner as a (K, dim) float32 array: an array, or a file
    (:func:`read_codebook`, its feature settings checked against ``expected_settings``).

    Raises
    ------
    ParameterError
        A codebook of another dimension than the features' ``dim``.
    """
    cb = codebook
    if isinstance(cb, (str, Path)):
        cb = read_codebook(cb, expected_settings)
    cb = np.asarray(cb, dtype=np.float32)
    if cb.ndim != 2 or cb.shape[1] != dim:
        raise ParameterError(f"codebook has shape {cb.shape} but the features have "
                             f"{dim} dimensions (13 MFCC + deltas); train it "
                             "on the aligner's features or leave codebook=None")
    return cb
