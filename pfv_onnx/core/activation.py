"""Activation maps: the channel sum of a layer (eq. 1), and the map that weights the components.

Three weightings, each a map ``W^b`` at the input size made from a few ``(B, h, w)`` *sources*:

``paper``  eq. 2, ``A^b = sum_l P(A_l^b)``: the raw channel sums of the earlier taps, upsampled and added.
           Zero padding makes the early taps respond most at the image's border, and their sum peaks there.
``final``  ``P(A_N^b)``, the channel sum of ``F_N`` alone (what OpenVINO-XAI calls the activation map).
``focus``  what the network responds to beyond a featureless image (the preset's mean colour, whose
           response is the padding's): ``D_N = max(A_N - A_N^blank, 0)`` for ``F_N``, ``D_L`` likewise for
           the last earlier tap, and ``W^b = sqrt(P(D_N) / max D_N * (P(D_L) / max D_L + FOCUS_FLOOR))``:
           the deep map says where the object is, the finer one sharpens it, and the geometric mean keeps
           either's range from drowning the other (a weaker second object stays visible). An image to which
           the network responds nowhere beyond the blank image is left unweighted (``W^b = 1``), whatever
           batch it is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .parallel import in_parallel
from .upsample import resize_bilinear

# How many of the last earlier taps each weighting reads (None: all of them). The names, in the order the
# options offer them, are pfv_onnx.options.WEIGHTINGS (the core imports nothing of the package).
EARLIER_TAPS = {"focus": 1, "paper": None, "final": 0}
# Where the finer map is 0, the deep map still counts this much: an object the last tap misses stays visible.
FOCUS_FLOOR = 0.1


@dataclass(frozen=True)
class BlankResponse:
    """The channel sums a featureless image gives: ``final`` ``(h, w)`` for ``F_N``, ``maps`` one ``(h_l, w_l)``
    per earlier tap (float32); ``tokens``, when ``F_N`` is a transformer's token grid, the image's ``F_N``
    itself ``(C, h, w)``: its tokens are measured by their length (:func:`final_response`)."""

    final: np.ndarray
    maps: tuple[np.ndarray, ...]
    tokens: np.ndarray | None = None


def channel_sum(features: np.ndarray) -> np.ndarray:
    """Eq. 1, ``A_l^b(i, j) = sum_c F_l(b, c, i, j)``.

    Args:
        features: ``(B, C, h, w)`` feature map (channel axis 1, as every ONNX Conv/Pool input).

    Returns:
        ``(B, h, w)`` float32.
    """
    if features.ndim != 4:
        raise ValueError(f"expected a (B, C, h, w) feature map, got shape {features.shape}")
    return features.sum(axis=1, dtype=np.float32)


def token_length(tokens: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Each token's length, ``||F(b, :, i, j) - reference(:, i, j)||``: ``tokens`` ``(B, C, h, w)``, ``reference``
    ``(C, h, w)`` or ``None`` (zero); ``(B, h, w)`` float32."""
    difference = tokens if reference is None else tokens - reference[None]
    return np.sqrt(np.einsum("bchw,bchw->bhw", difference, difference, dtype=np.float32))


def final_response(final: np.ndarray, weighting: str, blank: BlankResponse | None = None) -> np.ndarray:
    """``F_N``'s ``(B, h, w)`` float32 response to each image: its channel sum (eq. 1), or for a transformer's
    token grid (``blank.tokens`` set) each token's length, for ``focus`` its distance from the featureless
    image's token at that place. A norm centres each token over its channels: the channel sum of its output is
    its bias's sum plus a projection of the centred token on its scale, nothing where the scale is uniform."""
    tokens = blank.tokens if blank is not None else None
    if tokens is None:
        return channel_sum(final)
    return token_length(final, tokens if weighting == "focus" else None)


