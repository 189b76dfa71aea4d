"""Optical flow for TSN-style pipelines: compute with OpenCV, quantise, cache on disk.

Flow is stored the way TSN stores it (clipped to +/-20 pixels, quantised to uint8 by
:func:`attnvideo.functional.quantize_flow`), one uncompressed, memory-mappable ``.npy`` per
video of ``F`` frames with shape ``(F - 1, 2, H, W)``: field ``i`` is the motion from frame
``i`` to frame ``i + 1``, channel 0 is x (right positive), channel 1 is y (down positive),
so ``frame_i(p) ~ frame_{i+1}(p + flow_i(p))``.

Axis legend: ``F`` frames, ``H`` x ``W`` pixels, channel axis ``2`` = (x, y).

Files are written atomically (a temporary file in the same folder, then ``os.replace``),
so a reader never sees a half-written cache and an interrupted :func:`precompute_flow`
resumes where it stopped.

Command line::

    python -m attnvideo.data.flow VIDEO_ROOT FLOW_ROOT [--method dis|farneback|tvl1]
        [--preset ultrafast|fast|medium] [--workers N] [--list FILE] [--frame-dirs]
        [--short-side N | --size WxH]

Frames can be resized as they are decoded (``size``/``short_side``): flow is then in
pixels of the resized frames, which must be the frames the model sees (datasets take
the same ``frame_size``/``short_side``). Flow scales with the frame: a motion of ``u``
pixels at width ``W`` is ``u * W' / W`` pixels at width ``W'``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attnvideo.functional import FLOW_BOUND, quantize_flow

from .video import iter_frames, probe_video, scaled_size

__all__ = [
    "DIS_PRESETS",
    "FLOW_METHODS",
    "VIDEO_EXTENSIONS",
    "PrecomputeReport",
    "compute_flow",
    "export_frame_folder",
    "flow_cache_path",
    "iter_flow",
    "load_or_compute_flow",
    "main",
    "precompute_flow",
    "read_video",
    "save_flow",
]

logger = logging.getLogger(__name__)

FLOW_METHODS: tuple[str, ...] = ("dis", "farneback", "tvl1")
"""Names accepted by ``method``: OpenCV DIS, Farneback, and TV-L1 (needs opencv-contrib)."""

DIS_PRESETS: tuple[str, ...] = ("ultrafast", "fast", "medium")
"""Names accepted by ``preset`` for ``method="dis"``, fastest first."""

DEFAULT_DIS_PRESET = "medium"
"""The DIS preset used when none is given (chosen by ``benchmarks/bench_flow.py``)."""

VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg")
"""File suffixes :func:`precompute_flow` treats as videos when it scans a folder."""

_TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")  # ".<target name>.<12 hex>.tmp"
_CONTRIB_PACKAGE = "opencv-contrib-python-headless"


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "optical flow needs OpenCV: pip install opencv-python-headless (or attnvideo[video])"
        ) from exc
    return cv2


def _check_method(method: str, preset: str | None) -> None:
    if method not in FLOW_METHODS:
        raise ValueError(f"method: expected one of {list(FLOW_METHODS)}, got {method!r}")
    if preset is not None and method != "dis":
        raise ValueError(
            f"preset: only method='dis' takes a preset, got preset={preset!r} "
            f"with method={method!r}"
        )
    if preset is not None and preset not in DIS_PRESETS:
        raise ValueError(f"preset: expected one of {list(DIS_PRESETS)}, got {preset!r}")
    if method == "tvl1" and not hasattr(_cv2(), "optflow"):
        raise ImportError(
            "method='tvl1': TV-L1 lives in OpenCV's contrib modules, which this OpenCV "
            f"lacks; install {_CONTRIB_PACKAGE} (in place of opencv-python-headless, "
            "they conflict: use a separate environment) or use method='dis'"
        )


def _make_estimator(method: str, preset: str | None):
    """Return a function ``(prev_gray, next_gray) -> (H, W, 2) float32`` flow."""
    cv2 = _cv2()
    if method == "dis":
        code = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[preset or DEFAULT_DIS_PRESET]
        dis = cv2.DISOpticalFlow_create(code)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        # The parameters of OpenCV's own Farneback sample (samples/python/opt_flow.py).
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return lambda a, b: tvl1.calc(a, b, None)


def compute_flow(
    frames: np.ndarray, method: str = "dis", *, preset: str | None = None
) -> np.ndarray:
    """Compute dense optical flow between consecutive frames with OpenCV.

    Args:
        frames: RGB (or grayscale) video frames, uint8.
        method: ``"dis"`` (default: fast and accurate, see ``docs/benchmarks.md``),
            ``"farneback"``, or ``"tvl1"`` (TSN's choice; needs
            ``opencv-contrib-python-headless``).
        preset: DIS preset, one of :data:`DIS_PRESETS`; None uses the default
            (``"medium"``). Only for ``method="dis"``.

    Shape:
        - frames: ``(F, H, W, 3)`` or ``(F, H, W)``
        - output: ``(F - 1, 2, H, W)``

    Returns:
        Flow in pixels, float32, unclipped: field ``i`` maps frame ``i`` to frame ``i + 1``,
        channel 0 = x, channel 1 = y.

    Raises:
        ValueError: ``frames`` is not a uint8 array of the shape above, or an unknown
            ``method``/``preset``.
        ImportError: ``method="tvl1"`` without OpenCV's contrib modules.

    Example:
        >>> frame = np.zeros((32, 32), np.uint8)
        >>> frame[8:20, 8:20] = 255
        >>> frames = np.stack([frame, np.roll(frame, 2, axis=1)])
        >>> flow = compute_flow(frames)
        >>> flow.shape, flow.dtype
        ((1, 2, 32, 32), dtype('float32'))
        >>> bool(flow[0, 0, 10:18, 10:18].mean() > 1.0)  # moved right: positive x
        True
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(
            f"frames: expected a uint8 numpy array (F, H, W, 3) or (F, H, W), got "
            f"{type(frames).__name__} with dtype {getattr(frames, 'dtype', None)}"
        )
    if frames.ndim == 4 and frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames: expected 3 (RGB) or 1 channels last, got shape {frames.shape}")
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames: expected (F, H, W, 3) or (F, H, W), got shape {frames.shape}")
    _check_method(method, preset)
    num_frames, height, width = frames.shape[:3]
    out = np.zeros((max(num_frames - 1, 0), 2, height, width), np.float32)
    for i, flow in enumerate(iter_flow(iter(frames), method, preset=preset)):
        out[i] = flow
    return out


