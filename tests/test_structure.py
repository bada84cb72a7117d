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

# Each unit of the package (a folder, or a module at the top) and the units it may import, its own modules
# aside. Bottom to top, as the data flows: images and graph -> runtime -> core maths -> analyses -> render
# -> the facade -> the commands.
BASE = {"errors", "version", "presets", "options"}  # the one-line errors, the options and their presets
ALLOWED = {
    "errors": set(),
    "version": set(),
    "presets": {"errors"},
    "options": {"errors", "presets"},
    "util": {"errors"},  # atomic files and locks, the console, memory, progress, threads
    "graph": {"errors"},  # ONNX surgery
    "core": set(),  # the method on NumPy arrays
    "images": BASE | {"util"},  # decoding, presets applied, labels, bundled files, composites
    "runtime": BASE | {"util", "graph", "images", "core"},  # onnxruntime, the featurizer, the batch stream
    "analyses": BASE | {"util", "graph", "images", "core", "runtime"},  # colouring, fit, atlas, evaluate, ...
    "render": BASE | {"util", "images", "core", "analyses"},  # pictures and pages
    "results": BASE | {"util", "analyses", "render"},  # the analyses' results, with their pages and views
    "pfv": BASE | {"util", "images", "core", "runtime", "analyses", "results"},  # the facade
    "exporting": BASE | {"util", "graph", "images", "core", "runtime", "analyses", "pfv"},
    "apps": BASE | {"util", "graph", "images", "core", "runtime", "analyses", "render", "results", "pfv", "exporting"},
    "cli": BASE | {"util", "images"},  # the applications are imported by name when their command runs
    "__main__": {"cli"},
    # The public API: imported under TYPE_CHECKING for IDEs and type checkers; at run time by name, when first
    # used (only version is imported with the package: tests/test_public_api.py).
    "__init__": BASE | {"version", "pfv", "results", "exporting", "runtime", "analyses"},
}
# At the top of the package: only what a user imports or runs.
TOP_MODULES = {"__init__", "__main__", "cli", "pfv", "results", "exporting", "options", "presets", "errors", "version"}


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


def test_the_top_of_the_package_holds_only_what_users_import_or_run():
    assert {path.stem for path in PACKAGE.glob("*.py")} <= TOP_MODULES


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


# A module holds at most MAX_MODULE_LINES lines. A function at most MAX_FUNCTION_LINES, counted from its
# "def" to its last line: the signature and the docstring count, as a reader reads them. A function takes
# at most MAX_POSITIONAL positional parameters: a longer list wants keywords or an object that holds them.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_POSITIONAL = 9


def test_modules_and_functions_stay_small():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_MODULE_LINES, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_FUNCTION_LINES, f"{path.name}: {node.name} has {lines} lines"
                positional = [a for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                assert len(positional) <= MAX_POSITIONAL, f"{path.name}: {node.name} takes {len(positional)} positional parameters"
