"""Synthetic actions: a small video dataset, built in, on which attention matters.

:func:`make_synthetic_actions` writes real encoded videos with UCF-101's folder layout and
split files, so the default training run goes through exactly the code path of a real
dataset (decoding, TSN sampling, flow computation), plus the exact motion of every pixel
(ground-truth optical flow), so flow quality can be measured.

Each clip shows a textured **actor** (a disc) that performs its class's motion only during
a short **action window** at a random time (``action_fraction`` of the clip: 1-2 of 8 TSN
segments by default) and stands still otherwise. **Distractors** (textured squares)
move all through the clip with motions drawn from the *same* repertoire as the classes,
independently of the label, so a segment without the action looks, to a per-segment
classifier, like some other class: averaging segment scores (TSN's consensus) mixes the
one informative segment with several confusing ones, while temporal attention can pick
it. A shaky **camera** (global translation) can be added, and a static **context cue**
(a striped, coloured patch in the corner farthest from the actor) names the class with a
given reliability: a discriminative *non-motion* region for the GAP auxiliary loss.

Axis legend: ``F`` frames, ``H`` x ``W`` pixels, ``2`` = flow (x, y) in pixels.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MOTIONS",
    "SyntheticClip",
    "SyntheticConfig",
    "SyntheticInfo",
    "make_synthetic_actions",
    "render_action",
]

MOTIONS: tuple[str, ...] = (
    "MoveRight",
    "MoveLeft",
    "MoveUp",
    "MoveDown",
    "SpinClockwise",
    "SpinCounterclockwise",
    "ZoomIn",
    "ZoomOut",
    "ShakeHorizontal",
    "ShakeVertical",
    "MoveUpRight",
    "MoveDownLeft",
    "MoveUpLeft",
    "MoveDownRight",
    "CircleClockwise",
    "CircleCounterclockwise",
)
"""The motion repertoire; class ``k`` of a dataset is ``MOTIONS[k]`` (its class name)."""

_FORMAT_VERSION = 2  # bump when the same config renders different data
_GROUPS = 25  # UCF-101 has 25 groups (actors/scenes) per class; split k tests 7(k-1)+1..7k.
# Clip j of a class goes to group _GROUP_ORDER[j % 25] (clip number j // 25 + 1): the order
# visits the three test splits in turn, so every split tests about 7/25 of any class size.
_GROUP_ORDER = (
    1,
    8,
    15,
    22,
    2,
    9,
    16,
    23,
    3,
    10,
    17,
    24,
    4,
    11,
    18,
    25,
    5,
    12,
    19,
    6,
    13,
    20,
    7,
    14,
    21,
)
_CONFIG_FILE = "synthetic.json"
_GOP = 12  # keyframe interval of the written videos


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic action dataset (all sizes in pixels and frames).

    Attributes:
        num_classes: Number of action classes (at most ``len(MOTIONS)`` = 16).
        videos_per_class: Clips per class, spread over UCF's 25 groups so that each of
            the three splits tests about 7/25 of them.
        test_videos_per_class: Test clips per class in split 1, at least (0 = only the
            ``videos_per_class`` clips' share). Clips ``videos_per_class, ...`` of split 1's
            test groups (1-7) are added until a class has this many; they are listed only
            in ``testlist01.txt``, so training (every split's) is that of the dataset
            without them. Sizes the test split alone: 40 per class (400 clips for 10
            classes) puts one accuracy's binomial standard error at <= 2.5 points.
        num_frames: Frames per clip.
        size: Frame size ``(H, W)``, both even (video codecs need it).
        action_fraction: Fraction of the clip's frames in which the actor performs its
            class's motion (one window at a random time). 0.25 = 2 of 8 segments.
        distractors: Number of distractor objects, moving with random motions from the
            same repertoire all through the clip.
        camera_motion: Peak camera speed in pixels per frame (a smooth random shake of
            the whole scene); 0 = static camera.
        context_cue: Probability that the static corner cue shows the clip's own class
            (otherwise a random class's cue); 0 = no cue at all.
        noise: Standard deviation of per-pixel Gaussian noise added to every frame
            (0-255 scale).
        seed: Seed; the dataset is a deterministic function of the config.
        fps: Frame rate written in the video files.
        codec: ``"libx264"`` (default) or ``"mpeg4"``.
    """

    num_classes: int = 10
    videos_per_class: int = 30
    test_videos_per_class: int = 0
    num_frames: int = 32
    size: tuple[int, int] = (64, 64)
    action_fraction: float = 0.25
    distractors: int = 2
    camera_motion: float = 0.0
    context_cue: float = 0.6
    noise: float = 2.0
    seed: int = 0
    fps: int = 25
    codec: str = "libx264"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))

        def check(name: str, ok: bool, expected: str) -> None:
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")

        check("num_classes", 2 <= self.num_classes <= len(MOTIONS), f"2..{len(MOTIONS)}")
        check("videos_per_class", self.videos_per_class >= 1, "an integer >= 1")
        check("test_videos_per_class", self.test_videos_per_class >= 0, "an integer >= 0")
        check("num_frames", self.num_frames >= 4, "an integer >= 4")
        check(
            "size",
            len(self.size) == 2 and all(s >= 32 and s % 2 == 0 for s in self.size),
            "(H, W), both even and >= 32",
        )
        check("action_fraction", 0.0 < self.action_fraction <= 1.0, "a number in (0, 1]")
        check("distractors", self.distractors >= 0, "an integer >= 0")
        check("camera_motion", self.camera_motion >= 0.0, "a speed >= 0 (pixels/frame)")
        check("context_cue", 0.0 <= self.context_cue <= 1.0, "a probability in [0, 1]")
        check("noise", self.noise >= 0.0, "a standard deviation >= 0")
        check("fps", self.fps >= 1, "an integer >= 1")
        check("codec", self.codec in ("libx264", "mpeg4"), "'libx264' or 'mpeg4'")

    @property
    def classes(self) -> list[str]:
        """Class names in label order (``MOTIONS[:num_classes]``)."""
        return list(MOTIONS[: self.num_classes])

    @property
    def clip_indices(self) -> list[int]:
        """The clips of every class: ``0 .. videos_per_class - 1``, then the extra test clips.

        Example:
            >>> cfg = SyntheticConfig(videos_per_class=30, test_videos_per_class=40)
            >>> len(cfg.clip_indices), sum(_group_clip(j)[0] <= 7 for j in cfg.clip_indices)
            (61, 40)
        """
        indices = list(range(self.videos_per_class))
        tested = sum(_group_clip(j)[0] <= 7 for j in indices)
        j = self.videos_per_class
        while tested < self.test_videos_per_class:
            if _group_clip(j)[0] <= 7:
                indices.append(j)
                tested += 1
            j += 1
        return indices

    def locate(self, path: str | os.PathLike) -> tuple[int, int]:
        """``(label, index)`` of a clip of this dataset from its path, for :func:`render_action`.

        The inverse of the file naming: ``render_action(label, config, index=index)``
        renders again the clip that :func:`make_synthetic_actions` wrote at ``path``.

        Args:
            path: The video's path or name, ``[<Class>/]v_<Class>_gXX_cYY.avi``.

        Returns:
            The class index and the clip index within the class.

        Raises:
            ValueError: A name not of this form, or of no clip of this config.

        Example:
            >>> SyntheticConfig().locate("MoveLeft/v_MoveLeft_g08_c01.avi")
            (1, 1)
        """
        stem = Path(path).stem
        try:
            name, rest = stem.removeprefix("v_").rsplit("_g", 1)
            group, clip = (int(v) for v in rest.split("_c"))
            label = self.classes.index(name)
            index = (clip - 1) * _GROUPS + _GROUP_ORDER.index(group)
            found = index in self.clip_indices and Path(_video_name(name, index)).stem == stem
        except ValueError:
            found = False
        if not found:
            raise ValueError(
                f"path: expected the name of a clip of this dataset "
                f"(v_<Class>_gXX_cYY with a class among {self.classes}), got {str(path)!r}"
            )
        return label, index


