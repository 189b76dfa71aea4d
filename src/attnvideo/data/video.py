"""Reading frames: video files with PyAV, and TSN frame folders.

Two sources of frames, one interface: :func:`read_frames` returns the RGB frames at given
0-based indices of a video file, :func:`read_frame_folder` those of a TSN frame folder
(``img_00001.jpg`` ... 1-indexed on disk, 0-indexed here), and
:func:`read_flow_folder` TSN's quantised ``flow_x_%05d.jpg`` / ``flow_y_%05d.jpg`` fields.

**Frame i of a video is the i-th frame a plain full decode yields** (PyAV,
``container.decode(video=0)``), converted by ``to_ndarray(format="rgb24")``. Real files
do not make this easy to honour when seeking: AVI indexes that send a seek to an earlier
keyframe than asked, DivX/Xvid "packed B-frames" whose timestamps come out of display
order, placeholder packets that decode to no frame, MP4 edit lists, containers that
overstate their frame count. So nothing here trusts timestamps or indexes:

- :func:`probe_video` decodes the whole video once (no colour conversion: measured at
  0.1x-0.7x of a full RGB decode, the most on H.264) and records, per frame, a
  fingerprint of its decoded picture (CRC-32 of its planes), plus the keyframe packets
  that can be sought to. Its ``num_frames`` is the number of frames a full decode
  yields, whatever the container claims. The probe is cached per process.
- :func:`read_frames` seeks to a keyframe before each wanted frame, **identifies the frame
  the decoder actually landed on by its fingerprint**, counts forward from it, and checks
  the fingerprint of every frame it returns. A seek that lands elsewhere than asked is
  learned (per process) and used as it is; a read that does not verify is redone by
  decoding from the first frame, which is exact by definition. So a video is read
  exactly, by seeking where that works and more slowly where it does not, never wrongly.

Both can resize as frames come out of the decoder (``size`` or ``short_side``), so a
1080p video costs the memory of the working size; :func:`iter_frames` streams a plain full
decode the same way. Decoders run on one thread (see :func:`_one_decoding_thread`).
Rotation metadata of phone videos is not applied: frames are as the decoder stores them,
like a plain PyAV decode.

Containers are opened per call and closed before returning, so nothing is shared across
``DataLoader`` worker processes (the fork-safe way to use FFmpeg).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import threading
import uuid
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "ReadStats",
    "VideoDecodeError",
    "VideoProbe",
    "count_folder_frames",
    "iter_frames",
    "probe_cache_file",
    "probe_video",
    "read_flow_folder",
    "read_frame_folder",
    "read_frames",
    "scaled_size",
    "scan_frames",
]

IMG_TEMPLATE = "img_{:05d}.jpg"
FLOW_X_TEMPLATE = "flow_x_{:05d}.jpg"
FLOW_Y_TEMPLATE = "flow_y_{:05d}.jpg"

INTERPOLATION = "BILINEAR"
"""The swscale filter used when frames are resized at decoding."""

_IDENTIFY_WITHIN = 16  # frames decoded after a seek to find one whose fingerprint is known
_SKIP_MARGIN = 16  # frames before a far target from which nothing is skipped (see _skip_to)


class VideoDecodeError(RuntimeError):
    """A video (or frame folder) that cannot be read: missing stream, corrupt or truncated.

    The message always names the file. Datasets catch it and substitute a fallback sample.
    """


@dataclass(frozen=True, eq=False)
class VideoProbe:
    """What :func:`probe_video` learns from one full decode of a video.

    Attributes:
        num_frames: Number of frames a full decode yields.
        height: Frame height in pixels, as decoded.
        width: Frame width in pixels, as decoded.
        fingerprints: CRC-32 of each decoded frame's picture planes, a read-only uint32
            array: ``fingerprints[i]`` is frame ``i``.
        seek_points: ``(timestamp, frame)`` for each keyframe packet, in frame order:
            seeking to ``timestamp`` is expected to resume decoding at ``frame``
            (verified, and learned when the container sends the seek elsewhere). The
            first is ``(None, 0)``: frame 0 is read by decoding from the file's start.
        container_frames: The number of frames the container claims (its header count,
            or its count of non-empty packets when it has none); may differ from
            ``num_frames`` on real files.
        codec: The decoder's name (``"mpeg4"``, ``"h264"``, ...).
        source: ``(path, size, mtime_ns)`` of the file probed.
    """

    num_frames: int
    height: int
    width: int
    fingerprints: np.ndarray
    seek_points: tuple[tuple[int | None, int], ...]
    container_frames: int
    codec: str
    source: tuple[str, int, int]

    @property
    def keyframes(self) -> tuple[int, ...]:
        """The frames a seek is expected to resume decoding at (0 always among them)."""
        return tuple(frame for _, frame in self.seek_points)


@dataclass
class ReadStats:
    """What :func:`read_frames` did, accumulated over the calls it is passed to.

    Attributes:
        calls: Reads.
        seeks: Seeks made.
        frames_decoded: Frames the decoder produced (the cost of a read).
        relocated: Seeks that landed on another frame than expected (handled exactly).
        fallbacks: Reads redone by decoding from the first frame because a sought
            read could not be verified.
    """

    calls: int = 0
    seeks: int = 0
    frames_decoded: int = 0
    relocated: int = 0
    fallbacks: int = 0


def _av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("reading video files needs PyAV: pip install 'attnvideo[video]'") from err
    return av


def _open(path: str):
    """Open a container for reading; metadata that is not UTF-8 is skipped, not fatal."""
    return _av().open(path, metadata_errors="ignore")


def _one_decoding_thread(stream) -> None:
    """Make a PyAV video stream decode on the calling thread only (before decoding).

    FFmpeg decodes with a pool of slice threads by default. A ``DataLoader`` worker forked
    while such a decoder exists in the parent (even one already closed, waiting for the
    garbage collector) inherits it without its threads, and freeing it in the worker
    waits forever on them: the worker hangs. With one thread there is nothing to wait
    for. Loaders get their parallelism from worker processes, one per core, anyway.

    Args:
        stream: A PyAV ``VideoStream`` opened for reading.
    """
    stream.codec_context.thread_count = 1


def _video_stream(container, path: str):
    if not container.streams.video:
        raise VideoDecodeError(f"{path}: no video stream")
    stream = container.streams.video[0]
    _one_decoding_thread(stream)
    return stream


_PLANAR_420 = frozenset({"yuv420p", "yuvj420p"})


def _fingerprint(frame) -> int:
    """CRC-32 of a decoded frame's visible picture (all planes, without line padding).

    The CRC of ``frame.to_ndarray()``'s bytes. For 4:2:0 planar frames (nearly every
    video) that array is the three planes one after the other, so the CRC is chained
    over the planes' visible rows instead, without building it.
    """
    if frame.format.name in _PLANAR_420:
        crc = 0
        for plane in frame.planes:
            rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            crc = zlib.crc32(np.ascontiguousarray(rows[: plane.height, : plane.width]), crc)
        return crc
    try:
        planes = frame.to_ndarray()
    except (ValueError, TypeError, NotImplementedError):  # a pixel format numpy can't take
        planes = frame.to_ndarray(format="rgb24")
    return zlib.crc32(np.ascontiguousarray(planes))


def scaled_size(
    width: int,
    height: int,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> tuple[int, int]:
    """The ``(width, height)`` frames of a ``width`` x ``height`` video are decoded at.

    Args:
        width: The video's width.
        height: The video's height.
        size: An exact ``(width, height)`` (TSN: ``(340, 256)``).
        short_side: Scale so that the shorter side is this many pixels, keeping the
            aspect ratio (the longer side rounded to the nearest pixel).

    Returns:
        ``(width, height)``: the video's own without ``size`` and ``short_side``.

    Raises:
        ValueError: Both ``size`` and ``short_side`` given, or a non-positive value.

    Example:
        >>> scaled_size(1920, 1080, short_side=256)
        (455, 256)
        >>> scaled_size(1080, 1350, short_side=256), scaled_size(320, 240, size=(340, 256))
        ((256, 320), (340, 256))
    """
    if size is not None and short_side is not None:
        raise ValueError(f"size, short_side: give one of them, got {size!r} and {short_side!r}")
    if size is not None:
        ok = isinstance(size, tuple | list) and len(size) == 2
        if not ok or not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
            raise ValueError(f"size: expected (width, height) as two ints, got {size!r}")
        if min(size) < 1:
            raise ValueError(f"size: expected positive (width, height), got {size!r}")
        return int(size[0]), int(size[1])
    if short_side is not None:
        if not isinstance(short_side, int) or isinstance(short_side, bool) or short_side < 1:
            raise ValueError(f"short_side: expected a positive int, got {short_side!r}")
        scale = short_side / min(width, height)
        if width <= height:
            return short_side, max(1, round(height * scale))
        return max(1, round(width * scale)), short_side
    return width, height


_REFORMATTERS: dict[int, object] = {}


class _Converter:
    """Decoded frame -> uint8 RGB ``(H, W, 3)`` at a size, with one reused swscale context.

    ``VideoFrame.to_ndarray`` builds a new swscale context for every frame, which costs
    three times the conversion itself; one ``VideoReformatter`` per process keeps its
    context (rebuilt by FFmpeg only when the frame size or format changes). The result is
    ``frame.reformat(width, height, "rgb24", interpolation=INTERPOLATION).to_ndarray()``
    bit for bit (``frame.to_ndarray(format="rgb24")`` at the native size).
    """

    def __init__(self, width: int, height: int, out_width: int, out_height: int) -> None:
        native = (out_width, out_height) == (width, height)
        self.kwargs = {"format": "rgb24", "threads": 1}
        if not native:
            self.kwargs.update(width=out_width, height=out_height, interpolation=INTERPOLATION)

    def __call__(self, frame) -> np.ndarray:
        pid = os.getpid()  # one per process: a forked worker builds its own (and never
        # frees the one it inherited: FFmpeg state copied by fork is left alone)
        reformatter = _REFORMATTERS.get(pid)
        if reformatter is None:
            from av.video.reformatter import VideoReformatter

            reformatter = _REFORMATTERS[pid] = VideoReformatter()
        return reformatter.reformat(frame, **self.kwargs).to_ndarray()


def probe_video(
    path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None
) -> VideoProbe:
    """Decode a video once (no colour conversion) to count and fingerprint its frames.

    Cached per process on (path, size, modification time), so a dataset probes each video
    once per worker. With ``cache_dir`` the probe is also kept on disk, one small file per
    video shared by every process and run: a dataset of any size is then probed once in
    all, not once per ``DataLoader`` worker (see :func:`probe_cache_file`).

    Args:
        path: A video file readable by FFmpeg (.avi, .mp4, ...).
        cache_dir: A folder for probe files (made if missing). A file made for another
            size, modification time or decoder version of the video is recomputed;
            one that cannot be read is recomputed; one that cannot be written is a
            ``RuntimeWarning``, not an error.

    Returns:
        A :class:`VideoProbe`; its ``num_frames`` is what a full decode yields.

    Raises:
        VideoDecodeError: The file cannot be opened, has no video stream, no frame, or
            fails to decode (what a plain full decode would fail on too).

    Example:
        >>> probe_video("missing.avi")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        attnvideo.data.video.VideoDecodeError: missing.avi: cannot open ...
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise VideoDecodeError(f"{path}: cannot open ({err.strerror})") from err
    cache = None if cache_dir is None else os.fspath(cache_dir)
    return _probe_cached(os.fspath(path), st.st_size, st.st_mtime_ns, cache)


