"""Optical flow for TSN-style pipelines: compute with OpenCV, quantise, store on disk.

Flow is stored the way TSN stores it (clipped to +/-20 pixels, quantised to uint8 by
:func:`attnvideo.functional.quantize_flow`), as ``(F - 1, 2, H, W)`` for a video of
``F`` frames: field ``i`` is the motion from frame ``i`` to frame ``i + 1``, channel 0 is
x (right positive), channel 1 is y (down positive), so
``frame_i(p) ~ frame_{i+1}(p + flow_i(p))``. One video's flow goes to one of three
stores (:data:`~attnvideo.data.FLOW_STORES`, see :mod:`attnvideo.data.flow_cache`): a
compressed, seekable ``.flow`` file (the default, about 6 KB per field pair at
340 x 256), an exact ``.npy`` (170 KB per pair), or a TSN frame folder of JPEGs.

Axis legend: ``F`` frames, ``H`` x ``W`` pixels, channel axis ``2`` = (x, y).

Files are written atomically and streamed (a temporary beside the target, named for its
owner process, see :mod:`attnvideo.data.tempfiles`; then ``os.replace``), so a reader
never sees a half-written store, memory does not grow with a video's length, and an
interrupted :func:`precompute_flow` resumes where it stopped.

Command line::

    attnvideo-flow VIDEO_ROOT FLOW_ROOT [--store flow|npy|frames] [--frame-dirs]
        [--method dis|farneback|tvl1] [--preset ultrafast|fast|medium] [--workers N]
        [--list FILE] [--short-side N | --size WxH] [--shard I/N] [--check]

Frames can be resized as they are decoded (``size``/``short_side``): flow is then in
pixels of the resized frames, which must be the frames the model sees (datasets take
the same ``frame_size``/``short_side``). Flow scales with the frame: a motion of ``u``
pixels at width ``W`` is ``u * W' / W`` pixels at width ``W'``. A ``.flow`` store records
the frame size it was computed at, the source video's size and the method in its
``meta``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attnvideo.functional import FLOW_BOUND, quantize_flow

from .flow_cache import (
    DEFAULT_FLOW_STORE,
    FLOW_STORES,
    FlowFolder,
    check_flow,
    check_store,
    find_flow,
    open_flow,
    store_of,
    store_path,
)
from .flow_store import FLOW_STORE_CODECS, FlowStore, FlowStoreWriter
from .shards import Shard
from .tempfiles import remove_abandoned, temp_path, temporaries
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
    "missing_flow",
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

    The array goes to a temporary file in the target's folder (``.<name>.<owner>.tmp``),
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
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as fh:
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


def _source_size(video_path: str | os.PathLike) -> list[int] | None:
    """The video's ``[width, height]`` from its stream header (no decoding), if it tells."""
    import av

    try:
        with av.open(os.fspath(video_path), metadata_errors="ignore") as container:
            context = container.streams.video[0].codec_context
            width, height = context.width, context.height
    except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError):
        return None
    return [width, height] if width > 0 and height > 0 else None


def _flow_meta(
    video_path: str | os.PathLike,
    method: str,
    preset: str | None,
    size: tuple[int, int] | None,
    short_side: int | None,
) -> dict[str, object]:
    """What a ``.flow`` store records about how its flow was made.

    ``frame_size`` is added once the first field is known.
    """
    return {
        "method": method,
        "preset": (preset or DEFAULT_DIS_PRESET) if method == "dis" else None,
        "size": list(size) if size is not None else None,
        "short_side": short_side,
        "source_size": _source_size(video_path),
        "video": Path(video_path).name,
    }


