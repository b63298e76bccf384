"""``stages.json``: what a corpus run has finished, and with which settings and inputs.

Like Kaldi's ``train_mono.sh`` stages, a run is a sequence of named stages; each
finished stage (and each finished alignment chunk) is recorded here, atomically,
right after its outputs are on disk. A run killed at any point (SIGKILL included)
therefore finds on the next start exactly the stages whose outputs are complete.

The file also holds the run's identity: a hash of the settings that shape the
results and a hash of the inputs (audio and transcript paths, sizes and times). A
later run with other settings or another corpus is refused, naming what differs,
instead of mixing two runs' outputs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from vqalign.exceptions import ParameterError
from vqalign.io.atomic import atomic_write

RECORDS_FILE = "stages.json"
RECORDS_VERSION = 1


def stable_hash(obj) -> str:
    """sha256 of the canonical JSON of ``obj`` (16 hex digits)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(path) -> str:
    """sha256 of a file's bytes (16 hex digits)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _stat_key(path) -> list:
    try:
        st = Path(path).stat()
        return [str(path), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), None, None]


def inputs_identity(pairs) -> dict:
    """Identity of a corpus: ``pairs`` of (id, audio path, transcript path)."""
    rows = sorted([uid, *_stat_key(a), *_stat_key(t)] for uid, a, t in pairs)
    return {"n": len(rows), "hash": stable_hash(rows), "ids_hash": stable_hash([r[0] for r in rows])}


class StageRecords:
    """The records of one output folder; every change is written atomically at once."""

    def __init__(self, out_dir, stages: tuple[str, ...]):
        self.path = Path(out_dir) / RECORDS_FILE
        self.stages = tuple(stages)
        self.data = {"version": RECORDS_VERSION, "identity": None, "stages": {}}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise ParameterError(
                    f"{self.path} is unreadable ({exc}); it records what this output folder "
                    "has finished: delete it (or pass --overwrite) to start over") from None
            if data.get("version", 0) > RECORDS_VERSION:
                raise ParameterError(f"{self.path} was written by a newer vqalign; upgrade it "
                                     "or use another --out")
            self.data = data

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    # ------------------------------------------------------------------ identity
    def check_identity(self, settings: dict, inputs: dict) -> None:
        """Refuse a folder whose finished work came from other settings or inputs."""
        ident = self.data.get("identity")
        if ident is None or not self.finished_any():
            return
        old = ident.get("settings", {})
        diff = [f"{k}: finished work used {old.get(k)!r}, this run asks {settings.get(k)!r}"
                for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if diff:
            raise ParameterError(
                f"{self.path.parent} holds work finished with other settings ("
                + "; ".join(diff) + "); use another --out, or --overwrite to redo everything "
                "with the new settings")
        old_in = ident.get("inputs", {})
        if old_in.get("hash") != inputs.get("hash"):
            what = (f"{old_in.get('n')} utterances then, {inputs.get('n')} now"
                    if old_in.get("ids_hash") != inputs.get("ids_hash")
                    else "the same utterances, but audio or transcript files changed")
            raise ParameterError(
                f"the corpus changed since the run recorded in {self.path} ({what}); "
                "re-run with --from-stage features to redo everything on the new corpus "
                "(add --overwrite to replace finished alignments), or use another --out")

    def set_identity(self, settings: dict, inputs: dict) -> None:
        self.data["identity"] = {"settings": settings, "settings_hash": stable_hash(settings),
                                 "inputs": inputs}
        self.save()

    # ------------------------------------------------------------------ stages
    def finished_any(self) -> bool:
        return any(v.get("finished") or v.get("chunks") for v in self.data["stages"].values())

    def get(self, stage: str) -> dict:
        return self.data["stages"].get(stage, {})

    def is_finished(self, stage: str) -> bool:
        return bool(self.get(stage).get("finished"))

    def finish(self, stage: str, **info) -> None:
        """Record ``stage`` as finished (after its outputs are on disk)."""
        rec = dict(self.get(stage))
        rec.update(info, finished=True, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.data["stages"][stage] = rec
        self.save()

    def finish_chunk(self, stage: str, key: str, **info) -> None:
        """Record one finished chunk of a chunked stage (the align stage)."""
        rec = self.data["stages"].setdefault(stage, {})
        rec.setdefault("chunks", {})[key] = info
        self.save()

    def chunks(self, stage: str) -> dict:
        return self.get(stage).get("chunks", {})

    def invalidate_from(self, stage: str) -> list[str]:
        """Forget ``stage`` and every stage after it; returns the names forgotten."""
        if stage not in self.stages:
            raise ParameterError(f"--from-stage {stage!r} is not a stage; use one of "
                                 f"{', '.join(self.stages)}")
        gone = list(self.stages[self.stages.index(stage):])
        for s in gone:
            self.data["stages"].pop(s, None)
        self.save()
        return gone

    def save(self) -> None:
        with atomic_write(self.path, "w", overwrite=True) as fh:
            json.dump(self.data, fh, indent=1)


__all__ = ["StageRecords", "RECORDS_FILE", "stable_hash", "file_digest", "inputs_identity"]
