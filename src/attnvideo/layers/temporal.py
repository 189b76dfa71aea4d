"""Temporal attention over TSN segments (STA-CNN's Temporal Attention Mechanism).

Axis legend: ``b`` videos, ``t`` segments, ``c`` feature channels, ``d`` hidden channels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from .. import functional as AF
from .._checks import (
    check_dim,
    check_floating,
    check_mask,
    check_matches,
    check_odd_kernel,
    check_positive_int,
)

__all__ = ["TemporalAttentionOutput", "TemporalSegmentAttention"]


class TemporalAttentionOutput(NamedTuple):
    """What :class:`TemporalSegmentAttention` returns.

    Attributes:
        pooled: The weighted consensus of the values, ``(B, *)``.
        weights: The segment weights, ``(B, T)``, float32, summing to 1 over valid
            segments and exactly 0 on masked ones.
    """

    pooled: Tensor
    weights: Tensor


class TemporalSegmentAttention(nn.Module):
    """Learned weighted consensus over segments: attention that replaces TSN's average.

    Our reading of the paper: a small 1D convolutional scorer runs along the segment
    axis, ``e = Conv1d(d -> 1, 1)(act(Conv1d(dim -> d, kernel_size)(x)))``; the weights
    are ``alpha = softmax(e / temperature)`` over the valid segments, and the output is
    ``sum_t alpha_t * values_t``. The scorer's last convolution starts at zero, so at
    initialisation every valid segment gets exactly ``1 / T`` and the module *is* TSN's
    average consensus. Works for any number of segments (train on 3, test on 25).

    Args:
        dim: Channels of the per-segment features ``x``.
        hidden_dim: Hidden channels of the scorer; default ``max(8, dim // 8)``.
        kernel_size: Temporal kernel of the first convolution (odd; 1 makes the scores
            independent of segment order).
        act_layer: Activation between the two convolutions.
        temperature: Softmax temperature (> 0).
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Shape:
        - x: ``(B, T, dim)``
        - values: ``(B, T, *)``, default ``x``; masked segments' values are multiplied
          by 0, so they must be finite (pad with zeros, not NaN)
        - mask: ``(B, T)`` bool, True = valid segment
        - output: :class:`TemporalAttentionOutput` with pooled ``(B, *)`` and
          weights ``(B, T)``

    Example:
        >>> attn = TemporalSegmentAttention(16)
        >>> x, logits = torch.randn(2, 5, 16), torch.randn(2, 5, 10)
        >>> out = attn(x, values=logits)
        >>> out.pooled.shape, out.weights.detach()[0]
        (torch.Size([2, 10]), tensor([0.2000, 0.2000, 0.2000, 0.2000, 0.2000]))
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int | None = None,
        kernel_size: int = 3,
        *,
        act_layer: type[nn.Module] = nn.ReLU,
        temperature: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        hidden_dim = max(8, dim // 8) if hidden_dim is None else hidden_dim
        check_positive_int("hidden_dim", hidden_dim)
        check_odd_kernel("kernel_size", kernel_size)
        if not temperature > 0:
            raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
        factory = {"device": device, "dtype": dtype}
        self.dim = dim
        self.temperature = float(temperature)
        self.fc1 = nn.Conv1d(dim, hidden_dim, kernel_size, padding=kernel_size // 2, **factory)
        self.act = act_layer()
        self.fc2 = nn.Conv1d(hidden_dim, 1, 1, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise: default for the first conv, zero for the last (weights = 1/T)."""
        self.fc1.reset_parameters()
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``."""
        return f"dim={self.dim}, temperature={self.temperature}"

    def scores(self, x: Tensor) -> Tensor:
        """Unnormalised segment scores ``e`` (before the masked softmax), ``(B, T)``."""
        e = self.fc2(self.act(self.fc1(rearrange(x, "b t c -> b c t"))))
        return rearrange(e, "b 1 t -> b t")

    def forward(
        self, x: Tensor, values: Tensor | None = None, mask: Tensor | None = None
    ) -> TemporalAttentionOutput:
        """Weight the segments of ``x`` and pool ``values`` (default ``x``) with them."""
        check_floating("x", x, "(B, T, dim)")
        check_dim("x", x, {3: "(B, T, dim)"})
        check_matches("x", x, [2], [self.dim], "(B, T, dim)")
        batch, segments = x.shape[:2]
        if values is None:
            values = x
        else:
            check_floating("values", values, "(B, T, ...)")
            if values.ndim < 2:
                raise ValueError(
                    f"values: expected shape (B, T, ...) = ({batch}, {segments}, ...), "
                    f"got {tuple(values.shape)}"
                )
            check_matches("values", values, [0, 1], [batch, segments], "(B, T, ...)")
        if mask is not None:
            check_mask(mask, batch, segments)
        weights = AF.masked_softmax(self.scores(x), mask, self.temperature)
        return TemporalAttentionOutput(AF.weighted_consensus(values, weights), weights)
