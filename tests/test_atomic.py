"""atomic_write: all-or-nothing, no silent overwrite, ordinary file permissions."""

import os
import stat

import pytest

from vqalign.exceptions import ParameterError
from vqalign.io.atomic import atomic_write


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(p) as fh:
        fh.write("new, half-written")
        raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind


def test_atomic_write_refuses_to_overwrite(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(ParameterError, match="overwrite=True"), \
            atomic_write(p, overwrite=False) as fh:
        fh.write("new")
    assert p.read_text() == "old"


def test_atomic_write_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.bin", "wb") as fh:
            fh.write(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert mode == 0o644
