"""Any timm model as a feature-map backbone, and input adaptation for stacked flow.

Axis legend: ``n`` snippets (``B * T``), ``c`` channels, ``h w`` feature-map height and
width, ``l`` tokens, ``k`` input channels of the first convolution, ``o`` its filters.
"""

from __future__ import annotations

import math
import re
from typing import Literal

import timm
import torch
from einops import rearrange, repeat
from timm.models import adapt_input_conv
from torch import Tensor, nn

from .._checks import check_dim, check_floating, describe, tracing

__all__ = ["FeatureMapBackbone", "FlowInit", "adapt_input_channels", "find_first_conv"]

FlowInit = Literal["mean", "repeat"]
_FLOW_INITS = ("mean", "repeat")
# Words in the errors torch/timm raise when a frame is too small or not the fixed size.
_SIZE_HINTS = re.compile(r"size|value per channel|divisible|doesn't match|smaller", re.I)


def model_name(model: nn.Module) -> str:
    """The timm architecture name of ``model`` (its class name when it has none)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def find_first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first convolution of a timm model: the one its ``pretrained_cfg`` names.

    Falls back to the first ``nn.Conv2d`` in registration order when the config names
    none (a model built outside timm's factory).

    Args:
        model: A timm model.

    Returns:
        The dotted name of the convolution and the module itself.

    Example:
        >>> import timm
        >>> name, conv = find_first_conv(timm.create_model("test_resnet"))
        >>> name, conv.in_channels
        ('conv1.0', 3)
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("first_conv") or []
    for name in [names] if isinstance(names, str) else list(names):
        try:
            conv = model.get_submodule(name)
        except AttributeError:
            continue
        if isinstance(conv, nn.Conv2d):
            return name, conv
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"model: {model_name(model)!r} has no nn.Conv2d input layer to adapt")


@torch.no_grad()
def adapt_input_channels(model: nn.Module, in_chans: int, init: FlowInit = "mean") -> nn.Module:
    """Give a 3-channel timm model a first convolution for ``in_chans`` inputs, in place.

    ``"mean"`` is TSN's cross-modality initialisation: every new input channel gets the
    mean of the RGB filters over their input channels. ``"repeat"`` is timm's
    :func:`timm.models.adapt_input_conv`: the RGB filters repeated cyclically and scaled
    by ``3 / in_chans``. Both keep the response to a constant input of the same per-channel
    value (up to the scale), so ImageNet features stay useful for optical flow.

    Args:
        model: A timm model whose first convolution takes 3 channels.
        in_chans: The new number of input channels (``2L`` for ``L`` stacked flow fields).
        init: ``"mean"`` (TSN) or ``"repeat"`` (timm).

    Returns:
        ``model``, modified in place.

    Example:
        >>> import timm
        >>> model = timm.create_model("test_resnet")
        >>> rgb = find_first_conv(model)[1].weight.clone()
        >>> conv = find_first_conv(adapt_input_channels(model, 10, "mean"))[1]
        >>> conv.in_channels, bool(torch.equal(conv.weight[:, 7], rgb.mean(1)))
        (10, True)
    """
    if init not in _FLOW_INITS:
        raise ValueError(f"flow_init: expected one of {_FLOW_INITS}, got {init!r}")
    if not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1:
        raise ValueError(f"in_chans: expected a positive int, got {describe(in_chans)}")
    name, conv = find_first_conv(model)
    if conv.in_channels == in_chans:
        return model
    if conv.groups != 1 or conv.in_channels != 3:
        raise ValueError(
            f"model: first convolution {name!r} of {model_name(model)!r} takes "
            f"{conv.in_channels} channels (groups={conv.groups}); expected a 3-channel RGB "
            f"convolution to adapt to {in_chans} channels"
        )
    weight = conv.weight
    if init == "mean":
        new = repeat(weight.mean(dim=1), "o kh kw -> o k kh kw", k=in_chans)
    else:
        new = adapt_input_conv(in_chans, weight)
    conv.weight = nn.Parameter(new.contiguous(), requires_grad=weight.requires_grad)
    conv.in_channels = in_chans
    return model


class FeatureMapBackbone(nn.Module):
    """A timm model that returns its last spatial feature map, ``(N, C, h, w)``.

    Works for every timm family: NCHW CNNs as they are; NHWC models (``output_fmt``, e.g.
    Swin, MambaOut) permuted; token models (ViT, DeiT, EVA, LeViT) with their prefix
    tokens (class, distillation, registers) dropped and the patch grid folded back.
    Hierarchical transformers (MaxViT, CoAtNet) already give NCHW maps. The classifier
    head is removed (``reset_classifier(0)``); ``forward_features`` gives the map.

    Args:
        model: A timm model (``timm.create_model(...)``).

    Attributes:
        num_features: Channels ``C`` of the map, read from the model.
        name: The timm architecture name, used in error messages.

    Shape:
        - x: ``(N, in_chans, H, W)``
        - output: ``(N, C, h, w)``

    Example:
        >>> import timm
        >>> backbone = FeatureMapBackbone(timm.create_model("test_vit"))
        >>> backbone(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 64, 4, 4])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module) or not callable(
            getattr(model, "forward_features", None)
        ):
            raise TypeError(
                f"backbone: expected a timm model (an nn.Module with forward_features), "
                f"got {describe(model)}"
            )
        if callable(getattr(model, "reset_classifier", None)):
            model.reset_classifier(0)
        self.model = model
        self.name = model_name(model)
        self.num_features = int(model.num_features)
        self.nhwc = str(getattr(model, "output_fmt", "NCHW")) in ("NHWC", "Format.NHWC")
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0) or 0)

    @property
    def patch_embed(self) -> nn.Module | None:
        """The model's timm ``PatchEmbed`` (token models), else None."""
        patch_embed = getattr(self.model, "patch_embed", None)
        return patch_embed if hasattr(patch_embed, "dynamic_feat_size") else None

    @property
    def in_chans(self) -> int:
        """Input channels of the first convolution."""
        return find_first_conv(self.model)[1].in_channels

    def fixed_input_size(self) -> tuple[int, int] | None:
        """The only frame size the model takes, or None when it takes several."""
        pe = self.patch_embed
        if pe is None or pe.img_size is None or getattr(self.model, "dynamic_img_size", False):
            return None
        return tuple(pe.img_size) if pe.strict_img_size else None

    def extra_repr(self) -> str:
        """The model name and channel count shown by ``repr``."""
        return f"name={self.name!r}, num_features={self.num_features}"

    def forward(self, x: Tensor) -> Tensor:
        """The last feature map of ``x``."""
        check_floating("x", x, "(N, C, H, W)")
        check_dim("x", x, {4: "(N, C, H, W)"})
        size = tuple(x.shape[-2:])
        fixed = self.fixed_input_size()
        if fixed is not None and size != fixed:
            raise ValueError(
                f"x: backbone {self.name!r} takes frames of exactly {fixed[0]}x{fixed[1]}, "
                f"got shape {tuple(x.shape)}; build it with img_size={size} or "
                f"dynamic_img_size=True (a timm keyword) to use other sizes"
            )
        feats = self.model.forward_features(x) if tracing() else self._features(x)
        return self._to_map(feats, size)

    def _features(self, x: Tensor) -> Tensor:
        try:
            return self.model.forward_features(x)
        except (RuntimeError, ValueError, AssertionError) as err:
            if not _SIZE_HINTS.search(str(err)):
                raise
            raise ValueError(
                f"x: frames of {x.shape[-2]}x{x.shape[-1]} (shape {tuple(x.shape)}) look too "
                f"small for backbone {self.name!r}, whose default input is "
                f"{_default_size(self.model)}; it failed with: {err}"
            ) from err

    def _to_map(self, feats: Tensor, size: tuple[int, int]) -> Tensor:
        if not torch.is_tensor(feats):
            raise ValueError(
                f"backbone: {self.name!r} gives {describe(feats)} from forward_features; "
                f"STA-CNN needs one spatial feature map (N, C, h, w) or tokens (N, L, C)"
            )
        if feats.ndim == 4:
            return rearrange(feats, "n h w c -> n c h w") if self.nhwc else feats
        if feats.ndim == 3:
            tokens = feats[:, self.num_prefix_tokens :]
            h, w = self._grid(tokens.shape[1], size)
            return rearrange(tokens, "n (h w) c -> n c h w", h=h, w=w)
        raise ValueError(
            f"backbone: {self.name!r} gives features of shape {tuple(feats.shape)} from "
            f"forward_features, not a spatial map (N, C, h, w) or tokens (N, L, C); "
            f"STA-CNN needs a spatial feature map"
        )

    def _grid(self, tokens: int, size: tuple[int, int]) -> tuple[int, int]:
        if self.patch_embed is not None:
            h, w = self.patch_embed.dynamic_feat_size(size)
            if h * w == tokens:
                return h, w
        # No patch embed to ask (e.g. LeViT): the grid keeps the frame's aspect ratio.
        h = max(1, round(math.sqrt(tokens * size[0] / size[1])))
        if tokens % h:
            raise ValueError(
                f"backbone: cannot fold {tokens} tokens of {self.name!r} back into a grid "
                f"with the aspect ratio of {size[0]}x{size[1]} frames"
            )
        return h, tokens // h


