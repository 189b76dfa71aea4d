"""Where a video's flow is kept, in any of the three stores, and how to read it back.

A video ``<flow_root>/<video path relative to the video root, without its suffix>`` (its
*stem*) has its quantised flow ``(F - 1, 2, H, W)`` in one of :data:`FLOW_STORES`:

- ``"flow"`` (the default): ``<stem>.flow``, one compressed, seekable file
  (:mod:`attnvideo.data.flow_store`), about 6 KB per field pair at 340 x 256;
- ``"npy"``: ``<stem>.npy``, uncompressed uint8, exact, memory-mapped (H x W x 2 bytes
  per pair: 170 KB at 340 x 256);
- ``"frames"``: the folder ``<stem>/`` with TSN's ``flow_x_%05d.jpg`` /
  ``flow_y_%05d.jpg`` (and, when made with RGB, ``img_%05d.jpg``).

:func:`open_flow` opens any of them as an object that indexes like the uint8 array:
``flow.shape``, ``flow[fields]`` reads and decodes only those fields.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .flow_store import FLOW_STORE_SUFFIX, FlowStore, open_flow_store
from .video import (
    FLOW_X_TEMPLATE,
    IMG_TEMPLATE,
    VideoDecodeError,
    count_folder_frames,
    read_flow_folder,
)

__all__ = ["FLOW_STORES", "FlowFolder", "open_flow"]

FLOW_STORES: tuple[str, ...] = ("flow", "npy", "frames")
"""The ways a video's flow can be stored, in the order readers prefer them when a video
has several: the compressed ``.flow`` file (the default), the ``.npy`` array, a TSN
frame folder."""

DEFAULT_FLOW_STORE = "flow"
"""The store written when none is named."""

_SUFFIX = {"flow": FLOW_STORE_SUFFIX, "npy": ".npy", "frames": ""}


def check_store(store: object) -> str:
    """``store`` if it names one of :data:`FLOW_STORES`, else a ``ValueError`` naming it."""
    if store not in FLOW_STORES:
        raise ValueError(f"store: expected one of {list(FLOW_STORES)}, got {store!r}")
    return str(store)


def store_of(path: str | os.PathLike) -> str:
    """Which store a path is, by its suffix: ``.flow``, ``.npy``, else a frame folder."""
    suffix = Path(path).suffix
    return next((s for s, x in _SUFFIX.items() if x and suffix == x), "frames")


def stem_of(path: str | os.PathLike) -> Path:
    """The store-independent stem of a flow path (``a/v.flow`` and ``a/v.npy`` -> ``a/v``)."""
    path = Path(path)
    return path.with_suffix("") if store_of(path) != "frames" else path


def store_path(stem: str | os.PathLike, store: str) -> Path:
    """The path of ``store`` for ``stem``: ``stem + suffix`` (suffix appended, not replaced).

    Example:
        >>> store_path("flow/Run/v_Run_g01_c01", "flow").as_posix()
        'flow/Run/v_Run_g01_c01.flow'
        >>> store_path("flow/a.b", "npy").name, store_path("flow/a.b", "frames").name
        ('a.b.npy', 'a.b')
    """
    stem = Path(stem)
    return stem.with_name(stem.name + _SUFFIX[check_store(store)])


class FlowFolder:
    """A TSN frame folder's flow (``flow_x/flow_y_%05d.jpg``) as a read-only array.

    Indexing reads only the JPEG files of the fields asked for; ``shape`` comes from
    listing the folder and the size of the first ``flow_x`` file.

    Args:
        path: The folder.

    Attributes:
        path: The folder.
        shape: ``(F - 1, 2, H, W)``.
        meta: An empty dict (frame folders record nothing about how they were made).

    Raises:
        VideoDecodeError: The folder is missing, its numbering has gaps, or it holds no
            flow field.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for i in (1, 2, 3):
        ...     for axis, value in (("x", 100 + i), ("y", 50)):
        ...         Image.new("L", (6, 4), value).save(folder / f"flow_{axis}_{i:05d}.jpg")
        >>> flow = FlowFolder(folder)
        >>> fields = flow[np.array([2, 0])]  # two fields, read from their files
        >>> flow.shape, fields[:, 0, 0, 0].tolist(), fields[:, 1, 0, 0].tolist()
        ((3, 2, 4, 6), [103, 101], [50, 50])
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = {}
        _, fields = count_folder_frames(self.path)
        if fields < 1:
            raise VideoDecodeError(f"{self.path}: no flow_x/flow_y_*.jpg field")
        try:
            with Image.open(self.path / FLOW_X_TEMPLATE.format(1)) as image:
                width, height = image.size
        except (OSError, SyntaxError) as err:
            raise VideoDecodeError(f"{self.path}: cannot read {FLOW_X_TEMPLATE.format(1)}") from err
        self.shape = (fields, 2, height, width)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"FlowFolder({self.path.name!r}, shape={self.shape})"

    def __getitem__(self, index: Any) -> np.ndarray:
        """Read the fields ``index`` selects (an int, a slice, or a 1-D array of ints)."""
        fields = np.arange(len(self))[index]
        if np.ndim(fields) == 0:
            return read_flow_folder(self.path, [int(fields)])[0]
        if len(fields) == 0:
            return np.zeros((0, *self.shape[1:]), np.uint8)
        return read_flow_folder(self.path, fields)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