class SyntheticClip(NamedTuple):
    """One rendered clip (before encoding).

    Attributes:
        frames: RGB frames, uint8 ``(F, H, W, 3)``.
        flow: Ground-truth forward flow in pixels, float32 ``(F - 1, 2, H, W)``: field ``i``
            maps frame ``i`` to ``i + 1`` (x, y), for the visible surface of frame ``i``.
        label: The class index.
        action_window: ``(start, stop)`` frames during which the actor performs the class
            motion (``stop`` exclusive).
        cue_label: The class whose context cue is shown, or -1 when there is none.
        actor_track: Where the actor is drawn, float32 ``(F, 3)``: centre ``x``, ``y`` and
            radius in pixels of frame ``i`` (screen coordinates, camera included; pixel
            ``(x, y)`` is covered when its centre lies within the radius).
        cue_box: Where the context cue is drawn, int ``(F, 4)``: ``x0, y0, x1, y1`` of
            frame ``i`` (``x1``, ``y1`` exclusive), or None when there is no cue.
    """

    frames: np.ndarray
    flow: np.ndarray
    label: int
    action_window: tuple[int, int]
    cue_label: int
    actor_track: np.ndarray | None = None
    cue_box: np.ndarray | None = None


@dataclass
class SyntheticInfo:
    """Where :func:`make_synthetic_actions` put things.

    Attributes:
        root: The dataset folder.
        video_root: ``root/videos``: pass to ``attnvideo.data.UCF101`` as ``root``.
        split_root: ``root/splits``: UCF-101 ``classInd.txt``, ``trainlist0k.txt``,
            ``testlist0k.txt`` (k = 1, 2, 3); pass as ``annotation_path``.
        gt_flow_root: ``root/gt_flow``: float16 ground-truth flow per video, at the
            video's relative path with suffix ``.npy``.
        annotations: ``root/annotations.json``: per video its label, group, clip, split-1
            role, action window and cue class.
        classes: Class names in label order.
        config: The generating config.
        num_videos: Number of clips.
        generated: False when an existing complete dataset was reused.
    """

    root: Path
    video_root: Path
    split_root: Path
    gt_flow_root: Path
    annotations: Path
    classes: list[str]
    config: SyntheticConfig
    num_videos: int
    generated: bool = field(default=True)


