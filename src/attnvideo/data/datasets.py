"""Video datasets in TSN form: UCF-101, HMDB-51 and generic lists.

Axis legend: T segments (``num_segments``), L flow fields per snippet (``new_length``),
H x W pixels, n crops.

A sample is a dict:

- ``"rgb"``: float ``(T, 3, H, W)``, normalised (by the transform; without one, with the
  ImageNet mean/std), when ``modality`` is ``"rgb"`` or ``"rgb+flow"``;
- ``"flow"``: float ``(T, 2L, H, W)`` in ``[-1, 1]`` (TSN's uint8 flow dequantised to
  pixels and divided by the bound 20), channels x1, y1, x2, y2, ..., when ``modality``
  is ``"flow"`` or ``"rgb+flow"``;
- ``"label"``: int, 0-based; ``"video_index"``: int, the video's position in the split.

With ``to_float=False`` (and a transform without normalisation, e.g.
``train_transform(224, normalize=False)``) ``"rgb"`` and ``"flow"`` stay uint8 (pixels and
quantised flow): a quarter of the bytes for the ``DataLoader`` to collate and copy. Normalise
the batch on the device with the same :class:`~attnvideo.data.GroupNormalize`, which gives
the same numbers.

A 3- or 10-crop test transform adds a leading crops axis, ``(n, T, C, H, W)``. With
``num_clips > 1`` every video yields ``num_clips`` items (``len = videos * num_clips``)
and ``video_index`` says which video an item belongs to, for video-level accuracy.

Flow comes from ``flow_root``, in whichever store holds it (see
:mod:`attnvideo.data.flow_cache`): ``<video path without suffix>.flow`` (compressed, the
default of ``attnvideo-flow``), ``.npy``, or a folder of TSN's ``flow_x/flow_y_%05d.jpg``;
only the ``T x L`` fields of a sample are read and decoded. When none exists it is
computed on first access into ``flow_store``. With ``frame_dirs=True`` RGB and flow come
from TSN frame folders under ``root`` instead.

Bad input: a missing video is reported with its path when the dataset is built; a path
that leaves the root is rejected; a corrupt or undecodable video never ends an epoch. It
is logged (a warning naming the file), counted in :attr:`VideoDataset.corrupt_count`
(shared by all ``DataLoader`` workers) and replaced by the next readable video of the
split, so the replacement is deterministic.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset

from .flow_cache import FlowFolder, check_store, find_flow, store_path
from .flow_store import FlowStore
from .sampling import plan_snippets
from .splits import VideoRecord, read_hmdb51_split, read_ucf101_split, read_video_list
from .transforms import GroupNormalize
from .video import (
    VideoDecodeError,
    count_folder_frames,
    probe_video,
    read_flow_folder,
    read_frame_folder,
    read_frames,
    scaled_size,
)

__all__ = ["HMDB51", "MODALITIES", "UCF101", "VideoDataset", "VideoList"]

logger = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("rgb", "flow", "rgb+flow")
"""Values accepted by ``modality``."""

Transform = Callable[[dict[str, object]], dict[str, object]]

# Converts what a transform leaves in uint8: RGB to [0, 1], flow to [-1, 1].
_TO_FLOAT = GroupNormalize(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def _identity(sample: dict[str, object]) -> dict[str, object]:
    return sample


class VideoDataset(Dataset):
    """TSN sampling over a list of videos (the base of UCF101, HMDB51 and VideoList).

    Args:
        records: The videos (relative path and 0-based label).
        root: Folder the paths are relative to.
        classes: Class names, index = label.
        modality: ``"rgb"``, ``"flow"`` or ``"rgb+flow"``.
        num_segments: T, segments (snippets) per sample.
        new_length: L, flow fields per flow snippet.
        test_mode: Take evenly spaced snippets (segment centres for ``num_clips=1``)
            instead of a random one per segment.
        num_clips: Views per video; item ``i`` is clip ``i % num_clips`` of video
            ``i // num_clips``.
        transform: A group transform (:mod:`attnvideo.data.transforms`) taking the dict
            with uint8 ``"rgb"`` ``(T, 3, H, W)`` and uint8 quantised ``"flow"``
            ``(T, 2L, H, W)``; default: :class:`GroupNormalize` with the ImageNet
            mean/std (none when ``to_float`` is False). Whatever it leaves in uint8 is
            converted to float afterwards (RGB to ``[0, 1]``, flow to ``[-1, 1]``) unless
            ``to_float`` is False.
        flow_root: Flow folder (needed for flow from video files): each video's flow is
            read from whichever store holds it (``.flow``, ``.npy``, frame folder, in
            that order of preference), and computed when none does.
        frame_dirs: Read TSN frame folders (``<root>/<path without suffix>/img_%05d.jpg``,
            ``flow_x_%05d.jpg``, ``flow_y_%05d.jpg``) instead of video files.
        flow_method: Flow method used when a video's flow is missing.
        flow_store: Where missing flow is written: ``"flow"`` (compressed, the default),
            ``"npy"`` or ``"frames"`` (see :data:`~attnvideo.data.FLOW_STORES`).
        source: What the records were read from, for error messages.
        to_float: Convert what the transform leaves in uint8 to float. False hands uint8
            ``"rgb"`` / ``"flow"`` over, to be normalised on the device with
            :class:`~attnvideo.data.GroupNormalize` (a quarter of the bytes to collate).
        frame_size: Decode video frames resized to this ``(width, height)`` (TSN:
            ``(340, 256)``), as they come out of the decoder: a 1080p video then costs
            the memory of a small one. Flow computed on a cache miss uses the same size;
            flow stored at another size is an error (recompute it with
            ``attnvideo-flow --size WxH``); a ``.flow`` store records its size, so this
            is caught for ``modality="flow"`` too.
        short_side: Or decode frames resized so that their short side has this many
            pixels (``attnvideo-flow --short-side N`` for the flow).
        probe_cache: A folder where each video's probe (its frame count and frame
            fingerprints, from one full decode: see :func:`~attnvideo.data.probe_video`)
            is kept and shared by every worker, process and run. Without it each
            ``DataLoader`` worker probes each video it reads once; with it a dataset is
            probed once in all (``attnvideo-audit --probe-cache DIR`` fills it ahead).

    Raises:
        ValueError: A bad argument, or a path that leaves ``root``.
        FileNotFoundError: Listed videos are missing (all their paths in the message).

    Example:
        >>> import tempfile
        >>> VideoDataset([VideoRecord("a/missing.avi", 0)], tempfile.mkdtemp(), ["a"])
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: 1 of 1 videos ... are missing under ...: a/missing.avi
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        root: str | os.PathLike,
        classes: Sequence[str],
        *,
        modality: str = "rgb",
        num_segments: int = 8,
        new_length: int = 5,
        test_mode: bool = False,
        num_clips: int = 1,
        transform: Transform | None = None,
        flow_root: str | os.PathLike | None = None,
        frame_dirs: bool = False,
        flow_method: str = "dis",
        source: str = "records",
        to_float: bool = True,
        frame_size: tuple[int, int] | None = None,
        short_side: int | None = None,
        flow_store: str = "flow",
        probe_cache: str | os.PathLike | None = None,
    ) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")
        for name, value in (
            ("num_segments", num_segments),
            ("new_length", new_length),
            ("num_clips", num_clips),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.root = Path(root)
        self.records = list(records)
        self.classes = list(classes)
        self.modality = modality
        self.num_segments, self.new_length = num_segments, new_length
        self.test_mode, self.num_clips = test_mode, num_clips
        if not isinstance(to_float, bool):
            raise TypeError(f"to_float: expected a bool, got {to_float!r}")
        self.to_float = to_float
        scaled_size(1, 1, size=frame_size, short_side=short_side)  # checks them
        self.resize = {"size": frame_size, "short_side": short_side}
        self.probe_cache = Path(probe_cache) if probe_cache is not None else None
        default: Transform = GroupNormalize() if to_float else _identity
        self.transform = transform if transform is not None else default
        self.frame_dirs, self.flow_method = frame_dirs, flow_method
        self.flow_store = check_store(flow_store)
        self.flow_root = Path(flow_root) if flow_root is not None else None
        if self.uses_flow and not frame_dirs and self.flow_root is None:
            raise ValueError(
                f"flow_root: modality {modality!r} reads flow from the flow cache, so a "
                "flow_root folder is needed (or frame_dirs=True for TSN flow_x/flow_y jpgs)"
            )
        for record in self.records:
            if not 0 <= record.label < len(self.classes):
                raise ValueError(
                    f"records: label {record.label} of {record.path!r} is outside "
                    f"[0, {len(self.classes)})"
                )
        self._paths = [self._locate(r.path) for r in self.records]
        if frame_dirs or self.uses_flow:  # both find a video's files by its path sans suffix
            stems: dict[Path, str] = {}
            for record in self.records:
                stem = Path(record.path).with_suffix("")
                if stems.setdefault(stem, record.path) != record.path:
                    raise ValueError(
                        f"records: {stems[stem]!r} and {record.path!r} would share one flow "
                        f"output / frame folder ({stem}, the path without suffix) in {source}"
                    )
        exists = Path.is_dir if frame_dirs else Path.is_file
        missing = [r.path for r, p in zip(self.records, self._paths, strict=True) if not exists(p)]
        if missing:
            shown = ", ".join(missing[:20]) + (
                f", ... ({len(missing) - 20} more)" if len(missing) > 20 else ""
            )
            kind = "frame folders" if frame_dirs else "videos"
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.records)} {kind} listed in {source} are missing "
                f"under {self.root}: {shown}"
            )
        # Shared with DataLoader workers: inherited by forked ones, passed to spawned ones
        # (objects of the spawn context may be sent to both; fork-context locks may not).
        shared = multiprocessing.get_context("spawn")
        self._corrupt_count = shared.Value("q", 0)
        self._corrupt_flags = shared.Array("b", max(len(self.records), 1), lock=False)
        self._warned: set[int] = set()

    def _locate(self, rel: str) -> Path:
        """The file or frame folder of a relative path, rejecting paths that leave root."""
        root = os.path.normpath(self.root)
        full = os.path.normpath(os.path.join(root, rel))
        if os.path.isabs(rel) or os.path.commonpath([root, full]) != root:
            raise ValueError(f"records: video path {rel!r} escapes the dataset root {self.root}")
        path = Path(full)
        return path.with_suffix("") if self.frame_dirs else path

    @property
    def uses_rgb(self) -> bool:
        """Whether samples hold ``"rgb"``."""
        return self.modality in ("rgb", "rgb+flow")

    @property
    def uses_flow(self) -> bool:
        """Whether samples hold ``"flow"``."""
        return self.modality in ("flow", "rgb+flow")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def corrupt_count(self) -> int:
        """Items replaced by a fallback because their video was unreadable (all workers)."""
        return int(self._corrupt_count.value)

    @property
    def corrupt_videos(self) -> list[str]:
        """Relative paths of the videos found unreadable so far (by any worker)."""
        return [r.path for i, r in enumerate(self.records) if self._corrupt_flags[i]]

    def __len__(self) -> int:
        return len(self.records) * self.num_clips

    def __getitem__(self, index: int) -> dict[str, object]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index: expected an int in [0, {len(self)}), got {index}")
        video_index, clip = divmod(index % len(self), self.num_clips)
        count = len(self.records)
        for step in range(count):
            candidate = (video_index + step) % count
            if self._corrupt_flags[candidate]:
                continue
            try:
                sample = self._read(candidate, clip)
            except VideoDecodeError as err:
                self._corrupt_flags[candidate] = 1
                if candidate not in self._warned:
                    self._warned.add(candidate)
                    logger.warning(
                        "unreadable video %s, using a fallback sample: %s",
                        self._paths[candidate],
                        err,
                    )
                continue
            break
        else:
            raise RuntimeError(f"no readable video among the {count} of {self.root}")
        if candidate != video_index:
            with self._corrupt_count.get_lock():
                self._corrupt_count.value += 1
        sample = self.transform(sample)
        if self.to_float:
            sample = _TO_FLOAT(sample)  # what the transform left in uint8
        sample["label"] = self.records[candidate].label
        sample["video_index"] = candidate
        return sample

    def _read(self, index: int, clip: int) -> dict[str, object]:
        """Decode one sample: uint8 RGB pixels and quantised flow, before the transform."""
        path = self._paths[index]
        flow = None
        try:
            if self.frame_dirs:
                num_rgb, num_fields = count_folder_frames(path)
                frames = [num_rgb] if self.uses_rgb else []
                frames += [num_fields + 1] if self.uses_flow else []
            else:
                probe = probe_video(path, cache_dir=self.probe_cache) if self.uses_rgb else None
                frames = [probe.num_frames] if probe is not None else []
                if self.uses_flow:
                    flow = self._flow_array(index)
                    frames.append(flow.shape[0] + 1)
            num_frames = min(frames)
            if num_frames < (2 if self.uses_flow else 1):
                raise VideoDecodeError(f"{path}: too few frames ({num_frames})")
            plan = plan_snippets(
                num_frames,
                self.num_segments,
                self.new_length,
                flow=self.uses_flow,
                random=not self.test_mode,
                clip_index=clip if self.test_mode else 0,
                num_clips=self.num_clips if self.test_mode else 1,
            )
            sample: dict[str, object] = {}
            if self.uses_rgb:
                if self.frame_dirs:
                    rgb = torch.from_numpy(read_frame_folder(path, plan.rgb_frames))
                else:
                    rgb = torch.from_numpy(read_frames(path, plan.rgb_frames, **self.resize))
                # a view: the transforms resize interleaved RGB in one call per frame
                sample["rgb"] = rearrange(rgb, "t h w c -> t c h w")
            if self.uses_flow:
                fields = plan.flow_fields.reshape(-1)
                q = read_flow_folder(path, fields) if flow is None else np.asarray(flow[fields])
                q = rearrange(
                    torch.from_numpy(q), "(t l) c h w -> t (l c) h w", t=self.num_segments
                )
                sample["flow"] = q
        except (OSError, ValueError) as err:
            raise VideoDecodeError(f"{path}: {err}") from err
        # Not a broken video: flow made at another size. Substituting every video would
        # train on nothing, so it stops the run.
        if self.uses_rgb and self.uses_flow:
            self._check_flow_size(path, sample["rgb"].shape[-2:], sample["flow"].shape[-2:])
        elif flow is not None and any(v is not None for v in self.resize.values()):
            meta = getattr(flow, "meta", {})  # a .flow store records the sizes
            source, made = meta.get("source_size"), meta.get("frame_size")
            if source and made:
                width, height = scaled_size(*source, **self.resize)
                self._check_flow_size(path, (height, width), (made[1], made[0]))
        return sample

    @staticmethod
    def _check_flow_size(path: Path, frames_hw: Sequence[int], flow_hw: Sequence[int]) -> None:
        if tuple(frames_hw) != tuple(flow_hw):
            raise ValueError(
                f"{path}: frames are decoded at {tuple(frames_hw)} (H, W) but its flow is "
                f"{tuple(flow_hw)}: compute the flow at the frames' size (attnvideo-flow "
                "--size WxH / --short-side N, the same as the dataset's frame_size / short_side)"
            )

    def _flow_array(self, index: int) -> np.ndarray | FlowStore | FlowFolder:
        """The video's quantised flow (F - 1, 2, H, W) from whichever store holds it.

        Nothing is read but the store's index: indexing the result reads the fields.
        """
        assert self.flow_root is not None
        stem = self.flow_root / Path(self.records[index].path).with_suffix("")
        cache = store_path(stem, self.flow_store)
        flow = find_flow(cache)  # an invalid store raises: the video counts as corrupt
        if flow is None:
            from .flow import load_or_compute_flow

            flow = load_or_compute_flow(
                self._paths[index], cache, method=self.flow_method, **self.resize
            )
        if flow.dtype != np.uint8 or flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[0] < 1:
            raise VideoDecodeError(
                f"{cache}: expected a uint8 flow of shape (F - 1, 2, H, W), got "
                f"{flow.dtype} {flow.shape}"
            )
        return flow

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(videos={len(self.records)}, classes={self.num_classes}, "
            f"modality={self.modality!r}, num_segments={self.num_segments}, "
            f"new_length={self.new_length}, test_mode={self.test_mode}, "
            f"num_clips={self.num_clips}, root={str(self.root)!r})"
        )


