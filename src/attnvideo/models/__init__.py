"""STA-CNN models over any timm backbone: streams, two-stream fusion, param groups.

The backbone adapter (:class:`FeatureMapBackbone`) turns any timm model into a
``(N, C, h, w)`` feature map; :class:`STACNN` is one TSN stream with STA-CNN's attention;
:class:`TwoStreamSTACNN` fuses an RGB and a flow stream; :func:`create_stacnn` builds
either in one line.
"""

from .backbone import FeatureMapBackbone, adapt_input_channels, find_first_conv
from .params import batch_norms, freeze_partial_bn, param_groups
from .stacnn import (
    STACNN,
    AverageConsensus,
    STACNNOutput,
    TwoStreamOutput,
    TwoStreamSTACNN,
    create_stacnn,
    has_spatial_attention,
)

__all__ = [
    "STACNN",
    "AverageConsensus",
    "FeatureMapBackbone",
    "STACNNOutput",
    "TwoStreamOutput",
    "TwoStreamSTACNN",
    "adapt_input_channels",
    "batch_norms",
    "create_stacnn",
    "find_first_conv",
    "freeze_partial_bn",
    "has_spatial_attention",
    "param_groups",
]
