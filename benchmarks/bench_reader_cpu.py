"""CPU time per training sample of the video dataset: this checkout against another one.

What a ``DataLoader`` worker spends on one TSN training sample (T = 8 RGB frames + L = 5
flow fields per segment, multi-scale crop + flip to 224, uint8 out), measured in CPU time
(``time.process_time``), which a busy machine disturbs far less than wall time. Each
measurement is one fresh process that reads ``--samples`` random samples, as one worker
does over its life, so what a worker pays once per video (the probe) is counted in the
proportion a short run pays it.

Readers, alternated round by round in one run:

- ``baseline``: the checkout at ``--baseline-src`` (its ``src/`` folder), e.g. the reader
  before a change (``git worktree add /tmp/base <commit>``);
- ``attnvideo``: this checkout, each worker probing each video it reads once;
- ``attnvideo + probe cache``: this checkout with ``probe_cache=`` filled before timing,
  a training run's steady state (or any run after ``attnvideo-audit --probe-cache``).

The videos and flow are ``benchmarks/bench_data.py``'s synthetic set (340 x 256, MPEG-4
Part 2 with a keyframe every 12 frames, and H.264), made here if missing; flow is read from
the exact ``.npy`` store so that only the video reader differs.

    python benchmarks/bench_reader_cpu.py --baseline-src /tmp/base/src --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, commit, machine

_WORKER = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from attnvideo.data import UCF101, train_transform
root, cache, samples, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
options = dict(modality="rgb+flow", num_segments=8, new_length=5, flow_root=root + "/flow-npy",
               transform=train_transform(224, normalize=False), to_float=False)
if cache != "-":
    options["probe_cache"] = cache
ds = UCF101(root + "/videos", root + "/splits", **options)
order = np.random.default_rng(seed).integers(0, len(ds), size=samples)
start = time.process_time()
for i in order:
    ds[int(i)]
print(json.dumps({"ms": (time.process_time() - start) / samples * 1e3, "videos": len(ds)}))
"""


def make_data(root: Path, codec: str, quick: bool = False) -> Path:
    """The synthetic clips and their ``.npy`` flow, as ``bench_data.py`` makes them."""
    from attnvideo.data import make_synthetic_actions, precompute_flow

    shape = dict(num_classes=2, num_frames=24, size=(64, 96)) if quick else dict(
        num_classes=4, num_frames=128, size=(256, 340)
    )  # fmt: skip
    info = make_synthetic_actions(
        root / codec, videos_per_class=3, codec=codec, progress=False, **shape
    )
    flow = root / codec / "flow-npy"  # only .npy here: both readers read the same flow
    precompute_flow(info.video_root, flow, workers=2, progress=False, store="npy")
    return root / codec


def measure(src: Path, data: Path, cache: str, samples: int, seed: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, str(data), cache, str(samples), str(seed)],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])["ms"]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline-src", type=Path, default=None, help="another checkout's src/")
    p.add_argument("--root", type=Path, default=ROOT / ".cache" / "bench_data")
    p.add_argument("--codec", choices=["mpeg4", "libx264", "both"], default="both")
    p.add_argument("--samples", type=int, default=72, help="samples per process (one worker)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny videos, for a smoke test")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reader_cpu.json")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.rounds = 4, 1
    codecs = ["mpeg4", "libx264"] if args.codec == "both" else [args.codec]
    here = ROOT / "src"
    readers = {"attnvideo": (here, False), "attnvideo + probe cache": (here, True)}
    if args.baseline_src is not None:
        readers = {"baseline": (args.baseline_src, False), **readers}
    results: dict[str, dict[str, list[float]]] = {}
    for codec in codecs:
        data = make_data(args.root, codec, args.quick)
        cache = data / "probes-bench"
        from attnvideo.data import probe_video

        for video in sorted((data / "videos").rglob("*.avi")):
            probe_video(video, cache_dir=cache)
        results[codec] = {name: [] for name in readers}
        for r in range(args.rounds):
            for name, (src, cached) in readers.items():
                ms = measure(src, data, str(cache) if cached else "-", args.samples, r)
                results[codec][name].append(ms)
                print(f"{codec} round {r}: {name}: {ms:.1f} ms CPU / sample", flush=True)
    print(f"\n| videos | reader | CPU ms / sample (median of {args.rounds}) | all rounds | ratio |")
    print("|---|---|---:|---|---:|")
    first = next(iter(readers))
    for codec, by in results.items():
        base = float(np.median(by[first]))
        for name, values in by.items():
            med = float(np.median(values))
            shown = ", ".join(f"{v:.1f}" for v in values)
            print(f"| {codec} | {name} | {med:.1f} | {shown} | {med / base:.2f}x |")
    record = {
        "machine": machine(),
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": os.getloadavg(),
        "baseline_src": None if args.baseline_src is None else str(args.baseline_src),
        "samples_per_process": args.samples,
        "ms_cpu_per_sample": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