def iter_flow(
    frames: Iterable[np.ndarray], method: str = "dis", *, preset: str | None = None
) -> Iterator[np.ndarray]:
    """Stream dense optical flow between consecutive frames: one field per frame pair.

    The streaming form of :func:`compute_flow`: it holds two frames at a time, so the flow
    of a video of any length can be computed from :func:`~attnvideo.data.iter_frames`
    in bounded memory.

    Args:
        frames: uint8 RGB ``(H, W, 3)`` or grayscale ``(H, W)`` frames, in order.
        method: ``"dis"``, ``"farneback"`` or ``"tvl1"`` (see :func:`compute_flow`).
        preset: DIS preset (see :func:`compute_flow`).

    Yields:
        Flow fields ``(2, H, W)`` float32 in pixels: the motion from frame ``i`` to
        ``i + 1``, channel 0 = x, channel 1 = y.

    Raises:
        ValueError: A frame that is not uint8 ``(H, W, 3)``/``(H, W)``, frames of
            different sizes, or an unknown ``method``/``preset``.

    Example:
        >>> frame = np.zeros((32, 32), np.uint8)
        >>> frame[8:20, 8:20] = 255
        >>> fields = list(iter_flow([frame, np.roll(frame, 2, axis=1), frame]))
        >>> len(fields), fields[0].shape
        (2, (2, 32, 32))
        >>> [int(np.sign(f[0, 10:18, 10:18].mean())) for f in fields]  # right, then back left
        [1, -1]
    """
    _check_method(method, preset)
    cv2 = _cv2()
    estimate = None
    prev = None
    for frame in frames:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise ValueError(
                f"frames: expected uint8 numpy frames, got {type(frame).__name__} with dtype "
                f"{getattr(frame, 'dtype', None)}"
            )
        if frame.ndim == 3 and frame.shape[-1] == 3:
            gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        elif frame.ndim == 2 or (frame.ndim == 3 and frame.shape[-1] == 1):
            gray = np.ascontiguousarray(frame.reshape(frame.shape[:2]))
        else:
            raise ValueError(f"frames: expected (H, W, 3) or (H, W) frames, got {frame.shape}")
        if prev is not None:
            if gray.shape != prev.shape:
                raise ValueError(f"frames: sizes differ, {prev.shape} then {gray.shape}")
            estimate = estimate or _make_estimator(method, preset)
            yield np.ascontiguousarray(np.moveaxis(estimate(prev, gray), -1, 0))  # (2, H, W)
        prev = gray


