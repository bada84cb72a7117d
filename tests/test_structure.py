"""The package's shape: its layers import only downwards, with no cycles; the command line is cheap to
start; modules and functions stay small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pfv_onnx"

# Each unit of the package and the units it may import (its own modules aside). Bottom to top: the data
# flows graph -> runtime -> core -> render -> cli and the applications.
BASE = {"errors", "version", "console", "memory", "presets", "files", "progress", "options", "threads"}
ALLOWED = {
    "errors": set(),
    "version": set(),
    "console": set(),
    "memory": {"errors"},
    "presets": {"errors"},
    "files": {"errors"},
    "progress": set(),
    "options": {"errors", "presets"},
    "threads": set(),
    "graph": {"errors"},
    "runtime": {"errors", "graph"},
    "core": set(),
    "preprocess": {"errors", "presets", "options"},
    "bundled": {"errors", "preprocess"},
    "labels": {"errors", "bundled", "files"},
    "tapping": BASE | {"graph", "runtime", "bundled", "labels"},
    "features": set(),
    "featurizer": BASE | {"graph", "runtime", "core", "preprocess", "bundled", "labels", "tapping", "features"},
    "composites": {"errors", "console", "memory", "preprocess"},
    "colouring": BASE | {"core", "features"},
    "stream": BASE | {"features", "featurizer"},
    "journal": BASE,
    "fitting": BASE | {"core", "features", "featurizer", "stream"},
    "basis_file": BASE | {"core"},
    "render": BASE,
    "report": BASE | {"core", "render", "colouring", "labels"},
    "notebook": BASE | {"colouring", "render", "report", "labels"},
    "atlas": BASE | {"core", "features", "graph", "preprocess", "stream", "labels"},
    "pfv": BASE | {"bundled", "core", "features", "featurizer", "colouring", "fitting", "basis_file", "report", "notebook", "atlas"},
    "in_graph": BASE | {"core", "graph"},
    "exporting": BASE | {"basis_file", "bundled", "core", "graph", "in_graph", "pfv", "tapping"},
    "evaluation": BASE | {"bundled", "core", "graph", "runtime", "preprocess", "composites", "featurizer", "colouring"},
    "apps": BASE | {"bundled", "core", "graph", "preprocess", "features", "featurizer", "colouring", "stream", "journal",
                    "fitting", "render", "report", "pfv", "tapping", "composites", "evaluation", "atlas", "labels", "exporting", "in_graph"},
    "cli": BASE | {"bundled"},  # the applications are imported by name when their command runs
    "__main__": {"cli"},
    "__init__": {"version"},  # the rest by name, when first used
}


def unit(module: str) -> str:
    """``pfv_onnx.core.pca`` -> ``core``; ``pfv_onnx`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The pfv_onnx modules ``path`` imports, anywhere in it (functions included), as absolute names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("pfv_onnx"):
                # "from . import bundled" names a module; "from .x import y" the module x.
                found |= {f"{target}.{a.name}" if not node.module else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pfv_onnx")}
    return found


def modules() -> dict[str, set[str]]:
    return {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_unit_imports_only_the_units_below_it():
    graph = modules()
    assert set(ALLOWED) >= {unit(m) for m in graph}, {unit(m) for m in graph} - set(ALLOWED)
    for module, targets in graph.items():
        for target in targets:
            if unit(target) != unit(module):
                assert unit(target) in ALLOWED[unit(module)], f"{module} imports {target}"


def test_no_import_cycles():
    graph = modules()
    names = set(graph)
    # "from .x import y" names the module x, or the module x.y.
    edges = {m: ({t if t in names else t.rsplit(".", 1)[0] for t in targets} & names) - {m} for m, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_core_is_numpy_scipy_and_opencv_only():
    allowed = {"numpy", "scipy", "cv2", "__future__"}
    for path in (PACKAGE / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else []
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, f"{path.name} imports {name}"


@pytest.mark.parametrize("argv", [["--help"], ["explain", "--help"], ["fit", "--help"], ["--version"]])
def test_the_command_line_starts_without_onnx_onnxruntime_or_opencv(argv):
    code = (
        "import sys\nfrom pfv_onnx.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'cv2') if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert proc.stdout.strip()


def test_modules_and_functions_stay_small():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                documented = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                start = first.end_lineno + 1 if documented and len(node.body) > 1 else first.lineno
                assert node.end_lineno - start < 60, f"{path.name}: {node.name}"