def _write_flow_store(
    path: Path,
    video_path: str | os.PathLike,
    method: str,
    preset: str | None,
    size: tuple[int, int] | None,
    short_side: int | None,
    codec: str = "jpeg",
    quality: int | None = None,
) -> Path:
    """Stream a video's quantised flow into a ``.flow`` store, field by field, atomically.

    Memory is two frames and one field; no probe is needed (the store counts its fields).
    ``meta["frame_size"]`` is the ``[width, height]`` the flow was computed at.
    """
    meta = _flow_meta(video_path, method, preset, size, short_side)
    frames = iter_frames(video_path, size=size, short_side=short_side)
    with FlowStoreWriter(path, codec=codec, quality=quality, meta=meta) as writer:
        for flow in iter_flow(frames, method, preset=preset):
            writer.append(_quantize(flow))
        if not len(writer):
            raise ValueError(f"video_path: {str(video_path)!r} has fewer than 2 frames")
        height, width = writer._size
        writer.meta["frame_size"] = [width, height]
        source = writer.meta["source_size"]
        if source and list(scaled_size(*source, size=size, short_side=short_side)) != [
            width,
            height,
        ]:
            writer.meta["source_size"] = None  # the header disagrees with the frames
    return path


def flow_cache_path(
    video: str | os.PathLike,
    video_root: str | os.PathLike,
    flow_root: str | os.PathLike,
    store: str = DEFAULT_FLOW_STORE,
) -> Path:
    """Where the flow of ``video`` is stored: the same relative path, in ``store``'s form.

    Args:
        video: A video path, absolute or relative to ``video_root``.
        video_root: The dataset's video folder.
        flow_root: The flow folder.
        store: One of :data:`~attnvideo.data.FLOW_STORES`: ``"flow"`` (the default) gives
            ``<stem>.flow``, ``"npy"`` ``<stem>.npy``, ``"frames"`` the folder ``<stem>``,
            where ``<stem>`` is ``flow_root / <video relative to video_root>`` without
            its suffix.

    Returns:
        The path of the file (or folder) for ``store``.

    Raises:
        ValueError: ``video`` lies outside ``video_root``, or an unknown ``store``.

    Example:
        >>> flow_cache_path("Run/v_Run_g01_c01.avi", "/data/ucf", "/data/flow").as_posix()
        '/data/flow/Run/v_Run_g01_c01.flow'
        >>> flow_cache_path("Run/v_Run_g01_c01.avi", "/data/ucf", "/data/flow", "npy").name
        'v_Run_g01_c01.npy'
    """
    check_store(store)
    root = Path(video_root)
    video = Path(video)
    full = video if video.is_absolute() else root / video
    try:
        rel = Path(os.path.normpath(full)).relative_to(os.path.normpath(root))
    except ValueError:
        raise ValueError(f"video: {str(video)!r} is outside the video root {str(root)!r}") from None
    if rel.parts and rel.parts[0] == "..":  # pragma: no cover - normpath removes these
        raise ValueError(f"video: {str(video)!r} escapes the video root {str(root)!r}")
    return store_path(Path(flow_root) / rel.with_suffix(""), store)