def read_video(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> np.ndarray:
    """Decode every frame of a video file with PyAV, into one array.

    It holds the whole video: for long or large videos stream them with
    :func:`~attnvideo.data.iter_frames` instead (what the flow tools here do).

    Args:
        path: A video file (.avi, .mp4, ...).
        size: Resize to this ``(width, height)`` while decoding.
        short_side: Resize so that the shorter side has this many pixels.

    Shape:
        - output: ``(F, H, W, 3)``

    Returns:
        The RGB frames, uint8.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        VideoDecodeError: the file cannot be decoded or holds no video frame.

    Example:
        >>> import tempfile, av
        >>> path = Path(tempfile.mkdtemp()) / "clip.avi"
        >>> with av.open(str(path), "w") as container:
        ...     stream = container.add_stream("mpeg4", rate=25)
        ...     stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        ...     for i in range(3):
        ...         img = np.full((16, 32, 3), 80 * i, np.uint8)
        ...         frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        ...         container.mux(stream.encode(frame))
        ...     container.mux(stream.encode())
        >>> read_video(path).shape
        (3, 16, 32, 3)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video_path: no such file {str(path)!r}")
    return np.stack(list(iter_frames(path, size=size, short_side=short_side)))


def _quantize(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Clip and quantise float flow to TSN's uint8 (numpy front of ``quantize_flow``)."""
    return quantize_flow(torch.from_numpy(np.ascontiguousarray(flow)), bound).numpy()


def save_flow(path: str | os.PathLike, flow: np.ndarray) -> Path:
    """Write a uint8 flow array as an uncompressed ``.npy``, atomically.

    The array goes to a temporary file in the target's folder (``.<name>.<random>.tmp``),
    is flushed to disk, then renamed over ``path`` with ``os.replace``: readers see either
    no file or the whole file, never a partial one.

    Args:
        path: Target file, ending in ``.npy``. Missing parent folders are created.
        flow: The quantised flow, uint8.

    Shape:
        - flow: ``(F - 1, 2, H, W)``

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "a" / "v.npy"
        >>> _ = save_flow(target, np.full((2, 2, 4, 4), 128, np.uint8))
        >>> np.load(target, mmap_mode="r").shape, sorted(p.name for p in target.parent.iterdir())
        ((2, 2, 4, 4), ['v.npy'])
    """
    path = Path(path)
    if not isinstance(flow, np.ndarray) or flow.dtype != np.uint8:
        raise ValueError(
            f"flow: expected a uint8 numpy array, got {type(flow).__name__} with dtype "
            f"{getattr(flow, 'dtype', None)}"
        )
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow: expected shape (F - 1, 2, H, W), got {flow.shape}")
    return _write_npy_fields(path, iter(flow), flow.shape)


def _write_npy_fields(path: Path, fields: Iterable[np.ndarray], shape: tuple[int, ...]) -> Path:
    """Write uint8 fields one by one as a ``.npy`` of ``shape``, atomically.

    Memory is one field, whatever the video's length. Fewer or more fields than
    ``shape[0]`` is an error (the file is not published).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as fh:
            header = {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
            np.lib.format.write_array_header_1_0(fh, header)
            count = 0
            for field in fields:
                if field.shape != tuple(shape[1:]) or field.dtype != np.uint8:
                    raise ValueError(
                        f"flow: field {count} is {field.dtype} {field.shape}, expected uint8 "
                        f"{tuple(shape[1:])}"
                    )
                fh.write(np.ascontiguousarray(field).tobytes())
                count += 1
            if count != shape[0]:
                raise ValueError(f"flow: got {count} fields, expected {shape[0]}")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _flow_fields(
    video_path: str | os.PathLike,
    method: str,
    preset: str | None,
    size: tuple[int, int] | None,
    short_side: int | None,
) -> tuple[Iterator[np.ndarray], tuple[int, int, int, int]]:
    """A video's quantised flow as a stream of uint8 ``(2, H, W)`` fields, and its shape.

    The frames are decoded (and resized) one at a time: memory does not grow with the
    video. The shape comes from the probe (a full decode's frame count).
    """
    probe = probe_video(video_path)
    width, height = scaled_size(probe.width, probe.height, size=size, short_side=short_side)
    frames = iter_frames(video_path, size=size, short_side=short_side)
    fields = (_quantize(f) for f in iter_flow(frames, method, preset=preset))
    return fields, (max(probe.num_frames - 1, 0), 2, height, width)


def _valid_cache(path: Path) -> bool:
    """True when ``path`` is a complete flow file (header readable, size matches)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return arr.dtype == np.uint8 and arr.ndim == 4 and arr.shape[1] == 2


def flow_cache_path(
    video: str | os.PathLike, video_root: str | os.PathLike, flow_root: str | os.PathLike
) -> Path:
    """Where the flow of ``video`` is cached: same relative path, suffix ``.npy``.

    Args:
        video: A video path, absolute or relative to ``video_root``.
        video_root: The dataset's video folder.
        flow_root: The flow cache folder.

    Returns:
        ``flow_root / <video relative to video_root>.with_suffix(".npy")``.

    Raises:
        ValueError: ``video`` lies outside ``video_root``.

    Example:
        >>> flow_cache_path("Run/v_Run_g01_c01.avi", "/data/ucf", "/data/flow").as_posix()
        '/data/flow/Run/v_Run_g01_c01.npy'
    """
    root = Path(video_root)
    video = Path(video)
    full = video if video.is_absolute() else root / video
    try:
        rel = Path(os.path.normpath(full)).relative_to(os.path.normpath(root))
    except ValueError:
        raise ValueError(f"video: {str(video)!r} is outside the video root {str(root)!r}") from None
    if rel.parts and rel.parts[0] == "..":  # pragma: no cover - normpath removes these
        raise ValueError(f"video: {str(video)!r} escapes the video root {str(root)!r}")
    return Path(flow_root) / rel.with_suffix(".npy")


def load_or_compute_flow(
    video_path: str | os.PathLike,
    cache_path: str | os.PathLike,
    method: str = "dis",
    *,
    preset: str | None = None,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> np.ndarray:
    """Return a video's quantised flow, computing and caching it the first time.

    When ``cache_path`` holds a complete flow file it is memory-mapped and returned
    without decoding the video; otherwise the video is decoded with PyAV frame by frame
    (resized to ``size``/``short_side`` as it is decoded), its flow computed with
    :func:`iter_flow`, clipped to +/-20 pixels, quantised to uint8 and streamed to
    ``cache_path`` atomically (memory: two frames and a field, whatever the video's
    length; safe when several DataLoader workers or runs race on the same file: the
    last complete write wins, and all writes are identical).

    Args:
        video_path: The video file.
        cache_path: The ``.npy`` cache file (see :func:`flow_cache_path`).
        method: Flow method for a cache miss (see :func:`compute_flow`).
        preset: DIS preset for a cache miss.
        size: Frame size ``(width, height)`` to compute the flow at (a cache miss).
        short_side: Or the short side to resize frames to (a cache miss).

    Shape:
        - output: ``(F - 1, 2, H, W)`` for a video of ``F`` frames, at the size decoded

    Returns:
        A read-only uint8 memory map (``np.load(cache_path, mmap_mode="r")``);
        :func:`attnvideo.functional.dequantize_flow` maps it back to pixels.

    Example:
        >>> import tempfile, av
        >>> tmp = Path(tempfile.mkdtemp())
        >>> with av.open(str(tmp / "clip.avi"), "w") as container:
        ...     stream = container.add_stream("mpeg4", rate=25)
        ...     stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        ...     for i in range(4):
        ...         img = np.zeros((32, 32, 3), np.uint8)
        ...         img[8:20, 6 + 2 * i : 18 + 2 * i] = 255
        ...         container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        ...     container.mux(stream.encode())
        >>> flow = load_or_compute_flow(tmp / "clip.avi", tmp / "flow" / "clip.npy")
        >>> flow.shape, flow.dtype
        ((3, 2, 32, 32), dtype('uint8'))
        >>> (tmp / "flow" / "clip.npy").is_file()
        True
    """
    cache_path = Path(cache_path)
    _check_method(method, preset)
    if cache_path.is_file() and _valid_cache(cache_path):
        return np.load(cache_path, mmap_mode="r", allow_pickle=False)
    _write_npy_fields(cache_path, *_flow_fields(video_path, method, preset, size, short_side))
    return np.load(cache_path, mmap_mode="r", allow_pickle=False)


def export_frame_folder(
    video_path: str | os.PathLike,
    folder: str | os.PathLike,
    method: str = "dis",
    *,
    preset: str | None = None,
    quality: int = 95,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    rgb: bool = True,
) -> Path:
    """Write a video as a TSN frame folder: RGB frames and quantised flow as JPEG files.

    The folder gets ``img_%05d.jpg`` (every frame) and ``flow_x_%05d.jpg`` /
    ``flow_y_%05d.jpg`` (every flow field, TSN's uint8 quantisation as grayscale images),
    numbered from 1 as in TSN's extraction tools, so ``frame_dirs=True`` datasets and
    other TSN code read it. The folder is built under a temporary name beside ``folder``
    and renamed into place when complete: an existing ``folder`` is always whole.

    Args:
        video_path: The video file.
        folder: The frame folder to create (e.g. ``frames/<Class>/<video stem>``).
        method: Flow method (see :func:`compute_flow`).
        preset: DIS preset.
        quality: JPEG quality (TSN's tools use the OpenCV default, 95).
        size: Resize frames to ``(width, height)`` while decoding (TSN: ``(340, 256)``).
        short_side: Or resize so that the shorter side has this many pixels.
        rgb: Also write the RGB frames ``img_%05d.jpg``; False writes the flow only.

    Returns:
        ``folder`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``folder`` exists already.

    Example:
        >>> import tempfile, av
        >>> tmp = Path(tempfile.mkdtemp())
        >>> with av.open(str(tmp / "clip.avi"), "w") as container:
        ...     stream = container.add_stream("mpeg4", rate=25)
        ...     stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        ...     for i in range(3):
        ...         img = np.full((32, 32, 3), 60 * i, np.uint8)
        ...         container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        ...     container.mux(stream.encode())
        >>> out = export_frame_folder(tmp / "clip.avi", tmp / "frames" / "clip")
        >>> sorted(p.name for p in out.iterdir())  # doctest: +NORMALIZE_WHITESPACE
        ['flow_x_00001.jpg', 'flow_x_00002.jpg', 'flow_y_00001.jpg', 'flow_y_00002.jpg',
         'img_00001.jpg', 'img_00002.jpg', 'img_00003.jpg']
    """
    cv2 = _cv2()
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"folder: {str(folder)!r} exists already")
    _check_method(method, preset)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:12]}{_TMP_SUFFIX}")
    tmp.mkdir()
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]

    def write(name: str, image: np.ndarray) -> None:
        if not cv2.imwrite(str(tmp / name), image, params):
            raise OSError(f"folder: cannot write JPEG files into {str(tmp)!r}")

    def frames() -> Iterator[np.ndarray]:
        for i, frame in enumerate(iter_frames(video_path, size=size, short_side=short_side), 1):
            if rgb:
                write(f"img_{i:05d}.jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            yield frame

    try:
        for i, field in enumerate(iter_flow(frames(), method, preset=preset), start=1):
            q = _quantize(field)
            write(f"flow_x_{i:05d}.jpg", q[0])
            write(f"flow_y_{i:05d}.jpg", q[1])
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@dataclass
class PrecomputeReport:
    """What :func:`precompute_flow` did.

    Attributes:
        computed: Videos whose flow was computed in this run (relative paths).
        skipped: Videos whose flow file was already complete.
        failed: ``(video, error message)`` for videos that could not be processed.
        removed_tmp: Stray temporary files of earlier, interrupted runs that were deleted.
    """

    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    removed_tmp: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.computed)} computed, {len(self.skipped)} already done, "
            f"{len(self.failed)} failed, {len(self.removed_tmp)} stray temporary files removed"
        )


