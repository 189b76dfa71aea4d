"""Slow, plainly written references of :mod:`attnvideo.functional`, for tests and benchmarks.

Each function loops over samples, segments and pixels in Python and uses only scalar
arithmetic on tensor elements, so that it reads like the equation it implements. They
are orders of magnitude slower than the fused versions; use them on tiny inputs only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .functional import median_stride

__all__ = [
    "adaptive_avg_pool2d",
    "class_activation_map",
    "dequantize_flow",
    "feature_saliency",
    "flow_saliency",
    "masked_softmax",
    "normalize_max",
    "quantize_flow",
    "region_pool",
    "residual_attention",
    "soft_union",
    "weighted_consensus",
]


def quantize_flow(flow: Tensor, bound: float = 20.0) -> Tensor:
    """Reference of :func:`attnvideo.functional.quantize_flow` (one value at a time).

    Example:
        >>> quantize_flow(torch.tensor([-30.0, -20.0, 0.0, 20.0]))
        tensor([  0,   0, 128, 255], dtype=torch.uint8)
    """
    flat = flow.reshape(-1)
    out = torch.zeros(flat.numel(), dtype=torch.uint8)
    for i in range(flat.numel()):
        v = min(max(float(flat[i]), -bound), bound)
        out[i] = round(255.0 * (v + bound) / (2.0 * bound))  # half to even, as torch.round
    return out.reshape(flow.shape)


def dequantize_flow(q: Tensor, bound: float = 20.0) -> Tensor:
    """Reference of :func:`attnvideo.functional.dequantize_flow` (one value at a time).

    Example:
        >>> dequantize_flow(torch.tensor([0, 255], dtype=torch.uint8))
        tensor([-20.,  20.])
    """
    flat = q.reshape(-1)
    out = torch.zeros(flat.numel(), dtype=torch.float64)
    for i in range(flat.numel()):
        out[i] = int(flat[i]) * 2.0 * bound / 255.0 - bound
    return out.reshape(q.shape).float()


def masked_softmax(scores: Tensor, mask: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Reference of :func:`attnvideo.functional.masked_softmax` (float64 loops).

    Example:
        >>> masked_softmax(torch.zeros(1, 2))
        tensor([[0.5000, 0.5000]])
    """
    batch, segments = scores.shape
    out = torch.zeros(batch, segments, dtype=torch.float32)
    for b in range(batch):
        valid = [t for t in range(segments) if mask is None or bool(mask[b, t])]
        if not valid:
            continue
        top = max(float(scores[b, t]) / temperature for t in valid)
        exps = {t: math.exp(float(scores[b, t]) / temperature - top) for t in valid}
        total = sum(exps.values())
        for t in valid:
            out[b, t] = exps[t] / total
    return out


def weighted_consensus(values: Tensor, weights: Tensor) -> Tensor:
    """Reference of :func:`attnvideo.functional.weighted_consensus`.

    Example:
        >>> weighted_consensus(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.25, 0.75]]))
        tensor([2.5000])
    """
    batch, segments = weights.shape
    out = torch.zeros(values.shape[:1] + values.shape[2:], dtype=torch.float64)
    for b in range(batch):
        for t in range(segments):
            out[b] += float(weights[b, t]) * values[b, t].double()
    return out.to(values.dtype)