def load_or_compute_flow(
    video_path: str | os.PathLike,
    cache_path: str | os.PathLike,
    method: str = "dis",
    *,
    preset: str | None = None,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    codec: str = "jpeg",
    quality: int | None = None,
) -> np.ndarray | FlowStore | FlowFolder:
    """Return a video's quantised flow from whichever store holds it, computing it if none.

    The stores of ``cache_path``'s stem are tried in turn, its own first, then the others
    of :data:`~attnvideo.data.FLOW_STORES` (``.flow``, ``.npy``, frame folder): the first
    complete one is opened without decoding the video, and indexing it reads only the
    fields asked for. When none is complete, the video is decoded with PyAV frame by
    frame (resized to ``size``/``short_side`` as it is decoded), its flow computed with
    :func:`iter_flow`, clipped to +/-20 pixels, quantised to uint8 and streamed into
    ``cache_path``'s store atomically (memory: two frames and a field, whatever the
    video's length; safe when several DataLoader workers or runs race on the same file:
    the last complete write wins, and all writes are identical). A store that is
    truncated or not a flow is recomputed.

    Args:
        video_path: The video file.
        cache_path: Where the flow goes on a miss; its suffix names the store: ``.flow``
            (compressed, see :func:`flow_cache_path`), ``.npy``, or none (a flow-only
            TSN frame folder).
        method: Flow method for a miss (see :func:`compute_flow`).
        preset: DIS preset for a miss.
        size: Frame size ``(width, height)`` to compute the flow at (a miss).
        short_side: Or the short side to resize frames to (a miss).
        codec: ``.flow`` codec for a miss: ``"jpeg"`` or ``"png"`` (lossless).
        quality: JPEG quality (``.flow``: 93, frame folders: 95) or PNG level for a miss.

    Shape:
        - output: ``(F - 1, 2, H, W)`` for a video of ``F`` frames, at the size decoded

    Returns:
        An object that indexes like the uint8 array (see
        :func:`~attnvideo.data.open_flow`): a :class:`~attnvideo.data.FlowStore`, a
        read-only memory map, or a :class:`~attnvideo.data.FlowFolder`;
        :func:`attnvideo.functional.dequantize_flow` maps its fields back to pixels.

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
        >>> flow = load_or_compute_flow(tmp / "clip.avi", tmp / "flow" / "clip.flow")
        >>> flow.shape, flow[1:3].dtype, flow.meta["frame_size"]
        ((3, 2, 32, 32), dtype('uint8'), [32, 32])
        >>> exact = load_or_compute_flow(tmp / "clip.avi", tmp / "flow" / "clip.npy")
        >>> type(exact).__name__  # the .flow store exists: it is read, nothing recomputed
        'FlowStore'
    """
    cache_path = Path(cache_path)
    _check_method(method, preset)
    found = find_flow(cache_path, skip_invalid=True)
    if found is not None:
        return found
    if store_of(cache_path) == "frames" and cache_path.exists():
        raise ValueError(f"cache_path: {str(cache_path)!r} exists but holds no valid flow")
    with contextlib.suppress(FileExistsError):  # a frame folder published meanwhile
        _compute_into(
            cache_path, video_path, method, preset=preset, size=size, short_side=short_side,
            codec=codec, quality=quality,
        )  # fmt: skip
    return open_flow(cache_path)


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
    tmp = temp_path(folder)
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
        try:
            os.rename(tmp, folder)
        except OSError as err:
            if folder.exists():  # another process published it meanwhile
                raise FileExistsError(f"folder: {str(folder)!r} exists already") from err
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


