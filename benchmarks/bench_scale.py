"""Measure what the scale page (docs/scale.md) multiplies: per frame, per pair, per clip.

On every real clip of ``tests/data/real`` (and ``--real DIR``), decoded and resized to
TSN's 340 x 256 as ``attnvideo-flow --size 340x256`` does, in one process on one thread:

- **extraction CPU time per frame pair** of the whole ``attnvideo-flow`` path (decode,
  resize, flow, quantise, write the store) for DIS ``ultrafast``/``fast``/``medium`` and
  Farneback into a ``.flow`` store, DIS ``medium`` into ``.npy`` and into a TSN frame folder
  with RGB (``--frame-dirs``), and the decode + resize alone;
- **bytes on disk** of each output: per frame pair for ``.flow``, ``.npy`` and the
  ``flow_x/flow_y`` JPEGs, per frame for the RGB JPEGs (quality 95) and for the video file
  as distributed;
- **bytes read per clip** by the loader: RGB from the video file (``/proc/self/io``
  ``rchar``: every ``read`` of the process) for the 8 frames of a training sample and the
  25 of a test sample with the probe cached, and for the probe itself (a worker's first
  touch of a video); flow from each store, from the sizes of the ``T x L`` fields read
  (``.npy`` is memory-mapped: ``rchar`` does not see it).

Then it multiplies them by each dataset's size (``DATASETS``, where every count that is
not measured here says where it comes from) and prints the tables of docs/scale.md.

Run::

    python benchmarks/bench_scale.py            # ~2 min on 2 cores
    python benchmarks/bench_scale.py --quick    # 2 clips, 2 methods (smoke test)

It writes JSON (machine, versions, commit, every measurement) to
``benchmarks/results/bench_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from _common import commit, machine, machine_line

from attnvideo.data import iter_frames, open_flow, plan_snippets, probe_video, read_frames
from attnvideo.data import video as video_module
from attnvideo.data.flow import _compute_into

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
SIZE = (340, 256)
T, L, TEST_SEGMENTS = 8, 5, 25

# (label, method, preset, store, rgb)
RUNS = [
    ("dis medium -> .flow (default)", "dis", "medium", "flow", False),
    ("dis fast -> .flow", "dis", "fast", "flow", False),
    ("dis ultrafast -> .flow", "dis", "ultrafast", "flow", False),
    ("farneback -> .flow", "farneback", None, "flow", False),
    ("dis medium -> .npy", "dis", "medium", "npy", False),
    ("dis medium -> frame folder with RGB", "dis", "medium", "frames", True),
]

# What the page multiplies by. Counts not measured here, and where they come from.
DATASETS = {
    "UCF-101": {
        "videos": 13_320,
        "frames": 2_500_000,  # ~2.5 M frames (issue 11; 13,320 clips of ~7 s at 25 fps)
        "train_clips": 9_537,  # split 1 (docs/STACNN.md)
        "test_videos": 3_783,
        "like": "ucf101",  # which real clips stand for its videos as distributed
    },
    "HMDB-51": {
        "videos": 6_766,
        "frames": 6_766 * 95,  # assumed ~95 frames (~3 s at 30 fps) per clip
        "train_clips": 3_570,  # split 1: 70 per class
        "test_videos": 1_530,  # 30 per class
        "like": "hmdb51",
    },
    "Kinetics-400": {
        "videos": 240_000 + 20_000,  # ~240k train + ~20k validation clips
        "frames": 260_000 * 300,  # 10 s at ~30 fps (25-30 fps in practice)
        "train_clips": 240_000,
        "test_videos": 20_000,
        "like": "mmaction2",  # mmaction2's demo clips are Kinetics-400 videos
    },
}


def rchar() -> int:
    """Bytes this process has read through ``read`` calls so far (``/proc/self/io``)."""
    with open("/proc/self/io") as fh:
        for line in fh:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def size_of(path: Path, pattern: str = "*") -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


def measure_clip(video: Path, out: Path, runs: list[tuple]) -> dict[str, object]:
    probe = probe_video(video)
    frames, pairs = probe.num_frames, probe.num_frames - 1
    row: dict[str, object] = {
        "clip": video.name,
        "source": [probe.width, probe.height],
        "codec": probe.codec,
        "frames": frames,
        "video_bytes": video.stat().st_size,
    }
    start = time.process_time()
    for _ in iter_frames(video, size=SIZE):
        pass
    row["decode_resize_ms_per_frame"] = 1e3 * (time.process_time() - start) / frames
    cpu, outputs = {}, {}
    for label, method, preset, store, rgb in runs:
        suffix = {"flow": ".flow", "npy": ".npy", "frames": ""}[store]
        target = out / video.name / f"{method}-{preset}-{store}{suffix}"
        start = time.process_time()
        _compute_into(
            target, video, method, preset=preset, size=SIZE, short_side=None,
            codec="jpeg", quality=None, rgb=rgb,
        )  # fmt: skip
        cpu[label] = 1e3 * (time.process_time() - start) / pairs
        outputs[label] = target
    row["extract_ms_per_pair"] = cpu
    default, npy = outputs[runs[0][0]], outputs.get("dis medium -> .npy")
    folder = outputs.get("dis medium -> frame folder with RGB")
    row["bytes_per_pair"] = {"flow": size_of(default) / pairs}
    if npy is not None:
        row["bytes_per_pair"]["npy"] = size_of(npy) / pairs
    if folder is not None:
        row["bytes_per_pair"]["frames"] = size_of(folder, "flow_*.jpg") / pairs
        row["rgb_jpeg_bytes_per_frame"] = size_of(folder, "img_*.jpg") / frames
    row["video_bytes_per_frame"] = row["video_bytes"] / frames
    # Bytes read per clip. RGB: read_frames with the probe cached (a warm worker).
    train = plan_snippets(frames, T, L, flow=True, random=True).rgb_frames
    test = plan_snippets(frames, TEST_SEGMENTS, L, flow=True, random=False).rgb_frames
    read_frames(video, train, size=SIZE)  # learn the seeks, as a worker would
    before = rchar()
    read_frames(video, train, size=SIZE)
    middle = rchar()
    read_frames(video, test, size=SIZE)
    row["rgb_read_bytes"] = {"train_8": middle - before, "test_25": rchar() - middle}
    video_module._probe_cached.cache_clear()  # a worker's first touch of the video
    before = rchar()
    probe_video(video)
    row["rgb_read_bytes"]["probe"] = rchar() - before
    # Flow: the stored bytes of the fields of one training and one test sample.
    flow = open_flow(default)
    index = default.stat().st_size - int(flow._offsets[-1]) + len(b"ATVFLOW1")
    blob = np.diff(flow._offsets)
    train_fields = plan_snippets(frames, T, L, flow=True, random=False).flow_fields.reshape(-1)
    test_fields = plan_snippets(frames, TEST_SEGMENTS, L, flow=True).flow_fields.reshape(-1)
    reads = {}
    for name, fields in (("train_40", train_fields), ("test_125", test_fields)):
        reads[name] = {"flow": int(blob[fields].sum()) + index}
        if npy is not None:
            reads[name]["npy"] = len(fields) * 2 * SIZE[0] * SIZE[1]
        if folder is not None:
            reads[name]["frames"] = sum(
                (folder / f"flow_{a}_{i + 1:05d}.jpg").stat().st_size for i in fields for a in "xy"
            )
    row["flow_read_bytes"] = reads
    return row


_TVL1 = """
import sys, time, cv2, numpy as np
cv2.setNumThreads(1)
frames = np.load(sys.argv[1])
tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
times = []
for clip in frames.files:
    f = frames[clip]
    for a, b in zip(f[:-1], f[1:]):
        start = time.process_time()
        tvl1.calc(a, b, None)
        times.append(time.process_time() - start)