# --------------------------------------------------------------------------- motion


def _primitive_deltas(name: str, length: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame pose deltas ``(length, 4)``: dx, dy, dlog_scale, dangle for a motion."""
    d = np.zeros((length, 4))
    t = np.arange(length + 1, dtype=np.float64)
    speed = 0.035 * scale
    diag = speed / math.sqrt(2.0)
    moves = {
        "MoveRight": (speed, 0.0),
        "MoveLeft": (-speed, 0.0),
        "MoveUp": (0.0, -speed),
        "MoveDown": (0.0, speed),
        "MoveUpRight": (diag, -diag),
        "MoveDownLeft": (-diag, diag),
        "MoveUpLeft": (-diag, -diag),
        "MoveDownRight": (diag, diag),
    }
    if name in moves:
        d[:, :2] = moves[name]
    elif name in ("SpinClockwise", "SpinCounterclockwise"):
        # Image y points down, so a positive angle turns clockwise on screen.
        d[:, 3] = 0.25 if name == "SpinClockwise" else -0.25
    elif name in ("ZoomIn", "ZoomOut"):
        rate = math.log(2.0) / max(length, 4)  # doubles (halves) over the window
        d[:, 2] = rate if name == "ZoomIn" else -rate
    elif name in ("ShakeHorizontal", "ShakeVertical"):
        amp, period = 0.05 * scale, 6.0
        pos = amp * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
        d[:, 0 if name == "ShakeHorizontal" else 1] = np.diff(pos)
    elif name in ("CircleClockwise", "CircleCounterclockwise"):
        radius, omega = 0.08 * scale, 2 * math.pi / 10.0
        sign = 1.0 if name == "CircleClockwise" else -1.0
        phase = rng.uniform(0, 2 * math.pi)
        d[:, 0] = np.diff(radius * np.cos(sign * omega * t + phase))
        d[:, 1] = np.diff(radius * np.sin(sign * omega * t + phase))
    else:  # pragma: no cover - internal
        raise AssertionError(name)
    return d


def _integrate(start: np.ndarray, deltas: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Poses ``(len(deltas) + 1, 4)`` from per-frame deltas, reflecting at the bounds."""
    poses = np.empty((len(deltas) + 1, 4))
    poses[0] = start
    sign = np.ones(4)
    for i, delta in enumerate(deltas):
        nxt = poses[i] + sign * delta
        over, under = nxt > hi, nxt < lo
        nxt = np.where(over, 2 * hi - nxt, np.where(under, 2 * lo - nxt, nxt))
        sign = np.where(over | under, -sign, sign)
        poses[i + 1] = np.clip(nxt, lo, hi)
    return poses


# --------------------------------------------------------------------------- rendering


def _smooth_texture(
    rng: np.random.Generator, height: int, width: int, cell: float, base, contrast: float
) -> np.ndarray:
    """A random RGB texture (float32, 0-255) with a rough ``1/f`` spectrum.

    Blobs of about ``cell`` pixels plus two finer octaves at half the amplitude each, as
    natural images have detail at every scale (flow methods need it).
    """
    import cv2

    tex = np.zeros((height, width, 3), np.float32)
    for octave in range(3):
        size = max(2.0, cell / 2.5**octave)
        shape = (max(2, int(height / size) + 2), max(2, int(width / size) + 2), 3)
        small = rng.uniform(-1, 1, shape).astype(np.float32)
        tex += 0.5**octave * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.asarray(base, np.float32) + contrast * tex, 0, 255).astype(np.float32)


