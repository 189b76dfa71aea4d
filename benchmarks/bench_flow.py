"""Benchmark optical flow: speed (frame pairs/s) and accuracy (endpoint error, EPE).

Frames come from the synthetic action generator (:func:`attnvideo.data.synthetic.render_action`)
at TSN's 340 x 256, so every pixel's true motion is known: actor, distractors (translation,
rotation, zoom, shake, circles of up to ~9 px/frame) and a shaky camera. Each method of
:func:`attnvideo.data.flow.compute_flow` runs on the same clips:

- DIS with the presets ``ultrafast``, ``fast``, ``medium``;
- Farneback (OpenCV sample parameters);
- TV-L1 (TSN's method), when ``opencv-contrib-python-headless`` is installed;
- ``zero``: predicting no motion at all, the naive floor every method must beat.

Speed is reported two ways: ``pairs/s wall``, elapsed time of one process with OpenCV's
default threads (2 on a 2-core machine); and ``pairs/s/core``, CPU time with OpenCV
limited to 1 thread, which a busy shared machine does not inflate. ``precompute_flow``
runs one single-threaded process per core, so ``2-core`` = 2 x ``pairs/s/core`` is the
throughput of ``attnvideo-flow --workers 2`` on 2 cores. EPE is the mean Euclidean
distance to the true flow over all pixels and over moving pixels (true motion > 0.5 px).

Run::

    python benchmarks/bench_flow.py                  # about a minute on 2 CPU cores
    python benchmarks/bench_flow.py --quick          # seconds (small frames, 2 clips)
    /tmp/cvcontrib/bin/python benchmarks/bench_flow.py   # with TV-L1, see docs/benchmarks.md

It prints a Markdown table and writes JSON (machine, versions, commit, every measurement)
to ``benchmarks/results/bench_flow.json``. ``bench_data.py`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from _common import commit, machine_line

from attnvideo.data.flow import DEFAULT_DIS_PRESET, compute_flow
from attnvideo.data.synthetic import SyntheticConfig, render_action

ROOT = Path(__file__).resolve().parents[1]
TARGET_PAIRS_PER_S = 100.0  # default method, 2 cores
TARGET_EPE_RATIO = 1.5  # default method's EPE at most 1.5x TV-L1's


@dataclass
class Row:
    """One method's measurements."""

    method: str
    preset: str | None
    pairs: int
    pairs_per_s_wall: float
    pairs_per_s_core: float
    epe_all: float
    epe_moving: float

    @property
    def name(self) -> str:
        return self.method if self.preset is None else f"{self.method} {self.preset}"

    @property
    def pairs_per_s_2core(self) -> float:
        return 2.0 * self.pairs_per_s_core


def make_clips(size: tuple[int, int], clips: int, frames: int, seed: int = 0):
    """Rendered clips (frames, true flow) of several classes, with distractors and camera."""
    cfg = SyntheticConfig(
        num_classes=max(2, min(clips, 16)),
        num_frames=frames,
        size=size,
        camera_motion=1.0,
        distractors=2,
        noise=2.0,
        seed=seed,
    )
    return [render_action(k % cfg.num_classes, cfg, index=k) for k in range(clips)]


