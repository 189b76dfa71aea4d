"""Evaluation: view averaging, clip/video/mean-class accuracy, top-k, fusion.

The two streams are evaluated apart and fused afterwards.

The per-video score is the mean of the logits of its views (crops folded into the batch,
clips of a video gathered over all processes), before softmax, as TSN's test script does.
Fusion is :func:`attnvideo.functional.fuse_streams`, the rule
:class:`~attnvideo.TwoStreamSTACNN` uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from einops import rearrange, reduce
from tqdm.auto import tqdm

from ..data import GroupNormalize
from ..functional import fuse_streams
from .distributed import DistEnv, all_gather_objects

__all__ = [
    "autocast",
    "compute_metrics",
    "evaluate",
    "fuse_scores",
    "model_inputs",
    "wilson_interval",
]

_AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` ``"off"``, ``"bf16"`` or ``"fp16"``."""
    dtype = _AMP.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def model_inputs(
    batch: dict[str, Any], stream: str, device: torch.device, normalize: GroupNormalize
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """``(x, motion, crops)`` of a stream, normalised on the device.

    Test crops ``(B, n, T, C, H, W)`` fold into the batch (``(B n) T C H W``); the RGB
    stream's motion is the batch's flow when it has one (the flow that guides the spatial
    attention).

    Example:
        >>> batch = {"rgb": torch.zeros(2, 10, 3, 3, 8, 8, dtype=torch.uint8)}
        >>> x, motion, crops = model_inputs(batch, "rgb", torch.device("cpu"), GroupNormalize())
        >>> x.shape, motion, crops
        (torch.Size([20, 3, 3, 8, 8]), None, 10)
    """
    images = {k: batch[k].to(device, non_blocking=True) for k in ("rgb", "flow") if k in batch}
    images = normalize(images)
    x = images[stream]
    motion = images["flow"] if stream == "rgb" and "flow" in images else None
    crops = 1
    if x.ndim == 6:  # (B, crops, T, C, H, W) from a multi-crop test transform
        crops = x.shape[1]
        x = rearrange(x, "b n t c h w -> (b n) t c h w")
        if motion is not None:
            motion = rearrange(motion, "b n t c h w -> (b n) t c h w")
    return x, motion, crops


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    env: DistEnv,
    *,
    stream: str,
    num_videos: int,
    num_classes: int,
    normalize: GroupNormalize,
    chunk_frames: int | None = None,
    amp: str = "off",
    desc: str = "",
) -> dict[str, torch.Tensor]:
    """Clip and video scores; every test item is counted exactly once over all processes.

    Args:
        model: An STA-CNN stream.
        loader: Test batches (this process's shard).
        env: The processes.
        stream: ``"rgb"`` or ``"flow"``.
        num_videos: Videos in the test set.
        num_classes: Number of classes.
        normalize: The dataset's ``normalize``.
        chunk_frames: The model's ``chunk_frames`` (bounds memory; same logits).
        amp: ``"off"``, ``"bf16"`` or ``"fp16"``.
        desc: Progress bar label.

    Returns:
        ``video_logits`` (mean over clips and crops, before softmax: TSN), ``video_labels``,
        ``clip_logits`` and ``clip_labels``.
    """
    model.eval()
    logits, indices, labels = [], [], []
    for batch in tqdm(loader, desc=desc, disable=not env.is_main, leave=False, dynamic_ncols=True):
        x, motion, crops = model_inputs(batch, stream, env.device, normalize)
        with autocast(env.device, amp):
            out = model(x, motion=motion, chunk_frames=chunk_frames)
        z = reduce(out.logits.float(), "(b n) k -> b k", "mean", n=crops)
        logits.append(z.cpu())
        indices.append(batch["video_index"].cpu())
        labels.append(batch["label"].cpu())
    local = (
        torch.cat(logits) if logits else torch.zeros(0, num_classes),
        torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long),
        torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long),
    )
    gathered = all_gather_objects(local, env)  # shards are disjoint: no padding to drop
    clip_logits = torch.cat([g[0] for g in gathered])
    clip_video = torch.cat([g[1] for g in gathered])
    clip_labels = torch.cat([g[2] for g in gathered])
    order = torch.argsort(clip_video * (len(clip_video) + 1) + torch.arange(len(clip_video)))
    clip_logits, clip_video, clip_labels = clip_logits[order], clip_video[order], clip_labels[order]
    video_logits = torch.zeros(num_videos, num_classes, dtype=torch.float64)
    counts = torch.zeros(num_videos, dtype=torch.float64)
    video_logits.index_add_(0, clip_video, clip_logits.double())
    counts.index_add_(0, clip_video, torch.ones_like(clip_video, dtype=torch.float64))
    video_labels = torch.full((num_videos,), -1, dtype=torch.long)
    video_labels[clip_video] = clip_labels
    seen = counts > 0
    video_logits[seen] /= counts[seen, None]
    return {
        "video_logits": video_logits[seen],
        "video_labels": video_labels[seen],
        "clip_logits": clip_logits,
        "clip_labels": clip_labels,
    }