print(1e3 * sum(times) / len(times), len(times))
"""


def time_tvl1(clips: list[Path], python: str, pairs: int) -> dict[str, float]:
    """CPU ms per pair of OpenCV's TV-L1 (``python`` must have opencv-contrib), one thread.

    The flow alone, on the first ``pairs`` pairs of each clip, decoded and resized here.
    """
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npz"
        gray = {}
        for clip in clips:
            frames = []
            for frame in iter_frames(clip, size=SIZE):
                frames.append(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
                if len(frames) > pairs:
                    break
            gray[clip.name] = np.stack(frames)
        np.savez(path, **gray)
        out = subprocess.run(
            [python, "-c", _TVL1, str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
    return {"ms_per_pair": float(out[0]), "pairs": int(out[1]), "python": python}


def summarise(rows: list[dict]) -> dict[str, object]:
    """Per-pair and per-frame figures pooled over the clips (weighted by pairs/frames)."""
    pairs = np.array([r["frames"] - 1 for r in rows], float)
    frames = np.array([r["frames"] for r in rows], float)

    def by_pairs(get) -> float:
        return float(np.sum([get(r) * p for r, p in zip(rows, pairs, strict=True)]) / pairs.sum())

    labels = list(rows[0]["extract_ms_per_pair"])
    summary = {
        "pairs": int(pairs.sum()),
        "frames": int(frames.sum()),
        "extract_ms_per_pair": {
            k: by_pairs(lambda r, k=k: r["extract_ms_per_pair"][k]) for k in labels
        },
        "decode_resize_ms_per_frame": by_pairs(lambda r: r["decode_resize_ms_per_frame"]),
        "bytes_per_pair": {
            k: by_pairs(lambda r, k=k: r["bytes_per_pair"][k]) for k in rows[0]["bytes_per_pair"]
        },
    }
    if "rgb_jpeg_bytes_per_frame" in rows[0]:
        summary["rgb_jpeg_bytes_per_frame"] = float(
            sum(r["rgb_jpeg_bytes_per_frame"] * r["frames"] for r in rows) / frames.sum()
        )
    for key in ("rgb_read_bytes", "flow_read_bytes"):
        summary[key] = json.loads(json.dumps(rows[0][key]))  # same keys, means below
        for name, value in summary[key].items():
            if isinstance(value, dict):
                for k in value:
                    value[k] = float(np.mean([r[key][name][k] for r in rows]))
            else:
                summary[key][name] = float(np.mean([r[key][name] for r in rows]))
    groups: dict[str, dict] = {}
    for like in {d["like"] for d in DATASETS.values()}:
        chosen = [r for r in rows if r["clip"].startswith(like)] or rows
        groups[like] = {
            "clips": [r["clip"] for r in chosen],
            "video_bytes_per_frame": float(
                sum(r["video_bytes"] for r in chosen) / sum(r["frames"] for r in chosen)
            ),
            "probe_bytes_per_frame": float(
                sum(r["rgb_read_bytes"]["probe"] for r in chosen) / sum(r["frames"] for r in chosen)
            ),
            # bytes read from the video file per clip, as a fraction of the file
            **{
                f"read_ratio_{k}": float(
                    sum(r["rgb_read_bytes"][k] for r in chosen)
                    / sum(r["video_bytes"] for r in chosen)
                )
                for k in ("train_8", "test_25")
            },
        }
    summary["video_like"] = groups
    return summary


def project(summary: dict) -> dict[str, dict]:
    """Each dataset's disk, extraction time and I/O from the measured per-unit figures."""
    out = {}
    per_pair = summary["bytes_per_pair"]
    for name, d in DATASETS.items():
        pairs = d["frames"] - d["videos"]
        like = summary["video_like"][d["like"]]
        frames_per_video = d["frames"] / d["videos"]
        disk = {
            "videos": d["frames"] * like["video_bytes_per_frame"],
            "rgb_jpeg": d["frames"] * summary.get("rgb_jpeg_bytes_per_frame", float("nan")),
            **{f"flow_{k}": pairs * v for k, v in per_pair.items()},
        }
        hours = {k: pairs * ms / 1e3 / 3600 for k, ms in summary["extract_ms_per_pair"].items()}
        reads = summary["flow_read_bytes"]
        video_bytes = frames_per_video * like["video_bytes_per_frame"]  # a mean video file
        jpeg = summary.get("rgb_jpeg_bytes_per_frame", float("nan"))
        io = {
            "train_epoch_rgb_video": d["train_clips"] * video_bytes * like["read_ratio_train_8"],
            "train_epoch_rgb_jpeg": d["train_clips"] * T * jpeg,
            **{f"train_epoch_flow_{k}": d["train_clips"] * v for k, v in reads["train_40"].items()},
            "test_rgb_video": d["test_videos"] * video_bytes * like["read_ratio_test_25"],
            "test_rgb_jpeg": d["test_videos"] * TEST_SEGMENTS * jpeg,
            **{f"test_flow_{k}": d["test_videos"] * v for k, v in reads["test_125"].items()},
            "probe_all_videos": d["frames"] * like["probe_bytes_per_frame"],
        }
        out[name] = {"pairs": pairs, "frames_per_video": frames_per_video, "disk": disk,
                     "core_hours": hours, "io": io}  # fmt: skip
    return out