def _epe(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    err = np.hypot(pred[:, 0] - true[:, 0], pred[:, 1] - true[:, 1])
    moving = np.hypot(true[:, 0], true[:, 1]) > 0.5
    return float(err.mean()), float(err[moving].mean())


def _time(fn, clock, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def measure(method: str, preset: str | None, clips, repeats: int) -> Row:
    """Time and score one method on the clips (best of ``repeats`` runs)."""
    pairs = sum(len(c.flow) for c in clips)
    if method == "zero":
        preds = [np.zeros_like(c.flow) for c in clips]
        wall = core = float("nan")
    else:

        def run():
            return [compute_flow(c.frames, method, preset=preset) for c in clips]

        start = time.perf_counter()
        preds = run()  # also the warm-up
        first = time.perf_counter() - start
        repeats = repeats if first < 5.0 else 0  # a slow method: its first run is timed
        threads = cv2.getNumThreads()
        try:
            wall = pairs / min([first] + [_time(run, time.perf_counter, 1) for _ in range(repeats)])
            cv2.setNumThreads(1)
            core = pairs / _time(run, time.process_time, max(1, repeats))
        finally:
            cv2.setNumThreads(threads)
    errors = np.array([_epe(p, c.flow) for p, c in zip(preds, clips, strict=True)])
    weights = np.array([len(c.flow) for c in clips], np.float64)
    epe_all, epe_moving = (errors * weights[:, None]).sum(0) / weights.sum()
    return Row(method, preset, pairs, wall, core, float(epe_all), float(epe_moving))


def _fmt(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2f}"


def table(rows: Sequence[Row]) -> str:
    """The Markdown table of the rows."""
    lines = [
        "| method | pairs/s wall | pairs/s/core | 2-core (2 workers) | EPE all px | "
        "EPE moving px |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        speed = (
            ["n/a"] * 3
            if r.method == "zero"
            else [_fmt(r.pairs_per_s_wall), _fmt(r.pairs_per_s_core), _fmt(r.pairs_per_s_2core)]
        )
        lines.append(f"| {r.name} | {' | '.join(speed)} | {r.epe_all:.2f} | {r.epe_moving:.2f} |")
    return "\n".join(lines)


def verdict(rows: Sequence[Row]) -> str:
    """Whether the default method meets the targets (speed, EPE vs TV-L1)."""
    default = next(r for r in rows if r.method == "dis" and r.preset == DEFAULT_DIS_PRESET)
    tvl1 = next((r for r in rows if r.method == "tvl1"), None)
    speed_ok = default.pairs_per_s_2core >= TARGET_PAIRS_PER_S
    text = (
        f"default (dis {DEFAULT_DIS_PRESET}): {default.pairs_per_s_2core:.0f} pairs/s on 2 "
        f"cores (target >= {TARGET_PAIRS_PER_S:.0f}: {'met' if speed_ok else 'NOT met'})"
    )
    if tvl1 is None:
        return text + "; TV-L1 not installed, EPE target not checked"
    ratio = default.epe_moving / tvl1.epe_moving
    ok = ratio <= TARGET_EPE_RATIO
    return text + (
        f"; EPE (moving) {ratio:.2f}x TV-L1's (target <= {TARGET_EPE_RATIO}: "
        f"{'met' if ok else 'NOT met'})"
    )


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=340)
    p.add_argument("--clips", type=int, default=4, help="clips (one per class)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the best is kept")
    p.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_flow.json"))
    p.add_argument("--show", metavar="JSON", help="print the table of a saved run and exit")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; print the table; write and return the JSON record."""
    args = get_args_parser().parse_args(argv)
    if args.show:
        record = json.loads(Path(args.show).read_text())
        fields = {f for f in Row.__dataclass_fields__}
        rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in record["rows"]]
        print(f"{record['date']}, {record['machine']}, commit {record['commit']}")
        print(table(rows))
        print(verdict(rows))
        return record
    if args.quick:
        args.height, args.width, args.clips, args.frames, args.repeats = 64, 96, 2, 6, 1
    clips = make_clips((args.height, args.width), args.clips, args.frames)
    methods: list[tuple[str, str | None]] = [
        ("zero", None),
        ("dis", "ultrafast"),
        ("dis", "fast"),
        ("dis", "medium"),
        ("farneback", None),
    ]
    if hasattr(cv2, "optflow"):
        methods.append(("tvl1", None))
    rows = [measure(m, p, clips, args.repeats) for m, p in methods]
    record = {
        "benchmark": "bench_flow",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_line(),
        "commit": commit(),
        "versions": {
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "setup": {
            "size_hw": [args.height, args.width],
            "clips": args.clips,
            "frames": args.frames,
            "repeats": args.repeats,
            "opencv_threads_wall": cv2.getNumThreads(),
        },
        "rows": [asdict(r) | {"pairs_per_s_2core": r.pairs_per_s_2core} for r in rows],
        "verdict": verdict(rows),
    }
    print(
        f"Optical flow at {args.width}x{args.height}, {rows[0].pairs} frame pairs; "
        f"{record['machine']}; OpenCV {cv2.__version__}; commit {record['commit']}"
    )
    print(table(rows))
    print(record["verdict"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
