"""Writing output files atomically (a reader never sees a half-written file, a failure leaves none), and
the output folders every command writes into."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import PFVError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; rename it to ``path`` when the block succeeds,
    delete it when the block fails. The file gets the usual permissions (the umask's)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically; text as UTF-8, the bytes of file names that are not UTF-8
    written as backslash escapes."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8", "backslashreplace") if isinstance(data, str) else data)
    return path


def write_report(out: Path, summary: dict[str, Any], page: str) -> None:
    """A command's results: ``summary.json`` and the ``index.html`` that shows it, each written atomically."""
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_atomic(out / "index.html", page)


def check_output_folder(path: str | Path, overwrite: bool = False) -> Path:
    """An output folder a command may write into: new, empty, or any folder with ``overwrite``; never a
    file. Checked before any work, created by :func:`output_folder`."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PFVError(f"{out}: exists and is not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise PFVError(f"{out}: is not empty (use --overwrite, or another folder)")
    return out


def output_folder(path: str | Path, overwrite: bool = False) -> Path:
    """:func:`check_output_folder`, then the folder made (with its parents)."""
    out = check_output_folder(path, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_output_file(path: str | Path, overwrite: bool = False) -> Path:
    """An output file a command may write: new, or an existing file with ``overwrite``; never a folder,
    and its folder must exist. Checked before any work."""
    out = Path(path)
    if out.is_dir():
        raise PFVError(f"{out}: is a folder; give the path of the file to write")
    if out.exists() and not overwrite:
        raise PFVError(f"{out}: exists already (use --overwrite to replace it)")
    if not out.parent.is_dir():
        raise PFVError(f"{out.parent}: no such folder")
    return out
