"""Video data for TSN-style training: datasets, sampling, decoding, transforms, flow.

Also the synthetic action dataset.

Every public name of the submodules is re-exported here (``attnvideo.data.UCF101``,
``attnvideo.data.train_transform``, ``attnvideo.data.compute_flow``, ...). See the "Data"
guide for formats, sampling rules and examples.
"""

from .audit import AUDIT_STATUSES, AuditReport, AuditResult, audit_dataset, audit_video
from .datasets import HMDB51, MODALITIES, UCF101, VideoDataset, VideoList
from .flow import (
    DIS_PRESETS,
    FLOW_METHODS,
    VIDEO_EXTENSIONS,
    PrecomputeReport,
    compute_flow,
    export_frame_folder,
    flow_cache_path,
    load_or_compute_flow,
    precompute_flow,
    read_video,
    save_flow,
)
from .sampling import SnippetPlan, plan_snippets, segment_positions
from .splits import (
    SplitFormatError,
    VideoRecord,
    read_class_index,
    read_hmdb51_split,
    read_ucf101_split,
    read_video_list,
)
from .synthetic import (
    MOTIONS,
    SyntheticClip,
    SyntheticConfig,
    SyntheticInfo,
    make_synthetic_actions,
    render_action,
)
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    GroupCenterCrop,
    GroupCompose,
    GroupMultiScaleCrop,
    GroupNormalize,
    GroupRandomHorizontalFlip,
    GroupResize,
    GroupTenCrop,
    GroupThreeCrop,
    test_transform,
    train_transform,
)
from .video import (
    ReadStats,
    VideoDecodeError,
    VideoProbe,
    count_folder_frames,
    iter_frames,
    probe_video,
    read_flow_folder,
    read_frame_folder,
    read_frames,
    scaled_size,
)

# The command-line entry points ``main`` stay in attnvideo.data.flow and attnvideo.data.audit.
__all__ = [
    "AUDIT_STATUSES",
    "DIS_PRESETS",
    "FLOW_METHODS",
    "HMDB51",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODALITIES",
    "MOTIONS",
    "UCF101",
    "VIDEO_EXTENSIONS",
    "AuditReport",
    "AuditResult",
    "GroupCenterCrop",
    "GroupCompose",
    "GroupMultiScaleCrop",
    "GroupNormalize",
    "GroupRandomHorizontalFlip",
    "GroupResize",
    "GroupTenCrop",
    "GroupThreeCrop",
    "PrecomputeReport",
    "ReadStats",
    "SnippetPlan",
    "SplitFormatError",
    "SyntheticClip",
    "SyntheticConfig",
    "SyntheticInfo",
    "VideoDataset",
    "VideoDecodeError",
    "VideoList",
    "VideoProbe",
    "VideoRecord",
    "audit_dataset",
    "audit_video",
    "compute_flow",
    "count_folder_frames",
    "export_frame_folder",
    "flow_cache_path",
    "iter_frames",
    "load_or_compute_flow",
    "make_synthetic_actions",
    "plan_snippets",
    "precompute_flow",
    "probe_video",
    "read_class_index",
    "read_flow_folder",
    "read_frame_folder",
    "read_frames",
    "read_hmdb51_split",
    "read_ucf101_split",
    "read_video",
    "read_video_list",
    "render_action",
    "save_flow",
    "scaled_size",
    "segment_positions",
    "test_transform",
    "train_transform",
]
