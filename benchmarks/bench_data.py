"""Benchmark the video loader against a naive one that decodes every frame per sample.

Both loaders produce the same TSN training sample (T = 8 segments, RGB frame + flow stack
of L = 5 fields per segment, multi-scale crop + flip to 224) through the same
``DataLoader`` (2 worker processes, shuffled batches); they differ only in how they read:

- ``attnvideo``: :class:`attnvideo.data.UCF101`: probes each video once per worker (one
  decode without colour conversion, a fingerprint per frame), seeks to the keyframe
  before each wanted frame, decodes forward to it and verifies every frame it returns;
  flow is memory-mapped from the uint8 cache and only the 8 x 5 wanted fields are read;
- ``naive``: decodes every frame of the video with PyAV (``to_ndarray(format="rgb24")``
  per frame, as a naive user would) and loads the whole flow cache for every sample, then
  picks the same frames and hands them, in uint8 like the dataset, to the same transform.

Each pair is timed with two outputs: ``float`` (the workers normalise: float32 batches,
what ``UCF101(..., transform=train_transform(224))`` gives) and ``uint8`` (the workers hand
over uint8 pixels and quantised flow, ``to_float=False`` with
``train_transform(224, normalize=False)``, and the batch is normalised on the device, as
``examples/train_stacnn.py`` does; that normalisation is not part of the loader).

The videos are the synthetic action dataset (:func:`attnvideo.data.make_synthetic_actions`)
at 340 x 256, the TSN frame size, encoded with MPEG-4 Part 2 in AVI (FFmpeg's default
keyframe interval of 12 frames: UCF-101's own videos are XviD/DivX AVI) and, with
``--codec libx264``, H.264 (x264's default keyframe interval of 250 frames, so a short clip
has one keyframe and nothing to seek to). Flow caches are computed once with DIS
(:func:`attnvideo.data.precompute_flow`) before timing.

Then, on real files (every video in ``tests/data/real``, and in ``--real-dir``), the
video reader itself, in one process, against a plain full decode and the peer decord2:

- **exactness**: :func:`attnvideo.data.read_frames` at the 8 TSN test positions
  (``plan_snippets(n, 8, 5, flow=False).rgb_frames``) on first touch and once warm, and
  at 25 positions, compared bit for bit with ``[f.to_ndarray(format="rgb24") for f in
  av.open(p, metadata_errors="ignore").decode(video=0)]``; the probe's frame count against
  that decode's; the same for ``decord.VideoReader(p, num_threads=1)`` (``len(vr)``,
  ``vr.get_batch(idx)``). A returned frame that is not the wanted one is looked up among
  all decoded frames: the table says by how many frames it is shifted, or, when it equals
  none of them, which frame it is nearest to and how far (mean absolute difference);
- **time** to read the 8 TSN positions: attnvideo warm (probe cached, seeks learned: the
  cost of a read in training), attnvideo cold (probe + read: a worker's first touch of a
  video; and the probe alone), decord2 (open + ``get_batch``) and the full RGB decode
  (the baseline, on one decoding thread like the others), each timed once per round, in
  rotating order, over ``--real-rounds`` rounds, in CPU time of the process (all its
  threads) and wall time;
  plus the frames attnvideo decodes per read (:class:`attnvideo.data.ReadStats`).

decord2 is optional (``pip install decord2``, or the ``bench`` extra:
``pip install -e '.[bench]'``); without it its columns are skipped.

Run::

    python benchmarks/bench_data.py                  # both codecs, real clips, bench_flow.py
    python benchmarks/bench_data.py --codec mpeg4 --skip-flow --skip-real
    python benchmarks/bench_data.py --codec mpeg4 --repeat 2  # 256-frame videos
    python benchmarks/bench_data.py --real-only --real-dir my_clips/  # real files only
    python benchmarks/bench_data.py --quick --skip-flow   # tiny, for a smoke test

It prints a Markdown table and writes JSON (machine, torch version, commit, every
measurement) to ``benchmarks/results/bench_data.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import json
import os
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import torch
from _common import commit, machine_line
from einops import rearrange
from torch.utils.data import DataLoader, RandomSampler

from attnvideo.data import (
    UCF101,
    FlowStoreWriter,
    ReadStats,
    make_synthetic_actions,
    open_flow,
    plan_snippets,
    precompute_flow,
    probe_video,
    read_frames,
    train_transform,
    video,
)
from attnvideo.data.flow_cache import store_path
from attnvideo.data.transforms import GroupNormalize

ROOT = Path(__file__).resolve().parents[1]
TO_FLOAT = GroupNormalize(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # what the dataset applies


class NaiveDataset(torch.utils.data.Dataset):
    """The same samples as ``ds``, read by decoding every frame and loading all flow."""

    def __init__(self, ds: UCF101) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict[str, object]:
        ds = self.ds
        path = ds.root / ds.records[index].path
        with av.open(str(path)) as container:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        flow = np.load(ds.flow_root / Path(ds.records[index].path).with_suffix(".npy"))
        num_frames = min(len(frames), flow.shape[0] + 1)
        plan = plan_snippets(num_frames, ds.num_segments, ds.new_length, flow=True, random=True)
        rgb = torch.from_numpy(frames[plan.rgb_frames])
        q = torch.from_numpy(flow[plan.flow_fields.reshape(-1)])
        sample = {  # uint8, as the dataset hands them over: the same transform work follows
            "rgb": rearrange(rgb, "t h w c -> t c h w"),
            "flow": rearrange(q, "(t l) c h w -> t (l c) h w", t=ds.num_segments),
        }
        sample = ds.transform(sample)
        if ds.to_float:
            sample = TO_FLOAT(sample)
        sample["label"] = ds.records[index].label
        sample["video_index"] = index
        return sample


def measure(dataset, *, batch_size: int, workers: int, clips: int, seed: int) -> dict:
    """Clips/s (wall) and CPU ms per clip (this process + its workers) over one pass.

    ``main`` runs each loader once untimed first, then alternates which one goes first
    over ``--rounds`` passes and reports their mean (the first loader run of a process
    was measured over 20 CPU ms per clip slower than the same loader run later).

    The first batch pays for starting the worker processes and is left out of the wall
    clock; the clips after it are drawn with replacement, so one pass covers them however
    small the split is. CPU time counts every clip, start-up included, and does not depend
    on what else runs on the machine (wall time does).
    """
    generator = torch.Generator().manual_seed(seed)
    total = clips + batch_size
    sampler = RandomSampler(dataset, replacement=True, num_samples=total, generator=generator)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    cpu0 = _cpu_seconds()
    seen, start = 0, None
    for batch in loader:  # exhausting the loader joins its workers (their CPU is counted)
        if start is None:
            start = time.perf_counter()
            continue
        seen += batch["label"].shape[0]
    wall = time.perf_counter() - start
    del loader
    return {"clips_per_s": seen / wall, "cpu_ms_per_clip": 1e3 * (_cpu_seconds() - cpu0) / total}


def _cpu_seconds() -> float:
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def encode(path: Path, frames: list[np.ndarray], codec: str) -> None:
    """Encode RGB frames with the synthetic generator's settings (codec defaults for GOP)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.avi")
    with av.open(str(tmp), "w", format="avi") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "8", "preset": "veryfast", "threads": "1"}
        else:
            stream.bit_rate = 8_000_000
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)


