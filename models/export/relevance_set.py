"""Make ``pfv_onnx/samples/relevance/``: cut-out objects and background photos for ``pfv-onnx evaluate``.

Objects: 40 public-domain cut-outs (an alpha channel, so their masks are exact) from Debian's package
``openclipart-png`` (openclipart.org; the author is in each file's name). Backgrounds: six photos without
a dominant object from Debian's package ``mate-backgrounds`` (GPL-2+, authors below). Objects are shrunk to
at most 256 px, backgrounds to at most 480 px, both written as WebP (objects keep their alpha).
``ATTRIBUTION.md`` lists each file's source, author and licence.

    apt-get download openclipart-png mate-backgrounds && for f in *.deb; do dpkg -x "$f" x; done
    python models/export/relevance_set.py x/usr/share
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

OBJECTS = [
    "animals/bugs/coccinellona_architetto__01.png", "animals/fish/pescetto_arancione_archi_01.png",
    "animals/mammals/bears/orso_architetto_francesc_02.png", "animals/mammals/big_cats/leone_architetto_frances_01.png",
    "animals/mammals/big_cats/tigre03_architetto_franc_01.png", "animals/mammals/dog_on_leash_gerald_g._01.png",
    "animals/mammals/horses/cavallo_architetto_franc_04.png", "animals/rana03_architetto_france_01.png",
    "food/apple_bitten_dan_gerhard_01.png", "food/beverages/mug.png", "food/crawfish2_ganson.png",
    "food/desserts/gelato_all_39_italiana_a_01.png", "food/french_fries_juliane_kr_r.png", "food/fruit/grapes_simple.png",
    "food/fruit/lemon_wedge_ganson.png", "food/fruit/peach_simple.png", "food/fruit/strawberry_simple.png",
    "food/fruit/watermelon_simple.png", "food/meats_and_eggs/hot_dog_juliane_krug_r.png",
    "food/turkey_platter_01_with_fruit_and_vegitables_01.png", "transportation/ambulans_romus_01.png",
    "transportation/bus1_jarno_vasamaa_01.png", "transportation/vehicles/hummers/hummer_07.png",
    "tools/meatgrinder_benji_park_.png", "plants/cacuts_01.png", "plants/flowers/flower1_juliane_krug_01.png",
    "plants/mushroom.png", "plants/trees/evergreen/lightly_decorated_evergreen_01.png",
    "plants/trees/tree_branches_and_roots_01.png", "electronics/bulb/bulb.png", "recreation/games/9_ball_jarno_vasamaa.png",
    "recreation/holiday/gift02.png", "recreation/music/africandrum_benji_park2.png", "recreation/music/drums_jarno_vasamaa_.png",
    "recreation/music/harp1_ganson.png", "recreation/music/piano_geraint_luff_01.png", "recreation/party/balloon-blue-aj.png",
    "recreation/sports/baseball_glove_ganson.png", "recreation/sports/volley-ball_andrea_bianc_01.png",
    "recreation/toys/beach_ball_01.png",
]
BACKGROUNDS = {
    "Blinds.jpg": "Lennart Poettering, Andrea Cimitan (2008)",
    "Dune.jpg": "Marco Cogoni (2007), Hylke Bons (2008)",
    "GreenMeadow.jpg": "Timothy Schellhase (2005), Lapo Calamandrei (2008)",
    "RainDrops.jpg": "blackcombwhistler07 (2008)",
    "Storm.jpg": "Sergey Nazarov (2008)",
    "Wood.jpg": "Jean-François Fortin Tam (2008)",
}
OBJECT_SIDE = 256
BACKGROUND_SIDE = 480


NOTICE = [
    "",
    "The six backgrounds keep their licence, the GNU GPL version 2 or later: they are data shipped beside",
    "pfv-onnx's MIT-licensed code, not part of it, and each file here is its own complete source (the originals",
    "are in Debian's `mate-backgrounds` package; this copy is only shrunk and re-encoded). The cut-outs are in",
    "the public domain.",
]


def main() -> None:
    share = Path(sys.argv[1])
    out = Path(__file__).resolve().parents[2] / "pfv_onnx" / "samples" / "relevance"
    (out / "objects").mkdir(parents=True, exist_ok=True)
    (out / "backgrounds").mkdir(parents=True, exist_ok=True)
    lines = [
        "# Cut-out objects and backgrounds for `pfv-onnx evaluate`",
        "",
        "Made by `models/export/relevance_set.py`: objects shrunk to at most 256 px (alpha kept), backgrounds to at",
        "most 480 px, all as WebP.",
        "",
        "| file | source | author | licence |",
        "|---|---|---|---|",
    ]
    for relative in OBJECTS:
        with Image.open(share / "openclipart" / "png" / relative) as image:
            picture = image.convert("RGBA")
        picture.thumbnail((OBJECT_SIDE, OBJECT_SIDE), Image.Resampling.LANCZOS)
        name = Path(relative).stem.rstrip("_") + ".webp"
        picture.save(out / "objects" / name, format="WEBP", quality=90, method=6)
        lines.append(f"| objects/{name} | openclipart.org, `{relative}` in Debian's openclipart-png 0.18 | in the file name | public domain |")
    for file, author in BACKGROUNDS.items():
        with Image.open(share / "backgrounds" / "mate" / "nature" / file) as image:
            picture = image.convert("RGB")
        picture.thumbnail((BACKGROUND_SIDE, BACKGROUND_SIDE), Image.Resampling.LANCZOS)
        name = Path(file).stem.lower() + ".webp"
        picture.save(out / "backgrounds" / name, format="WEBP", quality=88, method=6)
        lines.append(f"| backgrounds/{name} | `nature/{file}` in Debian's mate-backgrounds | {author} | GPL-2+ |")
    lines += NOTICE
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
