"""Make ``pfv_onnx/samples/gcompris5/``: 16 public-domain or CC0 photos per class from the gcompris5 set.

The source set (five folders of WebP photos from Debian's ``gcompris-qt-data``, with one README per
activity that gives each file's author, source and licence) lies in ``../shared/datasets/gcompris5``. Only
files whose licence is public domain or CC0 are taken, evenly spread over each class's sorted list,
resized to at most 320 px on their longer side (the classes come at different resolutions) and written as
WebP; ``ATTRIBUTION.md`` keeps each file's author, source and licence.

    python models/export/gcompris5_subset.py [SOURCE]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image

PER_CLASS = 16
MAX_SIDE = 320
FREE = re.compile(r"public domain|cc0", re.IGNORECASE)


def licences(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    """``(activity, file name) -> {Copyright, Source, License}`` from the folder's README.<activity>.txt."""
    found = {}
    for readme in folder.glob("README.*.txt"):
        activity = readme.name[len("README.") : -len(".txt")]
        for block in re.split(r"\n\s*\n", readme.read_text(encoding="utf-8", errors="replace")):
            info, files, listing = {}, [], False
            for line in block.strip().splitlines():
                if line.startswith("Files:"):
                    listing = True
                    files += line[len("Files:") :].split()
                elif listing and not re.match(r"^\w[\w ]*:", line):
                    files += line.split()
                else:
                    listing = False
                    if ":" in line:
                        key, value = line.split(":", 1)
                        info[key.strip()] = value.strip()
            for name in files:
                found[(activity, Path(name).name)] = info
    return found


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "gcompris5")
    out = Path(__file__).resolve().parents[2] / "pfv_onnx" / "samples" / "gcompris5"
    lines = [
        "# gcompris5 subset: where the photos come from",
        "",
        f"{PER_CLASS} photos per class, public domain or CC0 only, taken from the images of Debian's package",
        "`gcompris-qt-data` 3.1-2 (the set `gcompris5`), resized to at most 320 px. Per file: author, source, licence.",
        "",
        "| file | author | source | licence |",
        "|---|---|---|---|",
    ]
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        known = licences(folder)
        free = []
        for image in sorted(folder.glob("*.webp")):
            activity, name = image.name.split("__", 1)
            info = known.get((activity, name), {})
            if FREE.search(info.get("License", "")):
                free.append((image, info))
        step = len(free) / PER_CLASS
        chosen = [free[int(i * step)] for i in range(PER_CLASS)]
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        for image, info in chosen:
            with Image.open(image) as picture:
                picture = picture.convert("RGB")
                picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                picture.save(out / folder.name / image.name, format="WEBP", quality=85, method=6)
            lines.append(f"| {folder.name}/{image.name} | {info.get('Copyright', '')} | {info.get('Source', '')} | {info['License']} |")
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
