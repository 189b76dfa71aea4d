"""Flow-guided spatial attention (STA-CNN's Spatial Attention Mechanism).

Axis legend: ``b`` videos, ``t`` segments, ``n`` = ``b * t`` snippets, ``c`` channels,
``h w`` feature-map height and width, ``m`` motion channels (``2L`` for flow).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from .. import functional as AF
from .._checks import (
    check_all_finite,
    check_dim,
    check_floating,
    check_matches,
    check_nonempty,
    check_odd_kernel,
    check_positive_int,
    check_range,
)

__all__ = ["FlowGuidedSpatialAttention", "MotionKind", "SpatialAttentionOutput"]

MotionKind = Literal["flow", "features", "saliency"]
_MOTION_KINDS = ("flow", "features", "saliency")


class SpatialAttentionOutput(NamedTuple):
    """What :class:`FlowGuidedSpatialAttention` returns, every tensor in x's layout.

    Attributes:
        features: The attended features ``x * (1 + attention)``, shaped like ``x``.
        attention: The attention ``S = M + A - M * A`` in ``[0, 1]``, one channel.
        motion_map: The motion map ``M`` in ``[0, 1]``, one channel; None without motion.
        learned_map: The learned map ``A`` in ``[0, 1]``, one channel.
    """

    features: Tensor
    attention: Tensor
    motion_map: Tensor | None
    learned_map: Tensor


class FlowGuidedSpatialAttention(nn.Module):
    """Spatial attention guided by motion, with a learned map for non-motion regions.

    Our reading of the paper: a motion map ``M`` in ``[0, 1]`` comes from the optical
    flow of the same snippet (per-pixel magnitude averaged over the stacked fields, pooled
    to the feature map, divided by its per-sample maximum; or from a flow-stream feature
    map, or from a ready saliency map), a learned map
    ``A = sigmoid(conv1x1(act(norm(conv(x)))))`` comes from the appearance features, and
    the two are joined by a soft union ``S = M + A - M * A``. The output keeps the context:
    ``x * (1 + S)``. Train ``A`` with :class:`GAPAuxLoss` on the region ``A * (1 - M)``
    so that it learns discriminative regions that do not move.

    Args:
        channels: Channels ``C`` of the feature map ``x``.
        hidden_channels: Bottleneck channels of the learned map; default
            ``max(8, round(channels * rd_ratio))``.
        motion: What ``forward``'s ``motion`` argument holds: ``"flow"`` (raw optical
            flow, ``2L`` channels, in pixels or any scale), ``"features"`` (a feature map,
            e.g. the flow stream's; saliency = channel mean of squares) or
            ``"saliency"`` (a one-channel map already in ``[0, 1]``).
        camera_compensation: For ``motion="flow"``: subtract the per-sample median flow
            of each field before the magnitude, to discount camera motion.
        kernel_size: Kernel of the learned map's first convolution (odd).
        rd_ratio: Bottleneck ratio used when ``hidden_channels`` is None.
        act_layer: Activation of the learned map.
        norm_layer: Norm of the learned map (called with the hidden channel count), or
            None for no norm.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Shape:
        - x: ``(N, C, H, W)`` or ``(B, T, C, H, W)``
        - motion: the same leading axes as ``x``, then ``(2L, h, w)`` for flow,
          ``(C', h, w)`` for features, ``(1, h, w)`` for saliency; any ``h, w``
        - output: :class:`SpatialAttentionOutput`; features like ``x``, maps
          ``(N, 1, H, W)`` or ``(B, T, 1, H, W)``

    Example:
        >>> attn = FlowGuidedSpatialAttention(32).eval()
        >>> x, flow = torch.randn(2, 4, 32, 7, 7), torch.randn(2, 4, 10, 56, 56)
        >>> out = attn(x, flow)
        >>> out.features.shape, out.attention.shape
        (torch.Size([2, 4, 32, 7, 7]), torch.Size([2, 4, 1, 7, 7]))
        >>> bool(torch.allclose(out.features, x * (1 + out.attention)))
        True
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int | None = None,
        *,
        motion: MotionKind = "flow",
        camera_compensation: bool = False,
        kernel_size: int = 3,
        rd_ratio: float = 1 / 16,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] | None = nn.BatchNorm2d,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("channels", channels)
        if motion not in _MOTION_KINDS:
            raise ValueError(f"motion: expected one of {_MOTION_KINDS}, got {motion!r}")
        if camera_compensation and motion != "flow":
            raise ValueError(
                f"camera_compensation: only applies to motion='flow', got motion={motion!r}"
            )
        if hidden_channels is None:
            hidden_channels = max(8, round(channels * rd_ratio))
        check_positive_int("hidden_channels", hidden_channels)
        check_odd_kernel("kernel_size", kernel_size)
        factory = {"device": device, "dtype": dtype}
        self.channels = channels
        self.motion = motion
        self.camera_compensation = camera_compensation
        self.conv = nn.Conv2d(
            channels, hidden_channels, kernel_size, padding=kernel_size // 2, bias=False,
            **factory,
        )  # fmt: skip
        self.norm = nn.Identity() if norm_layer is None else norm_layer(hidden_channels, **factory)
        self.act = act_layer()
        self.proj = nn.Conv2d(hidden_channels, 1, 1, **factory)
        self.gate = nn.Sigmoid()

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``."""
        return (
            f"channels={self.channels}, motion={self.motion!r}, "
            f"camera_compensation={self.camera_compensation}"
        )

    def learned(self, x: Tensor) -> Tensor:
        """The learned map ``A`` of a 4D feature map, ``(N, 1, H, W)``."""
        return self.gate(self.proj(self.act(self.norm(self.conv(x)))))

    def motion_saliency(self, motion: Tensor, size: tuple[int, int]) -> Tensor:
        """The motion map ``M`` of a 4D motion tensor at ``size``, ``(N, 1, H, W)``."""
        if self.motion == "flow":
            return AF.flow_saliency(motion, size, camera_compensation=self.camera_compensation)
        if self.motion == "features":
            return AF.feature_saliency(motion, size)
        return AF.saliency_to(motion, size)

    def forward(self, x: Tensor, motion: Tensor | None = None) -> SpatialAttentionOutput:
        """Attend to ``x`` with the motion map of ``motion`` (if given) and the learned map."""
        check_floating("x", x, "(N, C, H, W) or (B, T, C, H, W)")
        check_dim("x", x, {4: "(N, C, H, W)", 5: "(B, T, C, H, W)"})
        check_matches("x", x, [-3], [self.channels], "(..., C, H, W)")
        lead = x.shape[:-3]
        segments = x.shape[1] if x.ndim == 5 else 1
        feats = rearrange(x, "b t c h w -> (b t) c h w") if x.ndim == 5 else x
        learned = self.learned(feats)
        if motion is None:
            motion_map, attention = None, learned
        else:
            motion = self._check_motion(motion, x)
            if x.ndim == 5:
                motion = rearrange(motion, "b t m h w -> (b t) m h w")
            motion_map = self.motion_saliency(motion, feats.shape[-2:]).to(x.dtype)
            attention = AF.soft_union(motion_map, learned)
        features = AF.residual_attention(feats, attention)
        if x.ndim == 5:
            features, attention, learned = (
                rearrange(a, "(b t) c h w -> b t c h w", t=segments)
                for a in (features, attention, learned)
            )
            if motion_map is not None:
                motion_map = rearrange(motion_map, "(b t) 1 h w -> b t 1 h w", t=segments)
        assert features.shape[:-3] == lead
        return SpatialAttentionOutput(features, attention, motion_map, learned)

    def _check_motion(self, motion: Tensor, x: Tensor) -> Tensor:
        lead = "(B, T, " if x.ndim == 5 else "(N, "
        axes = {"flow": "2L, h, w)", "features": "C', h, w)", "saliency": "1, h, w)"}
        layout = lead + axes[self.motion]
        check_floating("motion", motion, layout)
        if motion.ndim != x.ndim:
            raise ValueError(
                f"motion: expected a {x.ndim}D {layout} tensor like x {tuple(x.shape)}, "
                f"got shape {tuple(motion.shape)}"
            )
        check_matches("motion", motion, range(x.ndim - 3), x.shape[:-3], layout)
        check_nonempty("motion", motion, layout)
        channels = motion.shape[-3]
        if self.motion == "flow" and channels % 2:
            raise ValueError(
                f"motion: raw flow needs an even channel count 2L (x1, y1, x2, y2, ...), "
                f"got shape {tuple(motion.shape)}"
            )
        if self.motion == "saliency":
            check_matches("motion", motion, [-3], [1], layout)
            check_range("motion", motion, 0.0, 1.0)
        else:
            check_all_finite("motion", motion)
        return motion
