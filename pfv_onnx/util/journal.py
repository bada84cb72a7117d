"""A run's journal: what a long run has finished, so that an interrupted run continues where it stopped.

``OUT/.pfv-run.jsonl`` holds the run's key (the model, its options and its inputs) on its first line, then
one line per finished batch, appended as each finishes (a run of many batches appends a line each instead
of rewriting all of them). A last line cut short by a crash is ignored: that batch is done again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import OutputExistsError, PFVError
from .files import LOCK, claim_folder, release_lock, write_atomic

NAME = ".pfv-run.jsonl"


class RunJournal:
    """The journal of the run in ``out``: its ``key``, and ``batches``, the entry of each finished batch by
    its index."""

    def __init__(self, out: Path, key: dict[str, Any], batches: dict[int, dict[str, Any]] | None = None):
        self.out = out
        self.key = key
        self.batches: dict[int, dict[str, Any]] = dict(batches or {})
        self._lock: int | None = None

    @property
    def path(self) -> Path:
        return self.out / NAME

    @classmethod
    def start(cls, out: Path, key: dict[str, Any], overwrite: bool = False) -> RunJournal:
        """The journal of a fresh run in ``out``, or that of an interrupted run of the same ``key`` to
        resume. Without ``overwrite``, a folder holding other things, or an unfinished run of another key,
        is refused: before the folder is made, and again once its lock is held (a run that ended meanwhile
        left files)."""
        if out.exists() and not out.is_dir():
            raise PFVError(f"{out}: exists and is not a folder")
        fd, _, previous = claim_folder(out, lambda: cls._resumable(out, key, overwrite))
        journal = previous or cls(out, key)
        journal._lock = fd
        journal.rewrite()  # a resumed one without a last line cut short, so that new lines follow whole ones
        return journal

    @classmethod
    def _resumable(cls, out: Path, key: dict[str, Any], overwrite: bool) -> RunJournal | None:
        """The journal of an interrupted run of ``key`` in ``out`` to resume, or ``None`` for a fresh run;
        refused as :meth:`start` says."""
        previous = cls.read(out)
        if not overwrite and previous is not None and previous.key == key:
            return previous
        if not overwrite:
            if previous is not None:
                raise OutputExistsError(out, "holds an unfinished run of other inputs or options", ", or the same command")
            if out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
                raise OutputExistsError(out, "is not empty", ", or another folder")
        return None

    def unlock(self) -> None:
        """Let go of the run lock (the journal stays, for a resume)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @classmethod
    def read(cls, out: Path) -> RunJournal | None:
        """The journal kept in ``out``, or ``None`` when there is none (or its first line is unreadable)."""
        try:
            lines = (out / NAME).read_text(encoding="utf-8").splitlines()
            journal = cls(out, json.loads(lines[0])["key"])
        except (OSError, ValueError, IndexError, KeyError, TypeError):
            return None
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                index = entry.pop("index")
            except (ValueError, KeyError, AttributeError, TypeError):
                break
            if not isinstance(index, int) or isinstance(index, bool):
                break
            journal.batches[index] = entry
        return journal

    def rewrite(self) -> None:
        """Write the whole journal afresh (atomically)."""
        lines = [json.dumps({"key": self.key})] + [json.dumps({"index": i, **entry}) for i, entry in self.batches.items()]
        write_atomic(self.path, "\n".join(lines) + "\n")

    def record(self, index: int, entry: dict[str, Any]) -> None:
        """Note batch ``index`` as finished, with its summary ``entry``."""
        self.batches[index] = entry
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"index": index, **entry}) + "\n")

    def close(self) -> None:
        """The run is complete: the journal and its lock go."""
        self.path.unlink(missing_ok=True)
        release_lock(self.out / LOCK, self._lock)
        self._lock = None