def _cue_patch(label: int, side: int) -> np.ndarray:
    """The context cue of a class: a coloured patch with class-specific stripes."""
    import colorsys

    hue = (label * 0.618034) % 1.0
    color = np.array(colorsys.hsv_to_rgb(hue, 0.9, 0.95)) * 255
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    angle = math.pi * (label % 4) / 4
    period = 3.0 + (label // 4) % 4
    stripes = np.cos(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period)
    patch = color[None, None, :] * (0.65 + 0.35 * stripes[..., None])
    return patch.astype(np.float32)


def _draw(
    frame: np.ndarray,
    flow: np.ndarray | None,
    grid: tuple[np.ndarray, np.ndarray],
    texture: np.ndarray,
    radius: float,
    shape: str,
    pose: np.ndarray,
    next_pose: np.ndarray | None,
) -> None:
    """Composite one object into ``frame`` (and its motion into ``flow``), in place."""
    import cv2

    px, py = grid
    cx, cy, log_s, theta = pose
    s = math.exp(log_s)
    dx, dy = px - cx, py - cy
    c, si = math.cos(theta), math.sin(theta)
    ux = (c * dx + si * dy) / s  # object coordinates of every pixel
    uy = (-si * dx + c * dy) / s
    dist = np.sqrt(ux * ux + uy * uy) if shape == "disc" else np.maximum(np.abs(ux), np.abs(uy))
    alpha = np.clip((radius - dist) * s + 0.5, 0.0, 1.0)
    if not alpha.any():
        return
    half = texture.shape[0] // 2
    color = cv2.remap(
        texture,
        (ux + half).astype(np.float32),
        (uy + half).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    frame *= 1.0 - alpha[..., None]
    frame += alpha[..., None] * color
    if flow is not None and next_pose is not None:
        nx, ny, nlog_s, ntheta = next_pose
        ns, nc, nsi = math.exp(nlog_s), math.cos(ntheta), math.sin(ntheta)
        to_x = nx + ns * (nc * ux - nsi * uy)
        to_y = ny + ns * (nsi * ux + nc * uy)
        inside = alpha >= 0.5
        flow[0] = np.where(inside, to_x - px, flow[0])
        flow[1] = np.where(inside, to_y - py, flow[1])


def render_action(
    label: int, config: SyntheticConfig | None = None, *, index: int = 0
) -> SyntheticClip:
    """Render one synthetic clip and its ground-truth flow (no file is written).

    The clip is a deterministic function of ``(config, label, index)``: clip ``index`` of
    class ``label`` in the dataset :func:`make_synthetic_actions` writes with ``config``.

    Args:
        label: Class index in ``[0, config.num_classes)``.
        config: Dataset knobs; None uses :class:`SyntheticConfig`'s defaults.
        index: Clip number within the class (it selects the clip's UCF group; clips of a
            group share background and actor texture, as UCF's groups share actor and
            scene).

    Shape:
        - frames: ``(F, H, W, 3)`` uint8
        - flow: ``(F - 1, 2, H, W)`` float32, pixels

    Returns:
        A :class:`SyntheticClip`.

    Example:
        >>> clip = render_action(0, SyntheticConfig(num_frames=8, size=(32, 48)))
        >>> clip.frames.shape, clip.flow.shape, MOTIONS[clip.label]
        ((8, 32, 48, 3), (7, 2, 32, 48), 'MoveRight')
        >>> start, stop = clip.action_window
        >>> bool(clip.flow[start, 0].max() > 0.5)  # the actor moves right in its window
        True
    """
    cfg = config or SyntheticConfig()
    if not 0 <= label < cfg.num_classes:
        raise ValueError(f"label: expected an integer in [0, {cfg.num_classes}), got {label!r}")
    if index < 0:
        raise ValueError(f"index: expected an integer >= 0, got {index!r}")
    height, width = cfg.size
    frames_n = cfg.num_frames
    scale = float(min(height, width))
    group, _ = _group_clip(index)
    rng = np.random.default_rng([cfg.seed, label, index])
    look = np.random.default_rng([cfg.seed, label, group, 1])  # shared within a group

    radius = 0.12 * scale  # actor disc radius (object units = pixels at scale 1)
    square = radius * math.sqrt(math.pi) / 2  # same area as the disc
    margin = 1.1 * radius
    lo = np.array([margin, margin, math.log(0.6), -1e9])
    hi = np.array([width - margin, height - margin, math.log(1.6), 1e9])

    # Actor: still, then the class motion over the action window, then still again.
    length = max(1, min(frames_n - 1, round(cfg.action_fraction * frames_n)))
    start = int(rng.integers(0, frames_n - length))
    motion = _primitive_deltas(MOTIONS[label], length, scale, rng)
    path = np.concatenate([np.zeros((1, 4)), np.cumsum(motion, axis=0)])
    extent = path.max(0) - path.min(0)
    room = hi[:2] - lo[:2]
    shrink = min([1.0] + [0.98 * room[k] / extent[k] for k in range(2) if extent[k] > 0])
    motion[:, :2] *= shrink  # a long window moves slower so that it stays in frame
    path[:, :2] *= shrink
    first = np.empty(4)
    for k in range(2):
        first[k] = rng.uniform(lo[k] - path[:, k].min(), hi[k] - path[:, k].max())
    first[2] = -math.log(1.4) if MOTIONS[label] == "ZoomIn" else 0.0
    first[2] = math.log(1.4) if MOTIONS[label] == "ZoomOut" else first[2]
    first[3] = rng.uniform(0, 2 * math.pi)
    deltas = np.zeros((frames_n - 1, 4))
    deltas[start : start + length] = motion[: frames_n - 1 - start]
    actor = first + np.concatenate([np.zeros((1, 4)), np.cumsum(deltas, axis=0)])

    # Distractors: random motions of the same repertoire, in chunks of about a segment.
    chunk = max(2, frames_n // 8)
    others = []
    for _ in range(cfg.distractors):
        d = np.zeros((frames_n - 1, 4))
        for c0 in range(0, frames_n - 1, chunk):
            n = min(chunk, frames_n - 1 - c0)
            if rng.random() < 0.8:
                name = MOTIONS[int(rng.integers(0, cfg.num_classes))]
                d[c0 : c0 + n] = _primitive_deltas(name, max(n, chunk), scale, rng)[:n]
        pos0 = np.array(
            [rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), 0.0, rng.uniform(0, 6.3)]
        )
        others.append(_integrate(pos0, d, lo, hi))

    # Camera: a smooth shake with peak speed camera_motion (pixels per frame).
    t = np.arange(frames_n, dtype=np.float64)
    camera = np.zeros((frames_n, 2))
    if cfg.camera_motion > 0:
        for k in range(2):
            omega = 2 * math.pi * rng.uniform(1.0, 3.0) / frames_n
            amp = cfg.camera_motion / omega / math.sqrt(2)
            camera[:, k] = amp * np.sin(omega * t + rng.uniform(0, 2 * math.pi))
    pad = int(np.ceil(np.abs(camera).max())) + 2

    # Appearance.
    background = _smooth_texture(
        look, height + 2 * pad, width + 2 * pad, scale / 6, look.uniform(70, 150, 3), 45.0
    )
    tex_side = 2 * math.ceil(radius * 1.5) + 1
    actor_tex = _smooth_texture(look, tex_side, tex_side, radius / 2, look.uniform(90, 170, 3), 90)
    other_tex = [
        _smooth_texture(rng, tex_side, tex_side, radius / 2, rng.uniform(90, 170, 3), 90)
        for _ in range(cfg.distractors)
    ]
    cue_label = -1
    if cfg.context_cue > 0:
        own = rng.random() < cfg.context_cue
        cue_label = label if own else int(rng.integers(0, cfg.num_classes))
    cue_side = max(4, round(0.18 * scale))
    centre = actor[start : start + length + 1, :2].mean(0)
    corners = [(x, y) for y in (2, height - cue_side - 2) for x in (2, width - cue_side - 2)]
    far = max(
        corners,
        key=lambda xy: np.hypot(xy[0] + cue_side / 2 - centre[0], xy[1] + cue_side / 2 - centre[1]),
    )
    cue = _cue_patch(cue_label, cue_side) if cue_label >= 0 else None

    # Render: world coordinates; the screen sees the world shifted by the camera.
    py, px = np.mgrid[0:height, 0:width].astype(np.float32)
    import cv2

    frames = np.empty((frames_n, height, width, 3), np.uint8)
    flow = np.empty((frames_n - 1, 2, height, width), np.float32)
    actor_track = np.empty((frames_n, 3), np.float32)
    cue_box = np.empty((frames_n, 4), np.int64) if cue is not None else None
    bg_x, bg_y = np.meshgrid(np.arange(width), np.arange(height))
    for i in range(frames_n):
        off = camera[i]
        img = cv2.remap(
            background,
            (bg_x + pad + off[0]).astype(np.float32),
            (bg_y + pad + off[1]).astype(np.float32),
            cv2.INTER_LINEAR,
        )
        fl = None
        if i < frames_n - 1:
            fl = np.empty((2, height, width), np.float32)
            fl[0], fl[1] = off - camera[i + 1]
        shift = np.array([off[0], off[1], 0.0, 0.0])
        nshift = np.array([*camera[min(i + 1, frames_n - 1)], 0.0, 0.0])
        for track, tex in zip(others, other_tex, strict=True):
            nxt = track[i + 1] - nshift if i < frames_n - 1 else None
            _draw(img, fl, (px, py), tex, square, "square", track[i] - shift, nxt)
        nxt = actor[i + 1] - nshift if i < frames_n - 1 else None
        _draw(img, fl, (px, py), actor_tex, radius, "disc", actor[i] - shift, nxt)
        pose = actor[i] - shift
        actor_track[i] = (pose[0], pose[1], radius * math.exp(pose[2]))
        if cue is not None:
            x0 = round(far[0] - off[0])
            y0 = round(far[1] - off[1])
            x0, y0 = min(max(x0, 0), width - cue_side), min(max(y0, 0), height - cue_side)
            img[y0 : y0 + cue_side, x0 : x0 + cue_side] = cue
            cue_box[i] = (x0, y0, x0 + cue_side, y0 + cue_side)
            if fl is not None:  # the cue is static in the world: it moves with the camera
                fl[0, y0 : y0 + cue_side, x0 : x0 + cue_side] = off[0] - camera[i + 1][0]
                fl[1, y0 : y0 + cue_side, x0 : x0 + cue_side] = off[1] - camera[i + 1][1]
        if cfg.noise > 0:
            img += rng.normal(0.0, cfg.noise, img.shape).astype(np.float32)
        frames[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        if fl is not None:
            flow[i] = fl
    window = (start, start + length)
    return SyntheticClip(frames, flow, label, window, cue_label, actor_track, cue_box)


# --------------------------------------------------------------------------- files


def _encode(path: Path, frames: np.ndarray, fps: int, codec: str) -> None:
    """Encode RGB frames to ``path`` atomically (temporary file, then ``os.replace``)."""
    import av

    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        with av.open(str(tmp), "w", format="avi" if path.suffix == ".avi" else None) as out:
            stream = out.add_stream(codec, rate=fps)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                # A keyframe every 12 frames and no B-frames: samplers can seek (see the
                # data-loading benchmark), in AVI as well as in MP4.
                stream.options = {
                    "crf": "8",
                    "preset": "veryfast",
                    "threads": "1",
                    "x264-params": f"keyint={_GOP}:min-keyint={_GOP}:scenecut=0:bframes=0",
                }
            else:
                stream.bit_rate = 8_000_000
                stream.codec_context.gop_size = _GOP
                stream.codec_context.max_b_frames = 0
                stream.codec_context.thread_count = 1
            for img in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        tmp.write_bytes(text.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _group_clip(index: int) -> tuple[int, int]:
    """UCF group and clip number (both 1-based) of clip ``index`` of a class."""
    return _GROUP_ORDER[index % _GROUPS], index // _GROUPS + 1


def _video_name(cls: str, index: int) -> str:
    group, clip = _group_clip(index)
    return f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi"


def _make_one(job: tuple[SyntheticConfig, int, int, str]) -> tuple[str, dict]:
    cfg, label, index, root = job
    import cv2

    cv2.setNumThreads(1)
    rel = _video_name(MOTIONS[label], index)
    clip = render_action(label, cfg, index=index)
    video = Path(root) / "videos" / rel
    gt = (Path(root) / "gt_flow" / rel).with_suffix(".npy")
    video.parent.mkdir(parents=True, exist_ok=True)
    gt.parent.mkdir(parents=True, exist_ok=True)
    _encode(video, clip.frames, cfg.fps, cfg.codec)
    _save_npy(gt, clip.flow.astype(np.float16))
    group, clip_number = _group_clip(index)
    meta = {
        "label": label,
        "group": group,
        "clip": clip_number,
        "action_window": list(clip.action_window),
        "cue_label": clip.cue_label,
    }
    return rel, meta


def _split_files(
    classes: Sequence[str], videos: Sequence[str], test_only: frozenset[str] = frozenset()
) -> dict[str, str]:
    """UCF-101 split files (CRLF, 1-based labels) for the given relative video paths.

    The videos in ``test_only`` (extra test clips of split 1) appear in ``testlist01.txt``
    and nowhere else.
    """
    crlf = "\r\n"
    files = {"classInd.txt": "".join(f"{i + 1} {c}{crlf}" for i, c in enumerate(classes))}
    index = {c: i for i, c in enumerate(classes)}
    for k in (1, 2, 3):
        test_groups = range(7 * (k - 1) + 1, 7 * k + 1)
        train, test = [], []
        for rel in videos:
            if rel in test_only and k != 1:
                continue
            cls = rel.split("/")[0]
            group = int(rel.rsplit("_g", 1)[1][:2])
            if group in test_groups:
                test.append(f"{rel}{crlf}")
            else:
                train.append(f"{rel} {index[cls] + 1}{crlf}")
        files[f"trainlist0{k}.txt"] = "".join(train)
        files[f"testlist0{k}.txt"] = "".join(test)
    return files


def _complete(root: Path, cfg: SyntheticConfig) -> bool:
    names = [_video_name(c, j) for c in cfg.classes for j in cfg.clip_indices]
    return (
        (root / "annotations.json").is_file()
        and all(
            (root / "videos" / n).is_file() and (root / "gt_flow" / n).with_suffix(".npy").is_file()
            for n in names
        )
        and all((root / "splits" / f).is_file() for f in _split_files(cfg.classes, []))
    )


def make_synthetic_actions(
    root: str | os.PathLike,
    config: SyntheticConfig | None = None,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **overrides: Any,
) -> SyntheticInfo:
    r"""Write the synthetic action dataset (videos, UCF-101 split files, true flow).

    Layout under ``root``::

        videos/<Class>/v_<Class>_gXX_cYY.avi    real encoded videos (H.264 or MPEG-4)
        splits/classInd.txt                     "1 MoveRight" ... (CRLF)
        splits/trainlist0{1,2,3}.txt            "<Class>/v_..._gXX_cYY.avi <1-based label>"
        splits/testlist0{1,2,3}.txt             "<Class>/v_..._gXX_cYY.avi"
        gt_flow/<Class>/v_<Class>_gXX_cYY.npy   float16 (F - 1, 2, H, W) pixels
        annotations.json                        action window, cue class, ... per video
        synthetic.json                          the config (and whether it is complete)

    Split ``k`` tests groups ``7(k-1)+1 .. 7k``, as UCF-101's. Idempotent: when ``root``
    already holds a complete dataset with the same config, nothing is written. Files are
    written atomically, so an interrupted run is simply run again.

    Args:
        root: Output folder.
        config: The knobs (see :class:`SyntheticConfig`); None uses the defaults.
        workers: Worker processes; None uses up to 2 (the cores of a small CI machine).
        overwrite: Replace a dataset generated with a different config. Without it a
            mismatch raises, so a dataset is never silently changed under a run.
        progress: Show a tqdm progress bar.
        **overrides: Any :class:`SyntheticConfig` field (``num_classes=5``,
            ``size=(96, 128)``, ``seed=1``, ...), applied on top of ``config``.

    Returns:
        A :class:`SyntheticInfo` with the paths to hand to ``attnvideo.data.UCF101``.

    Raises:
        TypeError: an override that is no config field.
        ValueError: a knob out of range, or ``root`` holds a dataset with another config
            and ``overwrite`` is False.

    Example:
        >>> import tempfile
        >>> info = make_synthetic_actions(
        ...     tempfile.mkdtemp(), num_classes=2, videos_per_class=2, num_frames=8,
        ...     size=(32, 32), workers=0,
        ... )
        >>> info.classes, info.num_videos
        (['MoveRight', 'MoveLeft'], 4)
        >>> (info.split_root / "classInd.txt").read_bytes()
        b'1 MoveRight\r\n2 MoveLeft\r\n'
        >>> make_synthetic_actions(info.root, info.config).generated  # reused
        False
    """
    root = Path(root)
    fields = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"make_synthetic_actions: unknown config field(s) {unknown}; "
            f"expected some of {sorted(fields)}"
        )
    cfg = dataclasses.replace(config or SyntheticConfig(), **overrides)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an integer >= 0, got {workers!r}")
    record = {"format_version": _FORMAT_VERSION, "config": dataclasses.asdict(cfg)}
    record["config"]["size"] = list(cfg.size)
    info = SyntheticInfo(
        root=root,
        video_root=root / "videos",
        split_root=root / "splits",
        gt_flow_root=root / "gt_flow",
        annotations=root / "annotations.json",
        classes=cfg.classes,
        config=cfg,
        num_videos=cfg.num_classes * len(cfg.clip_indices),
    )
    config_file = root / _CONFIG_FILE
    if config_file.is_file():
        old = json.loads(config_file.read_text())
        if isinstance(old.get("config"), dict):  # written before the field existed
            old["config"].setdefault("test_videos_per_class", 0)
        same = {k: old.get(k) for k in record} == record
        if same and old.get("complete") and _complete(root, cfg):
            info.generated = False
            return info
        if old.get("config") != record["config"] and not overwrite:
            diff = sorted(
                k for k in record["config"] if old.get("config", {}).get(k) != record["config"][k]
            )
            raise ValueError(
                f"root: {str(root)!r} holds a synthetic dataset made with another config "
                f"(differs in {diff}); pass overwrite=True to replace it, or use another "
                "folder"
            )
        if not same:  # another config (overwrite=True) or an older generator: start afresh
            for sub in ("videos", "gt_flow", "splits"):
                shutil.rmtree(root / sub, ignore_errors=True)
            (root / "annotations.json").unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    _write_text(config_file, json.dumps({**record, "complete": False}, indent=1))

    jobs = [
        (cfg, label, index, str(root))
        for label in range(cfg.num_classes)
        for index in cfg.clip_indices
    ]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="synthetic actions", unit="video", disable=not progress)
    meta: dict[str, dict] = {}
    if workers <= 1:
        results = map(_make_one, jobs)
        pool = None
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(workers)
        results = pool.imap_unordered(_make_one, jobs, chunksize=4)
    try:
        for rel, m in results:
            meta[rel] = m
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()

    videos = sorted(meta)  # class order = label order below, as UCF lists are sorted
    videos.sort(key=lambda r: (meta[r]["label"], r))
    info.split_root.mkdir(parents=True, exist_ok=True)
    extra = frozenset(
        _video_name(c, j) for c in cfg.classes for j in cfg.clip_indices[cfg.videos_per_class :]
    )
    for name, text in _split_files(cfg.classes, videos, extra).items():
        _write_text(info.split_root / name, text)
    for rel in videos:
        meta[rel]["split1"] = "test" if meta[rel]["group"] <= 7 else "train"
        if rel in extra:
            meta[rel]["test_only"] = True
    annotations = {"classes": cfg.classes, "videos": {r: meta[r] for r in videos}}
    _write_text(info.annotations, json.dumps(annotations, indent=1))
    _write_text(config_file, json.dumps({**record, "complete": True}, indent=1))
    return info
