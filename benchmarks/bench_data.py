"""Benchmark the video loader against a naive one that decodes every frame per sample.

Both loaders produce the same TSN training sample (T = 8 segments, RGB frame + flow stack
of L = 5 fields per segment, multi-scale crop + flip to 224) through the same
``DataLoader`` (2 worker processes, shuffled batches); they differ only in how they read:

- ``attnvideo``: :class:`attnvideo.data.UCF101`: probes each video once (packets, no
  decoding), seeks to the keyframe before each wanted frame and decodes forward to it;
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

Run::

    python benchmarks/bench_data.py                  # both codecs, then bench_flow.py
    python benchmarks/bench_data.py --codec mpeg4 --skip-flow
    python benchmarks/bench_data.py --codec mpeg4 --repeat 2  # 256-frame videos
    python benchmarks/bench_data.py --quick --skip-flow   # tiny, for a smoke test

It prints a Markdown table and writes JSON (machine, torch version, commit, every
measurement) to ``benchmarks/results/bench_data.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import resource
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
    make_synthetic_actions,
    plan_snippets,
    precompute_flow,
    train_transform,
)
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
        seen += batch["rgb"].shape[0]
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
    flow_root = root / "flow"
    precompute_flow(video_root, flow_root, workers=args.workers, progress=False)
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
        )
        for output in (["float", "uint8"] if args.output == "both" else [args.output])
    }
    ds = next(iter(datasets.values()))
    from attnvideo.data import probe_video

    probes = [probe_video(ds.root / r.path) for r in ds.records]
    gop = float(np.mean([p.num_frames / len(p.keyframes) for p in probes]))
    frames = args.frames * args.repeat
    meta = {"videos": len(ds), "frames": frames, "keyframe_interval": round(gop, 1)}
    return datasets, meta


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
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_data.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.height, args.width, args.clips = 32, 64, 96, 8
        args.classes, args.videos_per_class, args.input_size = 2, 3, 48
        args.root = str(Path(args.root) / "quick")
    torch.set_num_threads(1)  # each worker decodes on one core, as in training

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
        "load_average": os.getloadavg(),
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {out}")

    flow_bench = ROOT / "benchmarks" / "bench_flow.py"
    if not args.skip_flow and flow_bench.exists():
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
