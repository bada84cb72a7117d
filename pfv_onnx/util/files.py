"""Writing output files atomically (a reader never sees a half-written file, a failure leaves none), the
output folders and files every command writes, each held by one lock while a run writes it, and reading the
files a user gives in bounded time and memory."""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import OutputExistsError, PFVError

try:
    import fcntl
except ImportError:  # not on POSIX: outputs are not locked
    fcntl = None

# Held (flock) by the run writing into a folder, so that a second run does not write into it meanwhile; the
# lock goes with the process, however it ends. An output file's lock is ``.NAME.pfv-lock`` beside it.
LOCK = ".pfv-run.lock"
LOCK_TRIES = 5
T = TypeVar("T")


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
    file (a lock file left by a run that was killed does not count). Checked before any work, created by
    :func:`claimed_output_folder` or :func:`output_folder`."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PFVError(f"{out}: exists and is not a folder")
    if not overwrite and out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
        raise OutputExistsError(out, "is not empty", ", or another folder")
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
        raise OutputExistsError(out, "exists already", " to replace it")
    if not out.parent.is_dir():
        raise PFVError(f"{out.parent}: no such folder")
    return out


def hold_lock(path: Path, what: Path) -> int | None:
    """Hold the lock file ``path`` (of the output ``what``) and return its descriptor, or refuse: another run
    is writing ``what`` now. The lock file is never followed through a link nor opened unless it is a
    regular file; a lock held on a file that another run removed meanwhile is taken again on the new one."""
    if fcntl is None:
        return None
    for _ in range(LOCK_TRIES):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            raise PFVError(f"{path}: cannot be used as the run's lock ({exc.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PFVError(f"{path}: is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PFVError(f"{what}: another pfv-onnx run is writing into it now") from None
        try:
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise PFVError(f"{what}: another pfv-onnx run is writing into it now")


def release_lock(path: Path, fd: int | None) -> None:
    """Remove the lock file ``path`` and let go of the lock ``fd`` (:func:`hold_lock`), in that order: a run
    waiting for it then takes a new file (:func:`hold_lock` checks that the file it holds is still there)."""
    if fd is not None:
        path.unlink(missing_ok=True)
        os.close(fd)


def claim_folder(out: Path, check: Callable[[], T]) -> tuple[int | None, list[Path], T]:
    """Run ``check`` (it raises to refuse ``out``), make ``out``, hold its run lock, and run ``check`` again
    under the lock (a run that finished meanwhile left files): the lock's descriptor, the folders made (the
    deepest first) and what the second ``check`` returned. A refusal leaves nothing: no lock, no new folder."""
    check()
    made = [folder for folder in (out, *out.parents) if not folder.exists()]
    out.mkdir(parents=True, exist_ok=True)
    fd = None
    try:
        fd = hold_lock(out / LOCK, out)
        return fd, made, check()
    except BaseException:
        release_lock(out / LOCK, fd)
        _remove_if_empty(made)
        raise


@contextmanager
def claimed_output_folder(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """The output folder of a run, held for the block (:func:`claim_folder` with
    :func:`check_output_folder`): a second run into it is refused while this one writes. The lock goes at
    the end; the folders made here that a failed run left empty go too."""
    out = Path(path)
    fd, made, _ = claim_folder(out, lambda: check_output_folder(out, overwrite))
    try:
        yield out
    except BaseException:
        release_lock(out / LOCK, fd)
        _remove_if_empty(made)
        raise
    release_lock(out / LOCK, fd)


@contextmanager
def claimed_output_file(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """The output file of a run, held for the block: checked (:func:`check_output_file`), locked through
    ``.NAME.pfv-lock`` beside it, so that a second run writing it is refused while this one works, and
    checked again under the lock, so that a file another run finished meanwhile is not replaced without
    ``overwrite``."""
    out = check_output_file(path, overwrite)
    lock = out.with_name(f".{out.name}.pfv-lock")
    fd = hold_lock(lock, out)
    try:
        check_output_file(out, overwrite)
        yield out
    finally:
        release_lock(lock, fd)


def _remove_if_empty(made: list[Path]) -> None:
    """Remove the folders a run made, the deepest first, while they are empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:  # something was written: it stays, and so do the folders above it
            return


def check_apart(out: str | Path, inputs: Iterable[str | Path] = (), datasets: Iterable[str | Path] = ()) -> None:
    """Refuse, before any work, an output (a folder or a file) that is or holds one of ``inputs`` or
    ``datasets`` (writing there could replace what the command reads), or that lies inside one of the
    ``datasets``, the image files and folders a command reads (the next run over such a folder would read
    the output's pictures as images, or as a class). Links are followed: the places compared are the real
    ones."""
    target = Path(out).resolve()
    datasets = list(datasets)
    for path in [*inputs, *datasets]:
        place = Path(path).resolve()
        if place.is_relative_to(target):
            kind = "is" if place == target and not place.is_dir() else "holds"
            raise PFVError(f"{out}: {kind} the input {path}: writing there could replace it (choose another {'name' if kind == 'is' else 'folder'})")
    for dataset in datasets:
        if Path(dataset).is_dir() and target.is_relative_to(Path(dataset).resolve()):
            raise PFVError(f"{out}: is inside the dataset {dataset}: the next run over it would read the output's pictures as its images")


def read_file(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file at ``path`` (``what`` it should be, for messages), read through one
    descriptor: a FIFO, a device or a folder is refused without waiting on it or reading it, and so is a
    file of more than ``limit`` bytes, whatever size it claimed when opened.

    Raises:
        PFVError: not a regular file, or larger than ``limit`` bytes.
        OSError: it cannot be opened or read (FileNotFoundError: nothing is there).
    """
    # Non-blocking: opening a FIFO would otherwise wait for a writer. Reads of a regular file ignore the flag.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PFVError(f"{path}: is not a regular file ({what} is one)")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise PFVError(f"{path}: larger than {limit / 2**20:g} MiB, too large for {what}")
    return data


def read_json(path: str | Path, limit: int, what: str) -> Any:
    """The value of the JSON file at ``path``, read by :func:`read_file`.

    Raises:
        PFVError: what :func:`read_file` refuses, text that is not UTF-8 JSON, or JSON nested deeper than
            the parser can follow (Python's json raises RecursionError there).
        OSError: it cannot be opened or read (FileNotFoundError: nothing is there).
    """
    data = read_file(path, limit, what)
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
        raise PFVError(f"{path}: not {what} (not UTF-8 JSON: {exc})") from None
    except RecursionError:
        raise PFVError(f"{path}: not {what} (JSON nested too deeply)") from None