def _list_videos(video_root: Path, extensions: Sequence[str]) -> list[str]:
    exts = {e.lower() for e in extensions}
    return sorted(
        p.relative_to(video_root).as_posix()
        for p in video_root.rglob("*")
        if p.suffix.lower() in exts and p.is_file()
    )


def _read_list(list_file: str | os.PathLike) -> list[str]:
    """Video paths from a split/list file: the first field of each non-empty line."""
    videos = []
    for line in Path(list_file).read_text().splitlines():
        fields = line.split()
        if fields:
            videos.append(fields[0])
    return videos


def _worker_init() -> None:
    torch.set_num_threads(1)
    _cv2().setNumThreads(1)


def _process(job: tuple[str, str, str, dict[str, object], bool]) -> tuple[str, str | None]:
    rel, video, cache, options, frame_dirs = job
    try:
        if frame_dirs:
            export_frame_folder(video, cache, **options)
        else:
            load_or_compute_flow(video, cache, **options)
    except Exception as exc:  # report, never kill the whole run
        return rel, f"{type(exc).__name__}: {exc}"
    return rel, None


def _remove_stray_tmp(flow_root: Path, older_than: float) -> list[str]:
    """Delete ``.*.tmp`` files and frame folders left by killed runs (older than this run)."""
    removed = []
    if not flow_root.is_dir():
        return removed
    for p in sorted(flow_root.rglob(f".*.*{_TMP_SUFFIX}")):
        if not _TMP_NAME.fullmatch(p.name):
            continue  # not one of ours
        try:
            if p.stat().st_mtime >= older_than:
                continue  # another run, still working on it
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p.relative_to(flow_root).as_posix())
        except FileNotFoundError:  # another run finished it meanwhile
            continue
    return removed


