"""``pfv-onnx explain``: PFV of image files and folders, batch by batch, written as pictures and a report.

The images stream (:mod:`pfv_onnx.runtime.stream`): decoded ahead of the forward pass, coloured, drawn and written
behind it. A run keeps its progress in a journal (:mod:`pfv_onnx.util.journal`): an interrupted run (Ctrl-C, a
crash) leaves only whole files behind, and the same command run again continues with the first unfinished
batch. The journal goes once ``summary.json`` is written.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analyses.atlas import read_atlas
from ..util.console import plural, say, warn
from ..analyses.colouring import check_components
from ..errors import OutputExistsError, PFVError
from ..runtime.features import Features
from ..util.files import check_apart
from ..util.journal import RunJournal
from ..options import PICTURES, Options, given_flags
from ..pfv import PFV
from ..images.preprocess import find_images, stratified
from ..util.progress import Progress
from ..render.report import BatchWrite, build_summary, unique_names, write_batch, write_summary
from ..render.resume import batch_finished
from ..runtime.stream import BatchStream, Decoded, split_batches


def explain(
    pfv: PFV,
    inputs: Sequence[str | Path],
    out: Path,
    batch: int | None = None,
    show_progress: bool = True,
    overwrite: bool = False,
    workers: int | None = None,
    pictures: Sequence[str] = PICTURES,
    atlas: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run PFV over ``inputs`` (files and folders) and write everything to ``out``; return the summary.

    Batches are coloured relative to themselves, or with ``pfv``'s basis when it has one. A folder-per-class
    root is read recursively and its classes are mixed in every batch (stratified), so their colours can be
    compared; the report names each image's class. Inputs that
    cannot be decoded are skipped and listed in the summary (``skipped``) with the reason; the rest of
    their batch goes on. Raises :class:`PFVError` for usage errors (a missing input, a folder that holds
    other things) before anything is written. ``atlas`` (:func:`pfv_onnx.analyses.atlas.read_atlas`, of ``pfv``'s
    basis): the report links each component to its card there.
    """
    started = time.perf_counter()
    files = stratified(find_images(inputs))
    paths = [f.path for f in files]
    names = unique_names([p.stem for p in paths])
    plan = split_batches(len(paths), batch)
    description = pfv.describe()
    description["options"].update(batch=batch, pictures=list(pictures))
    if atlas is not None:
        description["atlas"] = {**atlas, "page": os.path.relpath(atlas["page"], out)}
    key = {field: description[field] for field in ("model", "options", "taps", "final", "basis")}
    key["inputs"] = [str(p) for p in paths]
    if not overwrite and (out / "summary.json").exists():
        raise OutputExistsError(out, "holds a report already", " to replace it")
    if pfv.basis is None and pfv.featurizer.final_shape is not None and plan:  # before anything is written
        check_components(pfv.options.n_components, min(len(part) for part in plan), pfv.featurizer.final_shape)
    run = _Run(pfv=pfv, paths=paths, names=names, classes=[f.label for f in files], plan=plan, description=description, pictures=pictures,
               show_progress=show_progress, workers=workers, started=started)
    journal = RunJournal.start(out, key, overwrite)  # before any picture: a run stopped from here on can be resumed
    try:
        return _run(run, journal)
    finally:
        journal.unlock()


@dataclass(frozen=True, kw_only=True)
class _Run:
    """What a run of :func:`explain` does, settled before its journal opens: the inputs in order with their
    unique names and classes, the batches (``plan``, ranges of positions), the run's description for the
    summary, the pictures written, and how (progress bar, worker threads); ``started``, its start time."""

    pfv: PFV
    paths: list[Path]
    names: list[str]
    classes: list[str | None]
    plan: list[range]
    description: dict[str, Any]
    pictures: Sequence[str]
    show_progress: bool
    workers: int | None
    started: float