def prepare(args: argparse.Namespace, codec: str) -> tuple[dict[str, UCF101], dict[str, object]]:
    root = Path(args.root) / codec
    info = make_synthetic_actions(
        root,
        num_classes=args.classes,
        videos_per_class=args.videos_per_class,
        num_frames=args.frames,
        size=(args.height, args.width),
        codec=codec,
        progress=False,
    )
    video_root, split_root = info.video_root, info.split_root
    if args.repeat > 1:  # longer clips: each synthetic clip played `repeat` times, re-encoded
        root = root.with_name(f"{codec}-x{args.repeat}")
        video_root = root / "videos"
        for src in sorted(info.video_root.glob("*/*.avi")):
            dst = video_root / src.relative_to(info.video_root)
            if not dst.exists():
                with av.open(str(src)) as container:
                    frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
                encode(dst, frames * args.repeat, codec)
    flow_root = root / "flow"  # .npy: the naive loader loads it whole
    precompute_flow(video_root, flow_root, workers=args.workers, progress=False, store="npy")
    datasets = {
        output: UCF101(
            video_root,
            split_root,
            modality="rgb+flow",
            num_segments=args.segments,
            new_length=args.new_length,
            transform=train_transform(args.input_size, normalize=output == "float"),
            flow_root=flow_root,
            to_float=output == "float",
            probe_cache=root / "probes" if args.probe_cache else None,
        )
        for output in (["float", "uint8"] if args.output == "both" else [args.output])
    }
    ds = next(iter(datasets.values()))
    probes = [probe_video(ds.root / r.path, cache_dir=ds.probe_cache) for r in ds.records]
    gop = float(np.mean([p.num_frames / len(p.keyframes) for p in probes]))
    frames = args.frames * args.repeat
    meta = {"videos": len(ds), "frames": frames, "keyframe_interval": round(gop, 1)}
    meta["probe_cache"] = bool(args.probe_cache)
    return datasets, meta


