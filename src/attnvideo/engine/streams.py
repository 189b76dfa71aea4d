"""Building the model of a stream: its architecture record, pretrained weights, offline checks.

:class:`ModelSpec` is what a finished stream records (``done.json`` ``"model"``, and the
run's ``run.json``): enough to rebuild the network anywhere with ``pretrained=False`` and
load its weights.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..models import STACNN, create_stacnn
from .config import StreamSpec, TrainConfig

__all__ = ["ModelSpec", "OfflineError", "check_pretrained_available"]


class OfflineError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


@dataclass(frozen=True)
class ModelSpec:
    """The architecture of one trained stream: the arguments of :func:`~attnvideo.create_stacnn`.

    Attributes:
        backbone: The timm model name.
        num_classes: Number of classes.
        modality: ``"rgb"`` or ``"flow"``.
        num_segments: T in training.
        new_length: L flow fields per snippet.
        temporal_attention: Learned temporal attention.
        spatial_attention: Flow-guided spatial attention (RGB only).
        aux_weight: Weight of the aux GAP loss.
        dropout: Dropout before the classifier (None: TSN's per-modality default).
        partial_bn: TSN's partial batch norm.

    Example:
        >>> spec = ModelSpec("test_resnet", 3, "flow", 2, 1, True, False, 0.5, None, False)
        >>> model = spec.build()
        >>> model.modality, model.in_chans, ModelSpec.from_dict(spec.to_dict()) == spec
        ('flow', 2, True)
    """

    backbone: str
    num_classes: int
    modality: str
    num_segments: int
    new_length: int
    temporal_attention: bool
    spatial_attention: bool
    aux_weight: float
    dropout: float | None
    partial_bn: bool

    @classmethod
    def of(cls, cfg: TrainConfig, spec: StreamSpec, num_classes: int) -> ModelSpec:
        """The architecture of ``spec``'s stream in the run ``cfg``."""
        return cls(
            backbone=cfg.backbone,
            num_classes=num_classes,
            modality=spec.stream,
            num_segments=cfg.num_segments,
            new_length=cfg.new_length,
            temporal_attention=spec.temporal_attention,
            spatial_attention=spec.spatial_attention,
            aux_weight=cfg.aux_weight,
            dropout=cfg.dropout,
            partial_bn=cfg.partial_bn,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The spec saved by :meth:`to_dict`."""
        return cls(**data)

    def build(self, *, pretrained: bool = False, pretrained_file: str | None = None) -> STACNN:
        """The stream's network (random init, timm's pretrained weights, or a weights file).

        Args:
            pretrained: Start the backbone from timm's pretrained weights.
            pretrained_file: Or from this local file (timm's ``pretrained_cfg_overlay``);
                a flow stream's first convolution then gets TSN's cross-modality init.
        """
        kwargs: dict[str, Any] = {}
        if pretrained_file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
            pretrained = True
        model = create_stacnn(
            self.backbone,
            self.num_classes,
            num_segments=self.num_segments,
            modality=self.modality,  # type: ignore[arg-type]
            new_length=self.new_length,
            temporal_attention=self.temporal_attention,
            spatial_attention=self.spatial_attention,
            aux_weight=self.aux_weight,
            dropout=self.dropout,
            partial_bn=self.partial_bn,
            pretrained=pretrained,
            **kwargs,
        )
        assert isinstance(model, STACNN)
        return model


def check_pretrained_available(backbone: str, *, hint: str) -> None:
    """Raise at once when timm's weights for ``backbone`` are neither cached nor reachable.

    Args:
        backbone: The timm model name.
        hint: What the user can do instead (it names only flags the user can give).

    Raises:
        OfflineError: No cached weights and no network; names where it looked.
        ValueError: timm has no pretrained weights for ``backbone``.
    """
    import timm
    from huggingface_hub import constants, try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None:
        raise ValueError(f"pretrained: timm has no pretrained weights for {backbone!r}; {hint}")
    hub_id = cfg.hf_hub_id
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        names = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
        for name in names:
            found = try_to_load_from_cache(repo, name, revision=revision or None)
            if isinstance(found, str):
                return
        where = f"the Hugging Face cache {constants.HF_HUB_CACHE} (repo {repo}, files {names})"
    else:
        torch_hub = Path(torch.hub.get_dir()) / "checkpoints"
        url = cfg.url or ""
        if url and (torch_hub / os.path.basename(url)).is_file():
            return
        where = f"{torch_hub} (file {os.path.basename(url) or '?'})"
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or not _online()
    if offline:
        raise OfflineError(
            f"pretrained weights: no cached weights for {backbone!r} and no network. Looked "
            f"in {where}. Download them once on a machine with network "
            f"(python -c \"import timm; timm.create_model('{backbone}', pretrained=True)\") "
            f"and copy the cache; {hint}."
        )


def _online(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