def _run(run: _Run, journal: RunJournal) -> dict[str, Any]:
    """:func:`explain` once its journal is open: the batches it has not finished whole, then the summary."""
    pfv, paths, names, classes, plan = run.pfv, run.paths, run.names, run.classes, run.plan
    out = journal.out
    progress = Progress(len(paths), enabled=run.show_progress)
    todo = [(i, plan[i]) for i in range(len(plan)) if not batch_finished(journal.batches.get(i), i, {names[p]: str(paths[p]) for p in plan[i]}, out)]
    progress.update(len(paths) - sum(len(part) for _, part in todo))
    stream = BatchStream(pfv.featurizer, paths, todo, maps=pfv._needs_maps(pfv.basis), workers=run.workers, relative=pfv.basis is None)

    def finish(decoded: Decoded, features: Features) -> tuple[dict[str, float], BatchWrite]:
        kept = decoded.positions
        result = pfv._colour(features, decoded.crops, [names[i] for i in kept], decoded.timings, pfv.basis, stream.core_threads)
        return dict(result.timings), write_batch(
            out, result, decoded.index, [str(paths[i]) for i in kept], stream.pool, run.pictures, [classes[i] for i in kept]
        )

    def done(decoded: Decoded, outcome: tuple[dict[str, float], BatchWrite] | None) -> None:
        timings, written = outcome if outcome is not None else (decoded.timings, None)
        entry = {
            "batch": written.batch if written else None,
            "images": written.images if written else [],
            "skipped": decoded.skipped,
            "timings": {**timings, **written.wait()} if written else timings,
        }
        journal.record(decoded.index, entry)
        progress.update(len(plan[decoded.index]))

    try:
        stream.run(finish, done, whole=lambda outcome: outcome[1].complete())
    finally:
        progress.close()
    summary = _summary(run.description, [journal.batches[i] for i in range(len(plan))], time.perf_counter() - run.started)
    write_summary(out, summary)
    journal.close()
    return summary


def _summary(description: dict[str, Any], done: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """``summary.json`` of a run from the journal's entries, in batch order."""
    timings: dict[str, float] = defaultdict(float)
    for entry in done:
        for stage, seconds in entry["timings"].items():
            timings[stage] += seconds
    return build_summary(
        description,
        [entry["batch"] for entry in done if entry["batch"] is not None],
        [image for entry in done for image in entry["images"]],
        timings,
        skipped=[skip for entry in done for skip in entry["skipped"]],
        wall_s=round(wall_s, 3),
    )


def run(args: argparse.Namespace, options: Options) -> int:
    """``pfv-onnx explain``: exit 0 when every input was explained, 1 when some were skipped."""
    started = time.perf_counter()
    kinds = args.pictures or list(PICTURES)
    unknown = sorted(set(kinds) - set(PICTURES))
    if unknown:
        raise PFVError(f"--pictures: unknown kind {unknown[0]!r} (choose from {', '.join(PICTURES)})")
    if args.atlas and not args.basis:
        raise PFVError("--atlas needs --basis: an atlas describes the components of a fitted basis")
    out = Path(args.out)
    check_apart(out, [path for path in (args.basis, args.atlas) if path], datasets=args.inputs)
    pfv = PFV(args.model, basis=args.basis, **given_flags(args))
    atlas = read_atlas(args.atlas, pfv.basis.fingerprint()) if args.atlas else None
    summary = explain(pfv, args.inputs, out, batch=args.batch, show_progress=not args.quiet, overwrite=args.overwrite, pictures=kinds, atlas=atlas)
    skipped = summary["skipped"]
    if not args.quiet:
        counts = f"{plural(len(summary['images']), 'image')} in {plural(len(summary['batches']), 'batch')}"
        note = f", skipped {len(skipped)} (see summary.json)" if skipped else ""
        say(f"explained {counts} in {time.perf_counter() - started:.1f} s{note}: {out}/index.html")
    for skip in skipped:
        warn(f"skipped {skip['reason']}")
    return 1 if skipped else 0
