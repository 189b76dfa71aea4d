"""STA-CNN: TSN streams over any timm backbone with spatial and temporal attention.

Our reading of the paper (only its abstract is public; see ``docs/models.md``). A stream
runs the backbone on every snippet, attends spatially (RGB: guided by the flow of the same
snippet), pools, classifies each segment and weighs the segments with a learned temporal
attention. Two streams (RGB and flow) are fused as ``z_rgb + 1.5 * z_flow``.

Axis legend: ``b`` videos, ``t`` segments, ``n`` = ``b * t`` snippets, ``c`` feature
channels, ``h w`` feature-map size, ``k`` classes, ``m`` motion channels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

import timm
import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from .._checks import (
    check_dim,
    check_floating,
    check_nonempty,
    check_positive_int,
    check_target,
    describe,
)
from ..functional import fuse_streams
from ..layers import (
    FlowGuidedSpatialAttention,
    GAPAuxLoss,
    TemporalAttentionOutput,
    TemporalSegmentAttention,
)
from .backbone import (
    FeatureMapBackbone,
    FlowInit,
    adapt_input_channels,
    create_backbone,
    find_first_conv,
)
from .params import freeze_partial_bn, param_groups

__all__ = [
    "STACNN",
    "AverageConsensus",
    "STACNNOutput",
    "TwoStreamOutput",
    "TwoStreamSTACNN",
    "create_stacnn",
    "has_spatial_attention",
]

Modality = Literal["rgb", "flow", "two_stream"]
Guidance = Literal["flow", "features"]
_GUIDANCE = ("flow", "features")
_DROPOUT = {"rgb": 0.8, "flow": 0.7}  # TSN's defaults
_FIRST_CONV_LR_MULT = {"rgb": 1.0, "flow": 5.0}  # TSN / TSM


def has_spatial_attention(modality: str, spatial_attention: bool = True) -> bool:
    """Whether a stream of ``modality`` has spatial attention: only the RGB stream does.

    Our reading of the paper: the flow guides the RGB stream's attention, the flow stream
    has none. The one home of that rule (the models, the training engine and prediction
    ask here).

    Args:
        modality: ``"rgb"`` or ``"flow"``.
        spatial_attention: Whether spatial attention was asked for.

    Returns:
        ``spatial_attention and modality == "rgb"``.

    Example:
        >>> has_spatial_attention("rgb"), has_spatial_attention("flow")
        (True, False)
    """
    return bool(spatial_attention) and modality == "rgb"


class _ByKey:
    """Dataclass mixin: ``out["logits"]`` as well as ``out.logits`` (like mmaction2 dicts)."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(f"{type(self).__name__} has no field {key!r}; fields: {self.keys()}")
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def keys(self) -> list[str]:
        """The field names."""
        return [f.name for f in fields(self)]  # type: ignore[arg-type]


@dataclass
class STACNNOutput(_ByKey):
    """What a single :class:`STACNN` stream returns (fields also readable by key).

    Attributes:
        logits: Video logits, the temporal consensus of the segment logits, ``(B, K)``.
        segment_logits: Per-segment logits, ``(B, T, K)``.
        temporal_weights: Segment weights, ``(B, T)`` (``1 / T`` for TSN's average).
        feature_map: The backbone's map before spatial attention, ``(B, T, C, h, w)``.
        spatial_attention: ``S`` in ``[0, 1]``, ``(B, T, 1, h, w)``; None without spatial
            attention.
        motion_map: ``M``, ``(B, T, 1, h, w)``; None without motion guidance.
        learned_map: ``A``, ``(B, T, 1, h, w)``; None without spatial attention.
        loss: ``loss_cls + loss_aux`` (with a target only).
        loss_cls: Cross-entropy of ``logits`` (with a target only).
        loss_aux: The weighted :class:`~attnvideo.GAPAuxLoss` (0 without it; with a
            target only).
    """

    logits: Tensor
    segment_logits: Tensor
    temporal_weights: Tensor
    feature_map: Tensor
    spatial_attention: Tensor | None = None
    motion_map: Tensor | None = None
    learned_map: Tensor | None = None
    loss: Tensor | None = None
    loss_cls: Tensor | None = None
    loss_aux: Tensor | None = None