def compute_metrics(scores: dict[str, torch.Tensor], num_classes: int) -> dict[str, float]:
    """Video top-1/top-5, mean class accuracy (TSN's eval scripts) and clip accuracy, in %.

    Example:
        >>> z = torch.tensor([[2.0, 1.0], [2.0, 1.0], [0.0, 1.0]])
        >>> y = torch.tensor([0, 1, 1])
        >>> m = compute_metrics({"video_logits": z, "video_labels": y,
        ...                      "clip_logits": z, "clip_labels": y}, 2)
        >>> round(m["top1"], 2), m["mean_class_accuracy"], m["top5"], m["num_videos"]
        (66.67, 75.0, 100.0, 3)
        >>> m["correct"], tuple(round(v, 1) for v in m["top1_wilson95"])
        (2, (20.8, 93.9))
    """
    z, y = scores["video_logits"], scores["video_labels"]
    k = min(5, num_classes)
    topk = z.topk(k, dim=1).indices
    top1 = (topk[:, 0] == y).double()
    top5 = (topk == y[:, None]).any(dim=1).double()
    per_class = [top1[y == c].mean().item() for c in range(num_classes) if (y == c).any()]
    clip = (scores["clip_logits"].argmax(1) == scores["clip_labels"]).double()
    correct = int(top1.sum().item())
    return {
        "top1": 100.0 * top1.mean().item(),
        "top5": 100.0 * top5.mean().item(),
        "mean_class_accuracy": 100.0 * float(np.mean(per_class)),
        "clip_accuracy": 100.0 * clip.mean().item(),
        "num_videos": len(y),
        "correct": correct,
        "top1_wilson95": list(wilson_interval(correct, len(y))),
    }


def wilson_interval(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of an accuracy of ``correct`` of ``n`` test videos, in %.

    The binomial interval of one run's accuracy on its test set: what the test set's
    size alone allows, not the spread over training seeds (which is larger).

    Raises:
        ValueError: ``n < 1`` or ``correct`` outside ``0..n``.

    Example:
        >>> tuple(round(v, 1) for v in wilson_interval(200, 400))
        (45.1, 54.9)
    """
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"correct, n: expected 0 <= correct <= n and n >= 1, got {correct}, {n}")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def fuse_scores(
    rgb: dict[str, torch.Tensor], flow: dict[str, torch.Tensor], weights: tuple[float, float]
) -> dict[str, torch.Tensor]:
    """TSN's two-stream score of streams evaluated apart, per clip and per video.

    Raises:
        ValueError: The two streams were evaluated on different test sets.

    Example:
        >>> y = torch.tensor([0, 1])
        >>> rgb = {"video_logits": torch.eye(2), "video_labels": y,
        ...        "clip_logits": torch.eye(2), "clip_labels": y}
        >>> flow = {**rgb, "video_logits": torch.ones(2, 2)}
        >>> fuse_scores(rgb, flow, (1.0, 1.5))["video_logits"]
        tensor([[2.5000, 1.5000],
                [1.5000, 2.5000]])
    """
    if not torch.equal(rgb["video_labels"], flow["video_labels"]):
        raise ValueError("rgb and flow test sets differ: cannot fuse")
    return {
        "video_logits": fuse_streams(rgb["video_logits"], flow["video_logits"], weights),
        "video_labels": rgb["video_labels"],
        "clip_logits": fuse_streams(rgb["clip_logits"], flow["clip_logits"], weights),
        "clip_labels": rgb["clip_labels"],
    }
