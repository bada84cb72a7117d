"""What each component of a fitted basis responds to, in arrays: where it is strongest, what a linear head
makes of its direction, and whether it comes back when fitted on other data.

A component's scores ``(B, h, w)`` are signed: its positive side adds its colour to a picture, its negative
side takes it away, so each side is described on its own (``SIGNS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIGNS = (1, -1)


def image_strengths(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image, component and sign, how strong the component is.

    Args:
        scores: ``(B, h, w, k)`` component scores of ``F_N``'s cells.

    Returns:
        ``mean`` ``(B, k, 2)`` float64: the sign times the score, averaged over the image's cells;
        ``peak`` ``(B, k, 2)`` float64: its largest cell value; ``cell`` ``(B, k, 2, 2)`` int64: that cell's
        ``(row, column)``. Sign index 0 is positive, 1 negative.
    """
    batch, height, width, k = scores.shape
    signed = np.stack([s * scores.astype(np.float64) for s in SIGNS], axis=-1).reshape(batch, height * width, k, 2)
    flat = signed.argmax(axis=1)  # (B, k, 2)
    peak = np.take_along_axis(signed, flat[:, None], axis=1)[:, 0]
    cell = np.stack(np.unravel_index(flat, (height, width)), axis=-1)
    return signed.mean(axis=1), peak, cell


@dataclass
class Leaders:
    """The ``top`` largest values seen for each of ``slots`` slots, with an item each; ties keep the first seen.

    Attributes:
        values: per slot, the kept values, largest first.
        items: per slot, the item of each kept value.
    """

    slots: int
    top: int
    values: list[list[float]] = field(default_factory=list)
    items: list[list[object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = [[] for _ in range(self.slots)]
        self.items = [[] for _ in range(self.slots)]

    def offer(self, slot: int, values: np.ndarray, items: list[object]) -> None:
        """Keep the largest of ``values`` ``(n,)`` (with ``items``) and those kept already in ``slot``."""
        merged = list(zip(self.values[slot], self.items[slot])) + list(zip(map(float, values), items))
        order = sorted(range(len(merged)), key=lambda i: -merged[i][0])[: self.top]  # stable: first seen wins ties
        self.values[slot] = [merged[i][0] for i in order]
        self.items[slot] = [merged[i][1] for i in order]

    def merge(self, other: Leaders) -> Leaders:
        """Both's leaders: the ``top`` largest per slot, ties to the smaller item. For items that are the
        positions of what was offered (or start with them), in any order, this keeps what offering everything
        in order of position keeps."""
        merged = Leaders(self.slots, self.top)
        for slot in range(self.slots):
            pairs = sorted([*zip(self.values[slot], self.items[slot]), *zip(other.values[slot], other.items[slot])], key=lambda pair: (-pair[0], pair[1]))
            merged.values[slot] = [value for value, _ in pairs[: self.top]]
            merged.items[slot] = [item for _, item in pairs[: self.top]]
        return merged


def head_effects(weight: np.ndarray, components: np.ndarray) -> np.ndarray:
    """How a linear head's logits move along each component: ``(k, K)`` float64, ``components @ weight.T``.

    For a head ``logits = weight @ mean_cells(F_N) + bias`` (``weight`` ``(K, C)``), a step of one along
    component ``j``'s direction (``components`` ``(k, C)``, unit rows) in every cell adds row ``j`` to the logits.
    """
    return np.asarray(components, np.float64) @ np.asarray(weight, np.float64).T


def ranked_classes(effects: np.ndarray, top: int) -> np.ndarray:
    """``(k, 2, 2, top)`` int64 class indices: ``[j, sign, 0]`` the classes the sign's side of component ``j``
    pushes up most, ``[j, sign, 1]`` those it pushes down most (``effects`` from :func:`head_effects`)."""
    out = []
    for row in np.asarray(effects, np.float64):
        per_sign = []
        for s in SIGNS:
            order = np.argsort(-s * row, kind="stable")
            per_sign.append([order[:top], order[::-1][:top]])
        out.append(per_sign)
    return np.asarray(out, dtype=np.int64)


def stability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(k,)`` float64 |cosine| between component ``j`` of two fits, ``a`` and ``b`` ``(k, C)``: 1 when the
    direction comes back exactly (whatever its sign), near 0 when another direction took its place."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.abs(np.sum(a * b, axis=1))
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def purity(labels: list[str | None]) -> tuple[float, str | None]:
    """The share of ``labels`` that the most common one takes (the first of equals), and that label;
    ``(0.0, None)`` when there are none or none is known."""
    known = [label for label in labels if label is not None]
    if not known:
        return 0.0, None
    counts: dict[str, int] = {}
    for label in known:
        counts[label] = counts.get(label, 0) + 1
    best = max(counts, key=lambda label: counts[label])
    return counts[best] / len(labels), best


def patch_box(cell: tuple[int, int], grid: tuple[int, int], size: tuple[int, int], side: int) -> tuple[int, int, int, int]:
    """The ``(top, left, bottom, right)`` pixel box of side ``side`` centred on ``cell`` of an ``(h, w)``
    ``grid`` laid over an ``(H0, W0)`` image, shifted to lie inside it."""
    (row, col), (h, w), (height, width) = cell, grid, size
    side = max(1, min(side, height, width))
    centre_y, centre_x = (row + 0.5) * height / h, (col + 0.5) * width / w
    top = int(round(min(max(centre_y - side / 2, 0), height - side)))
    left = int(round(min(max(centre_x - side / 2, 0), width - side)))
    return top, left, top + side, left + side
