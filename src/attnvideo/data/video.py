"""Reading frames: video files with PyAV, and TSN frame folders.

Two sources of frames, one interface: :func:`read_frames` returns the RGB frames at given
0-based indices of a video file, :func:`read_frame_folder` those of a TSN frame folder
(``img_00001.jpg`` ... 1-indexed on disk, 0-indexed here), and
:func:`read_flow_folder` TSN's quantised ``flow_x_%05d.jpg`` / ``flow_y_%05d.jpg`` fields.

Decoding reads only what a sample needs. :func:`probe_video` demuxes the packets once
(no decoding) to learn every frame's presentation timestamp and where the keyframes are;
:func:`read_frames` then seeks to the keyframe at or before each wanted frame and decodes
forward to it, continuing without a seek when the next wanted frame is reachable from
where the decoder already is. A TSN sample of 8 segments thus decodes at most 8 short
runs of frames (each from a keyframe to the wanted frame) instead of the whole video. The
probe is cached per process.

Containers are opened per call and closed before returning, so nothing is shared across
``DataLoader`` worker processes (the fork-safe way to use FFmpeg).
"""

from __future__ import annotations

import bisect
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "VideoDecodeError",
    "VideoProbe",
    "count_folder_frames",
    "probe_video",
    "read_flow_folder",
    "read_frame_folder",
    "read_frames",
]

IMG_TEMPLATE = "img_{:05d}.jpg"
FLOW_X_TEMPLATE = "flow_x_{:05d}.jpg"
FLOW_Y_TEMPLATE = "flow_y_{:05d}.jpg"


class VideoDecodeError(RuntimeError):
    """A video (or frame folder) that cannot be read: missing stream, corrupt or truncated.

    The message always names the file. Datasets catch it and substitute a fallback sample.
    """


@dataclass(frozen=True, eq=False)
class VideoProbe:
    """What :func:`probe_video` learns from a video's packets without decoding them.

    Attributes:
        num_frames: Number of video frames (packets carrying a picture).
        pts: Presentation timestamps of the frames, sorted, a read-only int64 array:
            ``pts[i]`` is frame ``i`` (an array: a worker may cache thousands of probes).
        keyframes: 0-based indices of the keyframes, sorted.
        seek_to: For each keyframe, the timestamp to seek to (its decoding timestamp,
            which is what demuxers index: AVI seeks by packet order).
        height: Frame height in pixels.
        width: Frame width in pixels.
        count_frames: Identify decoded frames by counting from the keyframe sought rather
            than by their timestamps. Chosen when the packets' timestamps increase in
            decoding order: then either no frame is reordered (counting is exact) or the
            timestamps are decoding-order ones (AVI holding H.264 with B-frames), which
            do not tell a reordered frame's position; such videos are then always decoded
            from their first frame (exact, but no seeking). Otherwise timestamps are real
            presentation times and identify each frame.
    """

    num_frames: int
    pts: np.ndarray
    keyframes: tuple[int, ...]
    seek_to: tuple[int, ...]
    height: int
    width: int
    count_frames: bool = False


def _av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("reading video files needs PyAV: pip install 'attnvideo[video]'") from err
    return av