@dataclass
class TwoStreamOutput(_ByKey):
    """What :class:`TwoStreamSTACNN` returns (fields also readable by key).

    Attributes:
        logits: Fused logits ``w_rgb * rgb.logits + w_flow * flow.logits``, ``(B, K)``.
        rgb: The RGB stream's :class:`STACNNOutput`.
        flow: The flow stream's :class:`STACNNOutput`.
        loss: ``rgb.loss + flow.loss`` (with a target only).
    """

    logits: Tensor
    rgb: STACNNOutput
    flow: STACNNOutput
    loss: Tensor | None = None


for _cls in (STACNNOutput, TwoStreamOutput):
    torch.export.register_dataclass(_cls, serialized_type_name=f"attnvideo.models.{_cls.__name__}")


class _Frames(NamedTuple):
    """The per-frame results of a stream, each ``(B, T, ...)``."""

    feature_map: Tensor
    pooled: Tensor
    segment_logits: Tensor
    spatial_attention: Tensor | None
    motion_map: Tensor | None
    learned_map: Tensor | None


def _slice(motion: Tensor | None, start: int, size: int) -> Tensor | None:
    """Frames ``start : start + size`` of a ``(1, N, ...)`` tensor (None stays None)."""
    return None if motion is None else motion[:, start : start + size]


def _join(chunks: tuple[Tensor | None, ...], segments: int) -> Tensor | None:
    """Chunks ``(1, n_i, ...)`` of one field back into ``(B, T, ...)`` (None stays None)."""
    if chunks[0] is None:
        return None
    return rearrange(torch.cat(chunks, dim=1), "1 (b t) ... -> b t ...", t=segments)


class AverageConsensus(nn.Module):
    """TSN's average consensus with :class:`~attnvideo.TemporalSegmentAttention`'s interface.

    The TSN ablation (``temporal_attention=False``) swaps this in, so the forward pass of
    :class:`STACNN` is the same code for every ablation.

    Shape:
        - x: ``(B, T, C)``
        - values: ``(B, T, *)``, default ``x``
        - output: ``TemporalAttentionOutput`` with pooled ``(B, *)`` and weights ``(B, T)``

    Example:
        >>> out = AverageConsensus()(torch.randn(2, 4, 8), values=torch.ones(2, 4, 3))
        >>> out.pooled, out.weights[0]
        (tensor([[1., 1., 1.],
                [1., 1., 1.]]), tensor([0.2500, 0.2500, 0.2500, 0.2500]))
    """

    def forward(self, x: Tensor, values: Tensor | None = None) -> TemporalAttentionOutput:
        """Uniform weights ``1 / T`` and the mean of ``values`` (default ``x``) over T."""
        values = x if values is None else values
        weights = torch.full(x.shape[:2], 1.0 / x.shape[1], device=x.device, dtype=torch.float32)
        return TemporalAttentionOutput(values.mean(dim=1), weights)