def _default_size(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = cfg.get("input_size", (3, 224, 224))
    return f"{size[-2]}x{size[-1]}"


def create_backbone(
    backbone: str | nn.Module, *, pretrained: bool = False, **timm_kwargs
) -> nn.Module:
    """Build a timm model by name (or pass a built one through), without its classifier.

    With ``pretrained=True`` and no way to fetch the weights (offline, not cached) the
    error says so and names the model.
    """
    if isinstance(backbone, nn.Module):
        if pretrained or timm_kwargs:
            raise ValueError(
                f"backbone: pretrained / timm keyword arguments only apply to a model name, "
                f"got a built {type(backbone).__name__} with pretrained={pretrained}, "
                f"kwargs {sorted(timm_kwargs)}"
            )
        return backbone
    if not isinstance(backbone, str):
        raise TypeError(
            f"backbone: expected a timm model name or nn.Module, got {describe(backbone)}"
        )
    if not timm.is_model(backbone):
        close = timm.list_models(f"*{backbone.split('.')[0][:8]}*")[:8]
        raise ValueError(f"backbone: unknown timm model {backbone!r}; similar names: {close}")
    timm_kwargs.setdefault("num_classes", 0)
    if not pretrained:
        return timm.create_model(backbone, pretrained=False, **timm_kwargs)
    try:
        return timm.create_model(backbone, pretrained=True, **timm_kwargs)
    except (OSError, RuntimeError, ValueError) as err:
        raise RuntimeError(
            f"pretrained: could not load the pretrained weights of {backbone!r} "
            f"({type(err).__name__}: {err}). They are fetched from the Hugging Face Hub "
            f"(cache: $HF_HOME, default ~/.cache/huggingface) or torch hub ($TORCH_HOME); "
            f"offline (HF_HUB_OFFLINE=1 or no network) they must already be cached. "
            f"Download them once with network access, or pass pretrained=False."
        ) from err
