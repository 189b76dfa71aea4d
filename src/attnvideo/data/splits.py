"""Split and list files, read exactly as published.

- UCF-101 (``ucfTrainTestlist``): ``classInd.txt`` lines ``1 ApplyEyeMakeup`` (1-based,
  CRLF); ``trainlist0k.txt`` lines ``ClassName/v_ClassName_gXX_cYY.avi 1`` (1-based
  label); ``testlist0k.txt`` lines with the path only, the label coming from the folder
  name through ``classInd.txt``. The folder ``HandstandPushups`` holds files named
  ``v_HandStandPushups_...``: labels come from the folder, never the file name.
- HMDB-51 (``testTrainMulti_7030_splits``): one file per class and split,
  ``<class>_test_split<k>.txt`` (class names contain underscores), lines
  ``<video>.avi <id> `` with a trailing space, id 1 = train, 2 = test, 0 = unused. Classes
  are in alphabetical order; the video lives at ``<class>/<video>.avi``.
- Generic lists (mmaction2 style): ``<relative path> <0-based label>`` per line, or TSN's
  ``<relative path> <num_frames> <0-based label>``.

Line endings (LF or CRLF), a UTF-8 byte-order mark, trailing spaces and blank lines are
accepted; anything else malformed raises :class:`SplitFormatError` naming the file and
the 1-based line number. Labels returned are 0-based, in the published class order.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SplitFormatError",
    "VideoRecord",
    "read_class_index",
    "read_hmdb51_split",
    "read_ucf101_split",
    "read_video_list",
]


class SplitFormatError(ValueError):
    """A split or list file that does not follow its published format.

    The message starts with ``<file>:<line>:`` so editors and terminals can jump to it.
    """


@dataclass(frozen=True)
class VideoRecord:
    """One entry of a split: a video path relative to the dataset root and its label.

    Attributes:
        path: Relative path with ``/`` separators, as written in the split file.
        label: 0-based class index.
    """

    path: str
    label: int


def _lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines of a text file, line endings and a UTF-8 BOM removed, blanks skipped."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"split file not found: {path}") from err
    except UnicodeDecodeError as err:
        raise SplitFormatError(f"{path}: not UTF-8 text ({err.reason})") from err
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _int(path: Path, lineno: int, token: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", token):
        raise SplitFormatError(f"{path}:{lineno}: expected an integer {what}, got {token!r}")
    return int(token)


def read_class_index(path: str | os.PathLike) -> list[str]:
    r"""Read UCF-101's ``classInd.txt``: ``<1-based index> <ClassName>`` per line.

    Args:
        path: The ``classInd.txt`` file.

    Returns:
        Class names in index order (position ``i`` holds the class with index ``i + 1``).

    Raises:
        SplitFormatError: A malformed line, or indices that are not 1, 2, ..., N in order.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "classInd.txt"
        >>> _ = f.write_bytes(b"1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n")
        >>> read_class_index(f)
        ['ApplyEyeMakeup', 'ApplyLipstick']
    """
    path = Path(path)
    classes: list[str] = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 2:
            raise SplitFormatError(f"{path}:{lineno}: expected '<index> <ClassName>', got {line!r}")
        index = _int(path, lineno, parts[0], "class index")
        if index != len(classes) + 1:
            raise SplitFormatError(
                f"{path}:{lineno}: expected class index {len(classes) + 1} (1-based, in order), "
                f"got {index}"
            )
        classes.append(parts[1])
    if not classes:
        raise SplitFormatError(f"{path}: no classes listed")
    return classes


def _check_relative(path: Path, lineno: int, rel: str) -> str:
    if (
        rel.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", rel)
        or ".." in re.split(r"[/\\]", rel)
    ):
        raise SplitFormatError(
            f"{path}:{lineno}: video path {rel!r} escapes the dataset root "
            "(expected a relative path without '..')"
        )
    return rel.replace("\\", "/")


def read_ucf101_split(
    annotation_path: str | os.PathLike, split: int = 1, train: bool = True
) -> tuple[list[str], list[VideoRecord]]:
    r"""Read one UCF-101 split from the official ``ucfTrainTestlist`` folder.

    Args:
        annotation_path: Folder holding ``classInd.txt``, ``trainlist0{1,2,3}.txt`` and
            ``testlist0{1,2,3}.txt``.
        split: 1, 2 or 3.
        train: Read the train list (True) or the test list (False).

    Returns:
        ``(classes, records)``: class names in ``classInd.txt`` order and the split's
        videos with 0-based labels.

    Raises:
        ValueError: ``split`` is not 1, 2 or 3.
        FileNotFoundError: A split file is missing.
        SplitFormatError: A malformed line (file and line number in the message), a
            train label that disagrees with the folder, or an unknown class folder.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "classInd.txt").write_bytes(b"1 Archery\r\n2 HandstandPushups\r\n")
        >>> _ = (d / "testlist01.txt").write_bytes(
        ...     b"HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n")
        >>> classes, records = read_ucf101_split(d, 1, train=False)
        >>> records[0]
        VideoRecord(path='HandstandPushups/v_HandStandPushups_g01_c01.avi', label=1)
    """
    if split not in (1, 2, 3):
        raise ValueError(f"split: expected 1, 2 or 3 for UCF-101, got {split!r}")
    root = Path(annotation_path)
    classes = read_class_index(root / "classInd.txt")
    by_folder = {name: i for i, name in enumerate(classes)}
    by_folder_lower = {name.lower(): i for i, name in enumerate(classes)}
    path = root / f"{'train' if train else 'test'}list0{split}.txt"
    records = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != (2 if train else 1):
            expected = "'<Class>/<video>.avi <label>'" if train else "'<Class>/<video>.avi'"
            raise SplitFormatError(f"{path}:{lineno}: expected {expected}, got {line!r}")
        rel = _check_relative(path, lineno, parts[0])
        folder = rel.split("/")[0] if "/" in rel else ""
        # The folder names the class (file names may differ in case: HandStandPushups).
        folder_label = by_folder.get(folder, by_folder_lower.get(folder.lower()))
        if train:
            label = _int(path, lineno, parts[1], "label")
            if not 1 <= label <= len(classes):
                raise SplitFormatError(
                    f"{path}:{lineno}: expected a 1-based label in [1, {len(classes)}], got {label}"
                )
            label -= 1
            if folder_label is not None and folder_label != label:
                raise SplitFormatError(
                    f"{path}:{lineno}: label {label + 1} ({classes[label]}) disagrees with "
                    f"the folder {folder!r}"
                )
        else:
            if folder_label is None:
                raise SplitFormatError(
                    f"{path}:{lineno}: folder {folder!r} of {rel!r} is not a class of "
                    f"{root / 'classInd.txt'}"
                )
            label = folder_label
        records.append(VideoRecord(rel, label))
    return classes, records


_HMDB_ID = {"0": None, "1": True, "2": False}


def read_hmdb51_split(
    annotation_path: str | os.PathLike, split: int = 1, train: bool = True
) -> tuple[list[str], list[VideoRecord]]:
    r"""Read one HMDB-51 split from the official ``testTrainMulti_7030_splits`` folder.

    Args:
        annotation_path: Folder holding the ``<class>_test_split<k>.txt`` files.
        split: 1, 2 or 3.
        train: Keep the videos with id 1 (train) or 2 (test); id 0 (unused) is dropped.

    Returns:
        ``(classes, records)``: class names in alphabetical order and the split's videos
        as ``<class>/<video>.avi`` with 0-based labels.

    Raises:
        ValueError: ``split`` is not 1, 2 or 3.
        FileNotFoundError: No split file for ``split`` in the folder.
        SplitFormatError: A malformed line (file and line number in the message).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "brush_hair_test_split1.txt").write_bytes(b"a.avi 1 \nb.avi 2 \n")
        >>> _ = (d / "shoot_ball_test_split1.txt").write_bytes(b"c.avi 1 \nd.avi 0 \n")
        >>> classes, records = read_hmdb51_split(d, 1, train=True)
        >>> classes, [(r.path, r.label) for r in records]
        (['brush_hair', 'shoot_ball'], [('brush_hair/a.avi', 0), ('shoot_ball/c.avi', 1)])
    """
    if split not in (1, 2, 3):
        raise ValueError(f"split: expected 1, 2 or 3 for HMDB-51, got {split!r}")
    root = Path(annotation_path)
    suffix = f"_test_split{split}.txt"
    files = sorted(p for p in root.glob(f"*{suffix}") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no HMDB-51 split files '*{suffix}' in {root}")
    classes = [p.name[: -len(suffix)] for p in files]
    records = []
    for label, (name, path) in enumerate(zip(classes, files, strict=True)):
        for lineno, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _HMDB_ID:
                raise SplitFormatError(
                    f"{path}:{lineno}: expected '<video>.avi <0|1|2>', got {line!r}"
                )
            video = _check_relative(path, lineno, parts[0])
            if _HMDB_ID[parts[1]] is train:
                records.append(VideoRecord(f"{name}/{video}", label))
    return classes, records


def read_video_list(
    list_file: str | os.PathLike, num_classes: int | None = None
) -> list[VideoRecord]:
    r"""Read a generic list file: ``<path> <label>`` or ``<path> <num_frames> <label>``.

    Labels are 0-based (mmaction2 / TSN convention). Paths may not contain spaces.

    Args:
        list_file: The list file.
        num_classes: When given, labels must lie in ``[0, num_classes)``.

    Returns:
        The listed videos in file order.

    Raises:
        FileNotFoundError: The file is missing.
        SplitFormatError: A malformed line (file and line number in the message).

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "train.txt"
        >>> _ = f.write_text("walk/a.mp4 0\nrun/b.mp4 120 1\n")
        >>> read_video_list(f)
        [VideoRecord(path='walk/a.mp4', label=0), VideoRecord(path='run/b.mp4', label=1)]
    """
    path = Path(list_file)
    records = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) not in (2, 3):
            raise SplitFormatError(
                f"{path}:{lineno}: expected '<path> <label>' or '<path> <num_frames> <label>', "
                f"got {line!r}"
            )
        if len(parts) == 3:
            _int(path, lineno, parts[1], "frame count")
        label = _int(path, lineno, parts[-1], "label")
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise SplitFormatError(
                f"{path}:{lineno}: expected a 0-based label {bound}, got {label}"
            )
        records.append(VideoRecord(_check_relative(path, lineno, parts[0]), label))
    return records
