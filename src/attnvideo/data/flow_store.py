"""A compressed, seekable store for a video's quantised optical flow: one file per video.

TSN's uint8 flow (:func:`attnvideo.functional.quantize_flow`) is written field by field
into one ``.flow`` file and read back by field index, so a snippet's ``L`` consecutive
fields cost ``L`` small decodes and one read, never the whole video. Each field is one
grayscale image, x stacked over y, compressed on its own:

- ``"jpeg"`` (default, quality 93, Huffman tables optimised): about 6 KB per field (x
  and y together) at 340 x 256 on the real test clips, adding a mean error of about
  0.012 px to TSN's uint8 rounding (itself 0.039 px); TSN's own JPEGs (quality 95, x
  and y in two files) take about 9.4 KB for 0.008 px, the uncompressed ``.npy`` 170 KB.
  Rows are padded to a multiple of 8 (JPEG's block) so x and y never share a block.
- ``"png"`` (lossless, zlib level 6): exact, about 17 KB per field.

``benchmarks/bench_flow.py`` measures the size/error/speed curve behind these choices.
Both codecs use Pillow (a core dependency): reading a store needs neither OpenCV nor PyAV.

File layout (little-endian), written front to back so the writer holds one field::

    b"ATVFLOW1"                      magic and format version
    blob 0 ... blob F-2              one compressed image per field
    offsets  uint64 x (F)            byte offset of each blob, then the end of the last
    crc32    uint32 x (F - 1)        checksum of each blob (corruption is an error)
    header   UTF-8 JSON              shape, codec, quality, bound, layout, caller's meta
    trailer  uint64 offsets_at, uint64 header_len, b"ATVFLOW1"

The JSON header sits at the end, like a zip's central directory, because the number of
fields is known only when the writer closes. A file without its trailer (a crash, a
truncated copy) is rejected. Writers publish atomically (a temporary
``.<name>.<pid>@<host>.<12 hex>.tmp`` beside the target, see
:mod:`attnvideo.data.tempfiles`; fsync; ``os.replace``), so readers never see a partial
store. Readers open the file for each read and keep no handle, so a
:class:`FlowStore` is safe to pickle or to use across ``fork`` (DataLoader workers).

Axis legend: ``F - 1`` fields, channel axis ``2`` = (x, y), ``H`` x ``W`` pixels.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from einops import rearrange
from PIL import Image

from attnvideo.functional import FLOW_BOUND

from .tempfiles import temp_path

__all__ = [
    "FLOW_STORE_CODECS",
    "FLOW_STORE_SUFFIX",
    "FlowStore",
    "FlowStoreWriter",
    "open_flow_store",
]

FLOW_STORE_SUFFIX = ".flow"
"""The suffix of flow store files."""

FLOW_STORE_CODECS: tuple[str, ...] = ("jpeg", "png")
"""Names accepted by ``codec``: lossy JPEG (the default) and lossless PNG."""

DEFAULT_FLOW_CODEC = "jpeg"
"""The codec a :class:`FlowStoreWriter` uses when none is given."""

DEFAULT_FLOW_QUALITY: dict[str, int] = {"jpeg": 93, "png": 6}
"""Each codec's default ``quality`` (chosen by ``benchmarks/bench_flow.py``): JPEG quality
93 is the highest that keeps every real test clip under 8 KB per field at 340 x 256."""

# codec -> (Pillow format, quality range, rows padded to a multiple of)
_CODECS: dict[str, tuple[str, range, int]] = {
    "jpeg": ("JPEG", range(1, 101), 8),
    "png": ("PNG", range(0, 10), 1),
}
_MAGIC = b"ATVFLOW1"
_TRAILER = struct.Struct("<QQ8s")  # offsets_at, header_len, magic
_FORMAT = "attnvideo.flow_store"
_VERSION = 1


def _encode(field: np.ndarray, codec: str, quality: int) -> bytes:
    """One field ``(2, H, W)`` -> one grayscale image, x over y, rows padded per codec."""
    fmt, _, multiple = _CODECS[codec]
    pad = -field.shape[1] % multiple
    if pad:  # repeat the last row: no edge for the codec to spend bits on
        field = np.pad(field, ((0, 0), (0, pad), (0, 0)), mode="edge")
    image = Image.fromarray(np.ascontiguousarray(rearrange(field, "c h w -> (c h) w")))  # "L"
    out = io.BytesIO()
    if codec == "jpeg":
        image.save(out, fmt, quality=quality, optimize=True)
    else:
        image.save(out, fmt, compress_level=quality)
    return out.getvalue()


def _check_codec(codec: object, quality: object) -> tuple[str, int]:
    if codec not in _CODECS:
        raise ValueError(f"codec: expected one of {list(FLOW_STORE_CODECS)}, got {codec!r}")
    _, valid, _ = _CODECS[codec]
    if quality is None:
        return codec, DEFAULT_FLOW_QUALITY[codec]
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise ValueError(f"quality: expected an int or None, got {quality!r}")
    if quality not in valid:
        raise ValueError(
            f"quality: codec {codec!r} takes {valid.start}..{valid.stop - 1}, got {quality}"
        )
    return codec, int(quality)


class FlowStoreWriter:
    """Write a video's quantised flow to one compressed, seekable file, field by field.

    Fields are compressed as they are appended and go straight to a temporary file beside
    ``path``, so memory stays at one field whatever the video's length. :meth:`close`
    writes the index and the JSON header, fsyncs and renames the file over ``path``; used
    as a context manager, an exception inside the ``with`` block removes the temporary
    file instead and ``path`` is left as it was.

    Args:
        path: The target file (by convention ending in :data:`FLOW_STORE_SUFFIX`).
            Missing parent folders are created.
        codec: One of :data:`FLOW_STORE_CODECS`: ``"jpeg"`` (lossy, the default) or
            ``"png"`` (lossless).
        quality: JPEG quality 1..100 (default 93), or PNG's zlib level 0..9 (default 6).
        meta: Free-form JSON-serialisable facts to keep with the flow (flow method, the
            frame size it was computed at, the source video's size, ...). It round-trips
            as JSON: tuples come back as lists.
        bound: The clipping bound, in pixels, the flow was quantised with (TSN's 20).

    Shape:
        - each appended field: ``(2, H, W)`` uint8, the same ``H`` x ``W`` for all

    Raises:
        ValueError: unknown ``codec``, ``quality`` out of range, ``meta`` not a
            JSON-serialisable dict, or ``bound`` not positive.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "v_Run_g01_c01.flow"
        >>> flow = np.full((3, 2, 24, 32), 128, np.uint8)  # (F - 1, 2, H, W)
        >>> with FlowStoreWriter(target, meta={"method": "dis"}) as writer:
        ...     for field in flow:
        ...         writer.append(field)
        >>> sorted(p.name for p in target.parent.iterdir())
        ['v_Run_g01_c01.flow']
        >>> open_flow_store(target).shape
        (3, 2, 24, 32)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        codec: str = DEFAULT_FLOW_CODEC,
        quality: int | None = None,
        meta: dict | None = None,
        bound: float = FLOW_BOUND,
    ) -> None:
        self.codec, self.quality = _check_codec(codec, quality)
        if meta is not None and not isinstance(meta, dict):
            raise ValueError(f"meta: expected a dict or None, got {type(meta).__name__}")
        try:
            json.dumps(meta or {}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"meta: not JSON-serialisable: {exc}") from None
        if not (isinstance(bound, (int, float)) and 0 < bound < float("inf")):
            raise ValueError(f"bound: expected a positive number of pixels, got {bound!r}")
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.bound = float(bound)
        self._size: tuple[int, int] | None = None  # (H, W) of the first field
        self._offsets = [len(_MAGIC)]
        self._crcs: list[int] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path(self.path)
        self._file: io.BufferedWriter | None = open(self._tmp, "xb")  # noqa: SIM115
        self._file.write(_MAGIC)
        self._published = False

    def __len__(self) -> int:
        """The number of fields appended so far."""
        return len(self._crcs)

    def append(self, field: np.ndarray) -> None:
        """Compress one field and add it to the file.

        Args:
            field: Quantised flow field ``i`` (motion from frame ``i`` to ``i + 1``),
                channel 0 = x, channel 1 = y.

        Shape:
            - field: ``(2, H, W)`` uint8, the same ``H`` x ``W`` as the first field

        Raises:
            ValueError: ``field`` is not a uint8 array of that shape, or the writer is
                closed.

        Example:
            >>> import tempfile
            >>> writer = FlowStoreWriter(Path(tempfile.mkdtemp()) / "v.flow")
            >>> writer.append(np.zeros((2, 8, 8), np.uint8))
            >>> writer.append(np.zeros((2, 8, 9), np.uint8))
            Traceback (most recent call last):
            ...
            ValueError: field: expected shape (2, 8, 8) like the first field, got (2, 8, 9)
            >>> writer.abort()
        """
        if self._file is None:
            raise ValueError(f"field: the writer of {str(self.path)!r} is closed")
        if not isinstance(field, np.ndarray) or field.dtype != np.uint8:
            raise ValueError(
                f"field: expected a uint8 numpy array (2, H, W), got {type(field).__name__} "
                f"with dtype {getattr(field, 'dtype', None)}"
            )
        if field.ndim != 3 or field.shape[0] != 2 or 0 in field.shape:
            raise ValueError(f"field: expected shape (2, H, W), got {field.shape}")
        if self._size is None:
            height, width = field.shape[1:]
            rows = 2 * (height + -height % _CODECS[self.codec][2])
            if self.codec == "jpeg" and max(rows, width) > 65500:  # JPEG's limit
                raise ValueError(
                    f"field: (2, {height}, {width}) exceeds JPEG's 65500 pixels once x and "
                    f"y are stacked; use codec='png'"
                )
            self._size = (height, width)
        if field.shape[1:] != self._size:
            raise ValueError(
                f"field: expected shape (2, {self._size[0]}, {self._size[1]}) like the first "
                f"field, got {field.shape}"
            )
        blob = _encode(field, self.codec, self.quality)
        self._file.write(blob)
        self._offsets.append(self._offsets[-1] + len(blob))
        self._crcs.append(zlib.crc32(blob))

    def close(self) -> Path:
        """Write the index and header, fsync, and atomically publish the file at ``path``.

        Closing a published writer again returns ``path``.

        Returns:
            ``path`` as a :class:`~pathlib.Path`.

        Raises:
            ValueError: no field was appended (a store holds at least one), or the writer
                was aborted. The temporary file is removed.

        Example:
            >>> import tempfile
            >>> writer = FlowStoreWriter(Path(tempfile.mkdtemp()) / "v.flow", codec="png")
            >>> writer.append(np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5))
            >>> writer.close().name, len(open_flow_store(writer.path))
            ('v.flow', 1)
        """
        if self._published:
            return self.path
        if self._file is None:
            raise ValueError(f"the writer of {str(self.path)!r} was aborted")
        try:
            if self._size is None:
                raise ValueError(f"field: no field was appended to {str(self.path)!r}")
            header = {
                "format": _FORMAT,
                "version": _VERSION,
                "shape": [len(self._crcs), 2, *self._size],
                "dtype": "uint8",
                "codec": self.codec,
                "quality": self.quality,
                "bound": self.bound,
                "layout": "x over y, rows padded to a multiple of "
                f"{_CODECS[self.codec][2]} by repeating the last",
                "meta": self.meta,
            }
            text = json.dumps(header, allow_nan=False).encode()
            offsets_at = self._offsets[-1]
            self._file.write(np.asarray(self._offsets, "<u8").tobytes())
            self._file.write(np.asarray(self._crcs, "<u4").tobytes())
            self._file.write(text)
            self._file.write(_TRAILER.pack(offsets_at, len(text), _MAGIC))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._published = True
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the temporary file; ``path`` is left untouched.

        Example:
            >>> import tempfile
            >>> folder = Path(tempfile.mkdtemp())
            >>> writer = FlowStoreWriter(folder / "v.flow")
            >>> writer.append(np.zeros((2, 8, 8), np.uint8))
            >>> writer.abort()
            >>> list(folder.iterdir())
            []
        """
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self._published:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> FlowStoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # never leave a temporary file behind
        if getattr(self, "_file", None) is not None:
            self.abort()


def _corrupt(path: Path, why: str) -> ValueError:
    return ValueError(f"path: {str(path)!r} is not a valid flow store: {why}")


class FlowStore:
    """A flow store opened for reading: indexes like a uint8 ``(F - 1, 2, H, W)`` array.

    Use :func:`open_flow_store` to open one. Indexing reads and decodes only the fields
    asked for: an int gives one field ``(2, H, W)``; a slice, a 1-D list/array of ints
    (negative, repeated and unordered allowed) or a boolean mask gives ``(n, 2, H, W)``.
    ``np.asarray(store)`` reads all fields.

    No file handle is kept: each read opens the file, so the object can be pickled and
    used after ``fork``. When the file was replaced since it was opened (same path, new
    contents), the next read reloads its index.

    Attributes:
        path: The file.
        shape: ``(F - 1, 2, H, W)``.
        codec: ``"jpeg"`` or ``"png"``.
        quality: The codec's quality setting the file was written with.
        bound: The flow's clipping bound in pixels (20 for TSN).
        meta: The ``meta`` dict given to the writer.
        dtype: ``uint8``; ``ndim``: 4, as for the array it stands for.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "v.flow"
        >>> flow = np.random.default_rng(0).integers(0, 256, (6, 2, 8, 8), dtype=np.uint8)
        >>> with FlowStoreWriter(target, codec="png", meta={"size": [8, 8]}) as w:
        ...     for field in flow:
        ...         w.append(field)
        >>> with open_flow_store(target) as store:
        ...     snippet = store[2:5]
        ...     print(store, store.meta)
        FlowStore('v.flow', shape=(6, 2, 8, 8), codec='png', quality=6) {'size': [8, 8]}
        >>> np.array_equal(snippet, flow[2:5])
        True
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._closed = False
        with open(self.path, "rb") as fh:
            self._load(fh)

    def _load(self, fh: io.BufferedReader) -> None:
        """Read and check the trailer, header and index of ``fh``, opened at its start."""
        self.__dict__.update(self._parse(fh))

    def _parse(self, fh: io.BufferedReader) -> dict[str, Any]:
        path = self.path
        stat = os.fstat(fh.fileno())
        size = stat.st_size
        if size < len(_MAGIC) + _TRAILER.size or fh.read(len(_MAGIC)) != _MAGIC:
            raise _corrupt(path, "no flow store signature at its start")
        fh.seek(size - _TRAILER.size)
        offsets_at, header_len, magic = _TRAILER.unpack(fh.read(_TRAILER.size))
        header_at = size - _TRAILER.size - header_len
        if magic != _MAGIC or not len(_MAGIC) <= offsets_at <= header_at:
            raise _corrupt(path, "no index at its end (truncated, or still being written?)")
        fh.seek(offsets_at)
        tail = fh.read(header_at + header_len - offsets_at)
        try:
            header = json.loads(tail[header_at - offsets_at :])
            if header.get("format") != _FORMAT:
                raise ValueError(f"format {header.get('format')!r}")
            if header["version"] > _VERSION:
                raise ValueError(f"format version {header['version']} is newer than this reader")
            num, two, height, width = (int(n) for n in header["shape"])
            codec, quality = header["codec"], int(header["quality"])
            fmt, _, multiple = _CODECS[codec]
            bound, meta = float(header["bound"]), dict(header["meta"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _corrupt(path, f"bad header: {exc}") from None
        if two != 2 or min(num, height, width) < 1 or header_at - offsets_at != 12 * num + 8:
            raise _corrupt(path, f"header shape {header['shape']} does not match its index")
        offsets = np.frombuffer(tail, "<u8", num + 1).astype(np.int64)
        if offsets[0] != len(_MAGIC) or offsets[-1] != offsets_at or (np.diff(offsets) < 1).any():
            raise _corrupt(path, "its index of fields is inconsistent")
        return {
            "shape": (num, 2, height, width),
            "codec": codec,
            "quality": quality,
            "bound": bound,
            "meta": meta,
            "_offsets": offsets,
            "_crcs": np.frombuffer(tail, "<u4", num, 8 * (num + 1)),
            "_format": fmt,
            "_rows": height + -height % multiple,  # padded rows per channel
            "_stat": (stat.st_ino, stat.st_size, stat.st_mtime_ns),
        }

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"FlowStore({self.path.name!r}, shape={self.shape}, codec={self.codec!r}, "
            f"quality={self.quality})"
        )

    def _fields(self, index: Any) -> np.ndarray:
        """The field numbers (0-based, in order, repeats kept) that ``index`` asks for."""
        num = self.shape[0]
        if isinstance(index, slice):
            return np.arange(num)[index]
        if isinstance(index, tuple):
            raise IndexError(f"index: a flow store is indexed on its first axis only, got {index}")
        fields = np.asarray(index)
        if fields.dtype == bool:
            if fields.shape != (num,):
                raise IndexError(
                    f"index: expected a boolean mask of shape ({num},), got {fields.shape}"
                )
            return np.flatnonzero(fields)
        if fields.size == 0 and fields.ndim == 1:
            return np.zeros(0, np.int64)
        if fields.ndim != 1 or not np.issubdtype(fields.dtype, np.integer):
            raise TypeError(
                f"index: expected an int, a slice, or a 1-D list/array of ints, got {index!r}"
            )
        if len(fields) and not (-num <= fields.min() and fields.max() < num):
            bad = fields[(fields < -num) | (fields >= num)][0]
            raise IndexError(f"index: field {bad} is out of range for {num} fields")
        return fields % num

    def __getitem__(self, index: Any) -> np.ndarray:
        """Read and decode the fields ``index`` selects.

        Args:
            index: An int, a slice, a 1-D list/array of ints, or a boolean mask.

        Shape:
            - output: ``(2, H, W)`` for an int, ``(n, 2, H, W)`` otherwise

        Returns:
            The quantised flow fields, uint8, a new array.

        Raises:
            IndexError: a field is out of range.
            TypeError: ``index`` is of another kind.
            ValueError: the file is corrupt, or the store was closed.

        Example:
            >>> import tempfile
            >>> target = Path(tempfile.mkdtemp()) / "v.flow"
            >>> with FlowStoreWriter(target, codec="png") as w:
            ...     for i in range(5):
            ...         w.append(np.full((2, 4, 4), i, np.uint8))
            >>> store = open_flow_store(target)
            >>> store[-1].shape, store[[3, 0, 3]][:, 0, 0, 0].tolist()
            ((2, 4, 4), [3, 0, 3])
        """
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index: field {index} is out of range for {len(self)} fields")
            return self._read(np.array([index % len(self)]))[0]
        return self._read(self._fields(index))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def _read(self, fields: np.ndarray) -> np.ndarray:
        if self._closed:
            raise ValueError(f"I/O on a closed flow store {str(self.path)!r}")
        wanted, inverse = np.unique(fields, return_inverse=True)
        _, _, height, width = self.shape
        out = np.empty((len(wanted), 2, height, width), np.uint8)
        with open(self.path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self._stat:
                state = self._parse(fh)  # replaced since opened: read its index again
                if state["shape"] != self.shape:
                    raise ValueError(
                        f"path: {str(self.path)!r} was replaced by a store of shape "
                        f"{state['shape']} (opened with {self.shape}): open it again"
                    )
                self.__dict__.update(state)
            # one read per run of consecutive fields: a snippet is one read
            runs = np.split(np.arange(len(wanted)), np.flatnonzero(np.diff(wanted) != 1) + 1)
            for run in runs:
                if not len(run):
                    continue
                first, last = wanted[run[0]], wanted[run[-1]]
                start = int(self._offsets[first])
                fh.seek(start)
                data = fh.read(int(self._offsets[last + 1]) - start)
                for k in run:
                    i = wanted[k]
                    lo, hi = int(self._offsets[i]) - start, int(self._offsets[i + 1]) - start
                    out[k] = self._decode(memoryview(data)[lo:hi], i)
        if len(wanted) == len(fields) and np.array_equal(wanted, fields):
            return out
        return out[inverse.reshape(-1)]

    def _decode(self, blob: memoryview, i: int) -> np.ndarray:
        """Field ``i`` from its compressed bytes, checked against its CRC-32."""
        _, _, height, width = self.shape
        if (
            len(blob) != self._offsets[i + 1] - self._offsets[i]
            or zlib.crc32(blob) != self._crcs[i]
        ):
            raise _corrupt(self.path, f"field {i} fails its checksum (corrupt or truncated)")
        try:
            with Image.open(io.BytesIO(blob), formats=(self._format,)) as image:
                image.load()
                if image.mode != "L" or image.size != (width, 2 * self._rows):
                    raise ValueError(f"a {image.mode} image of {image.size}")
                pixels = np.frombuffer(image.tobytes(), np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:
            raise _corrupt(self.path, f"field {i} does not decode: {exc}") from None
        return rearrange(pixels, "(c h w) -> c h w", c=2, w=width)[:, :height]

    def verify(self) -> None:
        """Read every field's bytes and check them against their CRC-32, decoding nothing.

        Raises:
            ValueError: a field fails its checksum, or the file changed shape (naming it).

        Example:
            >>> import tempfile
            >>> target = Path(tempfile.mkdtemp()) / "v.flow"
            >>> with FlowStoreWriter(target) as w:
            ...     w.append(np.full((2, 8, 8), 128, np.uint8))
            >>> open_flow_store(target).verify()  # silent when whole
        """
        if self._closed:
            raise ValueError(f"I/O on a closed flow store {str(self.path)!r}")
        with open(self.path, "rb") as fh:
            state = self._parse(fh)
            if state["shape"] != self.shape:
                raise ValueError(
                    f"path: {str(self.path)!r} was replaced by a store of shape "
                    f"{state['shape']} (opened with {self.shape}): open it again"
                )
            self.__dict__.update(state)
            fh.seek(int(self._offsets[0]))
            for i in range(len(self)):
                size = int(self._offsets[i + 1] - self._offsets[i])
                blob = fh.read(size)
                if len(blob) != size or zlib.crc32(blob) != self._crcs[i]:
                    raise _corrupt(self.path, f"field {i} fails its checksum (corrupt, truncated)")

    def close(self) -> None:
        """Mark the store closed: later reads raise ``ValueError`` (no handle is held)."""
        self._closed = True

    def __enter__(self) -> FlowStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_flow_store(path: str | os.PathLike) -> FlowStore:
    """Open a flow store written by :class:`FlowStoreWriter`, reading only its index.

    Args:
        path: A ``.flow`` file.

    Returns:
        A :class:`FlowStore`: ``store.shape``, ``store.meta``, ``store[fields]``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a complete flow store (another kind of file, a
            truncated or half-written one), naming the file.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "v.flow"
        >>> with FlowStoreWriter(target, quality=95, meta={"method": "dis"}) as w:
        ...     w.append(np.full((2, 16, 16), 128, np.uint8))
        >>> store = open_flow_store(target)
        >>> store.shape, store.codec, store.quality, store.bound, store.meta
        ((1, 2, 16, 16), 'jpeg', 95, 20.0, {'method': 'dis'})
        >>> int(np.abs(store[0].astype(int) - 128).max())  # a flat field is kept exactly
        0
    """
    return FlowStore(path)
