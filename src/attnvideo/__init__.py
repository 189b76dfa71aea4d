"""attnvideo: STA-CNN spatial-temporal attention for video action recognition.

The three STA-CNN layers are drop-in ``nn.Module``s (:class:`TemporalSegmentAttention`,
:class:`FlowGuidedSpatialAttention`, :class:`GAPAuxLoss`) over the fused math in
:mod:`attnvideo.functional`; :func:`create_stacnn` wraps any timm backbone into an
STA-CNN stream or two-stream model. The video pipeline lives in :mod:`attnvideo.data`,
the attention figures in :mod:`attnvideo.viz`, and training and prediction in
:mod:`attnvideo.engine` (the commands ``attnvideo-train`` and ``attnvideo-predict``);
:func:`load_run` and :class:`Predictor` are re-exported here (imported on first use).

Example:
    >>> import torch, attnvideo
    >>> model = attnvideo.create_stacnn("test_resnet", num_classes=5, num_segments=3)
    >>> out = model(torch.randn(2, 3, 3, 64, 64), motion=torch.randn(2, 3, 10, 64, 64))
    >>> out.logits.shape, out.temporal_weights.shape
    (torch.Size([2, 5]), torch.Size([2, 3]))
"""

from .layers import (
    FlowGuidedSpatialAttention,
    GAPAuxLoss,
    GAPAuxOutput,
    SpatialAttentionOutput,
    TemporalAttentionOutput,
    TemporalSegmentAttention,
)
from .models import (
    STACNN,
    STACNNOutput,
    TwoStreamOutput,
    TwoStreamSTACNN,
    create_stacnn,
)

__version__ = "0.1.0"

_ENGINE = ("Predictor", "load_run")


def __getattr__(name: str):
    """``attnvideo.load_run`` and ``attnvideo.Predictor``, imported on first use."""
    if name in _ENGINE:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'attnvideo' has no attribute {name!r}")


__all__ = [
    "STACNN",
    "FlowGuidedSpatialAttention",
    "GAPAuxLoss",
    "GAPAuxOutput",
    "Predictor",
    "STACNNOutput",
    "SpatialAttentionOutput",
    "TemporalAttentionOutput",
    "TemporalSegmentAttention",
    "TwoStreamOutput",
    "TwoStreamSTACNN",
    "__version__",
    "create_stacnn",
    "load_run",
]