def probe_video(path: str | os.PathLike) -> VideoProbe:
    """Demux a video's packets (without decoding) to index its frames and keyframes.

    Cached per process on (path, size, modification time), so a dataset probes each video
    once per worker.

    Args:
        path: A video file readable by FFmpeg (.avi, .mp4, ...).

    Returns:
        A :class:`VideoProbe`.

    Raises:
        VideoDecodeError: The file cannot be opened, has no video stream or no frames.

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
    return _probe_cached(os.fspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _probe_cached(path: str, size: int, mtime_ns: int) -> VideoProbe:
    av = _av()
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            _one_decoding_thread(stream)  # it only demuxes; in case a decoder ever opens
            height, width = stream.codec_context.height, stream.codec_context.width
            reorders = bool(stream.codec_context.has_b_frames)
            pts, keys, monotonic = [], {}, True
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    stamp = pts[-1] + 1 if pts else 0
                monotonic = monotonic and (not pts or stamp > pts[-1])
                pts.append(stamp)
                if packet.is_keyframe:
                    keys[stamp] = packet.dts if packet.dts is not None else stamp
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoDecodeError(f"{path}: cannot read ({err})") from err
    if not pts:
        raise VideoDecodeError(f"{path}: no video frames")
    pts.sort()
    keyframes = [i for i, p in enumerate(pts) if p in keys]
    seek_to = [keys[pts[i]] for i in keyframes]
    if monotonic and reorders:
        # Decoding-order timestamps and B-frames (H.264 in AVI): after a seek, frames that
        # precede the keyframe (open GOP) cannot be told apart, so always start at frame 0.
        keyframes, seek_to = keyframes[:1], seek_to[:1]
    if not keyframes or keyframes[0] != 0:  # start from the first frame in any case
        keyframes.insert(0, 0)
        seek_to.insert(0, min(pts[0], *seek_to) if seek_to else pts[0])
    return VideoProbe(
        len(pts), _frozen(pts), tuple(keyframes), tuple(seek_to), height, width, monotonic
    )


def _frozen(values: list[int]) -> np.ndarray:
    array = np.asarray(values, dtype=np.int64)
    array.flags.writeable = False
    return array


def read_frames(path: str | os.PathLike, indices: object) -> np.ndarray:
    """Decode the RGB frames at ``indices`` (0-based), seeking instead of decoding all.

    Args:
        path: A video file.
        indices: Frame indices, any order, repeats allowed (a sequence of ints or an
            integer array), each in ``[0, num_frames)``.

    Shape:
        Returns ``(len(indices), H, W, 3)``.

    Returns:
        uint8 RGB frames in the order of ``indices``.

    Raises:
        ValueError: An index is out of range.
        VideoDecodeError: The video is corrupt or ends before a wanted frame.

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
    """
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    probe = probe_video(path)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= probe.num_frames):
        raise ValueError(
            f"indices: expected frame indices in [0, {probe.num_frames}) for {path}, "
            f"got min {wanted.min()} max {wanted.max()}"
        )
    targets = sorted(set(wanted.tolist()))
    decoded = _decode_targets(os.fspath(path), probe, targets)
    if not targets:
        return np.zeros((0, probe.height, probe.width, 3), np.uint8)
    return np.stack([decoded[i] for i in wanted.tolist()])


_REFORMATTERS: dict[int, object] = {}


def _to_rgb(frame) -> np.ndarray:
    """``frame.to_ndarray(format="rgb24")``, bit for bit, with a reused converter.

    ``VideoFrame.to_ndarray`` builds a new swscale context for every frame, which costs
    three times the conversion itself; one ``VideoReformatter`` per process keeps its
    context (rebuilt by FFmpeg only when the frame size or format changes).
    """
    pid = os.getpid()  # one per process: a forked worker builds its own (and never frees
    # the one it inherited: FFmpeg state copied by fork is left alone)
    reformatter = _REFORMATTERS.get(pid)
    if reformatter is None:
        from av.video.reformatter import VideoReformatter

        reformatter = _REFORMATTERS[pid] = VideoReformatter()
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


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


def _decode_targets(path: str, probe: VideoProbe, targets: list[int]) -> dict[int, np.ndarray]:
    av = _av()
    index_of = {} if probe.count_frames else {p: i for i, p in enumerate(probe.pts.tolist())}
    out: dict[int, np.ndarray] = {}
    wanted = set(targets)
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            _one_decoding_thread(stream)
            frames = None
            position = -1  # index of the last frame decoded
            for target in targets:
                if target in out:
                    continue
                slot = bisect.bisect_right(probe.keyframes, target) - 1
                key = probe.keyframes[slot]
                if frames is None or key > position or target <= position:
                    container.seek(
                        probe.seek_to[slot], stream=stream, backward=True, any_frame=False
                    )
                    frames = container.decode(stream)
                    position = key - 1
                for frame in frames:
                    if probe.count_frames:
                        position += 1
                    else:
                        position = index_of.get(frame.pts, position + 1)
                    if position >= key and position in wanted and position not in out:
                        out[position] = _to_rgb(frame)
                    if position >= target:
                        break
                if target not in out:
                    raise VideoDecodeError(
                        f"{path}: video ends before frame {target} "
                        f"(the container lists {probe.num_frames} frames)"
                    )
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoDecodeError(f"{path}: decoding failed ({err})") from err
    return out


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
