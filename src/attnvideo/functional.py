"""Fused, compile-friendly functional core of the STA-CNN layers.

Every function here is a handful of einops/einsum/torch ops: no Python loops over batch,
time or space, no host syncs, no data-dependent shapes. The modules in
:mod:`attnvideo.layers` hold parameters and call these functions. Plainly written slow
references live in :mod:`attnvideo.reference` and are used by the tests.

Axis legend: ``b`` videos, ``t`` segments, ``n`` = ``b * t`` snippets, ``c`` channels,
``h w`` feature-map height and width, ``l`` stacked flow fields (flow has ``2 * l``
channels interleaved ``x1, y1, x2, y2, ...``), ``k`` classes.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["FLOW_BOUND", "dequantize_flow", "quantize_flow"]

FLOW_BOUND: float = 20.0
"""TSN's optical-flow clipping bound in pixels: flow is clipped to ``[-20, 20]``."""


def quantize_flow(flow: Tensor, bound: float = FLOW_BOUND) -> Tensor:
    """Clip optical flow to ``[-bound, bound]`` and quantise it to uint8 as TSN stores it.

    ``q = round(255 * (clip(v, -bound, bound) + bound) / (2 * bound))``.

    Args:
        flow: Flow in pixels, any shape, floating point.
        bound: Clipping bound in pixels (TSN uses 20).

    Returns:
        A uint8 tensor of the same shape.

    Example:
        >>> quantize_flow(torch.tensor([-30.0, -20.0, 0.0, 20.0]))
        tensor([  0,   0, 128, 255], dtype=torch.uint8)
    """
    if not torch.is_tensor(flow) or not flow.is_floating_point():
        raise TypeError(f"flow: expected a floating-point tensor, got {_describe(flow)}")
    if bound <= 0:
        raise ValueError(f"bound: expected a positive number of pixels, got {bound}")
    scaled = (flow.float().clamp(-bound, bound) + bound) * (255.0 / (2.0 * bound))
    return scaled.round().to(torch.uint8)


def dequantize_flow(q: Tensor, bound: float = FLOW_BOUND) -> Tensor:
    """Map TSN's uint8 flow back to pixels: ``v = q * 2 * bound / 255 - bound``.

    Args:
        q: A uint8 tensor produced by :func:`quantize_flow` (or read from TSN's
            ``flow_x_*.jpg`` / ``flow_y_*.jpg`` files).
        bound: The bound used when quantising.

    Returns:
        A float32 tensor of the same shape, in pixels, within ``[-bound, bound]``.

    Example:
        >>> dequantize_flow(torch.tensor([0, 255], dtype=torch.uint8))
        tensor([-20.,  20.])
    """
    if not torch.is_tensor(q) or q.dtype != torch.uint8:
        raise TypeError(f"q: expected a uint8 tensor, got {_describe(q)}")
    if bound <= 0:
        raise ValueError(f"bound: expected a positive number of pixels, got {bound}")
    return q.float() * (2.0 * bound / 255.0) - bound


def _describe(x: object) -> str:
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__}"