def open_flow(path: str | os.PathLike) -> np.ndarray | FlowStore | FlowFolder:
    """Open a video's stored flow, whatever the store, without reading its fields.

    Args:
        path: A ``.flow`` file, a ``.npy`` file, or a frame folder.

    Returns:
        An object that indexes like a uint8 ``(F - 1, 2, H, W)`` array: a read-only
        memory map (``.npy``), a :class:`~attnvideo.data.FlowStore` (``.flow``), or a
        :class:`FlowFolder`. ``flow[fields]`` reads only those fields;
        ``np.asarray(flow)`` reads them all.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a complete, valid flow of its store (naming it).

    Example:
        >>> import tempfile
        >>> from attnvideo.data.flow_store import FlowStoreWriter
        >>> path = Path(tempfile.mkdtemp()) / "v.flow"
        >>> with FlowStoreWriter(path, meta={"frame_size": [8, 6]}) as writer:
        ...     writer.append(np.full((2, 6, 8), 128, np.uint8))
        >>> flow = open_flow(path)
        >>> flow.shape, flow.meta["frame_size"], int(flow[0].max())
        ((1, 2, 6, 8), [8, 6], 128)
    """
    path = Path(path)
    store = store_of(path)
    if store == "flow":
        return open_flow_store(path)
    if store == "npy":
        if not path.is_file():
            raise FileNotFoundError(f"path: no such flow file {str(path)!r}")
        try:
            flow = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"path: {str(path)!r} is not a valid .npy flow: {err}") from None
        if flow.dtype != np.uint8 or flow.ndim != 4 or flow.shape[1] != 2 or not len(flow):
            raise ValueError(
                f"path: {str(path)!r} holds {flow.dtype} {flow.shape}, expected a uint8 "
                "flow of shape (F - 1, 2, H, W)"
            )
        return flow
    if not path.is_dir():
        raise FileNotFoundError(f"path: no such flow folder {str(path)!r}")
    try:
        return FlowFolder(path)
    except VideoDecodeError as err:
        raise ValueError(f"path: {err}") from None


def find_flow(
    path: str | os.PathLike, *, skip_invalid: bool = False
) -> np.ndarray | FlowStore | FlowFolder | None:
    """Open the flow stored for ``path``'s stem: its own store first, then the others.

    Args:
        path: The flow path a reader expects (any store's).
        skip_invalid: Go on to the next store when one exists but is invalid (to be
            recomputed); False raises its ``ValueError``.

    Returns:
        The opened flow (see :func:`open_flow`), or None when no store holds it.
    """
    stem, own = stem_of(path), store_of(path)
    for store in (own, *(s for s in FLOW_STORES if s != own)):
        candidate = store_path(stem, store)
        if store == "frames" and not (candidate / FLOW_X_TEMPLATE.format(1)).is_file():
            continue  # no folder, or a folder without flow (RGB frames only)
        if store != "frames" and not candidate.is_file():
            continue
        try:
            return open_flow(candidate)
        except (ValueError, FileNotFoundError):
            if not skip_invalid:
                raise
    return None


def check_flow(path: str | os.PathLike, *, rgb: bool = False, deep: bool = True) -> str | None:
    """Why the flow at ``path`` is not a complete output, or None when it is.

    Args:
        path: A ``.flow`` file, ``.npy`` file or frame folder.
        rgb: A frame folder must also hold every RGB frame (``img_%05d.jpg``).
        deep: Also read the whole file: a ``.flow`` store's every field is checked
            against its CRC-32 (no decoding), a frame folder's numbering is checked.

    Returns:
        None, or a short reason: ``"missing"``, ``"invalid: ..."``.
    """
    path = Path(path)
    store = store_of(path)
    exists = path.is_dir() if store == "frames" else path.is_file()
    if not exists:
        return "missing"
    if store == "frames" and not deep:
        if rgb and not (path / IMG_TEMPLATE.format(1)).is_file():
            return "invalid: no RGB frames (img_00001.jpg)"
        return None  # folders are published whole, by renaming
    try:
        flow = open_flow(path)
        if deep and isinstance(flow, FlowStore):
            flow.verify()
        if store == "frames" and rgb:
            frames, fields = count_folder_frames(path)
            if frames != fields + 1:
                return f"invalid: {frames} RGB frames for {fields} flow fields"
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        return f"invalid: {err}"
    return None
