"""Throughput of STA-CNN against TSN over timm backbones: what the attention costs.

For each backbone config it builds the four ablations on the same backbone weights,

- ``tsn``: average consensus, no spatial attention (TSN);
- ``+ta``: temporal segment attention only;
- ``+sa``: flow-guided spatial attention (+ its aux GAP loss) only;
- ``stacnn``: both (full STA-CNN, RGB stream guided by raw flow),

and times, with ``torch.utils.benchmark`` (``Timer``, merged measurements, ``Compare``),

- ``inference``: ``model.eval()`` forward under ``torch.inference_mode()``;
- ``train``: forward with a target, backward of the loss, SGD step, ``zero_grad``,

eager and (optionally) ``torch.compile``-d. Every variant gets the same inputs, RGB
``(B, T, 3, S, S)`` and flow ``(B, T, 2L, S, S)``; the variants without spatial attention
simply ignore the flow. To make the overhead ratio robust to other load on the machine,
the variants are timed **interleaved**, round after round, and the ratio
``stacnn / tsn`` is taken between medians of the same run.

Run::

    python benchmarks/bench_models.py                 # resnet50 @ 224, T=8 (headline) + quick
    python benchmarks/bench_models.py --quick         # the small config only (a minute)
    python benchmarks/bench_models.py --compile       # also torch.compile (inductor)
    python benchmarks/bench_models.py --configs resnet50:224:8:1 vit_small_patch16_224:224:8:1
    python benchmarks/bench_models.py --channels-last --amp bf16 --device cuda

A config is ``backbone:size:segments:batch``. It prints the ``Compare`` table and a
markdown summary (clips/s and overhead over TSN), and writes JSON (machine, torch
version, commit, every measurement) to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import commit, machine

from attnvideo.models import STACNN, create_stacnn

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 0.05  # full STA-CNN at most 5 % more train-step time than TSN (resnet50)
VARIANTS = {
    "tsn": dict(temporal_attention=False, spatial_attention=False),
    "+ta": dict(temporal_attention=True, spatial_attention=False),
    "+sa": dict(temporal_attention=False, spatial_attention=True),
    "stacnn": dict(temporal_attention=True, spatial_attention=True),
}
CLOCKS = {"wall": time.perf_counter, "process": time.process_time}
HEADLINE = "resnet50:224:8:1"
QUICK = "resnet18:112:8:2"


@dataclass
class Row:
    """One measured (config, variant, mode, pass)."""

    config: str
    variant: str
    mode: str  # eager | compiled
    pass_: str  # inference | train
    median_ms: float
    iqr_ms: float
    best_ms: float
    runs: int
    clips_per_s: float
    gflops_per_clip: float | None = None  # convolutions and matmuls (FlopCounterMode), eager


@dataclass
class Config:
    """``backbone:size:segments:batch``."""

    backbone: str
    size: int
    segments: int
    batch: int

    @classmethod
    def parse(cls, text: str) -> Config:
        name, size, segments, batch = text.split(":")
        return cls(name, int(size), int(segments), int(batch))

    def __str__(self) -> str:
        return f"{self.backbone} {self.size}px T={self.segments} B={self.batch}"


def build(config: Config, args: argparse.Namespace) -> dict[str, STACNN]:
    """The four ablations, sharing the backbone's initial weights and the classifier."""
    models = {}
    for variant, flags in VARIANTS.items():
        torch.manual_seed(0)
        model = create_stacnn(
            config.backbone, args.num_classes, num_segments=config.segments, **flags
        )
        model = model.to(args.device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        models[variant] = model
    return models


def make_step(
    model: STACNN, inputs: dict, pass_: str, mode: str, amp: contextlib.AbstractContextManager
):
    """A zero-argument callable running one inference forward or one training step."""
    fn = torch.compile(model) if mode == "compiled" else model
    if pass_ == "inference":
        model.eval()

        def infer():
            with torch.inference_mode(), amp():
                return fn(inputs["rgb"], motion=inputs["flow"]).logits

        return infer
    model.train()
    optimizer = torch.optim.SGD(model.param_groups(0.001, 5e-4), lr=0.001, momentum=0.9)

    def train():
        with amp():
            loss = fn(inputs["rgb"], motion=inputs["flow"], target=inputs["target"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return train


def timer(step, config: Config, variant: str, mode: str, pass_: str, clock) -> benchmark.Timer:
    return benchmark.Timer(
        stmt="step()",
        globals={"step": step},
        timer=clock,
        label=str(config),
        sub_label=f"{variant} {mode}",
        description=pass_,
        num_threads=torch.get_num_threads(),
    )


def run_config(config: Config, args: argparse.Namespace, modes: list[str]):
    """Time the four variants of one config, interleaved round by round."""
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    shape = (config.batch, config.segments)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    def frames(channels: int) -> torch.Tensor:
        """(B, T, C, S, S) whose (B*T, C, S, S) view has the chosen memory format."""
        x = torch.randn(config.batch * config.segments, channels, config.size, config.size,
                        generator=gen)  # fmt: skip
        return x.to(device).contiguous(memory_format=fmt).view(*shape, *x.shape[1:])

    inputs = {
        "rgb": frames(3),
        "flow": frames(2 * args.fields),
        "target": torch.randint(0, args.num_classes, (config.batch,), generator=gen).to(device),
    }
    amp = (
        (lambda: torch.autocast(device.type, dtype=getattr(torch, args.amp)))
        if args.amp != "off"
        else contextlib.nullcontext
    )
    models = build(config, args)
    rows, measurements = [], []
    for mode in modes:
        for pass_ in args.passes:
            torch._dynamo.reset()
            t0 = time.perf_counter()
            steps = {v: make_step(m, inputs, pass_, mode, amp) for v, m in models.items()}
            flops = {}
            for variant, step in steps.items():  # warm up (and compile)
                for _ in range(args.warmup):
                    step()
                if mode == "eager":
                    with FlopCounterMode(display=False) as counter:
                        step()
                    flops[variant] = counter.get_total_flops() / 1e9 / config.batch
            if device.type == "cuda":
                torch.cuda.synchronize()
            print(f"{config} {mode} {pass_}: warm-up {time.perf_counter() - t0:.0f} s", flush=True)
            clock = CLOCKS[args.clock]
            start = clock()
            steps["tsn"]()
            number = max(1, math.ceil(args.min_time / max(clock() - start, 1e-6)))
            per_variant: dict[str, list[benchmark.Measurement]] = {v: [] for v in steps}
            for _ in range(args.rounds):  # interleaved: every variant sees the same load
                for variant, step in steps.items():
                    t = timer(step, config, variant, mode, pass_, clock)
                    per_variant[variant].append(t.timeit(number))
            for variant, ms in per_variant.items():
                merged = benchmark.Measurement.merge(ms)[0]
                times = [m.median for m in ms]
                median = statistics.median(times)
                measurements.append(merged)
                rows.append(Row(str(config), variant, mode, pass_, median * 1e3,
                                merged.iqr * 1e3, min(times) * 1e3, len(times),
                                config.batch / median, flops.get(variant)))  # fmt: skip
                print(f"  {variant:>7}: {median * 1e3:9.1f} ms (best {min(times) * 1e3:.1f})"
                      f"  {config.batch / median:7.2f} clips/s", flush=True)  # fmt: skip
    return rows, measurements


def summary(rows: list[Row], clock: str, threads: int) -> str:
    """Markdown: clips/s per variant and the overhead over TSN from the same run."""
    lines = [
        "| config | mode | pass | TSN | +TA | +SA | STA-CNN | STA-CNN / TSN (median) "
        "| STA-CNN / TSN (best) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    index = {(r.config, r.mode, r.pass_, r.variant): r for r in rows}
    for key in dict.fromkeys((r.config, r.mode, r.pass_) for r in rows):
        cells = [f"{index[(*key, v)].clips_per_s:.2f}" for v in VARIANTS]
        full, tsn = index[(*key, "stacnn")], index[(*key, "tsn")]
        ratios = [full.median_ms / tsn.median_ms, full.best_ms / tsn.best_ms]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{q:.3f} ({(q - 1) * 100:+.1f} %)" for q in ratios)
                     + " |")  # fmt: skip
    lines.append("")
    lines.append("| config | pass | TSN | +TA | +SA | STA-CNN | STA-CNN / TSN |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for key in dict.fromkeys((r.config, r.mode, r.pass_) for r in rows if r.mode == "eager"):
        flops = [index[(*key, v)].gflops_per_clip for v in VARIANTS]
        ratio = flops[-1] / flops[0]
        lines.append(f"| {key[0]} | {key[2]} | " + " | ".join(f"{f:.2f}" for f in flops)
                     + f" | {ratio:.4f} ({(ratio - 1) * 100:+.2f} %) |")  # fmt: skip
    lines.append("")
    lines.append(
        "First table: clips/s; second: GFLOPs per clip (convolutions and matmuls as counted "
        "by torch.utils.flop_counter, not elementwise ops; deterministic). "
        f"clips/s are medians over interleaved rounds (higher is better), clock: "
        f"{'process CPU time' if clock == 'process' else 'wall time'}, {threads} thread(s). "
        f"Ratios are STA-CNN time / TSN time (median, and fastest round)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=None, help="backbone:size:segments:batch")
    parser.add_argument("--quick", action="store_true", help=f"only the small config {QUICK}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--amp", default="off", choices=["off", "bfloat16", "float16"])
    parser.add_argument("--passes", nargs="+", default=["inference", "train"])
    parser.add_argument("--fields", type=int, default=5, help="stacked flow fields L")
    parser.add_argument("--num-classes", type=int, default=101)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per timing")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default=None,
        help="wall (perf_counter; default on GPU) or process CPU time (default on CPU: "
        "robust to other programs sharing the cores; use with --threads 1)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--output", type=Path, default=None, help="JSON path")
    args = parser.parse_args(argv)
    if args.clock is None:
        args.clock = "wall" if args.device.startswith("cuda") else "process"
    if args.threads is None and args.clock == "process":
        args.threads = 1  # idle OpenMP workers spin and would count as CPU time
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    texts = args.configs or ([QUICK] if args.quick else [HEADLINE, QUICK])
    modes = ["eager", "compiled"] if args.compile else ["eager"]

    rows, measurements = [], []
    for text in texts:
        r, m = run_config(Config.parse(text), args, modes)
        rows += r
        measurements += m
    compare = benchmark.Compare(measurements)
    compare.trim_significant_figures()
    compare.print()
    table = summary(rows, args.clock, torch.get_num_threads())
    print(table)
    verdicts = []
    for r in rows:
        if r.variant == "stacnn" and r.pass_ == "train" and r.config.startswith("resnet50 "):
            tsn = next(t for t in rows if (t.config, t.mode, t.pass_, t.variant)
                       == (r.config, r.mode, r.pass_, "tsn"))  # fmt: skip
            overhead = r.median_ms / tsn.median_ms - 1
            met = overhead <= TARGET_OVERHEAD
            verdicts.append({"config": r.config, "mode": r.mode, "overhead": overhead, "met": met})
            print(f"target <= {TARGET_OVERHEAD:.0%} extra train-step time on {r.config} "
                  f"({r.mode}): {'met' if met else 'NOT met'} ({overhead:+.1%})")  # fmt: skip

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.output or ROOT / "benchmarks" / "results" / f"models-{args.device}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench_models",
        "date": stamp,
        "machine": machine(),
        "commit": commit(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "target_overhead": TARGET_OVERHEAD,
        "verdicts": verdicts,
        "rows": [asdict(r) for r in rows],
        "summary_markdown": table,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