def precompute_flow(
    video_root: str | os.PathLike,
    flow_root: str | os.PathLike,
    videos: Iterable[str | os.PathLike] | None = None,
    method: str = "dis",
    workers: int = 2,
    *,
    preset: str | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    progress: bool = True,
    frame_dirs: bool = False,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> PrecomputeReport:
    """Compute and cache the flow of every video of a dataset, resumably, in parallel.

    Videos whose cache file is already complete are skipped, so an interrupted run is
    resumed by running it again; files are written atomically, so an interruption never
    leaves a half-written ``.npy`` (temporary files of killed runs are removed). A video
    that cannot be decoded is logged and reported, and the run goes on.

    Args:
        video_root: Dataset folder holding the videos.
        flow_root: Output folder; each video's flow goes to :func:`flow_cache_path`.
        videos: Videos to process, relative to ``video_root`` (or absolute inside it);
            None processes every file under ``video_root`` with a suffix in
            ``extensions``.
        method: Flow method (see :func:`compute_flow`).
        workers: Worker processes (each runs OpenCV single-threaded); 0 or 1 runs in this
            process.
        preset: DIS preset.
        extensions: Video suffixes looked for when ``videos`` is None.
        progress: Show a tqdm progress bar on stderr.
        frame_dirs: Write TSN frame folders (see :func:`export_frame_folder`) at
            ``flow_root/<video path without suffix>/`` instead of ``.npy`` flow files.
        size: Compute the flow on frames resized to ``(width, height)`` as they are
            decoded (TSN: ``(340, 256)``); train and test with the same size.
        short_side: Or on frames resized to this short side.

    Returns:
        A :class:`PrecomputeReport` listing computed, skipped and failed videos.

    Example:
        >>> import tempfile
        >>> empty = Path(tempfile.mkdtemp())
        >>> str(precompute_flow(empty, empty / "flow", progress=False))
        '0 computed, 0 already done, 0 failed, 0 stray temporary files removed'
    """
    video_root, flow_root = Path(video_root), Path(flow_root)
    _check_method(method, preset)
    scaled_size(1, 1, size=size, short_side=short_side)  # checks them
    options = {"method": method, "preset": preset, "size": size, "short_side": short_side}
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an integer >= 0, got {workers!r}")
    if not video_root.is_dir():
        raise FileNotFoundError(f"video_root: no such folder {str(video_root)!r}")
    started = time.time()
    report = PrecomputeReport(removed_tmp=_remove_stray_tmp(flow_root, older_than=started))
    names = _list_videos(video_root, extensions) if videos is None else [str(v) for v in videos]
    jobs = []
    for name in names:
        video = Path(name) if Path(name).is_absolute() else video_root / name
        cache = flow_cache_path(video, video_root, flow_root)
        cache = cache.with_suffix("") if frame_dirs else cache
        rel = video.relative_to(video_root).as_posix() if video.is_absolute() else name
        done = cache.is_dir() if frame_dirs else cache.is_file() and _valid_cache(cache)
        if done:
            report.skipped.append(rel)
        elif not video.is_file():
            report.failed.append((rel, f"FileNotFoundError: no such file {str(video)!r}"))
        else:
            jobs.append((rel, str(video), str(cache), options, frame_dirs))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=f"flow ({method})", unit="video", disable=not progress)
    if workers <= 1 or len(jobs) <= 1:
        results: Iterable[tuple[str, str | None]] = map(_process, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
        results = pool.imap_unordered(_process, jobs)
    try:
        for rel, error in results:
            if error is None:
                report.computed.append(rel)
            else:
                logger.warning("optical flow failed for %s: %s", rel, error)
                report.failed.append((rel, error))
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    report.computed.sort()
    return report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="attnvideo-flow",
        description="Precompute TSN-style optical flow (uint8 .npy per video), resumably.",
    )
    p.add_argument("video_root", help="folder holding the videos")
    p.add_argument("flow_root", help="output folder (mirrors video_root, .npy per video)")
    p.add_argument("--method", choices=FLOW_METHODS, default="dis")
    p.add_argument("--preset", choices=DIS_PRESETS, default=None, help="DIS preset")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--list",
        dest="list_file",
        default=None,
        help="only these videos: a split/list file whose first field per line is a path "
        "relative to VIDEO_ROOT (UCF-101 trainlist/testlist files work as they are)",
    )
    p.add_argument(
        "--frame-dirs",
        action="store_true",
        help="write TSN frame folders (img_%%05d.jpg, flow_x_%%05d.jpg, flow_y_%%05d.jpg) "
        "instead of .npy flow files",
    )
    resize = p.add_mutually_exclusive_group()
    resize.add_argument(
        "--short-side",
        type=int,
        default=None,
        metavar="N",
        help="resize frames so that their short side is N pixels while decoding, before "
        "computing flow (train with the same --short-side)",
    )
    resize.add_argument(
        "--size",
        type=_parse_size,
        default=None,
        metavar="WxH",
        help="resize frames to W x H while decoding (TSN: 340x256)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _parse_size(text: str) -> tuple[int, int]:
    """``"340x256"`` -> ``(340, 256)`` for ``--size``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT such as 340x256, got {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"expected positive WIDTHxHEIGHT, got {text!r}")
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``attnvideo-flow`` / ``python -m attnvideo.data.flow``).

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The exit status: 0 when every video has its flow, 1 when some failed.
    """
    args = _parser().parse_args(argv)
    videos = _read_list(args.list_file) if args.list_file else None
    try:
        report = precompute_flow(
            args.video_root,
            args.flow_root,
            videos,
            method=args.method,
            workers=args.workers,
            preset=args.preset,
            progress=not args.quiet,
            frame_dirs=args.frame_dirs,
            size=args.size,
            short_side=args.short_side,
        )
    except (ImportError, ValueError, FileNotFoundError) as exc:
        print(f"attnvideo-flow: error: {exc}", file=sys.stderr)
        return 2
    print(f"attnvideo-flow: {report}")
    for rel, error in report.failed:
        print(f"  failed: {rel}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
