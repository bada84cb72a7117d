"""Self-contained HTML reports: one file, inline style, pictures by relative links, readable offline.

On load, a few lines of script count the pictures that failed to load, write the count to
``<body data-broken-images>`` and show a warning above the report when it is not zero. Pictures after the
first :data:`EAGER_PICTURES` are marked ``loading="lazy"``, so that a browser may read them as they come
into view rather than all of a folder run's thousands first; they are counted if and when they fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import PurePath
from urllib.parse import quote

from .images import _VIRIDIS_RGB

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
p, li { line-height: 1.45; } code { background: #f3f3f3; padding: 0 .2em; }
figure { display: inline-block; margin: .4em; vertical-align: top; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; image-rendering: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; margin-top: .25em; max-width: 240px; }
figure.wide figcaption { max-width: none; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .2em .6em; text-align: left; }
.card { display: inline-block; vertical-align: top; margin: .5em 1em .5em 0; }
.card h3 { font-size: 1em; margin: .2em 0; }
.colourbar { display: flex; align-items: center; gap: .3em; font-size: .8em; }
.colourbar .bar { display: inline-block; width: 120px; height: .8em; border: 1px solid #999; }
details { margin-top: 2em; } details summary { font-size: 1.1em; cursor: pointer; }
#broken { display: none; background: #fee; border: 1px solid #c00; padding: .5em 1em; }
"""

SELF_CHECK = """
window.addEventListener("load", function () {
  var broken = [];
  function show() {
    document.body.dataset.brokenImages = String(broken.length);
    if (broken.length) {
      var note = document.getElementById("broken");
      note.textContent = broken.length + " picture(s) could not be loaded: " +
        broken.map(function (img) { return img.getAttribute("src"); }).join(", ");
      note.style.display = "block";
    }
  }
  Array.prototype.forEach.call(document.images, function (img) {
    if (img.loading === "lazy" && !img.complete) {  // not requested yet: judged when it loads
      img.addEventListener("error", function () { broken.push(img); show(); });
    } else if (!img.complete || img.naturalWidth === 0) {
      broken.push(img);
    }
  });
  show();
});
"""
# Pictures of a page that load at once; the rest load as they scroll into view.
EAGER_PICTURES = 200


@dataclass
class Figure:
    """A picture (``src``, relative to the page) with a caption (HTML allowed)."""

    src: str
    caption: str = ""
    wide: bool = False
    size: tuple[int, int] | None = None  # (width, height) in pixels, when known: room is kept while it loads


@dataclass
class Section:
    """A titled part of a page: paragraphs (HTML allowed), an optional table, figures, and cards."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: list[list[str]] | None = None
    figures: list[Figure] = field(default_factory=list)
    cards: list[tuple[str, list[str], list[Figure]]] = field(default_factory=list)
    collapsed: bool = False  # shown under its title, closed until the reader opens it
    anchor: str | None = None  # the section's id, for links to it


def relative_link(path: str, anchor: str | None = None) -> str:
    """The URL of ``path``, relative to the page's folder, for an ``href`` or ``src`` (not yet escaped
    for HTML): ``./`` and each segment percent-encoded, so that no file name reads as a scheme
    (``javascript:``), a query or a fragment; ``#anchor`` after it when given."""
    if PurePath(path).is_absolute():
        raise ValueError(f"{path}: a page links files by their path relative to it")
    # A name that is not UTF-8 (decoded with surrogate escapes) is encoded as its bytes on disk.
    url = "./" + "/".join(quote(part.encode("utf-8", "surrogateescape"), safe="") for part in PurePath(path).parts)
    return f"{url}#{quote(anchor, safe='')}" if anchor else url


# A swatch's look, inline: it shows wherever its HTML goes (a page, a notebook), with no stylesheet.
SWATCH_STYLE = "display:inline-block;width:1em;height:1em;vertical-align:middle;margin-right:.3em;border:1px solid #999"


def swatch(colour: str) -> str:
    """HTML: a square of ``colour`` (a CSS colour), for a colour key."""
    return f'<span class="swatch" style="{SWATCH_STYLE};background:{colour}"></span>'


def colour_bar(lo: float, hi: float, stops: int = 9) -> str:
    """HTML: the viridis scale of activation pictures as a bar from ``lo`` to ``hi``."""
    table = _VIRIDIS_RGB[:, 0]
    colours = ", ".join("#%02x%02x%02x" % tuple(table[round(i * 255 / (stops - 1))]) for i in range(stops))
    return (
        f'<span class="colourbar"><span>{lo:.3g}</span><span class="bar" style="background:linear-gradient(to right, {colours})">'
        f"</span><span>{hi:.3g}</span></span>"
    )


def _figure(figure: Figure, lazy: bool = False) -> str:
    cls = ' class="wide"' if figure.wide else ""
    alt = escape(figure.caption.split("<")[0] or figure.src, quote=True)
    attributes = f' width="{figure.size[0]}" height="{figure.size[1]}"' if figure.size else ""
    attributes += ' loading="lazy"' if lazy else ""
    return (
        f'<figure{cls}><img src="{escape(relative_link(figure.src), quote=True)}" alt="{alt}"{attributes}>'
        f"<figcaption>{figure.caption}</figcaption></figure>"
    )


def page(title: str, intro: list[str], sections: list[Section]) -> str:
    """The whole HTML document. Titles are escaped; paragraphs, cells and captions are HTML as given.
    Pictures after the first :data:`EAGER_PICTURES` load lazily."""
    shown = 0

    def figure(f: Figure) -> str:
        nonlocal shown
        shown += 1
        return _figure(f, lazy=shown > EAGER_PICTURES)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style><script>{SELF_CHECK}</script></head>",
        f'<body data-broken-images=""><div id="broken"></div><h1>{escape(title)}</h1>',
    ]
    parts += [f"<p>{p}</p>" for p in intro]
    for section in sections:
        if section.collapsed:
            parts.append(f"<details><summary>{escape(section.title)}</summary>")
        else:
            anchor = f' id="{escape(section.anchor, quote=True)}"' if section.anchor else ""
            parts.append(f"<section{anchor}><h2>{escape(section.title)}</h2>")
        parts += [f"<p>{p}</p>" for p in section.paragraphs]
        if section.table:
            head, *body = section.table
            parts.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body]
            parts.append("</table>")
        parts += [figure(f) for f in section.figures]
        for heading, lines, figures in section.cards:
            parts.append(f'<div class="card"><h3>{escape(heading)}</h3>')
            parts += [f"<div>{line}</div>" for line in lines]
            parts += [figure(f) for f in figures]
            parts.append("</div>")
        parts.append("</details>" if section.collapsed else "</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
