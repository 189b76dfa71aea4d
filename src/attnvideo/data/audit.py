"""Audit a video dataset: which videos the pipeline would substitute or read inexactly.

Before spending GPU days on a dataset, check every video against the ground truth, a
plain full decode with PyAV (frame ``i`` is the ``i``-th frame ``container.decode`` yields,
converted by ``to_ndarray(format="rgb24")``), written here independently of
:mod:`attnvideo.data.video` so that it can judge it. For each video:

1. the full decode counts the frames; if it fails or yields no frame, the video is
   ``"unreadable"`` (datasets substitute another video for it);
2. ``probe_video(path).num_frames`` must equal that count, or it is ``"miscounted"``;
3. ``read_frames`` must return, bit for bit, the full decode's frames at the positions a
   TSN test reads (:func:`~attnvideo.data.plan_snippets` with ``random=False``), for
   each number of segments T (25 and 8 by default): the T segment centres of an RGB-only
   sample, the T RGB frames of an RGB + flow sample, and for each segment the L + 1
   frames under its flow stack of L fields (``new_length``, 5 by default). Each set is
   read in one call, as a dataset reads a sample. A frame that differs makes the video
   ``"inexact"``;
4. if the library raises where the full decode works, the video is ``"error"`` (a
   dataset would substitute a readable video).

Otherwise it is ``"ok"``. The full decode is streamed twice (count, then digest the frames
at the positions the count gives) and keeps a 128-bit digest per compared frame, not the
frames, so its memory does not grow with the video's length or resolution.

Command line (one JSON line per video, resumable, exit status 1 when a video is not
ok)::

    attnvideo-audit ROOT [--list FILE] [--workers N] [--output FILE.jsonl]
        [--num-segments T ...] [--new-length L] [--quiet]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attnvideo._checks import check_positive_int

from . import video as _video
from .flow import VIDEO_EXTENSIONS, _list_videos, _read_list
from .sampling import plan_snippets

__all__ = [
    "AUDIT_STATUSES",
    "AuditReport",
    "AuditResult",
    "audit_dataset",
    "audit_video",
    "main",
]

AUDIT_STATUSES: tuple[str, ...] = ("ok", "unreadable", "miscounted", "inexact", "error")
"""The statuses of an audited video, ``"ok"`` first (see :class:`AuditResult`)."""

_DEFAULT_OUTPUT = "audit.jsonl"  # in the current folder

_SHOWN = 5  # differing frames named in a reason


@dataclass(frozen=True)
class AuditResult:
    """The audit of one video, as written to one JSON line.

    Attributes:
        path: The video, relative to the dataset root (as listed).
        status: One of :data:`AUDIT_STATUSES`: ``"ok"``; ``"unreadable"`` (the full
            decode fails or yields no frame); ``"miscounted"`` (``probe_video`` counts
            other than the full decode); ``"inexact"`` (a frame read by ``read_frames``
            differs from the full decode's); ``"error"`` (the library raised where the
            full decode works).
        reason: Why the video is not ok (None when it is).
        num_frames: Frames the full decode yields (before it failed, if it did).
        container_frames: The frame count the container states (``stream.frames``;
            0 when it states none).
        probe_frames: ``probe_video(path).num_frames`` (None when it raised or was not
            asked).
        width: Frame width of the full decode.
        height: Frame height of the full decode.
        codec: The decoder's name (``"mpeg4"``, ``"h264"``, ...).
        container: The container format's name (``"avi"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``).
        checked_frames: Distinct frames compared with the full decode.
        fallbacks: Reads that ``read_frames`` redid by decoding from the first frame
            (its ``ReadStats.fallbacks``; None when the reader does not report them).
        frames_decoded: Frames ``read_frames`` decoded for the reads compared (its
            ``ReadStats.frames_decoded``, None likewise): the cost of reading this video,
            high when keyframes are far apart.
        seconds: Time the audit of this video took.

    Example:
        >>> r = AuditResult("Run/v_Run_g01_c01.avi", "ok", num_frames=164)
        >>> r.ok, AuditResult.from_json(r.to_json()) == r
        (True, True)
    """

    path: str
    status: str
    reason: str | None = None
    num_frames: int = 0
    container_frames: int | None = None
    probe_frames: int | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    container: str | None = None
    checked_frames: int = 0
    fallbacks: int | None = None
    frames_decoded: int | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in AUDIT_STATUSES:
            raise ValueError(f"status: expected one of {list(AUDIT_STATUSES)}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """Whether the status is ``"ok"``."""
        return self.status == "ok"

    def to_json(self) -> str:
        """One line of JSON holding every attribute (no newline).

        Returns:
            The JSON text.

        Example:
            >>> AuditResult("a.avi", "unreadable", "no video stream").to_json()[:46]
            '{"path": "a.avi", "status": "unreadable", "rea'
        """
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, line: str | bytes) -> AuditResult:
        """Read a result back from a line written by :meth:`to_json`.

        Args:
            line: The JSON text.

        Returns:
            The :class:`AuditResult`.

        Raises:
            ValueError: Not JSON, or not an object with ``path`` and a known ``status``.

        Example:
            >>> AuditResult.from_json('{"path": "a.avi", "status": "ok"}').status
            'ok'
        """
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            raise ValueError(f"expected a JSON object with a 'path', got {str(line)[:80]!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


@dataclass
class AuditReport:
    """What :func:`audit_dataset` found.

    Attributes:
        results: One :class:`AuditResult` per video asked for, sorted by path.
        resumed: How many of them were read back from an earlier run's output file
            instead of being audited again.
        output: The JSON-lines file the results are in (None when none was written).

    Example:
        >>> report = AuditReport([AuditResult("a.avi", "ok"), AuditResult("b.avi", "error", "?")])
        >>> str(report), [r.path for r in report.bad]
        ('2 videos: 1 ok, 1 error', ['b.avi'])
    """

    results: list[AuditResult] = field(default_factory=list)
    resumed: int = 0
    output: Path | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Videos per status, in the order of :data:`AUDIT_STATUSES` (zeros included)."""
        found = Counter(r.status for r in self.results)
        return {status: found[status] for status in AUDIT_STATUSES}

    @property
    def bad(self) -> list[AuditResult]:
        """The results whose status is not ``"ok"``."""
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        """Whether every video is ok."""
        return not self.bad

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n or s == "ok")
        return f"{len(self.results)} videos: {counts}"


