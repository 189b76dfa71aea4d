"""attnvideo: STA-CNN spatial-temporal attention for video action recognition.

The three STA-CNN layers are drop-in ``nn.Module``s (:class:`TemporalSegmentAttention`,
:class:`FlowGuidedSpatialAttention`, :class:`GAPAuxLoss`) over the fused math in
:mod:`attnvideo.functional`; :func:`create_stacnn` wraps any timm backbone into an
STA-CNN stream or two-stream model. The video pipeline lives in :mod:`attnvideo.data`
and the attention figures in :mod:`attnvideo.viz`.

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

__all__ = [
    "STACNN",
    "FlowGuidedSpatialAttention",
    "GAPAuxLoss",
    "GAPAuxOutput",
    "STACNNOutput",
    "SpatialAttentionOutput",
    "TemporalAttentionOutput",
    "TemporalSegmentAttention",
    "TwoStreamOutput",
    "TwoStreamSTACNN",
    "__version__",
    "create_stacnn",
]