@dataclass
class PrecomputeReport:
    """What :func:`precompute_flow` did.

    Attributes:
        computed: Videos whose flow was computed in this run (relative paths).
        skipped: Videos whose flow was already complete in the store asked for.
        failed: ``(video, error message)`` for videos that could not be processed.
        removed_tmp: Temporary files of earlier, killed runs that were deleted: only
            those made on this host by a process that no longer exists (see
            :mod:`attnvideo.data.tempfiles`).
        shard: The shard processed (``"I/N"``), None for every video.
    """

    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    removed_tmp: list[str] = field(default_factory=list)
    shard: str | None = None

    def __str__(self) -> str:
        return (
            (f"shard {self.shard}: " if self.shard else "")
            + f"{len(self.computed)} computed, {len(self.skipped)} already done, "
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


def _resolve_store(store: str | None, frame_dirs: bool) -> str:
    if store is None:
        return "frames" if frame_dirs else DEFAULT_FLOW_STORE
    check_store(store)
    if frame_dirs and store != "frames":
        raise ValueError(
            f"store: frame_dirs=True writes TSN frame folders (store='frames'), got {store!r}"
        )
    return store


def _as_shard(shard: Shard | str | None) -> Shard | None:
    return Shard.parse(shard) if isinstance(shard, str) else shard


def _plan(
    video_root: Path,
    flow_root: Path,
    videos: Iterable[str | os.PathLike] | None,
    extensions: Sequence[str],
    store: str,
    shard: Shard | None,
) -> tuple[list[tuple[str, Path, Path]], dict[str, list[str]]]:
    """``(relative name, video, output)`` of each video to process, sorted, this shard's.

    Also the videos whose output another video of the list would share (``a.avi`` and
    ``a.mp4`` both map to ``a.flow``): each with the others, from the whole list, so every
    shard refuses the same ones.
    """
    names = _list_videos(video_root, extensions) if videos is None else [str(v) for v in videos]
    plan: dict[str, tuple[Path, Path]] = {}
    for name in names:
        video = Path(name) if Path(name).is_absolute() else video_root / name
        rel = Path(os.path.relpath(video, video_root)).as_posix()
        plan[rel] = (video, flow_cache_path(rel, video_root, flow_root, store))
    owners: dict[Path, list[str]] = {}
    for rel, (_, output) in sorted(plan.items()):
        owners.setdefault(output, []).append(rel)
    clashes = {
        rel: [other for other in rels if other != rel]
        for rels in owners.values()
        if len(rels) > 1
        for rel in rels
    }
    chosen = shard.select(plan) if shard is not None else sorted(plan)
    return [(rel, *plan[rel]) for rel in chosen], clashes


def _clash_message(rel: str, others: list[str]) -> str:
    return (
        f"ValueError: {rel} and {', '.join(others)} would share one flow output (same path "
        "without suffix): rename one, or process them into different flow roots"
    )


def _compute_into(
    target: Path,
    video_path: str | os.PathLike,
    method: str,
    *,
    preset: str | None,
    size: tuple[int, int] | None,
    short_side: int | None,
    codec: str,
    quality: int | None,
    rgb: bool = False,
) -> None:
    """Compute a video's flow into ``target``'s store (by its suffix), replacing it."""
    store = store_of(target)
    if store == "flow":
        _write_flow_store(target, video_path, method, preset, size, short_side, codec, quality)
    elif store == "npy":
        _write_npy_fields(target, *_flow_fields(video_path, method, preset, size, short_side))
    else:
        export_frame_folder(
            video_path, target, method, preset=preset, size=size, short_side=short_side,
            quality=95 if quality is None else quality, rgb=rgb,
        )  # fmt: skip


def _worker_init() -> None:
    torch.set_num_threads(1)
    _cv2().setNumThreads(1)


def _process(job: tuple[str, str, str, dict[str, object]]) -> tuple[str, str | None]:
    rel, video, target, options = job
    try:
        _compute_into(Path(target), video, **options)
    except Exception as exc:  # report, never kill the whole run
        return rel, f"{type(exc).__name__}: {exc}"
    return rel, None


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
    store: str | None = None,
    codec: str = "jpeg",
    quality: int | None = None,
    shard: Shard | str | None = None,
) -> PrecomputeReport:
    """Compute and store the flow of every video of a dataset, resumably, in parallel.

    Videos whose output is already complete are skipped, so an interrupted run is
    resumed by running it again; outputs are written atomically, so an interruption never
    leaves a half-written one, and temporary files of killed runs on this host are
    removed (never those of another host or of a live process: see
    :mod:`attnvideo.data.tempfiles`). A video that cannot be decoded is logged and
    reported, and the run goes on. ``shard`` splits the videos between processes or
    machines writing into the same ``flow_root``: every video is processed by exactly one
    shard.

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
        frame_dirs: Write full TSN frame folders, RGB frames ``img_%05d.jpg`` included
            (see :func:`export_frame_folder`), for datasets with ``frame_dirs=True``.
        size: Compute the flow on frames resized to ``(width, height)`` as they are
            decoded (TSN: ``(340, 256)``); train and test with the same size.
        short_side: Or on frames resized to this short side.
        store: One of :data:`~attnvideo.data.FLOW_STORES`: ``"flow"`` (the default: one
            compressed ``.flow`` file per video), ``"npy"`` (exact, uncompressed) or
            ``"frames"`` (flow-only TSN JPEG folders; with RGB when ``frame_dirs``).
        codec: ``.flow`` codec: ``"jpeg"`` (default) or ``"png"`` (lossless).
        quality: JPEG quality (``.flow``: 93, frame folders: 95) or PNG level.
        shard: Process only this shard of the sorted video list (a
            :class:`~attnvideo.data.Shard` or ``"I/N"``); None processes every video.

    Returns:
        A :class:`PrecomputeReport` listing computed, skipped and failed videos.

    Raises:
        ValueError: A bad argument (naming it).
        FileNotFoundError: ``video_root`` does not exist.

    Example:
        >>> import tempfile
        >>> empty = Path(tempfile.mkdtemp())
        >>> str(precompute_flow(empty, empty / "flow", progress=False, shard="1/2"))
        'shard 1/2: 0 computed, 0 already done, 0 failed, 0 stray temporary files removed'
    """
    video_root, flow_root = Path(video_root), Path(flow_root)
    store = _resolve_store(store, frame_dirs)
    _check_method(method, preset)
    scaled_size(1, 1, size=size, short_side=short_side)  # checks them
    _check_output(store, codec, quality)
    shard = _as_shard(shard)
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an integer >= 0, got {workers!r}")
    if not video_root.is_dir():
        raise FileNotFoundError(f"video_root: no such folder {str(video_root)!r}")
    options = {
        "method": method, "preset": preset, "size": size, "short_side": short_side,
        "codec": codec, "quality": quality, "rgb": frame_dirs,
    }  # fmt: skip
    plan, clashes = _plan(video_root, flow_root, videos, extensions, store, shard)
    # Temporaries sit beside their targets: only those folders are searched (not the
    # inside of frame folders), and only provably abandoned ones are removed.
    removed = [
        p.relative_to(flow_root).as_posix()
        for folder in sorted({output.parent for _, _, output in plan})
        for p in remove_abandoned(folder)
    ]
    report = PrecomputeReport(removed_tmp=removed, shard=None if shard is None else str(shard))
    jobs = []
    for rel, video, output in plan:
        if rel in clashes:
            report.failed.append((rel, _clash_message(rel, clashes[rel])))
        elif check_flow(output, rgb=frame_dirs, deep=False) is None:
            report.skipped.append(rel)
        elif not video.is_file():
            report.failed.append((rel, f"FileNotFoundError: no such file {str(video)!r}"))
        else:
            jobs.append((rel, str(video), str(output), options))

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