def _read_plans(
    num_frames: int, num_segments: Sequence[int] = (25, 8), new_length: int = 5
) -> dict[str, np.ndarray]:
    """The frame sets a TSN test reads from a video, each as one ``read_frames`` call.

    For each number of segments T: the T segment centres of an RGB-only sample, the T RGB
    frames of an RGB + flow sample, and, for each segment, the frames under its flow
    stack (the L fields ``s .. s + L - 1`` span frames ``s .. s + L``), all from
    :func:`~attnvideo.data.plan_snippets` with ``random=False``. Sets read twice (short
    videos) are kept once.

    Args:
        num_frames: Frames in the video (at least 1; flow sets need 2).
        num_segments: The numbers of segments T to plan for.
        new_length: L, flow fields per snippet.

    Returns:
        A description of each set (``"T=8 rgb"``, ``"T=8 rgb+flow"``,
        ``"T=8 flow snippet 3"``) mapped to its sorted frame indices.

    Example:
        >>> plans = _read_plans(30, [3], 5)
        >>> [plans[name].tolist() for name in ("T=3 rgb", "T=3 rgb+flow", "T=3 flow snippet 0")]
        [[5, 15, 25], [6, 14, 22], [4, 5, 6, 7, 8, 9]]
    """
    plans: dict[str, np.ndarray] = {}
    seen: set[tuple[int, ...]] = set()

    def add(name: str, frames: np.ndarray) -> None:
        key = tuple(frames.tolist())
        if key not in seen:
            seen.add(key)
            plans[name] = frames

    for t in num_segments:
        add(f"T={t} rgb", np.sort(plan_snippets(num_frames, t, new_length, flow=False).rgb_frames))
        if num_frames < 2:
            continue  # no flow field in a one-frame video
        plan = plan_snippets(num_frames, t, new_length, flow=True, random=False)
        add(f"T={t} rgb+flow", np.sort(plan.rgb_frames))
        for k, fields in enumerate(plan.flow_fields):
            add(f"T={t} flow snippet {k}", np.union1d(fields, fields + 1))
    return plans