def print_tables(record: dict) -> None:
    """Print the measured figures and each dataset's projection."""
    summary, projection = record["summary"], record["projection"]
    print(f"\nmachine: {machine_line()}; torch {torch.__version__}; OpenCV {cv2.__version__}")
    print(f"{len(record['clips'])} clips, {summary['pairs']} frame pairs at {SIZE[0]}x{SIZE[1]}\n")
    print("| run | CPU ms / pair | pairs/s/core |\n|---|---:|---:|")
    for label, ms in summary["extract_ms_per_pair"].items():
        print(f"| {label} | {ms:.2f} | {1e3 / ms:.0f} |")
    print(f"| decode + resize only (per frame) | {summary['decode_resize_ms_per_frame']:.2f} | |")
    print("\n| bytes | value |\n|---|---:|")
    for k, v in summary["bytes_per_pair"].items():
        print(f"| flow {k} per pair | {v:,.0f} |")
    if "rgb_jpeg_bytes_per_frame" in summary:
        print(f"| RGB JPEG q95 per frame | {summary['rgb_jpeg_bytes_per_frame']:,.0f} |")
    for like, g in summary["video_like"].items():
        print(f"| {like} video per frame ({len(g['clips'])} clips) | "
              f"{g['video_bytes_per_frame']:,.0f} |")  # fmt: skip
    print(f"\nRGB read per clip (rchar): {summary['rgb_read_bytes']}")
    print(f"flow read per clip: {summary['flow_read_bytes']}")
    for name, p in projection.items():
        disk = ", ".join(f"{k} {v / 1e9:,.1f} GB" for k, v in p["disk"].items())
        hours = ", ".join(f"{k}: {v:,.0f}" for k, v in p["core_hours"].items())
        io = ", ".join(f"{k} {v / 1e9:,.1f} GB" for k, v in p["io"].items())
        print(f"\n{name}: {p['pairs']:,} pairs\n  disk: {disk}\n  core-hours: {hours}\n  I/O: {io}")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", default=str(REAL), help="folder of real clips")
    parser.add_argument("--quick", action="store_true", help="2 clips, 2 runs (smoke test)")
    parser.add_argument(
        "--tvl1-python",
        default=None,
        help="a Python with opencv-contrib-python-headless, to time TV-L1 (flow only)",
    )
    parser.add_argument("--tvl1-pairs", type=int, default=4, help="TV-L1 pairs per clip")
    parser.add_argument(
        "--reproject",
        metavar="JSON",
        help="measure nothing: recompute the summary and projection of a saved run (after "
        "changing DATASETS or the formulas) and rewrite it",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_scale.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    suffixes = {".avi", ".mp4", ".mkv", ".mov", ".webm"}
    clips = sorted(p for p in Path(args.real).rglob("*") if p.suffix.lower() in suffixes)
    if args.reproject:
        record = json.loads(Path(args.reproject).read_text())
        tvl1 = record["summary"].get("tvl1")
        record["summary"] = summarise(record["clips"])
        if tvl1:
            decode = record["summary"]["decode_resize_ms_per_frame"]
            record["summary"]["extract_ms_per_pair"]["tvl1 (flow alone) + decode"] = (
                tvl1["ms_per_pair"] + decode
            )
            record["summary"]["tvl1"] = tvl1
        record["datasets"] = DATASETS
        record["projection"] = project(record["summary"])
        record["reprojected"] = datetime.now(UTC).isoformat(timespec="seconds")
        Path(args.reproject).write_text(json.dumps(record, indent=2))
        print_tables(record)
        return record
    runs = RUNS
    if args.quick:
        clips, runs = clips[:2], [RUNS[2], RUNS[-1]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            rows.append(measure_clip(clip, Path(tmp), runs))
            print(f"measured {clip.name}", flush=True)
    summary = summarise(rows)
    if args.tvl1_python:
        tvl1 = time_tvl1(clips, args.tvl1_python, args.tvl1_pairs)
        decode = summary["decode_resize_ms_per_frame"]
        summary["extract_ms_per_pair"]["tvl1 (flow alone) + decode"] = tvl1["ms_per_pair"] + decode
        summary["tvl1"] = tvl1
    projection = project(summary)
    record = {
        "benchmark": "bench_scale",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "commit": commit(),
        "versions": {"opencv": cv2.__version__, "av": av.__version__, "torch": torch.__version__},
        "setup": {"size": SIZE, "T": T, "L": L, "test_segments": TEST_SEGMENTS,
                  "clock": "process_time, one thread", "load_average": os.getloadavg()},
        "datasets": DATASETS,
        "clips": rows,
        "summary": summary,
        "projection": projection,
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print_tables(record)
    print(f"\nwrote {out}")
    return record


if __name__ == "__main__":
    main()