def adaptive_avg_pool2d(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Adaptive average pooling of ``(N, C, h, w)`` to ``size`` with PyTorch's bin rule.

    Output cell ``i`` averages input rows ``floor(i * h / H)`` to ``ceil((i + 1) * h / H)``
    (exclusive), and likewise for columns.

    Example:
        >>> adaptive_avg_pool2d(torch.arange(4.0).reshape(1, 1, 2, 2), (1, 1))
        tensor([[[[1.5000]]]])
    """
    n, c, h, w = x.shape
    out_h, out_w = size
    out = torch.zeros(n, c, out_h, out_w, dtype=torch.float64)
    for i in range(out_h):
        top, bottom = (i * h) // out_h, -((-(i + 1) * h) // out_h)
        for j in range(out_w):
            left, right = (j * w) // out_w, -((-(j + 1) * w) // out_w)
            cells = [(y, z) for y in range(top, bottom) for z in range(left, right)]
            for y, z in cells:
                out[:, :, i, j] += x[:, :, y, z].double()
            out[:, :, i, j] /= len(cells)
    return out.to(x.dtype)


def normalize_max(saliency: Tensor) -> Tensor:
    """Reference of :func:`attnvideo.functional.normalize_max`.

    Example:
        >>> normalize_max(torch.tensor([[[[1.0, 4.0]]]]))
        tensor([[[[0.2500, 1.0000]]]])
    """
    out = torch.zeros_like(saliency)
    for n in range(saliency.shape[0]):
        peak = float(saliency[n].max())
        if peak > 0:
            out[n] = saliency[n] / peak
    return out


def _median(values: list[float]) -> float:
    """The lower median, as :func:`torch.median` defines it."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def flow_saliency(
    flow: Tensor, size: tuple[int, int], *, camera_compensation: bool = False
) -> Tensor:
    """Reference of :func:`attnvideo.functional.flow_saliency` (no gradient to ``flow``).

    Example:
        >>> flow = torch.zeros(1, 2, 2, 2)
        >>> flow[0, 1, 0, 0] = -5.0
        >>> flow_saliency(flow, (2, 2)).flatten()
        tensor([1., 0., 0., 0.])
    """
    flow = flow.detach()
    n_samples, channels, h, w = flow.shape
    fields = channels // 2
    magnitude = torch.zeros(n_samples, 1, h, w, dtype=torch.float64)
    for n in range(n_samples):
        for field in range(fields):
            u, v = flow[n, 2 * field].double(), flow[n, 2 * field + 1].double()
            du = dv = 0.0
            if camera_compensation:
                step = median_stride(h, w)
                grid = [(y, x) for y in range(0, h, step) for x in range(0, w, step)]
                du = _median([float(u[y, x]) for y, x in grid])
                dv = _median([float(v[y, x]) for y, x in grid])
            for y in range(h):
                for x in range(w):
                    mag = math.hypot(float(u[y, x]) - du, float(v[y, x]) - dv)
                    magnitude[n, 0, y, x] += mag / fields
    return normalize_max(adaptive_avg_pool2d(magnitude, size)).to(flow.dtype)


def feature_saliency(features: Tensor, size: tuple[int, int]) -> Tensor:
    """Reference of :func:`attnvideo.functional.feature_saliency`.

    Example:
        >>> feature_saliency(torch.tensor([[[[1.0, 2.0]]]]), (1, 2))
        tensor([[[[0.2500, 1.0000]]]])
    """
    n_samples, channels, h, w = features.shape
    energy = torch.zeros(n_samples, 1, h, w, dtype=torch.float64)
    for n in range(n_samples):
        for y in range(h):
            for x in range(w):
                energy[n, 0, y, x] = (
                    sum(float(features[n, c, y, x]) ** 2 for c in range(channels)) / channels
                )
    return normalize_max(adaptive_avg_pool2d(energy, size)).to(features.dtype)


def soft_union(a: Tensor, b: Tensor) -> Tensor:
    """Reference of :func:`attnvideo.functional.soft_union`: ``1 - (1 - a)(1 - b)``.

    Example:
        >>> soft_union(torch.tensor([0.5]), torch.tensor([0.5]))
        tensor([0.7500])
    """
    return 1 - (1 - a) * (1 - b)


def residual_attention(features: Tensor, attention: Tensor) -> Tensor:
    """Reference of :func:`attnvideo.functional.residual_attention`, per channel.

    Example:
        >>> residual_attention(torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
        tensor([[[[2.]]]])
    """
    out = torch.empty_like(features)
    for c in range(features.shape[1]):
        out[:, c] = features[:, c] + features[:, c] * attention[:, 0]
    return out


def region_pool(features: Tensor, region: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """Reference of :func:`attnvideo.functional.region_pool`.

    Example:
        >>> region_pool(torch.tensor([[[[2.0, 4.0]]]]))
        tensor([[3.]])
    """
    n_samples, channels, h, w = features.shape
    out = torch.zeros(n_samples, channels, dtype=torch.float64)
    for n in range(n_samples):
        if region is None:
            weights, total = torch.ones(h, w, dtype=torch.float64), float(h * w)
        else:
            weights = region[n, 0].double()
            total = float(weights.sum()) + eps
        for c in range(channels):
            acc = 0.0
            for y in range(h):
                for x in range(w):
                    acc += float(weights[y, x]) * float(features[n, c, y, x])
            out[n, c] = acc / total
    return out.to(features.dtype)


def class_activation_map(features: Tensor, weight: Tensor, class_index: Tensor) -> Tensor:
    """Reference of :func:`attnvideo.functional.class_activation_map`.

    Example:
        >>> class_activation_map(torch.ones(1, 2, 1, 1), torch.eye(2), torch.tensor([1]))
        tensor([[[1.]]])
    """
    n_samples, channels, h, w = features.shape
    out = torch.zeros(n_samples, h, w, dtype=torch.float64)
    for n in range(n_samples):
        k = int(class_index[n])
        for c in range(channels):
            out[n] += float(weight[k, c]) * features[n, c].double()
    return out.to(features.dtype)