class STACNN(nn.Module):
    """One STA-CNN stream (RGB or flow) over a timm backbone: TSN with attention.

    Per snippet the backbone gives a map ``F``; the RGB stream attends to it with
    :class:`~attnvideo.FlowGuidedSpatialAttention` (guided by the flow of the same snippet,
    or by the flow stream's map), global-average-pools it, applies dropout and a new
    linear classifier (initialised from ``N(0, 0.001^2)``), and pools the segment logits
    with :class:`~attnvideo.TemporalSegmentAttention` (scored on the pooled features).
    With a target, the loss is the cross-entropy of the video logits plus
    :class:`~attnvideo.GAPAuxLoss` on ``F`` with the region ``A * (1 - M)``.
    The flow stream has no spatial attention (our reading of the paper: the flow guides
    the RGB stream). Build one with :func:`create_stacnn`.

    Args:
        backbone: A timm model (its classifier is removed).
        num_classes: Number of classes ``K``.
        modality: ``"rgb"`` (3 input channels) or ``"flow"`` (``2 * new_length``; the
            first convolution of a 3-channel backbone is adapted by ``flow_init``).
        num_segments: Segments ``T`` per video in training (evaluation takes any T).
        new_length: Stacked flow fields ``L`` per flow snippet.
        temporal_attention: False gives TSN's average consensus.
        spatial_attention: False removes the spatial attention (and the aux loss).
            Only the RGB stream has spatial attention.
        aux_weight: Weight of the aux GAP loss (0 removes it).
        dropout: Dropout before the classifier; default 0.8 (RGB) or 0.7 (flow), TSN's.
        partial_bn: Freeze every batch norm of the backbone but the first (TSN).
        flow_init: ``"mean"`` (TSN cross-modality) or ``"repeat"`` (timm) for ``"flow"``.
        guidance: What guides the RGB spatial attention: ``"flow"`` (raw optical flow of
            the snippet, any scale and resolution) or ``"features"`` (a feature map, e.g.
            the flow stream's).

    Shape:
        - x: ``(B, T, C, H, W)``, ``C = 3`` (RGB) or ``2L`` (flow)
        - motion: ``(B, T, 2L, h', w')`` flow or ``(B, T, C', h', w')`` features
        - target: ``(B,)`` class indices
        - output: :class:`STACNNOutput`

    Example:
        >>> model = create_stacnn("test_resnet", num_classes=5, num_segments=3)
        >>> out = model(torch.randn(2, 3, 3, 64, 64), motion=torch.randn(2, 3, 10, 64, 64))
        >>> out.logits.shape, out["spatial_attention"].shape
        (torch.Size([2, 5]), torch.Size([2, 3, 1, 2, 2]))
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        modality: Literal["rgb", "flow"] = "rgb",
        num_segments: int = 8,
        new_length: int = 5,
        temporal_attention: bool = True,
        spatial_attention: bool = True,
        aux_weight: float = 0.5,
        dropout: float | None = None,
        partial_bn: bool = False,
        flow_init: FlowInit = "mean",
        guidance: Guidance = "flow",
    ) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("num_segments", num_segments)
        check_positive_int("new_length", new_length)
        if modality not in ("rgb", "flow"):
            raise ValueError(f"modality: expected 'rgb' or 'flow' for a stream, got {modality!r}")
        if guidance not in _GUIDANCE:
            raise ValueError(f"guidance: expected one of {_GUIDANCE}, got {guidance!r}")
        if not aux_weight >= 0:
            raise ValueError(f"aux_weight: expected a non-negative number, got {aux_weight!r}")
        dropout = _DROPOUT[modality] if dropout is None else dropout
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.backbone = FeatureMapBackbone(backbone)
        if modality == "flow":
            adapt_input_channels(self.backbone.model, 2 * new_length, flow_init)
        self.in_chans = self.backbone.in_chans
        if modality == "rgb" and self.in_chans != 3:
            raise ValueError(
                f"backbone: an RGB stream needs a 3-channel first convolution, "
                f"{self.backbone.name!r} has {self.in_chans}"
            )
        channels = self.backbone.num_features
        self.modality = modality
        self.num_classes = num_classes
        self.num_segments = num_segments
        self.new_length = new_length
        self.guidance = guidance
        self.partial_bn = partial_bn
        spatial = has_spatial_attention(modality, spatial_attention)
        self.spatial = FlowGuidedSpatialAttention(channels, motion=guidance) if spatial else None
        self.aux = (
            GAPAuxLoss(channels, num_classes, weight=aux_weight)
            if spatial and aux_weight > 0
            else None
        )
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.001)
        nn.init.zeros_(self.fc.bias)
        self.consensus = (
            TemporalSegmentAttention(channels) if temporal_attention else AverageConsensus()
        )
        if partial_bn:
            freeze_partial_bn(self.backbone)

    @property
    def data_config(self) -> dict[str, Any]:
        """Input config from timm's ``pretrained_cfg``: ``input_size``, ``mean``, ``std``, ...

        For the flow stream ``input_size`` has ``2L`` channels and ``mean``/``std`` are 0/1
        (flow is centred to ``[-1, 1]`` by the dataset, not normalised by ImageNet stats).
        """
        cfg = dict(timm.data.resolve_model_data_config(self.backbone.model))
        if self.modality == "flow":
            cfg["input_size"] = (self.in_chans, *cfg["input_size"][1:])
            cfg["mean"], cfg["std"] = (0.0,) * self.in_chans, (1.0,) * self.in_chans
        return cfg

    def train(self, mode: bool = True) -> STACNN:
        """Set training mode; with ``partial_bn`` the frozen batch norms stay in eval mode."""
        super().train(mode)
        if mode and self.partial_bn:
            freeze_partial_bn(self.backbone)
        return self

    def first_conv(self) -> nn.Module:
        """The backbone's first convolution."""
        return find_first_conv(self.backbone.model)[1]

    def param_groups(
        self, lr: float, weight_decay: float, first_conv_lr_mult: float | None = None
    ) -> list[dict]:
        """Optimiser groups: no decay on norms/biases, first conv at ``lr * mult``.

        Args:
            lr: Base learning rate.
            weight_decay: Weight decay of the decayed parameters.
            first_conv_lr_mult: Learning-rate multiplier of the first convolution;
                default 5 for flow, 1 for RGB (TSN/TSM).

        Returns:
            Param groups for a ``torch.optim`` optimiser (see :func:`param_groups`).
        """
        if first_conv_lr_mult is None:
            first_conv_lr_mult = _FIRST_CONV_LR_MULT[self.modality]
        model = self.backbone.model
        skip = model.no_weight_decay() if callable(getattr(model, "no_weight_decay", None)) else ()
        return param_groups(
            self,
            lr,
            weight_decay,
            first_conv=self.first_conv(),
            first_conv_lr_mult=first_conv_lr_mult,
            # timm lists full names ("pos_embed") or bare leaf names (swin's bias tables)
            no_weight_decay={f"backbone.model.{n}" for n in skip} | set(skip),
        )

    def forward(
        self,
        x: Tensor,
        motion: Tensor | None = None,
        target: Tensor | None = None,
        *,
        chunk_frames: int | None = None,
    ) -> STACNNOutput:
        """Classify videos ``x`` (see the class docstring for shapes).

        Everything before the temporal consensus (backbone, spatial attention, pooling,
        dropout, classifier) acts on each frame alone, so in evaluation the frames of all
        videos (``B * T``, test crops included when they are folded into ``B``) can go
        through it in chunks: peak memory is then set by one chunk, not by every view of
        the batch, and the logits are those of one pass up to float rounding.

        Args:
            x: Videos ``(B, T, C, H, W)``.
            motion: What guides the spatial attention, ``(B, T, C', h', w')``.
            target: Class indices ``(B,)``; gives the losses.
            chunk_frames: At most this many frames through the per-frame part at once;
                None (default) runs all ``B * T`` frames in one pass. Evaluation only
                (``model.eval()``): in training, batch norm and dropout see the batch.

        Returns:
            A :class:`STACNNOutput`.

        Example:
            >>> model = create_stacnn("test_resnet", 5, num_segments=3).eval()
            >>> x, flow = torch.randn(2, 25, 3, 32, 32), torch.randn(2, 25, 10, 32, 32)
            >>> with torch.inference_mode():
            ...     whole = model(x, motion=flow)
            ...     chunked = model(x, motion=flow, chunk_frames=16)  # 50 frames: 4 chunks
            >>> bool(torch.allclose(chunked.logits, whole.logits, atol=1e-6))
            True
        """
        target = self._check_inputs(x, motion, target)
        if chunk_frames is not None:
            check_positive_int("chunk_frames", chunk_frames)
            if self.training:
                raise ValueError(
                    f"chunk_frames: expected None in training mode (batch norm and dropout "
                    f"see the whole batch), got {chunk_frames}; call model.eval() first"
                )
        segments = x.shape[1]
        if chunk_frames is None or chunk_frames >= x.shape[0] * segments:
            frames = self._frames(x, motion)
        else:  # all frames as one long video, cut along T
            flat = rearrange(x, "b t c h w -> 1 (b t) c h w")
            flat_motion = (
                None if motion is None else rearrange(motion, "b t m h w -> 1 (b t) m h w")
            )
            parts = [
                self._frames(flat[:, i : i + chunk_frames], _slice(flat_motion, i, chunk_frames))
                for i in range(0, flat.shape[1], chunk_frames)
            ]
            frames = _Frames(*(_join(field, segments) for field in zip(*parts, strict=True)))
        fmap, pooled, segment_logits, attention, motion_map, learned = frames
        logits, weights = self.consensus(pooled, values=segment_logits)
        out = STACNNOutput(logits, segment_logits, weights, fmap, attention, motion_map, learned)
        if target is not None:
            out.loss_cls = F.cross_entropy(logits.float(), target)
            out.loss_aux = self._aux_loss(fmap, target, motion_map, learned)
            out.loss = out.loss_cls + out.loss_aux
        return out

    def _frames(self, x: Tensor, motion: Tensor | None) -> _Frames:
        """The per-frame part: backbone, spatial attention, pooling, dropout, classifier."""
        segments = x.shape[1]
        fmap = self.backbone(rearrange(x, "b t c h w -> (b t) c h w"))
        fmap = rearrange(fmap, "(b t) c h w -> b t c h w", t=segments)
        attended, attention, motion_map, learned = (
            self.spatial(fmap, motion) if self.spatial is not None else (fmap, None, None, None)
        )
        pooled = reduce(attended, "b t c h w -> b t c", "mean")
        segment_logits = self.fc(self.drop(pooled))
        return _Frames(fmap, pooled, segment_logits, attention, motion_map, learned)

    def _aux_loss(
        self, fmap: Tensor, target: Tensor, motion_map: Tensor | None, learned: Tensor | None
    ) -> Tensor:
        if self.aux is None or learned is None:
            return fmap.new_zeros((), dtype=torch.float32)
        region = learned if motion_map is None else learned * (1 - motion_map)
        return self.aux(fmap, target, region=region).loss

    def _check_inputs(
        self, x: Tensor, motion: Tensor | None, target: Tensor | None
    ) -> Tensor | None:
        """Validate the inputs; return ``target`` as int64 (or None)."""
        check_floating("x", x, "(B, T, C, H, W)")
        check_dim("x", x, {5: "(B, T, C, H, W)"})
        if x.shape[2] != self.in_chans:
            what = f"2L = 2 * {self.new_length}" if self.modality == "flow" else "3"
            raise ValueError(
                f"x: the {self.modality} stream takes (B, T, C, H, W) with C = {what} = "
                f"{self.in_chans} channels, got shape {tuple(x.shape)}"
            )
        if self.training and x.shape[1] != self.num_segments:
            raise ValueError(
                f"x: in training the model takes T = num_segments = {self.num_segments} "
                f"segments, got shape {tuple(x.shape)} (evaluation takes any T)"
            )
        if motion is not None:
            check_floating("motion", motion, "(B, T, C', h, w)")
            if motion.ndim != 5 or tuple(motion.shape[:2]) != tuple(x.shape[:2]):
                raise ValueError(
                    f"motion: expected (B, T, C', h, w) with (B, T) = {tuple(x.shape[:2])} "
                    f"like x, got shape {tuple(motion.shape)}"
                )
            check_nonempty("motion", motion, "(B, T, C', h, w)")
        return None if target is None else check_target(target, x.shape[0], self.num_classes)

    def extra_repr(self) -> str:
        """The stream's configuration shown by ``repr``."""
        return (
            f"modality={self.modality!r}, num_classes={self.num_classes}, "
            f"num_segments={self.num_segments}, partial_bn={self.partial_bn}"
        )


