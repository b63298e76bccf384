"""Codebooks on disk: one .npz with the arrays and a JSON header.

The header (stored in the archive as the string array ``header``) records the
format, package version, class, parameters, feature settings and dimensions,
so a codebook never meets features made with other settings unnoticed. Files
are written atomically and never replace an existing file unless asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vqalign import __version__
from vqalign.exceptions import ParameterError
from vqalign.io.atomic import atomic_write
from vqalign.lbg._data import as_training_data

FORMAT = "vqalign-codebook"


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


def save_npz(path, arrays: dict, header: dict, *, overwrite: bool = False) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        raise ParameterError(f"{path}: codebooks are saved as .npz; use a name ending in .npz")
    head = {"format": FORMAT, "version": __version__, **_jsonable(header)}
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["header"] = np.array(json.dumps(head))
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        np.savez(fh, **payload)
    return path


def load_npz(path, *, fmt: str = FORMAT, what: str = "codebook") -> tuple[dict, dict]:
    """The arrays and the JSON header of a vqalign ``.npz`` file of format ``fmt``.

    Parameters
    ----------
    path : str or Path
    fmt : str
        The header's ``format`` the file must have (a codebook by default).
    what : str
        What the file is, for messages ("codebook", "codec model", ...).

    Returns
    -------
    arrays : dict of str to ndarray
    head : dict
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{what} file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{path} is not a readable .npz {what} ({exc})") from exc
    if "header" not in arrays:
        raise ParameterError(f"{path} has no vqalign header; it was not written by vqalign")
    head = json.loads(str(arrays.pop("header")))
    if head.get("format") != fmt:
        raise ParameterError(f"{path} is a {head.get('format')!r} file, not a {fmt}")
    return arrays, head


def check_settings(expected: dict, got: dict, *, what: str = "features") -> None:
    """Refuse features whose recorded settings differ from the codebook's."""
    if not expected or not got:
        return
    # the package version that wrote a store is provenance, not a feature setting
    keys = sorted(k for k in set(expected) | set(got) if "version" not in str(k))
    diff = [k for k in keys if _jsonable(expected.get(k)) != _jsonable(got.get(k))]
    if diff:
        shown = "; ".join(f"{k}: codebook {expected.get(k)!r} vs {what} {got.get(k)!r}"
                          for k in diff[:5])
        raise ParameterError(
            f"the {what} were computed with other settings than the codebook's ({shown}); "
            "recompute the features with the codebook's settings or train a new codebook"
        )


def check_encode_input(X, n_features: int, feature_settings: dict, *, trained: str,
                       fix: str):
    """The rows to encode as float32, refused when their width or recorded feature
    settings differ from the trained model's.

    ``trained`` completes "X has d features per row but ..." (e.g. "the codebook was
    trained on"), ``fix`` says what to do instead.
    """
    X, settings = as_training_data(X)
    if X.shape[1] != n_features:
        raise ParameterError(
            f"X has {X.shape[1]} features per row but {trained} {n_features}; {fix}"
        )
    check_settings(feature_settings, settings)
    return X
