"""The three STA-CNN layers: temporal attention, flow-guided spatial attention, aux GAP loss.

Each is a thin ``nn.Module`` that holds parameters, validates its inputs and calls the
math in :mod:`attnvideo.functional`.
"""

from .gap_aux import GAPAuxLoss, GAPAuxOutput
from .spatial import FlowGuidedSpatialAttention, SpatialAttentionOutput
from .temporal import TemporalAttentionOutput, TemporalSegmentAttention

__all__ = [
    "FlowGuidedSpatialAttention",
    "GAPAuxLoss",
    "GAPAuxOutput",
    "SpatialAttentionOutput",
    "TemporalAttentionOutput",
    "TemporalSegmentAttention",
]
