"""What PFV's colours mean, in words and swatches: one key shared by the report, notebooks and the atlas.

Components 1, 2 and 3 drive red, green and blue; colours mix as light does; where the weighting map is
near zero a pixel keeps the neutral grey (every weighted component at zero). Components after the third
are in no colour: the components picture shows them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .html import swatch
from .images import BAR_COLOURS

# The colours that stand for components 1-3 in swatches, as in the pictures' bars and marks.
COMPONENT_COLOURS = tuple("#%02x%02x%02x" % rgb for rgb in BAR_COLOURS)
CHANNEL_NAMES = ("red", "green", "blue")
# Two or three components strong together, and what the eye sees.
MIXES = (("#ff0", "yellow", "1 and 2"), ("#f0f", "magenta", "1 and 3"), ("#0ff", "cyan", "2 and 3"), ("#fff", "white", "all three"))


def _grey(level: float) -> str:
    value = round(min(max(level, 0.0), 1.0) * 255)
    return f"#{value:02x}{value:02x}{value:02x}"


def component_line(j: int, ratio: float) -> str:
    """HTML: component ``j`` (from 1), its colour and its share of the variance."""
    if j <= len(COMPONENT_COLOURS):
        return f"{swatch(COMPONENT_COLOURS[j - 1])}component {j} ({CHANNEL_NAMES[j - 1]}): {ratio:.1%} of the variance"
    return f"component {j} (no colour; see the components picture): {ratio:.1%} of the variance"


def side_meaning(j: int, side: str) -> str:
    """In words, what the ``side`` (``positive`` or ``negative``) of component ``j`` (from 1) does to a picture."""
    if j > len(CHANNEL_NAMES):
        return f"{side} side of component {j} (in no colour)"
    more = "more" if side == "positive" else "less"
    return f"{more} {CHANNEL_NAMES[j - 1]}"


def colour_key(ratios: Sequence[float], neutral: float | None) -> str:
    """HTML paragraph: the components with their variance shares, how colours mix, and the neutral grey."""
    lines = [component_line(j, float(r)) for j, r in enumerate(ratios, start=1)]
    shown = min(len(ratios), 3)
    key = "; ".join(lines) + "."
    if shown == 3:
        key += " Colours mix as light does: " + ", ".join(f"{swatch(c)}{name} = {which} strong together" for c, name, which in MIXES) + "."
    if neutral is not None:
        key += (f" {swatch(_grey(neutral))}The neutral grey (level {neutral:.2f}) is where the network responds little: "
                "every weighted component is zero there. A colour further from it means a stronger response; "
                "a side of a component below the neutral level shows as its colour taken away.")
    return key
