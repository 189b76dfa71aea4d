"""TSN segment sampling: which frames and flow fields a sample reads.

Axis legend: T segments, L flow fields per snippet (``new_length``), F frames in the video
(so F - 1 flow fields; field ``i`` is the motion from frame ``i`` to frame ``i + 1``).

A *snippet* is what one segment contributes: one RGB frame, and/or a stack of L
consecutive flow fields. The video's P valid snippet positions (P = F for RGB only,
P = F - L when flow is read, so that L fields fit) are split into T equal segments
``[k P / T, (k + 1) P / T)``:

- training (``random=True``): one position drawn uniformly in each segment;
- testing: the segment centre ``floor((k + 1/2) P / T)``; with ``num_clips = n`` views,
  view ``c`` takes ``floor((k + (c + 1/2) / n) P / T)``, n evenly spaced snippets per
  segment (``num_segments=25, num_clips=1`` is TSN's 25-snippet test).

A flow snippet at position ``s`` holds fields ``s, ..., s + L - 1`` (frames ``s`` to
``s + L``) and its RGB frame is ``s + L // 2``, the first frame of the middle field, so
RGB and flow of a segment are aligned (the RGB frame is the centre of the flow stack).

Short videos (documented rule): when P < T, segments share positions, segment k takes
``floor(k P / T)`` (train) or the centre rule above (test), so positions repeat in order
and never leave the video. When the video has fewer than L + 1 frames, P = 1 and the
field indices are clamped to the last field (``F - 2``), repeating it; RGB frames are
clamped to ``F - 1``. A video needs at least 1 frame (RGB) or 2 frames (flow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attnvideo._checks import check_positive_int

__all__ = ["SnippetPlan", "plan_snippets", "segment_positions"]


def segment_positions(
    num_positions: int,
    num_segments: int,
    *,
    random: bool = False,
    clip_index: int = 0,
    num_clips: int = 1,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Snippet start positions, one per segment, following TSN.

    Args:
        num_positions: P, the number of valid snippet positions in the video.
        num_segments: T, the number of segments.
        random: Draw a random position in each segment (training) instead of the
            evenly spaced test positions.
        clip_index: Which of the ``num_clips`` test views (ignored when ``random``).
        num_clips: Number of evenly spaced test views per segment.
        generator: Torch generator for the random draw (default: torch's global one,
            which ``DataLoader`` seeds differently in every worker).

    Shape:
        Returns ``(T,)``.

    Returns:
        Sorted int64 positions in ``[0, P)``.

    Example:
        >>> segment_positions(100, 4).tolist()  # segment centres
        [12, 37, 62, 87]
        >>> segment_positions(3, 5).tolist()  # a short video: positions repeat in order
        [0, 0, 1, 2, 2]
        >>> g = torch.Generator().manual_seed(0)
        >>> p = segment_positions(100, 4, random=True, generator=g)
        >>> all(25 * k <= p[k] < 25 * (k + 1) for k in range(4))
        True
    """
    num_positions = check_positive_int("num_positions", num_positions)
    num_segments = check_positive_int("num_segments", num_segments)
    num_clips = check_positive_int("num_clips", num_clips)
    if not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index: expected an int in [0, {num_clips}), got {clip_index!r}")
    k = np.arange(num_segments, dtype=np.int64)
    if random:
        start = (k * num_positions) // num_segments
        stop = np.maximum(start + 1, ((k + 1) * num_positions) // num_segments)
        u = torch.rand(num_segments, generator=generator, dtype=torch.float64).numpy()
        return np.minimum(start + np.floor(u * (stop - start)).astype(np.int64), stop - 1)
    # (k + (c + 1/2) / n) * P / T in exact integer arithmetic: ((2kn + 2c + 1) P) // (2nT).
    numer = (2 * k * num_clips + 2 * clip_index + 1) * num_positions
    return numer // (2 * num_clips * num_segments)


@dataclass(frozen=True)
class SnippetPlan:
    """The frames and flow fields one sample reads.

    Attributes:
        rgb_frames: ``(T,)`` 0-based frame index of each segment's RGB frame.
        flow_fields: ``(T, L)`` 0-based flow field indices of each segment's stack, or
            None when no flow is read.
    """

    rgb_frames: np.ndarray
    flow_fields: np.ndarray | None


def plan_snippets(
    num_frames: int,
    num_segments: int,
    new_length: int = 5,
    *,
    flow: bool = True,
    random: bool = False,
    clip_index: int = 0,
    num_clips: int = 1,
    generator: torch.Generator | None = None,
) -> SnippetPlan:
    """Plan a TSN sample: RGB frame and flow stack of each segment, aligned.

    Args:
        num_frames: F, frames in the video.
        num_segments: T.
        new_length: L, flow fields per snippet.
        flow: Whether the sample reads flow (changes the valid positions to F - L).
        random: Training-time random snippet per segment.
        clip_index: Test view index (see :func:`segment_positions`).
        num_clips: Number of test views.
        generator: Torch generator for the random draw.

    Returns:
        A :class:`SnippetPlan`.

    Raises:
        ValueError: Too few frames (0, or 1 when flow is read) or a bad argument.

    Example:
        >>> plan = plan_snippets(30, 3, 5)
        >>> plan.rgb_frames.tolist(), plan.flow_fields[0].tolist()
        ([6, 14, 22], [4, 5, 6, 7, 8])
    """
    num_frames = check_positive_int("num_frames", num_frames)
    new_length = check_positive_int("new_length", new_length)
    if flow and num_frames < 2:
        raise ValueError(f"num_frames: flow needs at least 2 frames, got {num_frames}")
    positions_count = max(num_frames - new_length, 1) if flow else num_frames
    positions = segment_positions(
        positions_count,
        num_segments,
        random=random,
        clip_index=clip_index,
        num_clips=num_clips,
        generator=generator,
    )
    if not flow:
        return SnippetPlan(positions, None)
    fields = positions[:, None] + np.arange(new_length, dtype=np.int64)[None, :]
    rgb = np.minimum(positions + new_length // 2, num_frames - 1)
    return SnippetPlan(rgb, np.minimum(fields, num_frames - 2))