class TwoStreamSTACNN(nn.Module):
    """RGB and flow STA-CNN streams, the RGB attention guided by the flow, fused scores.

    The flow stream runs first; its input flow (``guidance="flow"``) or its feature map,
    detached (``guidance="features"``), guides the RGB stream's spatial attention. The
    video logits are ``w_rgb * z_rgb + w_flow * z_flow`` (TSN's 1 : 1.5 by default); the
    loss is the sum of both streams' losses. Streams trained alone are combined with
    :meth:`from_streams`.

    Args:
        rgb: The RGB :class:`STACNN` stream.
        flow: The flow :class:`STACNN` stream.
        fusion_weights: ``(w_rgb, w_flow)``.
        guidance: ``"flow"`` or ``"features"``; must match the RGB stream's.

    Shape:
        - rgb: ``(B, T, 3, H, W)``
        - flow: ``(B, T, 2L, H', W')``
        - target: ``(B,)``
        - output: :class:`TwoStreamOutput`

    Example:
        >>> model = create_stacnn("test_resnet", 5, num_segments=3, modality="two_stream")
        >>> rgb, flow = torch.randn(2, 3, 3, 64, 64), torch.randn(2, 3, 10, 64, 64)
        >>> out = model.eval()(rgb, flow)
        >>> bool(torch.allclose(out.logits, out.rgb.logits + 1.5 * out.flow.logits))
        True
    """

    def __init__(
        self,
        rgb: STACNN,
        flow: STACNN,
        *,
        fusion_weights: tuple[float, float] = (1.0, 1.5),
        guidance: Guidance = "flow",
    ) -> None:
        super().__init__()
        for name, stream, modality in (("rgb", rgb, "rgb"), ("flow", flow, "flow")):
            if not isinstance(stream, STACNN) or stream.modality != modality:
                seen = getattr(stream, "modality", None)
                raise ValueError(
                    f"{name}: expected a STACNN with modality={modality!r}, got "
                    f"{describe(stream)} with modality={seen!r}"
                )
        if rgb.num_classes != flow.num_classes:
            raise ValueError(
                f"flow: the streams must have the same num_classes, got rgb "
                f"{rgb.num_classes} and flow {flow.num_classes}"
            )
        if guidance not in _GUIDANCE:
            raise ValueError(f"guidance: expected one of {_GUIDANCE}, got {guidance!r}")
        if rgb.spatial is not None and rgb.guidance != guidance:
            raise ValueError(
                f"guidance: the RGB stream's spatial attention was built for "
                f"guidance={rgb.guidance!r}, got guidance={guidance!r}"
            )
        if len(fusion_weights) != 2:
            raise ValueError(f"fusion_weights: expected (w_rgb, w_flow), got {fusion_weights!r}")
        self.rgb = rgb
        self.flow = flow
        self.fusion_weights = (float(fusion_weights[0]), float(fusion_weights[1]))
        self.guidance = guidance

    @classmethod
    def from_streams(
        cls,
        rgb_model: STACNN,
        flow_model: STACNN,
        fusion_weights: tuple[float, float] = (1.0, 1.5),
        guidance: Guidance = "flow",
    ) -> TwoStreamSTACNN:
        """Combine an RGB and a flow stream (e.g. trained separately, as TSN does).

        Example:
            >>> rgb = create_stacnn("test_resnet", 5, num_segments=3)
            >>> flow = create_stacnn("test_resnet", 5, num_segments=3, modality="flow")
            >>> TwoStreamSTACNN.from_streams(rgb, flow).fusion_weights
            (1.0, 1.5)
        """
        return cls(rgb_model, flow_model, fusion_weights=fusion_weights, guidance=guidance)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.rgb.num_classes

    @property
    def data_config(self) -> dict[str, Any]:
        """The RGB stream's :attr:`STACNN.data_config` (flow needs no normalisation)."""
        return self.rgb.data_config

    def param_groups(
        self, lr: float, weight_decay: float, first_conv_lr_mult: float | None = None
    ) -> list[dict]:
        """Both streams' :meth:`STACNN.param_groups`, names prefixed ``rgb.`` / ``flow.``."""
        groups = []
        for prefix, stream in (("rgb.", self.rgb), ("flow.", self.flow)):
            for group in stream.param_groups(lr, weight_decay, first_conv_lr_mult):
                groups.append({**group, "name": prefix + group["name"]})
        return groups

    def forward(
        self,
        rgb: Tensor,
        flow: Tensor,
        target: Tensor | None = None,
        *,
        chunk_frames: int | None = None,
    ) -> TwoStreamOutput:
        """Classify videos from their RGB snippets and flow stacks.

        Args:
            rgb: RGB snippets ``(B, T, 3, H, W)``.
            flow: Flow stacks ``(B, T, 2L, H', W')``.
            target: Class indices ``(B,)``; gives the losses.
            chunk_frames: Evaluation only: each stream runs its per-frame part over at
                most this many frames at once (see :meth:`STACNN.forward`); None runs
                all ``B * T`` frames in one pass.

        Returns:
            A :class:`TwoStreamOutput`.

        Example:
            >>> model = create_stacnn("test_resnet", 5, num_segments=3, modality="two_stream")
            >>> rgb, flow = torch.randn(1, 25, 3, 32, 32), torch.randn(1, 25, 10, 32, 32)
            >>> with torch.inference_mode():
            ...     out = model.eval()(rgb, flow, chunk_frames=10)
            ...     whole = model(rgb, flow)
            >>> bool(torch.allclose(out.logits, whole.logits, atol=1e-6))
            True
        """
        check_floating("rgb", rgb, "(B, T, 3, H, W)")
        check_floating("flow", flow, "(B, T, 2L, H, W)")
        check_dim("rgb", rgb, {5: "(B, T, 3, H, W)"})
        check_dim("flow", flow, {5: "(B, T, 2L, H, W)"})
        if tuple(flow.shape[:2]) != tuple(rgb.shape[:2]):
            raise ValueError(
                f"flow: expected (B, T, 2L, H, W) with (B, T) = {tuple(rgb.shape[:2])} like "
                f"rgb {tuple(rgb.shape)}, got shape {tuple(flow.shape)}"
            )
        flow_out = self.flow(flow, target=target, chunk_frames=chunk_frames)
        motion = flow if self.guidance == "flow" else flow_out.feature_map.detach()
        rgb_out = self.rgb(rgb, motion=motion, target=target, chunk_frames=chunk_frames)
        logits = fuse_streams(rgb_out.logits, flow_out.logits, self.fusion_weights)
        loss = None if target is None else rgb_out.loss + flow_out.loss
        return TwoStreamOutput(logits, rgb_out, flow_out, loss)


