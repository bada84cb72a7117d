"""A run's journal: what a long run has finished, so that an interrupted run continues where it stopped.

``OUT/.pfv-run.jsonl`` holds the run's key (the model, its options and its inputs) on its first line, then
one line per finished batch, appended as each finishes (a run of many batches appends a line each instead
of rewriting all of them). A last line cut short by a crash is ignored: that batch is done again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import PFVError
from .files import write_atomic

NAME = ".pfv-run.jsonl"


class RunJournal:
    """The journal of the run in ``out``: its ``key``, and ``batches``, the entry of each finished batch by
    its index."""

    def __init__(self, out: Path, key: dict[str, Any], batches: dict[int, dict[str, Any]] | None = None):
        self.out = out
        self.key = key
        self.batches: dict[int, dict[str, Any]] = dict(batches or {})

    @property
    def path(self) -> Path:
        return self.out / NAME

    @classmethod
    def start(cls, out: Path, key: dict[str, Any], overwrite: bool = False) -> RunJournal:
        """The journal of a fresh run in ``out``, or that of an interrupted run of the same ``key`` to
        resume. Without ``overwrite``, a folder holding other things, or an unfinished run of another key,
        is refused."""
        if out.exists() and not out.is_dir():
            raise PFVError(f"{out}: exists and is not a folder")
        previous = cls.read(out)
        if not overwrite:
            if previous is not None and previous.key == key:
                previous.rewrite()  # without a last line cut short, so that new lines follow whole ones
                return previous
            if previous is not None:
                raise PFVError(f"{out}: holds an unfinished run of other inputs or options (use --overwrite, or the same command)")
            if out.is_dir() and any(out.iterdir()):
                raise PFVError(f"{out}: is not empty (use --overwrite, or another folder)")
        out.mkdir(parents=True, exist_ok=True)
        journal = cls(out, key)
        journal.rewrite()
        return journal

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
                journal.batches[int(entry.pop("index"))] = entry
            except (ValueError, KeyError, AttributeError, TypeError):
                break
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
        """The run is complete: the journal goes."""
        self.path.unlink(missing_ok=True)