def _digest(frame: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    """Shape and 128-bit hash of a frame's bytes: equal exactly when the frames are."""
    data = np.ascontiguousarray(frame)
    return data.shape, hashlib.blake2b(data.tobytes(), digest_size=16).digest()


@dataclass
class _Decoded:
    """What a plain full decode saw (filled as it goes, so a failed one says how far)."""

    num_frames: int = 0
    container_frames: int | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    container: str | None = None
    digests: dict[int, tuple[tuple[int, ...], bytes]] = field(default_factory=dict)
    error: str | None = None


def _full_decode(path: str, keep: Iterable[int] = ()) -> _Decoded:
    """Decode every frame of ``path`` the plain way, streamed, digesting those in ``keep``.

    The reference the library is judged by, so it uses nothing of
    :mod:`attnvideo.data.video`. With ``keep`` it stops after the last frame kept.
    """
    import av

    keep = frozenset(keep)
    last = max(keep, default=None)
    out = _Decoded()
    try:
        with av.open(path, metadata_errors="ignore") as container:
            out.container = container.format.name
            if not container.streams.video:
                out.error = "no video stream"
                return out
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            out.codec = stream.codec_context.name
            out.container_frames = stream.frames
            for frame in container.decode(stream):
                if out.num_frames == 0:
                    out.width, out.height = frame.width, frame.height
                if out.num_frames in keep:
                    out.digests[out.num_frames] = _digest(frame.to_ndarray(format="rgb24"))
                out.num_frames += 1
                if last is not None and out.num_frames > last:
                    break
    except (av.FFmpegError, OSError, ValueError) as err:
        out.error = f"{type(err).__name__}: {err}"
    return out


def _library_error(call: str, err: Exception) -> str:
    return f"{call} raised {type(err).__name__}: {err}"


def _compare(
    name: str, got: object, frames: np.ndarray, reference: dict[int, tuple]
) -> dict[int, str]:
    """Frames of one read that differ from the reference, each with what it is instead."""
    shape = next(iter(reference.values()))[0]
    expected = (len(frames), *shape)
    if not isinstance(got, np.ndarray) or got.dtype != np.uint8 or got.shape != expected:
        seen = f"{got.dtype} {got.shape}" if isinstance(got, np.ndarray) else type(got).__name__
        return {int(frames[0]): f"{name}: expected uint8 {expected}, got {seen}"}
    where = {digest: i for i, digest in sorted(reference.items(), reverse=True)}
    differ = {}
    for i, frame in zip(frames.tolist(), got, strict=True):
        digest = _digest(frame)
        if digest != reference[i]:
            other = where.get(digest)
            differ[i] = f"frame {i}" + (f" (is frame {other})" if other is not None else "")
    return differ


def audit_video(
    path: str | os.PathLike,
    *,
    num_segments: Sequence[int] = (25, 8),
    new_length: int = 5,
    name: str | None = None,
    probe_cache: str | os.PathLike | None = None,
) -> AuditResult:
    """Check that the library counts and reads one video exactly like a full decode.

    Args:
        path: The video file.
        num_segments: Numbers of segments T whose test-time frames are compared (see
            :mod:`attnvideo.data.audit`).
        new_length: L, flow fields per snippet.
        name: The path recorded in the result (default: ``path`` as given).
        probe_cache: Keep the video's probe in this folder (see
            :func:`~attnvideo.data.probe_video`), for datasets given the same
            ``probe_cache`` to reuse. A probe already there is checked like a fresh one.

    Returns:
        An :class:`AuditResult`; failures of the video or of the library are reported in
        it, not raised.

    Raises:
        ValueError: A bad ``num_segments`` or ``new_length``.

    Example:
        >>> import tempfile, av
        >>> path = tempfile.mkdtemp() + "/clip.avi"
        >>> with av.open(path, "w") as c:
        ...     s = c.add_stream("mpeg4", rate=25)
        ...     s.width, s.height, s.pix_fmt = 32, 16, "yuv420p"
        ...     for i in range(12):
        ...         img = np.full((16, 32, 3), 20 * i, np.uint8)
        ...         c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        ...     c.mux(s.encode())
        >>> r = audit_video(path, num_segments=[3], name="clip.avi")
        >>> r.path, r.status, r.num_frames, r.probe_frames, r.codec, r.container
        ('clip.avi', 'ok', 12, 12, 'mpeg4', 'avi')
    """
    num_segments = _check_segments(num_segments)
    new_length = check_positive_int("new_length", new_length)
    start = time.perf_counter()
    path = os.fspath(path)
    decoded = _full_decode(path)
    facts = {
        "path": path if name is None else name,
        "num_frames": decoded.num_frames,
        "container_frames": decoded.container_frames,
        "width": decoded.width,
        "height": decoded.height,
        "codec": decoded.codec,
        "container": decoded.container,
    }

    def result(status: str, reason: str | None = None, **more) -> AuditResult:
        return AuditResult(
            status=status, reason=reason, seconds=time.perf_counter() - start, **facts, **more
        )

    try:
        probe_frames = _video.probe_video(path, cache_dir=probe_cache).num_frames
    except Exception as err:  # the audit reports whatever the library does
        probe_frames, probe_error = None, _library_error("probe_video", err)
    else:
        probe_error = None
    facts["probe_frames"] = probe_frames
    if decoded.error is not None or decoded.num_frames == 0:
        failure = decoded.error or "it yields no frame"
        return result("unreadable", f"full decode: {failure} (after {decoded.num_frames} frames)")
    if probe_error is not None:
        return result("error", probe_error)
    if probe_frames != decoded.num_frames:
        return result(
            "miscounted",
            f"probe_video counts {probe_frames} frames, a full decode {decoded.num_frames}",
        )
    plans = _read_plans(decoded.num_frames, num_segments, new_length)
    positions = np.unique(np.concatenate(list(plans.values())))
    reference = _full_decode(path, keep=positions.tolist()).digests
    if len(reference) != len(positions):  # a decoder that is not deterministic
        missing = sorted(set(positions.tolist()) - set(reference))[:_SHOWN]
        return result("unreadable", f"a second full decode missed frames {missing}")
    stats_type = getattr(_video, "ReadStats", None)  # the reader reports fallbacks if it can
    stats = stats_type() if stats_type is not None else None
    options = {} if stats is None else {"stats": stats}
    differ: dict[int, str] = {}
    for plan, frames in plans.items():
        try:
            got = _video.read_frames(path, frames, **options)
        except Exception as err:  # the audit reports whatever the library does
            return result("error", _library_error(f"read_frames ({plan})", err))
        for i, what in _compare(plan, got, frames, reference).items():
            differ.setdefault(i, what)
    more = {
        "checked_frames": len(positions),
        "fallbacks": None if stats is None else int(stats.fallbacks),
        "frames_decoded": None if stats is None else int(stats.frames_decoded),
    }
    if differ:
        shown = ", ".join(differ[i] for i in sorted(differ)[:_SHOWN])
        etc = ", ..." if len(differ) > _SHOWN else ""
        reason = (
            f"{len(differ)} of {len(positions)} frames read differ from the full decode: "
            f"{shown}{etc}"
        )
        return result("inexact", reason, **more)
    return result("ok", **more)


def _check_segments(num_segments: object) -> tuple[int, ...]:
    if isinstance(num_segments, int) or not isinstance(num_segments, Sequence):
        raise ValueError(
            f"num_segments: expected a sequence of positive ints, got {num_segments!r}"
        )
    if not num_segments:
        raise ValueError("num_segments: expected at least one number of segments, got none")
    return tuple(check_positive_int("num_segments", t) for t in num_segments)


def _load_results(output: Path) -> dict[str, AuditResult]:
    """Results already in ``output``; drops a last line left unterminated by a killed run."""
    try:
        data = output.read_bytes()
    except FileNotFoundError:
        return {}
    complete = data.rfind(b"\n") + 1
    if complete < len(data):  # a line cut short: redo its video
        with open(output, "r+b") as fh:
            fh.truncate(complete)
    results = {}
    for lineno, line in enumerate(data[:complete].splitlines(), 1):
        if not line.strip():
            continue
        try:
            result = AuditResult.from_json(line)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"output: {output}:{lineno} is not an audit result ({err}); "
                "choose another output file"
            ) from err
        results[result.path] = result
    return results


