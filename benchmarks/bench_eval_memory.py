"""Peak memory of the TSN test protocol, in chunks of frames against one pass.

TSN tests every video on 25 snippets x 10 crops: 250 frames per stream and video. The
training script folds the crops into the batch and the model (``chunk_frames``) runs the
per-frame part (backbone, spatial attention, GAP, classifier) over at most N frames at a
time. This script measures the peak resident memory (``ru_maxrss``) of one two-stream
forward pass under ``torch.inference_mode()`` on the CPU, each configuration in a fresh
process (the peak is a high-water mark):

- the full protocol (``--crops`` x ``--segments`` views of one video) with every
  ``--chunks`` value, 0 being one pass (the naive baseline);
- one pass over fewer views (``--scaling-crops``), for a straight-line fit of peak memory
  against frames, extrapolated to a test batch of ``--extrapolate-videos`` videos (the
  ``ucf101`` preset used to put 128 videos in one forward pass).

Each configuration builds the same model (seeded, ``pretrained=False``) and the same
random inputs (float32, what the device holds after normalisation; the uint8 batch the
loader hands over is not included), so their fused logits are compared too.

Run::

    python benchmarks/bench_eval_memory.py              # ResNet-50 @ 224, 25 x 10, L = 5
                                                        # (about 15 min on 2 busy CPU cores)
    python benchmarks/bench_eval_memory.py --chunks 64 0 --scaling-crops   # no fit
    python benchmarks/bench_eval_memory.py --backbone test_resnet --size 64 --segments 3 \\
        --crops 2 --chunks 4 0 --scaling-crops 1                          # a smoke run

It prints a markdown table and writes JSON (machine, torch version, commit, every row)
to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import commit, machine

from attnvideo.models import create_stacnn

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20


def current_rss_mb() -> float | None:
    """The resident set size now (Linux ``/proc``; None elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MiB
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss``: KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MiB if sys.platform == "darwin" else peak * 1024 / MiB


def measure(spec: dict) -> dict:
    """One forward pass of one configuration (in this process); its memory and logits."""
    torch.manual_seed(0)
    model = create_stacnn(
        spec["backbone"],
        spec["num_classes"],
        modality="two_stream",
        num_segments=3,
        new_length=spec["new_length"],
        pretrained=False,
    ).eval()
    views, t, size = spec["views"], spec["segments"], spec["size"]
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randn(views, t, 3, size, size, generator=gen)
    flow = torch.randn(views, t, 2 * spec["new_length"], size, size, generator=gen)
    before, setup_peak = current_rss_mb(), peak_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = model(rgb, flow, chunk_frames=spec["chunk"] or None)
    return {
        "before_mb": before,
        "setup_peak_mb": setup_peak,
        "peak_mb": peak_rss_mb(),
        "forward_s": time.perf_counter() - start,
        "forward_cpu_s": time.process_time() - cpu,
        "threads": torch.get_num_threads(),
        "logits": out.logits.mean(0).tolist(),  # the video's score: mean over the views
    }


def run_child(spec: dict) -> dict:
    """:func:`measure` in a fresh process (its own peak), returned as a dict."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench_eval_memory: {spec} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b x``; returns ``(a, b)``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


def summary(rows: list[dict], fit: dict | None, args: argparse.Namespace) -> str:
    """A markdown table of the rows and the extrapolation."""
    lines = [
        f"{args.backbone} two-stream, {args.size} x {args.size}, L = {args.new_length}, "
        f"float32 inputs, torch.inference_mode(), CPU, one process per row",
        "",
        "| views (crops x segments) | frames per stream | chunk_frames | RSS before forward "
        "| peak RSS | forward | max abs logit diff vs one pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        chunk = "one pass" if not r["chunk"] else str(r["chunk"])
        diff = "" if r["logit_diff"] is None else f"{r['logit_diff']:.1e}"
        before = "n/a" if r["before_mb"] is None else f"{r['before_mb']:,.0f} MiB"
        lines.append(
            f"| {r['crops']} x {r['segments']} | {r['frames']} | {chunk} | {before} "
            f"| {r['peak_mb']:,.0f} MiB | {r['forward_s']:.1f} s | {diff} |"
        )
    if fit is not None:
        lines += [
            "",
            f"One pass, fitted over {fit['points']} rows: peak = {fit['intercept_mb']:,.0f} MiB "
            f"+ {fit['mb_per_frame']:.2f} MiB x frames. A test batch of {fit['videos']} videos "
            f"({fit['frames']:,} frames per stream) in one pass: about "
            f"{fit['predicted_gb']:,.0f} GiB (its float32 inputs alone: "
            f"{fit['inputs_gb']:,.1f} GiB, of which flow {fit['flow_inputs_gb']:,.1f} GiB).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet50", help="timm model (pretrained=False)")
    parser.add_argument("--size", type=int, default=224, help="crop side in pixels")
    parser.add_argument("--segments", type=int, default=25, help="test segments T")
    parser.add_argument("--crops", type=int, default=10, help="test crops per video")
    parser.add_argument("--new-length", type=int, default=5, help="stacked flow fields L")
    parser.add_argument("--num-classes", type=int, default=101)
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[64, 16, 0],
        help="chunk_frames values for the full protocol (0 = one pass)",
    )  # fmt: skip
    parser.add_argument(
        "--scaling-crops", type=int, nargs="*", default=[1, 2],
        help="one pass over this many crops too, for the fit (none: no fit)",
    )  # fmt: skip
    parser.add_argument("--extrapolate-videos", type=int, default=128)
    parser.add_argument("--output", type=Path, default=None, help="JSON path")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(json.loads(args.child))))
        return
    for name in ("size", "segments", "crops", "new_length", "num_classes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive int")
    if any(c < 0 for c in args.chunks) or any(c < 1 for c in args.scaling_crops):
        parser.error("--chunks: expected ints >= 0; --scaling-crops: positive ints")

    code = commit()  # before the runs: HEAD may move while they take minutes
    base = dict(backbone=args.backbone, num_classes=args.num_classes, segments=args.segments,
                size=args.size, new_length=args.new_length)  # fmt: skip
    plan = [(args.crops, c) for c in args.chunks]
    plan += [(c, 0) for c in args.scaling_crops if c != args.crops or 0 not in args.chunks]
    rows = []
    for crops, chunk in plan:
        result = run_child({**base, "views": crops, "chunk": chunk})
        row = {"crops": crops, "segments": args.segments, "frames": crops * args.segments,
               "chunk": chunk, **result}  # fmt: skip
        rows.append(row)
        print(f"{crops} crops x {args.segments} segments, chunk_frames {chunk or 'one pass'}: "
              f"peak {row['peak_mb']:,.0f} MiB ({row['forward_s']:.1f} s)", flush=True)  # fmt: skip
    reference = next((r for r in rows if r["crops"] == args.crops and not r["chunk"]), None)
    for r in rows:
        same = reference is not None and r["crops"] == args.crops
        r["logit_diff"] = (
            max(abs(a - b) for a, b in zip(r["logits"], reference["logits"], strict=True))
            if same
            else None
        )
    rows.sort(key=lambda r: (-r["frames"], r["chunk"] == 0, r["chunk"]))

    fit = None
    one_pass = [r for r in rows if not r["chunk"] or r["chunk"] >= r["frames"]]
    if len({r["frames"] for r in one_pass}) >= 2:
        a, b = fit_line([r["frames"] for r in one_pass], [r["peak_mb"] for r in one_pass])
        frames = args.extrapolate_videos * args.crops * args.segments
        pixels = frames * args.size**2 * 4 / 2**30
        fit = {
            "points": len(one_pass), "intercept_mb": a, "mb_per_frame": b,
            "videos": args.extrapolate_videos, "frames": frames,
            "predicted_gb": (a + b * frames) / 1024,
            "inputs_gb": pixels * (3 + 2 * args.new_length),
            "flow_inputs_gb": pixels * 2 * args.new_length,
        }  # fmt: skip
    table = summary(rows, fit, args)
    print(table)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.output or ROOT / "benchmarks" / "results" / f"eval_memory-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench_eval_memory",
        "date": stamp,
        "machine": machine(),
        "commit": code,
        "args": {k: v if isinstance(v, int | list) else str(v) for k, v in vars(args).items()},
        "rows": rows,
        "fit": fit,
        "summary_markdown": table,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
