"""Auxiliary GAP classification loss that trains the spatial attention (STA-CNN §3).

Axis legend: ``b`` videos, ``t`` segments, ``n`` = ``b * t`` snippets, ``c`` channels,
``h w`` feature-map height and width, ``k`` classes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

from .. import functional as AF
from .._checks import (
    check_all_finite,
    check_dim,
    check_floating,
    check_matches,
    check_positive_int,
    check_range,
    check_target,
    describe,
)

__all__ = ["GAPAuxLoss", "GAPAuxOutput"]


class GAPAuxOutput(NamedTuple):
    """What :class:`GAPAuxLoss` returns.

    Attributes:
        loss: ``weight * cross_entropy(logits, target)``, a scalar (float32).
        logits: Aux logits per video, the segment logits averaged over T, ``(B, K)``.
    """

    loss: Tensor
    logits: Tensor


class GAPAuxLoss(nn.Module):
    """Auxiliary classifier on region-weighted GAP features, and its loss.

    Our reading of the paper: features are pooled with region weights ``W``,
    ``r = sum_hw W * F / (sum_hw W + eps)`` (plain GAP when ``region`` is None), classified
    per segment by ``Linear(dropout(r))``, averaged over the T segments of each video and
    scored with cross-entropy times ``weight``. In STA-CNN the region is
    ``A * (1 - M)`` (the learned attention outside the motion), so minimising this loss
    pushes the learned map towards discriminative regions that do not move. :meth:`cam`
    gives the classifier's class activation maps.

    Args:
        channels: Channels ``C`` of the feature map.
        num_classes: Number of classes ``K``.
        weight: Loss weight (0.5 in our reading of STA-CNN; 0 turns the loss off).
        dropout: Dropout before the classifier (0 gives ``nn.Identity``).
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Shape:
        - x: ``(N, C, H, W)`` with ``N = B * T``, or ``(B, T, C, H, W)``
        - target: ``(B,)`` class indices
        - region: like ``x`` with one channel, ``(N, 1, H, W)`` or ``(B, T, 1, H, W)``
        - output: :class:`GAPAuxOutput` with loss ``()`` and logits ``(B, K)``

    Example:
        >>> aux = GAPAuxLoss(32, num_classes=5)
        >>> x, target = torch.randn(2, 3, 32, 7, 7), torch.tensor([1, 4])
        >>> out = aux(x, target, region=torch.rand(2, 3, 1, 7, 7))
        >>> out.loss.shape, out.logits.shape, aux.cam(x).shape
        (torch.Size([]), torch.Size([2, 5]), torch.Size([2, 3, 7, 7]))
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        *,
        weight: float = 0.5,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("channels", channels)
        check_positive_int("num_classes", num_classes)
        if not weight >= 0:
            raise ValueError(f"weight: expected a non-negative number, got {weight!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.channels = channels
        self.num_classes = num_classes
        self.weight = float(weight)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``."""
        return f"channels={self.channels}, num_classes={self.num_classes}, weight={self.weight}"

    def forward(
        self,
        x: Tensor,
        target: Tensor,
        num_segments: int | None = None,
        region: Tensor | None = None,
    ) -> GAPAuxOutput:
        """Aux logits of the region-pooled features and their weighted cross-entropy."""
        feats, segments = self._flatten(x, num_segments)
        if segments < 0:  # 4D x without num_segments: T follows from the target's length
            segments = self._segments_from_target(feats, target)
        target = check_target(target, feats.shape[0] // segments, self.num_classes)
        if region is not None:
            region = self._check_region(region, x)
            if x.ndim == 5:
                region = rearrange(region, "b t 1 h w -> (b t) 1 h w")
        pooled = AF.region_pool(feats, region)
        segment_logits = self.fc(self.drop(pooled))
        logits = reduce(segment_logits, "(b t) k -> b k", "mean", t=segments)
        loss = self.weight * F.cross_entropy(logits.to(_at_least_float32(logits.dtype)), target)
        return GAPAuxOutput(loss, logits)

    def cam(self, x: Tensor, class_index: int | Tensor | None = None) -> Tensor:
        """Class activation maps ``sum_c w_kc * x_c`` of the aux classifier.

        The spatial mean of a map plus the classifier's bias is the GAP logit.

        Args:
            x: Feature map, ``(N, C, H, W)`` or ``(B, T, C, H, W)``.
            class_index: The class to map: None (each sample's predicted class; for 5D
                input the video's prediction), an int, or a tensor of one index per
                sample ``(N,)`` (4D) or per video ``(B,)`` (5D).

        Returns:
            ``(N, H, W)`` for 4D input, ``(B, T, H, W)`` for 5D input.
        """
        feats, segments = self._flatten(x, None if x.ndim == 5 else 1)
        lead = x.shape[0]
        if class_index is None:
            logits = self.fc(AF.region_pool(feats))
            logits = reduce(logits, "(b t) k -> b k", "mean", t=segments)
            class_index = logits.argmax(dim=-1)
        elif isinstance(class_index, int) and not isinstance(class_index, bool):
            if not 0 <= class_index < self.num_classes:
                raise ValueError(
                    f"class_index: expected an int in [0, {self.num_classes}), got {class_index}"
                )
            class_index = torch.full((lead,), class_index, device=x.device)
        else:
            class_index = check_target(class_index, lead, self.num_classes, name="class_index")
        class_index = repeat(class_index, "b -> (b t)", t=segments)
        maps = AF.class_activation_map(feats, self.fc.weight, class_index)
        if x.ndim == 5:
            maps = rearrange(maps, "(b t) h w -> b t h w", t=segments)
        return maps

    def _flatten(self, x: Tensor, num_segments: int | None) -> tuple[Tensor, int]:
        check_floating("x", x, "(N, C, H, W) or (B, T, C, H, W)")
        check_dim("x", x, {4: "(N, C, H, W)", 5: "(B, T, C, H, W)"})
        check_matches("x", x, [-3], [self.channels], "(..., C, H, W)")
        if x.ndim == 5:
            if num_segments is not None and num_segments != x.shape[1]:
                raise ValueError(
                    f"num_segments: x of shape {tuple(x.shape)} has T = {x.shape[1]} "
                    f"segments, got num_segments={num_segments}"
                )
            return rearrange(x, "b t c h w -> (b t) c h w"), x.shape[1]
        if num_segments is None:
            return x, -1  # resolved from the target's batch size by the caller
        check_positive_int("num_segments", num_segments)
        if x.shape[0] % num_segments:
            raise ValueError(
                f"x: expected shape (B * T, C, H, W) with T = num_segments = {num_segments}, "
                f"got shape {tuple(x.shape)} (N = {x.shape[0]} is not a multiple of T)"
            )
        return x, num_segments

    def _segments_from_target(self, x: Tensor, target: object) -> int:
        if not torch.is_tensor(target) or target.ndim != 1 or target.numel() == 0:
            raise ValueError(
                f"target: expected a non-empty (B,) tensor of class indices, got {describe(target)}"
            )
        if x.shape[0] % target.shape[0]:
            raise ValueError(
                f"x: expected shape (B * T, C, H, W) with B = len(target) = {target.shape[0]}, "
                f"got shape {tuple(x.shape)} (N = {x.shape[0]} is not a multiple of B); "
                f"pass num_segments or a 5D (B, T, C, H, W) x"
            )
        return x.shape[0] // target.shape[0]

    def _check_region(self, region: Tensor, x: Tensor) -> Tensor:
        layout = "(B, T, 1, H, W)" if x.ndim == 5 else "(N, 1, H, W)"
        check_floating("region", region, layout)
        if region.ndim != x.ndim:
            raise ValueError(
                f"region: expected a {x.ndim}D {layout} tensor like x {tuple(x.shape)}, "
                f"got shape {tuple(region.shape)}"
            )
        expected = (*x.shape[:-3], 1, *x.shape[-2:])
        check_matches("region", region, range(x.ndim), expected, layout)
        check_all_finite("region", region)
        check_range("region", region, 0.0, float("inf"))
        return region


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)