def _worker_init() -> None:
    torch.set_num_threads(1)  # decoders are single-threaded already


def _audit_job(job: tuple[str, str, tuple[int, ...], int, str | None]) -> AuditResult:
    name, path, num_segments, new_length, probe_cache = job
    return audit_video(
        path,
        num_segments=num_segments,
        new_length=new_length,
        name=name,
        probe_cache=probe_cache,
    )


def audit_dataset(
    root: str | os.PathLike,
    videos: Iterable[str | os.PathLike] | None = None,
    *,
    output: str | os.PathLike | None = None,
    workers: int = 1,
    num_segments: Sequence[int] = (25, 8),
    new_length: int = 5,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    progress: bool = True,
    probe_cache: str | os.PathLike | None = None,
) -> AuditReport:
    """Audit every video of a dataset (see :func:`audit_video`), resumably, in parallel.

    Each result is appended to ``output`` as one JSON line as soon as it is known. Videos
    already in ``output`` are not audited again, so an interrupted run resumes by running
    it again (a last line cut short by a kill is dropped and its video redone); delete the
    file to audit everything anew, e.g. after the reader changed.

    Args:
        root: The dataset folder.
        videos: Videos relative to ``root`` (or absolute inside it); None audits every
            file under ``root`` with a suffix in ``extensions``.
        output: A JSON-lines file to append results to and resume from (None: keep them
            in memory only).
        workers: Worker processes (forked; each decodes on one thread); 0 or 1 audits in
            this process.
        num_segments: Numbers of segments whose test-time frames are compared.
        new_length: Flow fields per snippet.
        extensions: Video suffixes looked for when ``videos`` is None.
        progress: Show a tqdm progress bar on stderr.
        probe_cache: Keep every video's probe in this folder, so that datasets given
            the same ``probe_cache`` never probe again (see :func:`audit_video`).

    Returns:
        An :class:`AuditReport` covering every video asked for, resumed ones included.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: A bad argument, or ``output`` holds something else than results.

    Example:
        >>> import tempfile
        >>> empty = tempfile.mkdtemp()
        >>> str(audit_dataset(empty, progress=False))
        '0 videos: 0 ok'
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: no such folder {str(root)!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(f"workers: expected an integer >= 0, got {workers!r}")
    num_segments = _check_segments(num_segments)
    new_length = check_positive_int("new_length", new_length)
    if videos is None:
        names = _list_videos(root, extensions)
    else:
        names = []
        for video in videos:
            video = Path(video)
            names.append((video.relative_to(root) if video.is_absolute() else video).as_posix())
        names = list(dict.fromkeys(names))  # once each, in order
    output = None if output is None else Path(output)
    done = {} if output is None else _load_results(output)
    results = {name: done[name] for name in names if name in done}
    cache = None if probe_cache is None else os.fspath(probe_cache)
    jobs = [(n, str(root / n), num_segments, new_length, cache) for n in names if n not in results]
    report = AuditReport(resumed=len(results), output=output)

    pool = None
    if workers > 1 and len(jobs) > 1:  # before tqdm starts its monitor thread
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(names), initial=len(results), desc="audit", unit="video", disable=not progress
    )
    sink = None
    try:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            sink = open(output, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        found = map(_audit_job, jobs) if pool is None else pool.imap_unordered(_audit_job, jobs)
        for result in found:
            results[result.path] = result
            if sink is not None:
                sink.write(result.to_json() + "\n")
                sink.flush()
            bar.update(1)
    finally:
        bar.close()
        if sink is not None:
            sink.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    report.results = [results[name] for name in sorted(results)]
    return report


def _summary(report: AuditReport) -> list[str]:
    lines = [f"attnvideo-audit: {report}"]
    width = max((len(r.status) for r in report.bad), default=0)
    lines += [f"  {r.status:<{width}}  {r.path}: {r.reason}" for r in report.bad]
    fallbacks = [r.fallbacks for r in report.results if r.fallbacks]
    if fallbacks:
        lines.append(
            f"read_frames fell back to decoding from the first frame {sum(fallbacks)} times "
            f"in {len(fallbacks)} videos (exact, slower)"
        )
    short = [(r.container_frames or 0) - r.num_frames for r in report.results if r.ok]
    short = [missing for missing in short if missing > 0]
    if short:
        by = f"{min(short)}" if min(short) == max(short) else f"{min(short)} to {max(short)}"
        lines.append(
            f"{len(short)} ok videos decode fewer frames than their container states, by {by} "
            "(container_frames > num_frames; a packed-B-frame AVI states one frame more, a "
            "truncated file many more)"
        )
    if report.output is not None:
        lines.append(f"results: {report.output}")
        if report.resumed:
            lines.append(
                f"{report.resumed} of them read back from an earlier run "
                "(delete the file to audit them again)"
            )
    return lines


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="attnvideo-audit",
        description="Check that every video of a dataset is counted and read exactly like "
        "a plain full decode (one JSON line per video, resumable). Exit status: 0 all ok, "
        "1 some video not ok, 2 bad arguments.",
    )
    p.add_argument("root", help="the dataset folder")
    p.add_argument(
        "--list",
        dest="list_file",
        default=None,
        help="only these videos: a split/list file whose first field per line is a path "
        "relative to ROOT (UCF-101 trainlist/testlist files work as they are)",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--output",
        default=_DEFAULT_OUTPUT,
        help=f"JSON-lines results, appended to and resumed from (default ./{_DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--num-segments",
        type=_positive_int,
        nargs="+",
        default=[25, 8],
        metavar="T",
        help="numbers of segments whose test-time frames are compared (default 25 8)",
    )
    p.add_argument(
        "--new-length", type=_positive_int, default=5, help="flow fields per snippet (default 5)"
    )
    p.add_argument(
        "--probe-cache",
        default=None,
        metavar="DIR",
        help="keep each video's probe (frame count and fingerprints) in DIR, for datasets "
        "and training runs given the same folder to reuse instead of probing again",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``attnvideo-audit`` / ``python -m attnvideo.data.audit``).

    Prints a summary (videos per status, then each video that is not ok with the reason).

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The exit status: 0 when every video is ok, 1 when some video is not, 2 for bad
        arguments (no such ROOT, an unreadable list file, no video to audit).

    Example:
        >>> main(["no/such/dataset", "--quiet"])
        2
    """
    args = _parser().parse_args(argv)
    root = Path(args.root)
    try:
        if not root.is_dir():
            raise FileNotFoundError(f"ROOT: no such folder {args.root!r}")
        if args.list_file:
            videos = _read_list(args.list_file)
            if not videos:
                raise ValueError(f"--list: no video listed in {args.list_file!r}")
        else:
            videos = _list_videos(root, VIDEO_EXTENSIONS)
            if not videos:
                raise ValueError(f"ROOT: no video file under {args.root!r}")
        report = audit_dataset(
            root,
            videos,
            output=args.output,
            workers=args.workers,
            num_segments=args.num_segments,
            new_length=args.new_length,
            progress=not args.quiet,
            probe_cache=args.probe_cache,
        )
    except (OSError, ValueError) as err:
        print(f"attnvideo-audit: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(_summary(report)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