def total_activation(
    maps: Sequence[np.ndarray], size: tuple[int, int], out: np.ndarray | None = None, threads: int = 1
) -> np.ndarray:
    """Eq. 2, ``A^b = sum_l P(A_l^b; H0, W0)``: the raw channel-sum maps upsampled and added, not normalised.

    Args:
        maps: one ``(B, h_l, w_l)`` channel-sum map per tapped layer before the final one.
        size: ``(H0, W0)``, the input image size.
        out: a ``(B, H0, W0)`` float32 array to write into.
        threads: threads sharing the images.

    Returns:
        ``(B, H0, W0)`` float32 (``out`` when given).
    """
    if not maps:
        raise ValueError("total_activation needs at least one map")
    batch = maps[0].shape[0]
    if out is None:
        out = np.empty((batch, *size), dtype=np.float32)

    def images(part: range) -> None:
        scratch = np.empty(size, dtype=np.float32)
        for b in part:
            add_upsampled([m[b] for m in maps], size, out[b], scratch)

    in_parallel(images, batch, threads)
    return out


def add_upsampled(maps: Sequence[np.ndarray], size: tuple[int, int], out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Eq. 2 for one image: ``out = sum_l P(A_l; H0, W0)`` for ``(h_l, w_l)`` maps; ``scratch`` is
    ``(H0, W0)`` float32 working space. Returns ``out``."""
    resize_bilinear(maps[0][None], size, out=out[None])
    for m in maps[1:]:
        resize_bilinear(m[None], size, out=scratch[None])
        out += scratch
    return out


def weighting_sources(
    final: np.ndarray, maps: Sequence[np.ndarray], weighting: str = "paper", blank: BlankResponse | None = None
) -> list[np.ndarray]:
    """The ``(B, h, w)`` float32 maps a weighting combines (see the module docstring): for ``paper`` the
    earlier taps' maps (``F_N``'s response without them), for ``final`` ``F_N``'s response
    (:func:`final_response`), for ``focus`` ``D_N`` and, when there is an earlier tap, ``D_L`` for the last
    one. ``final`` is ``F_N`` ``(B, C, h, w)``, or its response ``(B, h, w)``."""
    if weighting == "paper" and maps:
        return [np.asarray(m, np.float32) for m in maps]
    # F_N, or its (B, h, w) response when F_N itself stayed on an accelerator or was decomposed already.
    final_sum = final_response(final, weighting, blank) if final.ndim == 4 else np.asarray(final, np.float32)
    if weighting in ("paper", "final"):
        return [final_sum]
    if weighting != "focus":
        raise ValueError(f"weighting must be one of {', '.join(EARLIER_TAPS)}, got {weighting!r}")
    if blank is None:
        raise ValueError("the focus weighting needs the channel sums of a featureless image (its blank)")
    # A token grid's response is its distance from the blank image's tokens already.
    sources = [final_sum if blank.tokens is not None else np.maximum(final_sum - blank.final, 0, dtype=np.float32)]
    if maps:
        sources.append(np.maximum(np.asarray(maps[-1], np.float32) - blank.maps[-1], 0, dtype=np.float32))
    return sources


def source_count(weighting: str, earlier: int) -> int:
    """How many sources :func:`weighting_sources` gives for ``earlier`` earlier taps."""
    if weighting == "paper":
        return max(earlier, 1)
    return 1 + min(earlier, EARLIER_TAPS[weighting])


def weighting_map(
    weighting: str, sources: Sequence[np.ndarray], size: tuple[int, int], peaks: Sequence[float], out: np.ndarray | None = None, threads: int = 1
) -> np.ndarray:
    """``W^b`` ``(B, H0, W0)`` float32 from a weighting's sources (:func:`weighting_sources`); ``peaks`` one
    positive divisor per source (the batch's largest values, or a fitted basis's)."""
    if weighting == "paper":
        return total_activation(sources, size, out=out, threads=threads)
    deep = resize_bilinear(sources[0], size, out=out)
    if weighting == "focus":
        silent = ~np.asarray(sources[0]).reshape(len(deep), -1).any(axis=1)
        deep *= np.float32(1.0 / peaks[0])
        if len(sources) > 1:
            fine = resize_bilinear(sources[1], size)
            fine *= np.float32(1.0 / peaks[1])
            fine += np.float32(FOCUS_FLOOR)
            deep *= fine
        np.sqrt(deep, out=deep)
        deep[silent] = 1.0  # nothing beyond the blank image: no place to prefer
    return deep