def _check_output(store: str, codec: str, quality: int | None) -> None:
    """Check the codec and quality of a store before any worker starts."""
    if store == "flow":
        from .flow_store import _check_codec

        _check_codec(codec, quality)
    elif quality is not None and (
        isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100
    ):
        raise ValueError(f"quality: JPEG quality is 1..100, got {quality!r}")


def missing_flow(
    video_root: str | os.PathLike,
    flow_root: str | os.PathLike,
    videos: Iterable[str | os.PathLike] | None = None,
    *,
    store: str | None = None,
    frame_dirs: bool = False,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    shard: Shard | str | None = None,
    deep: bool = True,
) -> list[tuple[str, str]]:
    """The videos whose flow output is missing or invalid (``attnvideo-flow --check``).

    Args:
        video_root: Dataset folder holding the videos.
        flow_root: The output folder of :func:`precompute_flow`.
        videos: The videos to check, as for :func:`precompute_flow`.
        store: The store to check (default ``"flow"``; ``"frames"`` with ``frame_dirs``).
        frame_dirs: Frame folders must hold the RGB frames too.
        extensions: Video suffixes looked for when ``videos`` is None.
        shard: Check only this shard's videos; None checks every video.
        deep: Read every output whole: each field of a ``.flow`` store is checked
            against its CRC-32, a frame folder's numbering and frame count are checked.

    Returns:
        ``(video, reason)`` for each video without a complete output, sorted.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "v.avi").write_bytes(b"")
        >>> video, reason = missing_flow(root, root / "flow")[0]
        >>> video, reason
        ('v.avi', 'missing')
    """
    video_root, flow_root = Path(video_root), Path(flow_root)
    store = _resolve_store(store, frame_dirs)
    plan, clashes = _plan(video_root, flow_root, videos, extensions, store, _as_shard(shard))
    checks = (
        (rel, f"conflict: shares its output with {', '.join(clashes[rel])}")
        if rel in clashes
        else (rel, check_flow(out, rgb=frame_dirs, deep=deep))
        for rel, _, out in plan
    )
    return [(rel, reason) for rel, reason in checks if reason is not None]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="attnvideo-flow",
        description="Precompute TSN-style optical flow, one compressed .flow file per video "
        "by default; resumable, sharded across processes or machines.",
    )
    p.add_argument("video_root", help="folder holding the videos")
    p.add_argument("flow_root", help="output folder (mirrors video_root, one output per video)")
    p.add_argument(
        "--store",
        choices=FLOW_STORES,
        default=None,
        help="flow: one compressed, seekable .flow file per video (default, ~6 KB per frame "
        "pair at 340x256); npy: exact uncompressed uint8 (~170 KB per pair); frames: "
        "flow-only TSN folders of flow_x/flow_y_%%05d.jpg",
    )
    p.add_argument(
        "--frame-dirs",
        action="store_true",
        help="write full TSN frame folders (img_%%05d.jpg, flow_x_%%05d.jpg, flow_y_%%05d.jpg) "
        "for datasets with frame_dirs=True",
    )
    p.add_argument("--codec", choices=FLOW_STORE_CODECS, default="jpeg", help=".flow codec")
    p.add_argument(
        "--quality",
        type=int,
        default=None,
        help="JPEG quality (.flow: 93, frame folders: 95) or PNG level (--codec png: 6)",
    )
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
    p.add_argument(
        "--shard",
        type=_parse_shard,
        default=None,
        metavar="I/N",
        help="process shard I of N (I from 0) of the sorted video list; default: from "
        "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, else torchrun's RANK/WORLD_SIZE, else "
        "SLURM_PROCID/SLURM_NTASKS (srun -n N), else all",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="compute nothing: list the videos (of the shard, if any) whose output is missing "
        "or invalid, reading every output whole; exit 1 when there is one",
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


def _parse_shard(text: str) -> Shard:
    """``"1/4"`` -> ``Shard(1, 4)`` for ``--shard``."""
    try:
        return Shard.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("shard: ")) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``attnvideo-flow`` / ``python -m attnvideo.data.flow``).

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The exit status: 0 when every video (of the shard) has its flow, 1 when some
        failed (or, with ``--check``, some output is missing or invalid), 2 on bad
        arguments.
    """
    args = _parser().parse_args(argv)
    videos = _read_list(args.list_file) if args.list_file else None
    try:
        shard, where = args.shard, "--shard"
        if shard is None and (assigned := Shard.from_env()) is not None:
            shard, where = assigned
        if shard is not None:
            print(f"attnvideo-flow: shard {shard} ({where})", file=sys.stderr)
        if args.check:
            return _check(args, videos, shard)
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
            store=args.store,
            codec=args.codec,
            quality=args.quality,
            shard=shard,
        )
    except (ImportError, ValueError, FileNotFoundError) as exc:
        print(f"attnvideo-flow: error: {exc}", file=sys.stderr)
        return 2
    print(f"attnvideo-flow: {report}")
    for rel, error in report.failed:
        print(f"  failed: {rel}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def _check(args: argparse.Namespace, videos: list[str] | None, shard: Shard | None) -> int:
    """``--check``: print the missing or invalid outputs; 1 when there is one."""
    video_root, flow_root = Path(args.video_root), Path(args.flow_root)
    if not video_root.is_dir():
        raise FileNotFoundError(f"video_root: no such folder {str(video_root)!r}")
    store = _resolve_store(args.store, args.frame_dirs)
    plan, _ = _plan(video_root, flow_root, videos, VIDEO_EXTENSIONS, store, shard)
    problems = missing_flow(
        video_root, flow_root, videos, store=store, frame_dirs=args.frame_dirs, shard=shard
    )
    for rel, reason in problems:
        print(f"  {reason}: {rel}")
    in_flight = [p for f in sorted({out.parent for *_, out in plan}) for p in temporaries(f)]
    total = len(plan)
    print(
        f"attnvideo-flow --check: {total - len(problems)} of {total} videos complete "
        f"({store}), {len(problems)} missing or invalid"
        + (f"; {len(in_flight)} temporary files (runs in progress, or killed)" if in_flight else "")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