def create_stacnn(
    backbone: str | nn.Module,
    num_classes: int,
    *,
    num_segments: int = 8,
    modality: Modality = "rgb",
    new_length: int = 5,
    temporal_attention: bool = True,
    spatial_attention: bool = True,
    aux_weight: float = 0.5,
    dropout: float | None = None,
    partial_bn: bool = False,
    flow_init: FlowInit = "mean",
    fusion_weights: tuple[float, float] = (1.0, 1.5),
    guidance: Guidance = "flow",
    pretrained: bool = False,
    **timm_kwargs: Any,
) -> STACNN | TwoStreamSTACNN:
    """Build STA-CNN (one stream or both) around any timm backbone, in one line.

    Ablations are arguments on the same model: TSN is ``temporal_attention=False,
    spatial_attention=False``; ``aux_weight=0`` drops the aux loss.

    Args:
        backbone: A timm model name (``"resnet50"``, ``"vit_small_patch16_224"``, ...)
            or a built timm model (deep-copied for the flow stream of a two-stream model).
        num_classes: Number of classes.
        num_segments: Segments ``T`` per video in training.
        modality: ``"rgb"``, ``"flow"`` or ``"two_stream"``.
        new_length: Stacked flow fields ``L`` per flow snippet (flow input has ``2L``
            channels).
        temporal_attention: False gives TSN's average consensus.
        spatial_attention: False removes the flow-guided spatial attention (RGB stream).
        aux_weight: Weight of the aux GAP loss; 0 drops it.
        dropout: Dropout before the classifiers; default 0.8 (RGB) and 0.7 (flow).
        partial_bn: TSN's partial BN (freeze all backbone batch norms but the first).
        flow_init: First-conv adaptation for flow: ``"mean"`` (TSN) or ``"repeat"`` (timm).
        fusion_weights: ``(w_rgb, w_flow)`` for the two-stream score.
        guidance: What guides the RGB spatial attention: ``"flow"`` (raw flow) or
            ``"features"`` (the flow stream's feature map, detached).
        pretrained: Load timm's pretrained weights (needs network or a cached copy).
        **timm_kwargs: Passed to ``timm.create_model`` (e.g. ``img_size``,
            ``drop_path_rate``, ``dynamic_img_size``); only with a model name.

    Returns:
        A :class:`STACNN` (``"rgb"``, ``"flow"``) or a :class:`TwoStreamSTACNN`.

    Example:
        >>> tsn = create_stacnn("test_resnet", 10, temporal_attention=False,
        ...                     spatial_attention=False, num_segments=2)
        >>> out = tsn.eval()(torch.randn(1, 2, 3, 64, 64))
        >>> out.temporal_weights
        tensor([[0.5000, 0.5000]])
    """
    if modality not in ("rgb", "flow", "two_stream"):
        raise ValueError(f"modality: expected 'rgb', 'flow' or 'two_stream', got {modality!r}")
    options = dict(
        num_segments=num_segments,
        new_length=new_length,
        temporal_attention=temporal_attention,
        spatial_attention=spatial_attention,
        aux_weight=aux_weight,
        dropout=dropout,
        partial_bn=partial_bn,
        flow_init=flow_init,
        guidance=guidance,
    )
    if modality != "two_stream":
        model = create_backbone(backbone, pretrained=pretrained, **timm_kwargs)
        return STACNN(model, num_classes, modality=modality, **options)
    rgb_model = create_backbone(backbone, pretrained=pretrained, **timm_kwargs)
    flow_model = copy.deepcopy(rgb_model)  # same (pretrained) weights, fetched once
    return TwoStreamSTACNN(
        STACNN(rgb_model, num_classes, modality="rgb", **options),
        STACNN(flow_model, num_classes, modality="flow", **options),
        fusion_weights=fusion_weights,
        guidance=guidance,
    )
