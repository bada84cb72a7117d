"""A direct, slow implementation of PFV's equations, written from the paper for the tests to compare with.

Nothing here is shared with pfv_onnx: bilinear interpolation from its formula, PCA from a full SVD, the
normalisation as the paper's five separate steps.
"""

from __future__ import annotations

import numpy as np


def bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one ``(h, w)`` or ``(h, w, C)`` image with half-pixel centres and clamped borders, in float64."""
    h, w = image.shape[:2]
    out_h, out_w = size
    ys = np.clip((np.arange(out_h) + 0.5) * h / out_h - 0.5, 0, h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * w / out_w - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = ys - y0, xs - x0
    image = image.astype(np.float64)
    if image.ndim == 3:
        fy, fx = fy[:, None, None], fx[None, :, None]
    else:
        fy, fx = fy[:, None], fx[None, :]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def principal_components(final: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 3-4: ``(B, h, w, k)`` principal components ``U S`` of the centred pixel matrix, signs fixed so that
    each component's largest-magnitude loading is positive, and the ``(k,)`` explained-variance ratios."""
    b, c, h, w = final.shape
    X = final.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    Xc = X - X.mean(axis=0)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    pcs = U[:, :k] * S[:k]
    for i in range(k):
        if Vt[i, np.argmax(np.abs(Vt[i]))] < 0:
            pcs[:, i] *= -1
    ratio = S[:k] ** 2 / np.sum(S**2)
    return pcs.reshape(b, h, w, k), ratio


def activation_map(final: np.ndarray, maps: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Eq. 2: the raw channel-sum maps upsampled and added; ``F_N``'s own sum when there is no earlier map."""
    sources = maps if maps else [final.sum(axis=1)]
    return np.stack([sum(bilinear(m[i], size) for m in sources) for i in range(final.shape[0])])


def normalise(x: np.ndarray, n_sigma: float) -> np.ndarray:
    """Eq. 6 as the paper writes it: whiten jointly, clip at ``n_sigma``, min-max scale."""
    z = (x - x.mean()) / x.std()
    z = np.clip(z, -n_sigma, n_sigma)
    return (z - z.min()) / (z.max() - z.min())


def pfv(final, maps, size, k=3, hierarchical=False, n_sigma=1.0):
    """The whole method: ``(B, H, W, 3)`` RGB, ``(B, H, W)`` ``A^b``, ``(B, H, W, k)`` components, ratios."""
    pcs, ratio = principal_components(final, k)
    A = activation_map(final, maps, size)
    components = np.stack([bilinear(p, size) for p in pcs])
    if hierarchical:
        weighted = []
        layers = maps if maps else [final.sum(axis=1)]  # no earlier layer: F_N's own channel sum
        peaks = [np.abs(m).max() for m in layers]
        for i in range(final.shape[0]):
            x = pcs[i]
            for m, peak in zip(reversed(layers), reversed(peaks)):
                x = bilinear(x, m.shape[1:]) * (m[i] / peak)[..., None]
            weighted.append(bilinear(x, size))
        weighted = np.stack(weighted)
    else:
        weighted = components * A[..., None]
    shown = normalise(weighted[..., :3], n_sigma)
    rgb = np.zeros(shown.shape[:3] + (3,))
    rgb[..., : shown.shape[-1]] = shown
    return rgb, A, components, ratio