class UCF101(VideoDataset):
    r"""UCF-101 with its official splits (``ucfTrainTestlist``).

    Args:
        root: The ``UCF-101`` folder holding ``<Class>/v_<Class>_gXX_cYY.avi`` (or, with
            ``frame_dirs=True``, the frame folders ``<Class>/v_<Class>_gXX_cYY/``).
        annotation_path: The folder with ``classInd.txt``, ``trainlist0k.txt`` and
            ``testlist0k.txt``.
        split: 1, 2 or 3.
        train: The train list (True) or the test list (False).
        **common: The options of :class:`VideoDataset` (``modality``, ``num_segments``,
            ``new_length``, ``test_mode``, ``num_clips``, ``transform``, ``flow_root``,
            ``frame_dirs``, ``flow_method``, ``to_float``).

    Example:
        >>> import tempfile
        >>> splits = Path(tempfile.mkdtemp())
        >>> _ = (splits / "classInd.txt").write_bytes(b"1 Archery\r\n2 Bowling\r\n")
        >>> _ = (splits / "trainlist01.txt").write_bytes(b"Bowling/v_Bowling_g08_c01.avi 2\r\n")
        >>> try:
        ...     UCF101(tempfile.mkdtemp(), splits)
        ... except FileNotFoundError as err:
        ...     print(str(err).split(": ")[-1])
        Bowling/v_Bowling_g08_c01.avi
    """

    def __init__(
        self,
        root: str | os.PathLike,
        annotation_path: str | os.PathLike,
        split: int = 1,
        train: bool = True,
        **common: object,
    ) -> None:
        classes, records = read_ucf101_split(annotation_path, split, train)
        kind = "train" if train else "test"
        super().__init__(
            records, root, classes, source=f"{annotation_path}/{kind}list0{split}.txt", **common
        )