# Real clips: the reader against a plain full decode and decord2 ------------------------

REAL_DIR = ROOT / "tests" / "data" / "real"
QUICK_CLIP = "ucf101_SoccerJuggling__v_SoccerJuggling_g23_c01.avi"  # 20 keyframes: seeks
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"}


def real_clips(args: argparse.Namespace) -> list[Path]:
    """The clips of ``tests/data/real`` (one with ``--quick``) and of each ``--real-dir``."""
    ours = sorted(p for p in REAL_DIR.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if args.quick:
        ours = [p for p in ours if p.name == QUICK_CLIP] or ours[:1]
    theirs = [
        p
        for d in args.real_dir
        for p in sorted(Path(d).expanduser().rglob("*"))
        if p.suffix.lower() in VIDEO_SUFFIXES
    ]
    return ours + theirs


def full_decode(path: Path, *, threads: int | None = None) -> list[np.ndarray]:
    """A plain PyAV full decode: what frame ``i`` of a video means (the reference).

    ``threads=1`` decodes on one thread, as both readers do, for the timed baseline.
    """
    with av.open(str(path), metadata_errors="ignore") as container:
        if threads is not None:
            container.streams.video[0].codec_context.thread_count = threads
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def forget_videos() -> None:
    """Drop what this process learned about every video: the next read is a first touch."""
    video._probe_cached.cache_clear()
    video._LANDINGS.clear()
    video._TRUSTED.clear()
    video._UNSEEKABLE.clear()


def compare(got: object, wanted: np.ndarray, full: list[np.ndarray], index: dict) -> dict:
    """Which full-decode frame each returned frame equals, as a shift from the wanted one.

    ``index`` maps a frame's bytes digest to the full-decode frames with those bytes.
    Returns ``{"exact", "shifts", "nearest"}``: ``shifts[k]`` is the shift of the equal
    frame nearest to ``wanted[k]`` (None when no frame is equal); ``nearest[k]``, for a
    frame equal to none, is ``(shift, mean absolute difference)`` of the closest one.
    """
    if isinstance(got, Exception):
        return {"exact": False, "error": f"{type(got).__name__}: {got}"[:200]}
    shifts: list[int | None] = []
    nearest: list[tuple[int, float] | None] = []
    for frame, want in zip(got, wanted.tolist(), strict=True):
        hits = [i for i in index.get(_digest(frame), []) if np.array_equal(full[i], frame)]
        shifts.append(min((i - want for i in hits), key=lambda d: (abs(d), d)) if hits else None)
        if hits or frame.shape != full[0].shape:
            nearest.append(None)
            continue
        diffs = [float(np.abs(f.astype(np.int16) - frame).mean()) for f in full]
        best = int(np.argmin(diffs))
        nearest.append((best - want, round(diffs[best], 3)))
    exact = len(got) == len(wanted) and all(d == 0 for d in shifts)
    return {"exact": exact, "shifts": shifts, "nearest": nearest}


def _digest(frame: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()


def describe(check: dict) -> str:
    """One table cell: ``exact``, the shifts seen, or the error."""
    if check.get("error"):
        return f"error ({check['error'][:60]})"
    if check["exact"]:
        return "exact"
    shifts, total = check["shifts"], len(check["shifts"])
    parts = []
    for d in sorted({d for d in shifts if d not in (0, None)}):
        parts.append(f"shifted by {d:+d} on {shifts.count(d)}/{total}")
    other = sum(d is None and n is None for d, n in zip(shifts, check["nearest"], strict=True))
    if other:
        parts.append(f"{other}/{total} of another size")
    missing = [n for n in check["nearest"] if n is not None]
    if missing:
        near = sorted({d for d, _ in missing})
        worst = max(m for _, m in missing)
        parts.append(
            f"{len(missing)}/{total} equal no frame (nearest "
            f"{', '.join(f'{d:+d}' for d in near)}, mean abs diff <= {worst:.2f})"
        )
    return "; ".join(parts)


def time_readers(readers: dict[str, tuple], rounds: int) -> dict[str, dict[str, float]]:
    """CPU and wall ms of each ``(setup, read)``, one call each per round, rotating order.

    ``setup`` runs untimed before each timed ``read``. CPU time is the process's, all its
    threads (other jobs on the machine do not inflate it; wall time they do).
    """
    names = list(readers)
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for name in names:  # untimed: first calls pay for imports and allocations
        setup, read = readers[name]
        setup()
        read()
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            setup, read = readers[name]
            setup()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            read()
            samples[name].append(
                (1e3 * (time.process_time() - cpu0), 1e3 * (time.perf_counter() - wall0))
            )
    return {
        name: {
            "cpu_ms_median": float(np.median([c for c, _ in s])),
            "cpu_ms_min": float(min(c for c, _ in s)),
            "wall_ms_median": float(np.median([w for _, w in s])),
            "wall_ms_min": float(min(w for _, w in s)),
            "cpu_ms": [c for c, _ in s],
            "wall_ms": [w for _, w in s],
        }
        for name, s in samples.items()
    }


def measure_clip(path: Path, decord, rounds: int) -> dict[str, object]:
    """Exactness and time of each reader on one clip (see the module docstring)."""
    full = full_decode(path)
    index: dict[bytes, list[int]] = {}
    for i, frame in enumerate(full):
        index.setdefault(_digest(frame), []).append(i)
    n = len(full)
    positions = {k: plan_snippets(n, k, 5, flow=False, random=False).rgb_frames for k in (8, 25)}
    tsn = positions[8]

    forget_videos()
    cold, warm = ReadStats(), ReadStats()
    first = read_frames(path, tsn, stats=cold)  # first touch: the seeks are learned here
    probe = probe_video(path)
    again = read_frames(path, tsn, stats=warm)
    checks = {
        "attnvideo cold 8": compare(first, tsn, full, index),
        "attnvideo warm 8": compare(again, tsn, full, index),
        "attnvideo 25": compare(read_frames(path, positions[25]), positions[25], full, index),
    }
    row: dict[str, object] = {
        "clip": path.name,
        "codec": probe.codec,
        "container": path.suffix.lstrip(".").lower(),
        "size": f"{probe.width}x{probe.height}",
        "frames_full_decode": n,
        "frames_probe": probe.num_frames,
        "frames_container": probe.container_frames,
        "keyframes": len(probe.keyframes),
        "positions": {k: v.tolist() for k, v in positions.items()},
        "stats_warm": vars(warm),
        "stats_cold": {**vars(cold), "probe_frames": probe.num_frames},
    }

    def ours_warm() -> None:
        read_frames(path, tsn)

    readers = {
        "full decode": (lambda: None, lambda: full_decode(path, threads=1)),
        "attnvideo warm": (lambda: read_frames(path, tsn), ours_warm),
        "attnvideo cold": (forget_videos, ours_warm),
        "attnvideo probe": (forget_videos, lambda: probe_video(path)),  # part of the cold read
    }
    if decord is not None:
        vr = decord.VideoReader(str(path), num_threads=1)
        row["frames_decord"] = len(vr)
        for k, idx in positions.items():
            try:
                got = vr.get_batch(idx.tolist()).asnumpy()
            except Exception as err:  # a reader's failure is a result here
                got = err
            checks[f"decord2 {k}"] = compare(got, idx, full, index)
        del vr

        def theirs() -> None:
            decord.VideoReader(str(path), num_threads=1).get_batch(tsn.tolist()).asnumpy()

        if not checks["decord2 8"].get("error"):
            readers["decord2"] = (lambda: None, theirs)
    row["checks"] = checks
    times = row["times"] = time_readers(readers, rounds)
    base = times["full decode"]["cpu_ms"]
    for t in times.values():  # round by round: both taken within a second, under one load
        t["paired_ratio_median"] = float(np.median(np.divide(t["cpu_ms"], base)))
    return row


def real_section(args: argparse.Namespace) -> dict[str, object]:
    """Measure every real clip; print its two tables; return the JSON part."""
    try:
        import decord
    except ImportError:
        decord = None
        print("\ndecord2 is not installed (pip install decord2): its columns are skipped")
    clips = real_clips(args)
    rows = [measure_clip(p, decord, args.real_rounds) for p in clips]
    print_real(rows, decord is not None, args.real_rounds)
    load = os.getloadavg()
    print(
        f"\nload average after the real clips (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in load)}"
    )
    return {"decord2": getattr(decord, "__version__", None), "rounds": args.real_rounds,
            "load_average": load, "clips": rows}  # fmt: skip


def print_real(rows: list[dict], with_decord: bool, rounds: int) -> None:
    print(
        f"\nReal clips: exactness (bit for bit against a full PyAV decode), "
        f"machine: {machine_line()}; torch {torch.__version__}; PyAV {av.__version__}\n"
    )
    head = "| clip | codec | frames: full decode / probe / container"
    head += " / decord2" if with_decord else ""
    head += " | keyframes | attnvideo, 8 TSN (first touch, warm) | attnvideo, 25 |"
    head += " decord2, 8 TSN | decord2, 25 |" if with_decord else ""
    print(head)
    print("|---|---|---|---:|---|---|" + ("---|---|" if with_decord else ""))
    for r in rows:
        c = r["checks"]
        cold, warm = describe(c["attnvideo cold 8"]), describe(c["attnvideo warm 8"])
        ours = cold if cold == warm else f"first touch: {cold}; warm: {warm}"
        counts = f"{r['frames_full_decode']} / {r['frames_probe']} / {r['frames_container']}"
        line = f"| {r['clip']} | {r['codec']} {r['container'].upper()} {r['size']} | {counts}"
        line += f" / {r['frames_decord']}" if with_decord else ""
        line += f" | {r['keyframes']} | {ours} | {describe(c['attnvideo 25'])} |"
        if with_decord:
            line += f" {describe(c['decord2 8'])} | {describe(c['decord2 25'])} |"
        print(line)

    print(
        f"\nReal clips: time to read the 8 TSN positions, median (min) over {rounds} rounds, "
        "CPU ms of the process; ratio of medians to the full decode (the target's figure)\n"
    )
    names = ["full decode", "attnvideo warm", "attnvideo cold", "attnvideo probe"] + (
        ["decord2"] if with_decord else []
    )
    print(
        "| clip | " + " | ".join(names) + " | frames decoded warm / cold (probe + read) "
        "| warm, median of per-round ratios; target | wall ms, median: " + " / ".join(names) + " |"
    )
    print("|---|" + "---:|" * len(names) + "---:|---|---:|")
    for r in rows:
        t, base = r["times"], r["times"]["full decode"]["cpu_ms_median"]
        cells = []
        for name in names:
            m = t.get(name)
            if m is None:
                cells.append("n/a")
                continue
            ratio = m["cpu_ms_median"] / base
            cells.append(f"{m['cpu_ms_median']:.1f} ({m['cpu_ms_min']:.1f}) {ratio:.2f}x")
        warm, cold = r["stats_warm"], r["stats_cold"]
        decoded = f"{warm['frames_decoded']} / {cold['probe_frames']} + {cold['frames_decoded']}"
        goal = 0.5 if r["codec"] == "h264" and r["keyframes"] > 1 else 1.0
        ratio = t["attnvideo warm"]["cpu_ms_median"] / base
        paired = t["attnvideo warm"]["paired_ratio_median"]
        verdict = f"{paired:.2f}x; <= {goal}x: {'met' if ratio <= goal else 'missed'}"
        walls = " / ".join(f"{t[n]['wall_ms_median']:.1f}" if n in t else "n/a" for n in names)
        print(f"| {r['clip']} | " + " | ".join(cells) + f" | {decoded} | {verdict} | {walls} |")
    for r in rows:
        w, c = r["stats_warm"], r["stats_cold"]
        if c["relocated"] or c["fallbacks"] or w["fallbacks"]:
            print(
                f"\n{r['clip']}: first touch: {c['seeks']} seeks, {c['relocated']} relocated, "
                f"{c['fallbacks']} fallbacks to decoding from the start; warm: {w['seeks']} "
                f"seeks, {w['fallbacks']} fallbacks"
            )


def loader_rows(args: argparse.Namespace) -> list[dict[str, object]]:
    """Time both loaders on the synthetic videos of each codec; print the table."""
    rows = []
    for codec in ["mpeg4", "libx264"] if args.codec == "both" else [args.codec]:
        datasets, meta = prepare(args, codec)
        common = {"batch_size": args.batch_size, "workers": args.workers, "clips": args.clips}
        for output, ds in datasets.items():
            loaders = {"naive": NaiveDataset(ds), "attnvideo": ds}
            for dataset in loaders.values():  # untimed: the first loader run pays start-up
                measure(dataset, seed=1, batch_size=args.batch_size, workers=args.workers,
                        clips=args.batch_size)  # fmt: skip
            runs: dict[str, list[dict]] = {name: [] for name in loaders}
            for r in range(args.rounds):  # alternate which loader goes first
                for name in list(loaders)[:: 1 if r % 2 == 0 else -1]:
                    runs[name].append(measure(loaders[name], seed=r, **common))
            mean = {
                name: {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
                for name, ms in runs.items()
            }
            rows.append({"codec": codec, "output": output, **meta, **mean, "rounds": runs})

    print(f"\nmachine: {machine_line()}; torch {torch.__version__}; PyAV {av.__version__}")
    print(
        f"{args.width}x{args.height} videos; T={args.segments}, L={args.new_length}, "
        f"RGB+flow at {args.input_size}, "
        f"{args.workers} workers, batch {args.batch_size}, {args.clips} clips timed\n"
    )
    print("| videos | loader | clips/s (wall) | speed-up | CPU ms / clip | CPU ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        what = (
            f"{r['codec']}, {r['frames']} frames, keyframe every {r['keyframe_interval']} "
            f"frames, {r['output']} batches"
        )
        naive, ours = r["naive"], r["attnvideo"]
        for name, m in (("naive (decode all)", naive), ("attnvideo", ours)):
            print(
                f"| {what} | {name} | {m['clips_per_s']:.2f} | "
                f"{m['clips_per_s'] / naive['clips_per_s']:.2f}x | {m['cpu_ms_per_clip']:.0f} | "
                f"{naive['cpu_ms_per_clip'] / m['cpu_ms_per_clip']:.2f}x |"
            )
    load = os.getloadavg()
    print(
        f"\nload average during the run (1, 5, 15 min): {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}"
    )
    return rows


# Flow stores: the same loader reading flow from each store ------------------------------

STORES = ("npy", "flow", "frames")


def build_stores(npy_root: Path, root: Path) -> dict[str, Path]:
    """The flow of ``npy_root`` (``.npy`` per video) copied into each store, side by side.

    The same uint8 fields, written as :class:`attnvideo.data.FlowStoreWriter` does by
    default (JPEG quality 93) and as TSN's ``flow_x/flow_y_%05d.jpg`` (quality 95, as
    ``attnvideo-flow --store frames`` writes them).
    """
    import cv2

    roots = {"npy": npy_root}
    for store in ("flow", "frames"):
        roots[store] = root / f"flow-{store}"
        for npy in sorted(npy_root.rglob("*.npy")):
            target = store_path(roots[store] / npy.relative_to(npy_root).with_suffix(""), store)
            if target.exists():
                continue
            q = np.load(npy)
            if store == "flow":
                with FlowStoreWriter(target) as writer:
                    for field in q:
                        writer.append(np.ascontiguousarray(field))
                continue
            tmp = target.with_name(target.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for i, field in enumerate(q, 1):
                for axis, image in zip("xy", field, strict=True):
                    cv2.imwrite(str(tmp / f"flow_{axis}_{i:05d}.jpg"), image,
                                [cv2.IMWRITE_JPEG_QUALITY, 95])  # fmt: skip
            tmp.rename(target)
    return roots


def snippet_bytes(roots: dict[str, Path], ds: UCF101) -> dict[str, float]:
    """Mean bytes of the ``T x L`` flow fields a clip reads (cold cache), per store.

    From the stored sizes of the fields of every clip's test plan: ``.npy`` fields are
    ``2 H W`` bytes; a ``.flow`` clip adds its index and header (read on open); a frame
    folder reads two files per field.
    """
    sizes: dict[str, list[int]] = {store: [] for store in roots}
    for record in ds.records:
        stem = Path(record.path).with_suffix("")
        flow = open_flow(store_path(roots["flow"] / stem, "flow"))
        plan = plan_snippets(len(flow) + 1, ds.num_segments, ds.new_length, flow=True)
        fields = plan.flow_fields.reshape(-1)
        sizes["npy"].append(len(fields) * 2 * flow.shape[2] * flow.shape[3])
        blobs = np.diff(flow._offsets)[fields]
        index = flow.path.stat().st_size - int(flow._offsets[-1]) + 8  # offsets, CRCs, header
        sizes["flow"].append(int(blobs.sum()) + index)
        folder = store_path(roots["frames"] / stem, "frames")
        sizes["frames"].append(sum(
            (folder / f"flow_{axis}_{i + 1:05d}.jpg").stat().st_size
            for i in fields for axis in "xy"
        ))  # fmt: skip
    return {store: float(np.mean(v)) for store, v in sizes.items()}


def store_rows(args: argparse.Namespace) -> dict[str, object]:
    """Time the loader (RGB + flow, and flow alone) with flow read from each store."""
    datasets, meta = prepare(args, "mpeg4")
    base = next(iter(datasets.values()))
    roots = build_stores(base.flow_root, Path(args.root) / "mpeg4")
    common = {"batch_size": args.batch_size, "workers": args.workers, "clips": args.clips}
    rows = []
    for modality in ("rgb+flow", "flow"):
        options = {
            "modality": modality, "num_segments": args.segments, "new_length": args.new_length,
            "transform": train_transform(args.input_size, normalize=False), "to_float": False,
        }  # fmt: skip
        splits = Path(args.root) / "mpeg4" / "splits"
        loaders = {
            store: UCF101(base.root, splits, flow_root=roots[store], flow_store=store, **options)
            for store in STORES
        }
        for ds in loaders.values():  # untimed: the first run pays start-up
            measure(ds, seed=1, batch_size=args.batch_size, workers=args.workers,
                    clips=args.batch_size)  # fmt: skip
        runs: dict[str, list[dict]] = {store: [] for store in loaders}
        for r in range(args.rounds):  # rotate which store goes first
            order = list(loaders)[r % len(loaders) :] + list(loaders)[: r % len(loaders)]
            for store in order:
                runs[store].append(measure(loaders[store], seed=r, **common))
        for store, ms in runs.items():
            mean = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
            rows.append({"modality": modality, "store": store, **mean, "rounds": ms})
    read = snippet_bytes(roots, base)
    disk = {
        store: sum(p.stat().st_size for p in roots[store].rglob("*") if p.is_file())
        for store in STORES
    }
    print(f"\nmachine: {machine_line()}; torch {torch.__version__}; PyAV {av.__version__}")
    print(
        f"flow stores: {meta['videos']} mpeg4 videos of {meta['frames']} frames at "
        f"{args.width}x{args.height}; T={args.segments}, L={args.new_length}, "
        f"crop {args.input_size}, uint8 batches, {args.workers} workers, "
        f"batch {args.batch_size}, {args.clips} clips x {args.rounds} rounds\n"
    )
    print("| sample | flow store | clips/s (wall) | vs .npy | CPU ms / clip | vs .npy |"
          " flow bytes read / clip | flow on disk |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ref = next(x for x in rows if x["modality"] == r["modality"] and x["store"] == "npy")
        print(
            f"| {r['modality']} | {r['store']} | {r['clips_per_s']:.2f} | "
            f"{r['clips_per_s'] / ref['clips_per_s']:.2f}x | {r['cpu_ms_per_clip']:.1f} | "
            f"{r['cpu_ms_per_clip'] / ref['cpu_ms_per_clip']:.2f}x | "
            f"{read[r['store']] / 1e3:,.0f} KB | {disk[r['store']] / 1e6:,.1f} MB |"
        )
    load = os.getloadavg()
    print(f"\nload average after the store runs (1, 5, 15 min): "
          f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}")  # fmt: skip
    return {"videos": meta, "rows": rows, "bytes_per_clip": read, "disk_bytes": disk,
            "load_average": load}  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(ROOT / ".cache" / "bench_data"))
    parser.add_argument("--codec", choices=["mpeg4", "libx264", "both"], default="both")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--videos-per-class", type=int, default=3)
    parser.add_argument("--frames", type=int, default=128, help="frames per video")
    parser.add_argument(
        "--repeat", type=int, default=1, help="play each clip this many times (longer videos)"
    )
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--new-length", type=int, default=5)
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--output",
        choices=["float", "uint8", "both"],
        default="both",
        help="what the workers hand over: normalised float32, or uint8 (normalised on device)",
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--clips", type=int, default=48, help="clips timed per loader")
    parser.add_argument(
        "--rounds", type=int, default=2, help="timed passes per loader (alternating order)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny videos, for a smoke test")
    parser.add_argument("--skip-flow", action="store_true", help="do not run bench_flow.py")
    parser.add_argument("--skip-real", action="store_true", help="no real-clip section")
    parser.add_argument(
        "--stores-only",
        action="store_true",
        help="only the flow-store section: the loader reading flow from .npy, .flow and "
        "frame folders (mpeg4 videos)",
    )
    parser.add_argument("--skip-stores", action="store_true", help="no flow-store section")
    parser.add_argument(
        "--real-only", action="store_true", help="only the real-clip section (no loaders, flow)"
    )
    parser.add_argument(
        "--real-dir", action="append", default=[], help="more real videos (searched recursively)"
    )
    parser.add_argument("--real-rounds", type=int, default=10, help="timed rounds per real clip")
    parser.add_argument(
        "--probe-cache",
        action="store_true",
        help="the attnvideo loader reads each video's probe from a probe cache filled before "
        "timing (a training run's steady state), instead of probing in each worker",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_data.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.height, args.width, args.clips = 32, 64, 96, 8
        args.classes, args.videos_per_class, args.input_size = 2, 3, 48
        args.root = str(Path(args.root) / "quick")
        args.real_rounds = min(args.real_rounds, 3)
    torch.set_num_threads(1)  # each worker decodes on one core, as in training

    only = args.real_only or args.stores_only
    rows = loader_rows(args) if not only else []
    stores = store_rows(args) if not (args.skip_stores or args.real_only) else None
    real = real_section(args) if not (args.skip_real or args.stores_only) else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_line(),
        "torch": torch.__version__,
        "av": av.__version__,
        "commit": commit(),
        "args": vars(args),
        "rows": rows,
        "flow_stores": stores,
        "real_clips": real,
        "load_average": os.getloadavg(),
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {out}")

    flow_bench = ROOT / "benchmarks" / "bench_flow.py"
    if not (args.skip_flow or only) and flow_bench.exists():
        spec = importlib.util.spec_from_file_location("bench_flow", flow_bench)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
        print("\n::: benchmarks/bench_flow.py")
        flow_argv = ["--quick"] if args.quick else []
        module.main(flow_argv) if inspect.signature(module.main).parameters else module.main()
    return rows


if __name__ == "__main__":
    main()
