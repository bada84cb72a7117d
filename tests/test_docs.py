"""The README and docs/: the Python example runs as written, every command is in the table, every link lands,
and the atlas page (the README's picture of it) shows no folder of the machine that made it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pfv_onnx.cli import build_parser, main
from pfv_onnx.images import bundled

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a line of the README), up to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    after = text.split(f"\n{heading}\n", 1)[1]
    return re.split(rf"\n{level} ", after, maxsplit=1)[0]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", section((ROOT / "README.md").read_text(), "## In Python"), re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].rgb.shape == (8, 224, 224, 3)
    assert namespace["fixed"].rgb.shape == (2, 224, 224, 3)
    assert (tmp_path / "report" / "index.html").is_file() and (tmp_path / "tapped.onnx").is_file()


def test_the_readme_command_line_example_and_table_name_every_command():
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    table = re.findall(r"^\| `(\w+)` \|", section(readme, "## Commands"), re.M)
    assert sorted(table) == sorted(commands)
    example = re.search(r"```sh\n(.*?)```", section(readme, "## On the command line"), re.S).group(1)
    lines = [line.split("#")[0].split() for line in example.strip().splitlines()]
    assert len(lines) == 5 and all(words[0] == "pfv-onnx" and words[1] in commands for words in lines)


def test_every_link_in_the_readme_and_docs_lands():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                assert anchor in {slug(h) for h in headings}, f"{page.name}: {target}"


def test_every_section_moved_out_of_the_readme_is_linked_from_it():
    readme = (ROOT / "README.md").read_text()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in readme, doc.name


def test_the_atlas_page_names_the_model_by_its_file_not_its_folder(tmp_path):
    out = tmp_path / "atlas"
    photos = [str(p) for p in bundled.sample_images()]
    assert main(["atlas", "mobilenet_v2", *photos, "--out", str(out), "--top", "2", "--batch", "8", "--quiet"]) == 0
    page = (out / "index.html").read_text()
    model = bundled.model_path("mobilenet_v2")
    assert f"Model <code>{model.name}</code>" in page
    assert str(model.parent) not in page