_PROBE_FORMAT = 1  # bump when what a probe records, or how, changes


def _decoder_version() -> str:
    """PyAV and FFmpeg versions: what decides the frames and so the fingerprints."""
    av = _av()
    ffmpeg = getattr(av, "ffmpeg_version_info", None) or str(
        getattr(av, "library_versions", {}).get("libavcodec", "")
    )
    return f"pyav {av.__version__}, ffmpeg {ffmpeg}, probe format {_PROBE_FORMAT}"


def probe_cache_file(path: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """Where :func:`probe_video` keeps a video's probe in ``cache_dir``.

    One JSON file per video, named by a hash of the video's absolute path (so videos of
    the same name in different folders never share one). It records the video's path,
    size and modification time and the decoder's version, and is used only while all
    four still match. Written atomically: concurrent workers and shards may share a
    folder.

    Args:
        path: The video file.
        cache_dir: The probe folder.

    Returns:
        ``cache_dir / "<sha1 of the absolute path>.probe.json"``.

    Example:
        >>> a = probe_cache_file("a/clip.avi", "probes")
        >>> a.name.endswith(".probe.json"), a == probe_cache_file("b/clip.avi", "probes")
        (True, False)
    """
    key = hashlib.sha1(os.fsencode(os.path.abspath(path))).hexdigest()
    return Path(cache_dir) / f"{key}.probe.json"


def _probe_to_json(probe: VideoProbe, source: tuple[str, int, int]) -> str:
    record = {
        "path": os.path.abspath(source[0]),
        "size": source[1],
        "mtime_ns": source[2],
        "decoder": _decoder_version(),
        "num_frames": probe.num_frames,
        "height": probe.height,
        "width": probe.width,
        "fingerprints": base64.b64encode(probe.fingerprints.astype("<u4").tobytes()).decode(),
        "seek_points": [list(point) for point in probe.seek_points],
        "container_frames": probe.container_frames,
        "codec": probe.codec,
    }
    return json.dumps(record)


def _probe_from_file(file: Path, source: tuple[str, int, int]) -> VideoProbe | None:
    """The probe kept in ``file`` if it is for this very file and decoder, else None."""
    try:
        record = json.loads(file.read_text())
        if (record["path"], record["size"], record["mtime_ns"], record["decoder"]) != (
            os.path.abspath(source[0]),
            source[1],
            source[2],
            _decoder_version(),
        ):
            return None
        prints = np.frombuffer(base64.b64decode(record["fingerprints"]), dtype="<u4")
        prints = prints.astype(np.uint32)
        prints.flags.writeable = False
        points = tuple((None if s is None else int(s), int(f)) for s, f in record["seek_points"])
        if len(prints) != record["num_frames"] or not points or points[0] != (None, 0):
            return None
        return VideoProbe(
            num_frames=int(record["num_frames"]),
            height=int(record["height"]),
            width=int(record["width"]),
            fingerprints=prints,
            seek_points=points,
            container_frames=int(record["container_frames"]),
            codec=str(record["codec"]),
            source=source,
        )
    except (OSError, ValueError, KeyError, TypeError):  # missing, partial, foreign: redo
        return None


def _probe_to_file(file: Path, probe: VideoProbe, source: tuple[str, int, int]) -> None:
    tmp = file.with_name(f"{file.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(_probe_to_json(probe, source))
        os.replace(tmp, file)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        warnings.warn(
            f"cannot keep the probe of {source[0]} in {file.parent} ({err}): it will be "
            "probed again by other processes",
            RuntimeWarning,
            stacklevel=4,
        )


class _ProbeMemo:
    """Probes kept in memory, least recently used first out, whichever way they were got.

    Keyed by the video's (path, size, modification time) only, so a probe fetched with a
    ``cache_dir`` serves every later call (``read_frames`` included) without one, and a
    probe made without one is written to the first ``cache_dir`` asked for.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        # source -> (probe, the cache folders known to hold it)
        self._items: OrderedDict[tuple[str, int, int], tuple[VideoProbe, set[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: str, size: int, mtime_ns: int, cache_dir: str | None) -> VideoProbe:
        source = (path, size, mtime_ns)
        with self._lock:
            entry = self._items.get(source)
            if entry is not None:
                self._items.move_to_end(source)
                if cache_dir is None or cache_dir in entry[1]:
                    return entry[0]
        probe = entry[0] if entry is not None else None
        if cache_dir is not None:
            file = probe_cache_file(path, cache_dir)
            kept = _probe_from_file(file, source)
            probe = probe or kept
        if probe is None:
            probe = _probe_decode(path, size, mtime_ns)
        if cache_dir is not None and kept is None:
            _probe_to_file(file, probe, source)
        with self._lock:
            dirs = self._items[source][1] if source in self._items else set()
            if cache_dir is not None:
                dirs.add(cache_dir)
            self._items[source] = (probe, dirs)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return probe

    def cache_clear(self) -> None:
        with self._lock:
            self._items.clear()


_probe_cached = _ProbeMemo(maxsize=1 << 14)


def _probe_decode(path: str, size: int, mtime_ns: int) -> VideoProbe:
    av = _av()
    prints: list[int] = []
    frame_pts: list[int | None] = []
    keys: list[tuple[int, int]] = []  # (seek timestamp, frames yielded before its packet)
    key_pts: list[int | None] = []
    packets = 0
    try:
        with _open(path) as container:
            stream = _video_stream(container, path)
            height, width = stream.codec_context.height, stream.codec_context.width
            codec, claimed = stream.codec_context.name, stream.frames
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    if packet.is_keyframe and stamp is not None:
                        keys.append((stamp, len(prints)))
                        key_pts.append(packet.pts)
                for frame in packet.decode():
                    if not prints:
                        height, width = frame.height, frame.width
                    prints.append(_fingerprint(frame))
                    frame_pts.append(frame.pts)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise VideoDecodeError(f"{path}: cannot read ({err})") from err
    if not prints:
        raise VideoDecodeError(f"{path}: no video frames")
    # Where each keyframe is expected to resume decoding: its own frame when timestamps
    # tell (unique presentation timestamps), else the frames yielded before its packet.
    # Only a first guess: every seek is verified by fingerprint and its landing learned.
    index_of: dict[int | None, int] = {}
    for i, stamp in enumerate(frame_pts):
        index_of[stamp] = -1 if stamp in index_of else i
    points: dict[int, int | None] = {0: None}
    for (stamp, before), pts in zip(keys, key_pts, strict=True):
        frame = index_of.get(pts, -1) if pts is not None else -1
        points.setdefault(frame if frame >= 0 else min(before, len(prints) - 1), stamp)
    seek_points = tuple((stamp, frame) for frame, stamp in sorted(points.items()))
    fingerprints = np.asarray(prints, dtype=np.uint32)
    fingerprints.flags.writeable = False
    return VideoProbe(
        num_frames=len(prints),
        height=height,
        width=width,
        fingerprints=fingerprints,
        seek_points=seek_points,
        container_frames=claimed or packets,
        codec=codec,
        source=(path, size, mtime_ns),
    )


# Per process: where seeks of a file really land, (source, timestamp) -> frame, and the
# files whose sought reads did not verify (read from the start from then on).
_LANDINGS: dict[tuple[tuple[str, int, int], int], int] = {}
_UNSEEKABLE: set[tuple[str, int, int]] = set()
# (source, timestamp) of seeks whose landing was identified on the first frame decoded.
_TRUSTED: set[tuple[tuple[str, int, int], int]] = set()


class _Inexact(Exception):
    """A sought read that could not be verified (handled by decoding from the start)."""


def iter_frames(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream every frame of a video as uint8 RGB ``(H, W, 3)``: a plain full decode.

    Frames are converted (and resized) one at a time as the decoder yields them, so
    memory does not grow with the video's length or resolution.

    Args:
        path: A video file.
        size: Resize to this ``(width, height)`` (see :func:`scaled_size`).
        short_side: Resize so that the shorter side has this many pixels.

    Yields:
        The frames in order.

    Raises:
        VideoDecodeError: The file cannot be opened or decoded (naming it).

    Example:
        >>> import tempfile, av
        >>> path = tempfile.mkdtemp() + "/clip.avi"
        >>> with av.open(path, "w") as c:
        ...     s = c.add_stream("mpeg4", rate=25)
        ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        ...     for i in range(3):
        ...         img = np.full((48, 64, 3), 80 * i, np.uint8)
        ...         c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        ...     c.mux(s.encode())
        >>> frames = list(iter_frames(path, short_side=24))
        >>> len(frames), frames[0].shape
        (3, (24, 32, 3))
    """
    path = os.fspath(path)
    av = _av()
    count = 0
    try:
        with _open(path) as container:
            stream = _video_stream(container, path)
            convert = None
            for frame in container.decode(stream):
                if convert is None:
                    out = scaled_size(frame.width, frame.height, size=size, short_side=short_side)
                    convert = _Converter(frame.width, frame.height, *out)
                count += 1
                yield convert(frame)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(f"{path}: cannot read ({err})") from err
    if not count:
        raise VideoDecodeError(f"{path}: no video frames")


def scan_frames(
    path: str | os.PathLike,
    indices: object,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    threads: int = 1,
) -> tuple[int, dict[int, np.ndarray]]:
    """Decode a video once, front to back: count its frames and keep those at ``indices``.

    A plain full decode (frame ``i`` is the ``i``-th frame it yields, as in
    :func:`read_frames`) that converts to RGB (and resizes) only the frames asked for, so
    it costs decoding plus a few conversions, and the memory of the frames kept. For one
    pass over a video whose frame count is not known yet: indices at or past the end are
    simply not in the result.

    Args:
        path: A video file.
        indices: Frame indices to keep (any order, repeats ignored).
        size: Resize to this ``(width, height)`` (see :func:`scaled_size`).
        short_side: Resize so that the shorter side has this many pixels.
        threads: Decoding threads (0: FFmpeg's choice). Keep 1 in a process that later
            forks ``DataLoader`` workers (see the module's notes); more is for a process
            that does not fork, such as ``attnvideo-predict``. The frames are the same.

    Returns:
        ``(num_frames, {index: uint8 RGB (H, W, 3)})`` for the indices that exist.

    Raises:
        ValueError: A negative index, or a bad ``size``/``short_side``/``threads``.
        VideoDecodeError: The file cannot be opened or decoded, or has no frame.

    Example:
        >>> import tempfile, av
        >>> path = tempfile.mkdtemp() + "/clip.avi"
        >>> with av.open(path, "w") as c:
        ...     s = c.add_stream("mpeg4", rate=25)
        ...     s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        ...     for i in range(5):
        ...         img = np.full((24, 32, 3), 50 * i, np.uint8)
        ...         c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        ...     c.mux(s.encode())
        >>> count, kept = scan_frames(path, [4, 1, 9])
        >>> count, sorted(kept), kept[4].shape
        (5, [1, 4], (24, 32, 3))
    """
    wanted = {int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1).tolist()}
    if wanted and min(wanted) < 0:
        raise ValueError(f"indices: expected frame indices >= 0, got {min(wanted)}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ValueError(f"threads: expected an integer >= 0, got {threads!r}")
    scaled_size(1, 1, size=size, short_side=short_side)  # checks them
    path = os.fspath(path)
    av = _av()
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        with _open(path) as container:
            stream = _video_stream(container, path)
            if threads != 1:
                stream.codec_context.thread_count = threads
                stream.codec_context.thread_type = "AUTO"
            convert = None
            for count, frame in enumerate(container.decode(stream), start=1):
                if count - 1 in wanted:
                    if convert is None:
                        out = scaled_size(
                            frame.width, frame.height, size=size, short_side=short_side
                        )
                        convert = _Converter(frame.width, frame.height, *out)
                    kept[count - 1] = convert(frame)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(f"{path}: cannot read ({err})") from err
    if not count:
        raise VideoDecodeError(f"{path}: no video frames")
    return count, kept


def read_frames(
    path: str | os.PathLike,
    indices: object,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    stats: ReadStats | None = None,
) -> np.ndarray:
    """Decode the RGB frames at ``indices`` (0-based), seeking instead of decoding all.

    Exact: each returned frame is verified against the probe's fingerprint of that frame,
    so it equals frame ``i`` of a plain full decode bit for bit (resized with
    :data:`INTERPOLATION` when asked), whatever the container's index and timestamps say.

    Args:
        path: A video file.
        indices: Frame indices, any order, repeats allowed (a sequence of ints or an
            integer array), each in ``[0, num_frames)``.
        size: Resize to this ``(width, height)`` as frames are decoded.
        short_side: Resize so that the shorter side has this many pixels.
        stats: A :class:`ReadStats` to add this read's seeks and decoded frames to.

    Shape:
        Returns ``(len(indices), H, W, 3)``.

    Returns:
        uint8 RGB frames in the order of ``indices``.

    Raises:
        ValueError: An index is out of range, or a bad ``size``/``short_side``.
        VideoDecodeError: The video cannot be decoded.

    Example:
        >>> import tempfile, av
        >>> path = tempfile.mkdtemp() + "/clip.avi"
        >>> with av.open(path, "w") as c:
        ...     s = c.add_stream("mpeg4", rate=25)
        ...     s.width, s.height, s.pix_fmt = 32, 16, "yuv420p"
        ...     for i in range(6):
        ...         img = np.full((16, 32, 3), 40 * i, np.uint8)
        ...         c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        ...     c.mux(s.encode())
        >>> frames = read_frames(path, [4, 1])
        >>> frames.shape, [round(int(v) / 40) for v in frames[:, 8, 16, 0]]  # frame i is 40 * i
        ((2, 16, 32, 3), [4, 1])
        >>> read_frames(path, [4, 1], short_side=8).shape
        (2, 8, 16, 3)
    """
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    probe = probe_video(path)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= probe.num_frames):
        raise ValueError(
            f"indices: expected frame indices in [0, {probe.num_frames}) for {path}, "
            f"got min {wanted.min()} max {wanted.max()}"
        )
    out_w, out_h = scaled_size(probe.width, probe.height, size=size, short_side=short_side)
    stats = stats if stats is not None else ReadStats()
    stats.calls += 1
    targets = sorted(set(wanted.tolist()))
    if not targets:
        return np.zeros((0, out_h, out_w, 3), np.uint8)
    convert = _Converter(probe.width, probe.height, out_w, out_h)
    av = _av()
    path = os.fspath(path)
    try:
        decoded = None
        if probe.source not in _UNSEEKABLE:
            try:
                decoded = _read_seeking(path, probe, targets, convert, stats)
            except _Inexact:
                _UNSEEKABLE.add(probe.source)
                stats.fallbacks += 1
        if decoded is None:
            decoded = _read_from_start(path, probe, targets, convert, stats)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(f"{path}: decoding failed ({err})") from err
    return np.stack([decoded[i] for i in wanted.tolist()])


def _read_from_start(
    path: str, probe: VideoProbe, targets: list[int], convert: _Converter, stats: ReadStats
) -> dict[int, np.ndarray]:
    """Decode from the first frame to the last target: a plain full decode, cut short."""
    wanted, out = set(targets), {}
    with _open(path) as container:
        for position, frame in enumerate(container.decode(_video_stream(container, path))):
            stats.frames_decoded += 1
            if position in wanted:
                if _fingerprint(frame) != probe.fingerprints[position]:
                    raise VideoDecodeError(
                        f"{path}: frame {position} decodes differently from one decode to "
                        "the next (the file changed or the decoder is not deterministic)"
                    )
                out[position] = convert(frame)
                if position == targets[-1]:
                    return out
    raise VideoDecodeError(
        f"{path}: the video ends before frame {targets[-1]} (a full decode gave "
        f"{probe.num_frames} frames: the file changed?)"
    )


@functools.lru_cache(maxsize=64)
def _frames_of(probe: VideoProbe) -> dict[int, list[int]]:
    """Fingerprint -> the frames that have it, per probe (probes are kept, so built once)."""
    frames_of: dict[int, list[int]] = {}
    for i, value in enumerate(probe.fingerprints.tolist()):
        frames_of.setdefault(value, []).append(i)
    return frames_of


def _read_seeking(
    path: str, probe: VideoProbe, targets: list[int], convert: _Converter, stats: ReadStats
) -> dict[int, np.ndarray]:
    """Read by seeking to keyframes; raise :class:`_Inexact` when a read does not verify."""
    wanted, out = set(targets), {}
    frames_of = _frames_of(probe)
    with _Cursor(path) as cursor:
        for target in targets:
            if target in out:
                continue
            if (
                cursor.frame is None
                or target < cursor.position
                or _seek_helps(probe, target, cursor)
            ):
                _seek(cursor, probe, target, frames_of, stats)
            if target - cursor.position > 2 * _SKIP_MARGIN:
                try:
                    _skip_to(cursor, target, frames_of, stats)
                except _Inexact:  # not identified: do it the plain way
                    _seek(cursor, probe, target, frames_of, stats)
            while True:
                position = cursor.position
                if position in wanted and position not in out:
                    if _fingerprint(cursor.frame) != probe.fingerprints[position]:
                        if cursor.trusted is None:
                            raise _Inexact
                        # A landing trusted from before was not the same this time: forget
                        # it and identify where this seek lands.
                        _TRUSTED.discard((probe.source, cursor.trusted))
                        _seek(cursor, probe, target, frames_of, stats)
                        continue
                    cursor.trusted = None  # the landing is confirmed
                    out[position] = convert(cursor.frame)
                if position >= target:
                    break
                _step(cursor, frames_of, stats)
    return out


def _identify(frame, after: int, frames_of: dict[int, list[int]]) -> int:
    """The index of a decoded frame: the first frame after ``after`` with its fingerprint."""
    for i in frames_of.get(_fingerprint(frame), ()):
        if i > after:
            return i
    raise _Inexact


def _skip_to(cursor: _Cursor, target: int, frames_of: dict[int, list[int]], stats) -> None:
    """Decode on towards ``target`` without decoding the frames no other frame needs.

    Until ``_SKIP_MARGIN`` frames before ``target`` the decoder drops non-reference frames
    (``skip_frame = "NONREF"``: B-frames nothing predicts from, about half the frames of
    an H.264 video with B-frames): they could not be returned anyway, and the reference
    frames decode as in a full decode. The frames that still come out are not counted but
    identified by fingerprint, up to ``target`` (some dropped frames would be missing
    from a count). Raises :class:`_Inexact` (the caller then seeks the plain way) if a
    frame cannot be identified or ``target`` was dropped.
    """
    context = cursor.stream.codec_context
    context.skip_frame = "NONREF"
    try:
        while cursor.position < target - _SKIP_MARGIN:
            cursor.identify_until = cursor.position + 2 * _SKIP_MARGIN
            _step(cursor, frames_of, stats)
    finally:
        context.skip_frame = "DEFAULT"
    while cursor.position < target:
        _step(cursor, frames_of, stats)
    if cursor.position > target:
        raise _Inexact


def _step(cursor: _Cursor, frames_of: dict[int, list[int]], stats) -> None:
    """Decode the next frame and know its index (raise :class:`_Inexact` at the end).

    Counted from the last one, except shortly after frames were skipped (some dropped
    frames may still be missing from the decoder's output): then identified.
    """
    before = cursor.position
    if not cursor.advance():
        raise _Inexact
    stats.frames_decoded += 1
    if before < cursor.identify_until:
        cursor.position = _identify(cursor.frame, before, frames_of)


class _Cursor:
    """An open container, its frame iterator, and the index of the frame it gave last."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.container = self.stream = self.frames = self.frame = None
        self.position = -1
        self.identify_until = -1  # frames up to here are identified, not counted
        self.trusted: int | None = None  # the seek timestamp of an unconfirmed trusted landing

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def start(self, stamp: int | None) -> None:
        """Resume decoding at keyframe timestamp ``stamp`` (None: the file's start)."""
        if stamp is None or self.container is None:
            # The file's start is a fresh open: a seek back there does not always restore
            # the initial state (a DivX placeholder packet, an MP4 edit list).
            self.close()
            self.container = _open(self.path)
            self.stream = _video_stream(self.container, self.path)
        if stamp is not None:
            self.container.seek(stamp, stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)
        self.frame, self.position, self.identify_until = None, -1, -1
        self.trusted = None

    def advance(self) -> bool:
        """Decode the next frame; False at the end of the video."""
        self.frame = next(self.frames, None)
        self.position += 1
        return self.frame is not None


def _landing(probe: VideoProbe, point: int) -> int:
    stamp, frame = probe.seek_points[point]
    return frame if stamp is None else _LANDINGS.get((probe.source, stamp), frame)


def _best_point(probe: VideoProbe, target: int) -> int:
    """The seek point expected to resume decoding closest before (or at) ``target``."""
    best, best_frame = 0, 0
    for point in range(1, len(probe.seek_points)):
        landing = _landing(probe, point)
        if best_frame < landing <= target:
            best, best_frame = point, landing
    return best


def _seek_helps(probe: VideoProbe, target: int, cursor: _Cursor) -> bool:
    """Whether a seek gets nearer to ``target`` than decoding on from where we are."""
    return _landing(probe, _best_point(probe, target)) > cursor.position + 1


def _seek(cursor: _Cursor, probe: VideoProbe, target: int, frames_of, stats: ReadStats) -> None:
    """Put ``cursor`` on a verified frame at or before ``target`` (raise :class:`_Inexact`)."""
    while True:
        point = _best_point(probe, target)
        stamp = probe.seek_points[point][0]
        expected = _landing(probe, point)
        stats.seeks += 1
        cursor.start(stamp)
        if (probe.source, stamp) in _TRUSTED and (probe.source, stamp) in _LANDINGS:
            # This seek landed on this frame before in this process, identified on the
            # first frame decoded: it does so again (seeks are deterministic). Not
            # fingerprinted again; the first frame returned is, and a mismatch re-seeks.
            if not cursor.advance():
                raise _Inexact
            stats.frames_decoded += 1
            cursor.position, cursor.trusted = expected, stamp
            return
        found = None
        for attempt in range(_IDENTIFY_WITHIN):
            if not cursor.advance():
                break
            stats.frames_decoded += 1
            candidates = frames_of.get(_fingerprint(cursor.frame))
            if candidates:
                first = attempt == 0 and len(candidates) == 1  # unambiguous at once
                # Nearest to where the seek was expected to land. With identical frames
                # the guess may be off: every frame returned is verified anyway.
                found = min(candidates, key=lambda i: (abs(i - expected), i))
                break
            if stamp is None:
                break  # from the start, frame 0 must be the first frame
        if found is None:
            raise _Inexact
        if found != expected:
            stats.relocated += 1
        cursor.position = found
        if stamp is not None:
            _LANDINGS[(probe.source, stamp)] = found
            if first:
                _TRUSTED.add((probe.source, stamp))
        if found <= target:
            return
        if stamp is None:
            raise _Inexact
        # Landed past the target: learned, so the next try picks an earlier point.


_NUMBERED = re.compile(r"^(img|flow_x|flow_y)_(\d{5})\.jpg$")


def count_folder_frames(folder: str | os.PathLike) -> tuple[int, int]:
    """Count the RGB frames and flow fields of a TSN frame folder.

    Args:
        folder: A directory holding ``img_%05d.jpg`` and/or ``flow_x_%05d.jpg`` +
            ``flow_y_%05d.jpg`` files, numbered from 1.

    Returns:
        ``(num_frames, num_flow_fields)``: the number of ``img_*`` files and of complete
        ``flow_x``/``flow_y`` pairs.

    Raises:
        VideoDecodeError: The folder is missing or the numbering has gaps.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for i in (1, 2, 3):
        ...     Image.new("RGB", (4, 2)).save(d / f"img_{i:05d}.jpg")
        >>> count_folder_frames(d)
        (3, 0)
    """
    try:
        names = os.listdir(folder)
    except OSError as err:
        raise VideoDecodeError(f"{folder}: cannot list frame folder ({err.strerror})") from err
    numbers: dict[str, set[int]] = {"img": set(), "flow_x": set(), "flow_y": set()}
    for name in names:
        match = _NUMBERED.match(name)
        if match:
            numbers[match.group(1)].add(int(match.group(2)))
    counts = []
    for kind in ("img", "flow_x", "flow_y"):
        got = numbers[kind]
        if got and got != set(range(1, len(got) + 1)):
            missing = sorted(set(range(1, max(got) + 1)) - got)[:3]
            raise VideoDecodeError(f"{folder}: {kind}_*.jpg numbering has gaps, e.g. {missing}")
        counts.append(len(got))
    return counts[0], min(counts[1], counts[2])


def _read_jpeg(path: Path, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode))
    except (OSError, SyntaxError, ValueError) as err:
        raise VideoDecodeError(f"{path}: cannot read image ({err})") from err


def read_frame_folder(folder: str | os.PathLike, indices: object) -> np.ndarray:
    """Read RGB frames ``img_%05d.jpg`` of a TSN frame folder at 0-based ``indices``.

    Frame ``i`` is the file ``img_{i + 1:05d}.jpg`` (TSN numbers files from 1).

    Args:
        folder: The video's frame folder.
        indices: 0-based frame indices.

    Shape:
        Returns ``(len(indices), H, W, 3)``.

    Returns:
        uint8 RGB frames in the order of ``indices``.

    Raises:
        VideoDecodeError: A file is missing or not a readable image.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for i in (1, 2):
        ...     Image.new("RGB", (4, 2), (100 * i, 0, 0)).save(d / f"img_{i:05d}.jpg")
        >>> frames = read_frame_folder(d, [1, 0])
        >>> tuple(int(v) // 10 for v in frames[:, 0, 0, 0])
        (20, 10)
    """
    folder = Path(folder)
    cache: dict[int, np.ndarray] = {}
    out = []
    for i in np.asarray(indices, dtype=np.int64).reshape(-1).tolist():
        if i not in cache:
            cache[i] = _read_jpeg(folder / IMG_TEMPLATE.format(i + 1), "RGB")
        out.append(cache[i])
    return np.stack(out)


def read_flow_folder(folder: str | os.PathLike, indices: object) -> np.ndarray:
    """Read TSN's quantised flow fields ``flow_x/flow_y_%05d.jpg`` at 0-based ``indices``.

    Field ``i`` (motion from frame ``i`` to ``i + 1``) is the pair of files numbered
    ``i + 1``. Values are TSN's uint8 quantisation with bound 20 (see
    :func:`attnvideo.functional.dequantize_flow`).

    Args:
        folder: The video's frame folder.
        indices: 0-based flow field indices.

    Shape:
        Returns ``(len(indices), 2, H, W)`` (x then y).

    Returns:
        uint8 quantised flow fields in the order of ``indices``.

    Raises:
        VideoDecodeError: A file is missing or not a readable image.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> Image.new("L", (4, 2), 200).save(d / "flow_x_00001.jpg")
        >>> Image.new("L", (4, 2), 50).save(d / "flow_y_00001.jpg")
        >>> read_flow_folder(d, [0])[0, :, 0, 0].tolist()
        [200, 50]
    """
    folder = Path(folder)
    cache: dict[int, np.ndarray] = {}
    out = []
    for i in np.asarray(indices, dtype=np.int64).reshape(-1).tolist():
        if i not in cache:
            fx = _read_jpeg(folder / FLOW_X_TEMPLATE.format(i + 1), "L")
            fy = _read_jpeg(folder / FLOW_Y_TEMPLATE.format(i + 1), "L")
            if fx.shape != fy.shape:
                raise VideoDecodeError(
                    f"{folder}: flow_x/flow_y {i + 1:05d} differ in size: {fx.shape} vs {fy.shape}"
                )
            cache[i] = np.stack([fx, fy])
        out.append(cache[i])
    return np.stack(out)
