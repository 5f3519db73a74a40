"""Torch7's `image.scale` (bilinear, bicubic) and the seed script's pre/post-processing.

Each axis is resampled as torch/image's C code does it: rows (width) first, then columns
(height), through a float32 temporary, with the same float32 (and, for bicubic, the
double-promoted final step) rounding order, so results match real Torch7 bit for bit.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
_ONE = F32(1)


def _take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take(x, idx, axis=-1)


def _linear_axis(x: np.ndarray, dst_len: int) -> np.ndarray:
    """Scale the last axis: align-corners linear up, area average down."""
    src_len = x.shape[-1]
    if dst_len == src_len:
        return x.copy()
    if dst_len > src_len:
        out = np.empty(x.shape[:-1] + (dst_len,), F32)
        if src_len == 1:
            out[...] = x[..., :1]
            return out
        scale = F32(src_len - 1) / F32(dst_len - 1)
        pos = np.arange(dst_len - 1, dtype=F32) * scale
        i = pos.astype(np.int64)
        f = pos - i.astype(F32)
        out[..., :-1] = (_ONE - f) * _take(x, i) + f * _take(x, i + 1)
        out[..., -1] = x[..., -1]
        return out
    return _area_axis(x, dst_len)


def _area_terms(src_len: int, dst_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                     np.ndarray]:
    """Per output: the source indices, weights, a validity mask (in summation order), and n."""
    scale = F32(src_len) / F32(dst_len)
    rows: list[list[tuple[int, np.float32]]] = []
    norms = np.empty(dst_len, F32)
    i0, f0 = 0, F32(0)
    for di in range(dst_len):
        pos = F32(di + 1) * scale
        i1 = int(pos)
        f1 = pos - F32(i1)
        terms = [(i0, _ONE - f0)]
        n = _ONE - f0
        for si in range(i0 + 1, i1):
            terms.append((si, _ONE))
            n = n + _ONE
        if i1 < src_len:
            terms.append((i1, f1))
            n = n + f1
        rows.append(terms)
        norms[di] = n
        i0, f0 = i1, f1
    width = max(len(t) for t in rows)
    idx = np.zeros((dst_len, width), np.int64)
    wts = np.zeros((dst_len, width), F32)
    mask = np.zeros((dst_len, width), bool)
    for di, terms in enumerate(rows):
        for k, (si, w) in enumerate(terms):
            idx[di, k], wts[di, k], mask[di, k] = si, w, True
    return idx, wts, mask, norms


def _area_axis(x: np.ndarray, dst_len: int) -> np.ndarray:
    """Torch's bilinear downscale of the last axis: a box filter summed left to right."""
    idx, wts, mask, norms = _area_terms(x.shape[-1], dst_len)
    acc = wts[:, 0] * _take(x, idx[:, 0])
    for k in range(1, idx.shape[1]):
        term = wts[:, k] * _take(x, idx[:, k])
        acc = np.where(mask[:, k], acc + term, acc)
    return (acc / norms).astype(F32)


def _cubic_axis(x: np.ndarray, dst_len: int) -> np.ndarray:
    """Align-corners cubic (a = -0.5) of the last axis, linear extrapolation at the ends."""
    src_len = x.shape[-1]
    if dst_len == src_len:
        return x.copy()
    out = np.empty(x.shape[:-1] + (dst_len,), F32)
    if src_len == 1:
        out[...] = x[..., :1]
        return out
    scale = F32(src_len - 1) / F32(max(dst_len - 1, 1))
    pos = np.arange(dst_len - 1, dtype=F32) * scale
    i = pos.astype(np.int64)
    t = pos - i.astype(F32)
    p1 = _take(x, i)
    p2 = _take(x, i + 1)
    p0 = np.where(i > 0, _take(x, np.maximum(i - 1, 0)), F32(2) * p1 - p2)
    p3 = np.where(i + 2 < src_len, _take(x, np.minimum(i + 2, src_len - 1)), F32(2) * p2 - p1)
    a1 = p2 - p0
    a2 = F32(2) * p0 - F32(5) * p1 + F32(4) * p2 - p3
    a3 = F32(3) * (p1 - p2) + p3 - p0
    inner = a1 + t * (a2 + t * a3)
    # C: `a0 + 0.5 * x * (...)` -- the 0.5 literal is a double, so this last step is double.
    out[..., :-1] = (p1.astype(np.float64) + (0.5 * t.astype(np.float64)) * inner).astype(F32)
    out[..., -1] = x[..., -1]
    return out


def scale(src: np.ndarray, width: int, height: int, mode: str = "bilinear") -> np.ndarray:
    """`image.scale(src, width, height, mode)` of a float32 (C,H,W) or (H,W) array."""
    axis = {"bilinear": _linear_axis, "bicubic": _cubic_axis}.get(mode)
    if axis is None:
        raise ValueError(f"unsupported image.scale mode {mode!r}")
    x = np.asarray(src, F32)
    rows = axis(x, width)
    return np.swapaxes(axis(np.swapaxes(rows, -1, -2), height), -1, -2).copy()


def torch7_stats(rgb: np.ndarray) -> tuple[float, float]:
    """`torch.mean(b:float())/255` and `torch.std(b:float())/255` (n-1) in double.

    Torch sums (b - mean)^2 one value after another in C,H,W order; a cumulative sum
    reproduces that order, so the double std is bit-identical, not just close.
    """
    values = np.transpose(np.asarray(rgb, np.uint8), (2, 0, 1)).astype(np.float64).ravel()
    mean = values.sum() / values.size  # integers: the sum is exact in any order
    var = np.cumsum((values - mean) ** 2)[-1] / (values.size - 1)
    return float(mean / 255), float(np.sqrt(var) / 255)


def torch7_normalise(rgb: np.ndarray) -> tuple[np.ndarray, np.float32, np.float32]:
    """Seed preprocessing of (H,W,3) bytes: `((b/255) - mean32) / std32`, (3,H,W) float32.

    Returns x and the float32 mean and std the script keeps for post-processing.
    """
    mean, std = torch7_stats(rgb)
    mean32, std32 = F32(mean), F32(std)
    b = np.transpose(np.asarray(rgb, np.uint8), (2, 0, 1)).astype(F32)
    x = (b / F32(255) - mean32) / std32
    return np.ascontiguousarray(x, F32), mean32, std32


def torch7_postprocess(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """`(x * std + mean) * 255` in float32 (not clamped)."""
    return ((np.asarray(x, F32) * F32(std) + F32(mean)) * F32(255)).astype(F32)


def torch7_png_bytes(result: np.ndarray) -> np.ndarray:
    """The bytes `image.save(png, result/255)` writes: (H,W,C) uint8, truncated not rounded."""
    r = np.clip(np.asarray(result, F32) / F32(255), F32(0), F32(1)) * F32(255)
    return np.transpose(r.astype(np.uint8), (1, 2, 0)).copy()