class HMDB51(VideoDataset):
    """HMDB-51 with its official splits (``testTrainMulti_7030_splits``).

    Args:
        root: The folder holding ``<class>/<video>.avi`` (or frame folders).
        annotation_path: The folder with the 153 ``<class>_test_split<k>.txt`` files.
        split: 1, 2 or 3.
        train: Videos with id 1 (True) or 2 (False); id 0 is never used.
        **common: The options of :class:`VideoDataset`.

    Example:
        >>> import tempfile
        >>> HMDB51(tempfile.mkdtemp(), tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: no HMDB-51 split files '*_test_split1.txt' in ...
    """

    def __init__(
        self,
        root: str | os.PathLike,
        annotation_path: str | os.PathLike,
        split: int = 1,
        train: bool = True,
        **common: object,
    ) -> None:
        classes, records = read_hmdb51_split(annotation_path, split, train)
        super().__init__(
            records, root, classes, source=f"{annotation_path}/*_test_split{split}.txt", **common
        )


class VideoList(VideoDataset):
    r"""Videos from a list file of ``<path> <label>`` (or ``<path> <num_frames> <label>``).

    Args:
        list_file: The list; labels 0-based, paths relative to ``root``.
        root: Folder of the videos (or frame folders).
        classes: Class names (default: ``"0"``, ``"1"``, ... up to the largest label).
        **common: The options of :class:`VideoDataset`.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "list.txt").write_text("../outside.avi 0\n")
        >>> try:
        ...     VideoList(d / "list.txt", d)
        ... except ValueError as err:
        ...     print(type(err).__name__, "list.txt:1:" in str(err), "escapes" in str(err))
        SplitFormatError True True
    """

    def __init__(
        self,
        list_file: str | os.PathLike,
        root: str | os.PathLike,
        *,
        classes: Sequence[str] | None = None,
        **common: object,
    ) -> None:
        records = read_video_list(list_file, None if classes is None else len(classes))
        if classes is None:
            classes = [str(i) for i in range(max((r.label for r in records), default=-1) + 1)]
        super().__init__(records, root, classes, source=str(list_file), **common)
