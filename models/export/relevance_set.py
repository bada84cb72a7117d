"""Make ``pfv_onnx/samples/relevance/``: cut-out objects and background photos for ``pfv-onnx evaluate``.

Objects: 40 emoji of animals, food and things, drawn from Google's Noto Color Emoji font in Debian's package
``fonts-noto-color-emoji`` (SIL OFL 1.1; the artwork is Apache-2.0 upstream) on a transparent canvas, so
their masks are exact; trimmed to their bounding box. Backgrounds: six photos without a dominant object
from Debian's package ``mate-backgrounds`` (GPL-2+, authors below), shrunk to at most 480 px. All are
written as WebP (objects keep their alpha). ``ATTRIBUTION.md`` lists each file's source, author and licence.

    apt-get download fonts-noto-color-emoji mate-backgrounds && for f in *.deb; do dpkg -x "$f" x; done
    python models/export/relevance_set.py x/usr/share
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# Emoji (code points) and file names: animals, food, vehicles, instruments and things with ImageNet classes.
OBJECTS = {
    "dog": "\U0001F415", "cat": "\U0001F408", "horse": "\U0001F40E", "tiger": "\U0001F405", "leopard": "\U0001F406",
    "elephant": "\U0001F418", "giraffe": "\U0001F992", "zebra": "\U0001F993", "cow": "\U0001F404", "pig": "\U0001F416",
    "rabbit": "\U0001F407", "hedgehog": "\U0001F994", "turtle": "\U0001F422", "crocodile": "\U0001F40A",
    "snail": "\U0001F40C", "tropical_fish": "\U0001F420", "octopus": "\U0001F419", "crab": "\U0001F980",
    "lobster": "\U0001F99E", "butterfly": "\U0001F98B", "lady_beetle": "\U0001F41E", "parrot": "\U0001F99C",
    "flamingo": "\U0001F9A9", "penguin": "\U0001F427", "banana": "\U0001F34C", "strawberry": "\U0001F353",
    "pineapple": "\U0001F34D", "mushroom": "\U0001F344", "broccoli": "\U0001F966", "pretzel": "\U0001F968",
    "bicycle": "\U0001F6B2", "bus": "\U0001F68C", "fire_engine": "\U0001F692", "sailboat": "\u26F5",
    "guitar": "\U0001F3B8", "violin": "\U0001F3BB", "alarm_clock": "\u23F0", "umbrella": "\u2602\uFE0F",
    "teddy_bear": "\U0001F9F8", "camera": "\U0001F4F7",
}
FONT = "fonts/truetype/noto/NotoColorEmoji.ttf"
FONT_SIZE = 109  # the size of the font's bitmaps: drawn as they are, not rescaled
BACKGROUNDS = {
    "Blinds.jpg": "Lennart Poettering, Andrea Cimitan (2008)",
    "Dune.jpg": "Marco Cogoni (2007), Hylke Bons (2008)",
    "GreenMeadow.jpg": "Timothy Schellhase (2005), Lapo Calamandrei (2008)",
    "RainDrops.jpg": "blackcombwhistler07 (2008)",
    "Storm.jpg": "Sergey Nazarov (2008)",
    "Wood.jpg": "Jean-François Fortin Tam (2008)",
}
BACKGROUND_SIDE = 480


NOTICE = [
    "",
    "The six backgrounds keep their licence, the GNU GPL version 2 or later: they are data shipped beside",
    "pfv-onnx's MIT-licensed code, not part of it, and each file here is its own complete source (the originals",
    "are in Debian's `mate-backgrounds` package; this copy is only shrunk and re-encoded). The cut-outs are",
    "glyphs of Noto Color Emoji, Copyright 2013-2017 Google Inc., drawn from the font (SIL Open Font License 1.1;",
    "the emoji artwork is under the Apache License 2.0 upstream).",
]


def main() -> None:
    share = Path(sys.argv[1])
    out = Path(__file__).resolve().parents[2] / "pfv_onnx" / "samples" / "relevance"
    (out / "objects").mkdir(parents=True, exist_ok=True)
    (out / "backgrounds").mkdir(parents=True, exist_ok=True)
    lines = [
        "# Cut-out objects and backgrounds for `pfv-onnx evaluate`",
        "",
        "Made by `models/export/relevance_set.py`: objects drawn from the Noto Color Emoji font (alpha kept,",
        "trimmed to their bounding box), backgrounds shrunk to at most 480 px, all as WebP.",
        "",
        "| file | source | author | licence |",
        "|---|---|---|---|",
    ]
    font = ImageFont.truetype(str(share / FONT), FONT_SIZE)
    for name, text in OBJECTS.items():
        canvas = Image.new("RGBA", (2 * FONT_SIZE, 2 * FONT_SIZE), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), text, font=font, embedded_color=True)
        picture = canvas.crop(canvas.getchannel("A").getbbox())
        picture.save(out / "objects" / f"{name}.webp", format="WEBP", lossless=True, method=6)
        code = " ".join(f"U+{ord(ch):04X}" for ch in text)
        lines.append(f"| objects/{name}.webp | emoji {code} of Noto Color Emoji, Debian's fonts-noto-color-emoji 2.042 | Google Inc. | OFL-1.1 (artwork Apache-2.0) |")
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
