"""Benchmark the three STA-CNN layers against their slow references and a memory floor.

For each layer and shape it times, with ``torch.utils.benchmark`` (``Timer`` +
``blocked_autorange``, summarised by ``Compare``):

- ``module``: the whole layer (``nn.Module.forward``), learned convolutions included;
- ``attention``: the attention-only work, i.e. the functional math without the learned
  convolution / classifier (spatial: motion map from raw flow + soft union + residual
  re-weighting, given a learned map; temporal: masked softmax + weighted consensus,
  given the scores; aux: region-weighted GAP);
- ``copy``: one copy of the tensors the attention reads into preallocated buffers
  (``out.copy_(x)``: the memory-traffic floor, without allocation or page faults), eager
  and compiled. Each mode is judged against the copy in that mode: a compiled function
  pays a fixed entry cost on every call (guards, the AOTAutograd wrapper; 7 to 15
  microseconds on a 2-core CPU), which at the temporal layer's 0.2 MB input is several
  times the eager copy itself, so no compiled function, a compiled copy included, could
  be within 3x of the eager copy there. The summary shows both ratios;
- ``clone``: the same copy into fresh tensors (``x.clone()``), allocation included, as
  every out-of-place op (the attention's own output too) pays it. With glibc's allocator a
  fresh tensor over 32 MB is mapped from the OS on every call and faulted in 4 KB pages,
  which can cost more than the copy itself (PyTorch's ``THP_MEM_ALLOC_ENABLE=1`` makes
  such tensors use transparent huge pages);
- ``reference``: the plainly written loops of :mod:`attnvideo.reference`, timed once on
  one sample and scaled by the batch size (they are far too slow for the full shape).

each forward and forward+backward, eager and ``torch.compile`` (inductor). Shapes are
the realistic ones: B = 8 videos, T = 8 segments, feature maps (2048, 7, 7) (ResNet-50 at
224) and (768, 14, 14) (ViT-B/16 at 224), raw flow of L = 5 fields at 224 x 224.

Run::

    python benchmarks/bench_layers.py            # full run (about 6 min on 2 CPU cores)
    python benchmarks/bench_layers.py --quick    # small shapes, eager only, seconds
    python benchmarks/bench_layers.py --device cuda
    python benchmarks/bench_layers.py --clock thread   # CPU time of 1 thread: for a busy machine
    python benchmarks/bench_layers.py --layers temporal --shapes 768x14x14   # one cell

It prints the ``Compare`` table and a summary with the attention / copy ratio, and writes
JSON (machine, torch version, commit, every measurement) to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from _common import commit, machine
from torch.utils import benchmark

from attnvideo import functional as AF
from attnvideo import reference as R
from attnvideo.layers import FlowGuidedSpatialAttention, GAPAuxLoss, TemporalSegmentAttention

ROOT = Path(__file__).resolve().parents[1]
ALLOCATOR_ENV = (
    "THP_MEM_ALLOC_ENABLE", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD",
)  # fmt: skip
# --allocator: how CPU tensors get their memory. Both the copy floor and the attention
# run in the same process, so each ratio compares like with like.
# - default: the environment as it is (glibc: a fresh tensor over 32 MB is mapped from the
#   OS on every allocation and faulted in 4 KB pages, 1 to 2 us each);
# - reuse: glibc keeps freed memory and hands it out again (no mmap, no trimming), as a
#   caching allocator does (PyTorch's on CUDA; jemalloc or tcmalloc on the CPU): no page
#   faults, so the times are the work itself;
# - thp: PyTorch's THP_MEM_ALLOC_ENABLE=1, transparent huge pages (512x fewer faults, the
#   kernel still zeroes every fresh page).
ALLOCATORS: dict[str, dict[str, str]] = {
    "default": {},
    "reuse": {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**32)},
    "thp": {"THP_MEM_ALLOC_ENABLE": "1"},
}
LAYERS = ("spatial", "temporal", "aux")
SHAPES = [(2048, 7, 7), (768, 14, 14)]  # ResNet-50 and ViT-B/16 at 224
TARGET_RATIO = 3.0  # attention-only work within 3x of one copy of its input
# "thread": CPU time of the calling thread. With one intra-op thread every kernel runs on
# that thread, so this is the layer's own cost even when other jobs share the machine
# (they inflate wall time, not this thread's CPU time). "wall": ordinary elapsed time.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "thread": time.thread_time}


@dataclass
class Row:
    """One measurement."""

    layer: str
    shape: str
    variant: str  # module | attention | copy | clone | reference
    mode: str  # eager | compiled | loops (reference)
    pass_: str  # fwd | fwd+bwd
    median_ms: float
    iqr_ms: float
    best_ms: float  # fastest block: the least disturbed by other load on the machine
    runs: int
    note: str = ""


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    """A callable to time: ``inputs()`` gives fresh leaves, ``fn(*inputs)`` the outputs."""

    layer: str
    variant: str
    fn: Callable[..., torch.Tensor]
    inputs: Callable[[], tuple]
    backward: bool = True


def _leaf(t: torch.Tensor, grad: bool) -> torch.Tensor:
    return t.detach().clone().requires_grad_(grad)


def _chw(text: str) -> tuple[int, int, int]:
    """Parse ``--shapes`` entries such as ``768x14x14``."""
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        msg = f"expected CxHxW such as 768x14x14, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return c, h, w


def build_cases(
    batch: int, segments: int, chw: tuple[int, int, int], flow_hw: tuple[int, int], fields: int,
    num_classes: int, device: torch.device, dtype: torch.dtype,
) -> list[Case]:  # fmt: skip
    """Every (layer, variant) to time at one shape."""
    c, h, w = chw
    n = batch * segments
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dtype)

    x = rand(n, c, h, w)
    flow = rand(n, 2 * fields, *flow_hw, scale=3.0)
    learned = torch.rand(n, 1, h, w, generator=g).to(device=device, dtype=dtype)
    feats = rand(batch, segments, c)
    scores = rand(batch, segments)
    target = torch.randint(0, num_classes, (batch,), generator=g).to(device)
    factory = {"device": device, "dtype": dtype}
    spatial = FlowGuidedSpatialAttention(c, **factory).train()
    temporal = TemporalSegmentAttention(c, **factory).train()
    aux = GAPAuxLoss(c, num_classes, **factory).train()
    region = torch.rand(n, 1, h, w, generator=g).to(device=device, dtype=dtype)

    def spatial_attention_only(x, flow, learned):
        motion = AF.flow_saliency(flow, (h, w))
        return AF.residual_attention(x, AF.soft_union(motion, learned))

    def copy_into(buffers):
        def copy(*tensors):
            return tuple(b.copy_(t) for b, t in zip(buffers, tensors, strict=True))

        return copy

    def clone(*tensors):
        return tuple(t.clone() for t in tensors)

    def temporal_attention_only(scores, values):
        return AF.weighted_consensus(values, AF.masked_softmax(scores))

    return [
        Case("spatial", "module", lambda x, f: spatial(x, f).features,
             lambda: (_leaf(x, True), flow)),
        Case("spatial", "attention", spatial_attention_only,
             lambda: (_leaf(x, True), flow, _leaf(learned, True))),
        Case("spatial", "copy", copy_into([torch.empty_like(x), torch.empty_like(flow)]),
             lambda: (x, flow), backward=False),
        Case("spatial", "clone", clone, lambda: (x, flow), backward=False),
        Case("spatial", "reference",
             lambda x, f, a: R.residual_attention(x, R.soft_union(R.flow_saliency(f, (h, w)), a)),
             lambda: (x[:1], flow[:1], learned[:1]), backward=False),
        Case("temporal", "module", lambda f: temporal(f).pooled, lambda: (_leaf(feats, True),)),
        Case("temporal", "attention", temporal_attention_only,
             lambda: (_leaf(scores, True), _leaf(feats, True))),
        Case("temporal", "copy", copy_into([torch.empty_like(feats)]), lambda: (feats,),
             backward=False),
        Case("temporal", "clone", clone, lambda: (feats,), backward=False),
        Case("temporal", "reference",
             lambda s, f: R.weighted_consensus(f, R.masked_softmax(s)),
             lambda: (scores[:1].float(), feats[:1]), backward=False),
        Case("aux", "module", lambda x, r: aux(x, target, segments, r).loss,
             lambda: (_leaf(x, True), _leaf(region, True))),
        Case("aux", "attention", AF.region_pool, lambda: (_leaf(x, True), _leaf(region, True))),
        Case("aux", "copy", copy_into([torch.empty_like(x), torch.empty_like(region)]),
             lambda: (x, region), backward=False),
        Case("aux", "clone", clone, lambda: (x, region), backward=False),
        Case("aux", "reference", R.region_pool, lambda: (x[:1], region[:1]), backward=False),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- timing


def _as_tensors(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, tuple) else [out]


def make_step(fn: Callable, inputs: tuple, backward: bool) -> Callable[[], object]:
    """A zero-argument callable running fn (and, with ``backward``, its backward pass)."""
    if not backward:
        return lambda: fn(*inputs)
    outs = _as_tensors(fn(*inputs))
    grads = [torch.randn_like(o) for o in outs]
    leaves = [t for t in inputs if torch.is_tensor(t) and t.requires_grad]

    def step():
        result = _as_tensors(fn(*inputs))
        torch.autograd.backward(result, grads)
        for t in leaves:
            t.grad = None

    return step


def time_it(
    step: Callable, label: str, sub_label: str, description: str, min_run_time: float,
    clock: Callable[[], float] = time.perf_counter,
):  # fmt: skip
    """Warm up, then ``blocked_autorange`` with the given clock."""
    step()
    step()
    timer = benchmark.Timer(
        stmt="step()",
        globals={"step": step},
        label=label,
        sub_label=sub_label,
        description=description,
        num_threads=torch.get_num_threads(),
        timer=clock,
    )
    return timer.blocked_autorange(min_run_time=min_run_time)


def run(args: argparse.Namespace) -> tuple[list[Row], list[benchmark.Measurement]]:
    """Time every case at every shape."""
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    shapes = args.shapes or ([(64, 4, 4), (32, 8, 8)] if args.quick else SHAPES)
    flow_hw = (32, 32) if args.quick else (224, 224)
    batch, segments = (2, 4) if args.quick else (8, 8)
    modes = ["eager"] if args.quick or args.no_compile else ["eager", "compiled"]
    rows: list[Row] = []
    measurements: list[benchmark.Measurement] = []
    for chw in shapes:
        print(f"B={batch} T={segments} (C, H, W)={chw} flow 2L={2 * args.fields} at {flow_hw}")
        cases = build_cases(batch, segments, chw, flow_hw, args.fields, 101, device, dtype)
        for case in cases:
            if case.layer not in args.layers:
                continue
            label = f"{case.layer} {chw}"
            if case.variant == "reference":
                if args.skip_reference:
                    continue
                inputs = case.inputs()
                clock = CLOCKS[args.clock]
                start = clock()
                case.fn(*inputs)
                per_sample = (clock() - start) * 1e3
                scale = batch * segments if case.layer != "temporal" else batch
                rows.append(Row(case.layer, str(chw), "reference", "loops", "fwd",
                                per_sample * scale, 0.0, per_sample * scale, 1,
                                f"one sample timed once, x{scale} (extrapolated)"))  # fmt: skip
                print(f"{label:>24} reference: {per_sample:.1f} ms per sample", flush=True)
                continue
            for mode in modes if case.variant != "clone" else ["eager"]:
                fn = case.fn
                if mode == "compiled":
                    torch._dynamo.reset()
                    fn = torch.compile(case.fn, fullgraph=True)
                for pass_ in ["fwd", "fwd+bwd"] if case.backward else ["fwd"]:
                    step = make_step(fn, case.inputs(), pass_ == "fwd+bwd")
                    t0 = time.perf_counter()
                    m = time_it(step, label, f"{case.variant} {mode}", pass_,
                                args.min_run_time, CLOCKS[args.clock])  # fmt: skip
                    measurements.append(m)
                    rows.append(Row(case.layer, str(chw), case.variant, mode, pass_,
                                    m.median * 1e3, m.iqr * 1e3, min(m.times) * 1e3,
                                    len(m.times)))  # fmt: skip
                    print(f"{label:>24} {case.variant:>9} {mode:>8} {pass_:>7}: "
                          f"{m.median * 1e3:9.3f} ms  ({time.perf_counter() - t0:.0f} s)",
                          flush=True)  # fmt: skip
    return rows, measurements


def summary(rows: list[Row], stat: str = "median_ms") -> str:
    """A markdown table: one line per layer, shape and mode, with the copy ratios.

    ``stat`` picks ``median_ms`` or ``best_ms`` (the fastest block, for a shared machine).
    "copy" is the copy in the line's own mode (the floor the target is judged against);
    "eager copy" and "clone" are the eager copies, for comparison.
    """
    index = {(r.layer, r.shape, r.variant, r.mode, r.pass_): getattr(r, stat) for r in rows}
    lines = [
        "| layer | feature map | mode | module fwd | module fwd+bwd | attention fwd "
        "| attention fwd+bwd | copy | eager copy | clone | attention fwd / copy "
        "| attention fwd / eager copy | attention fwd / clone | reference fwd (loops) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fmt = lambda v: "n/a" if v is None else (f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms")  # noqa: E731
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "n/a"  # noqa: E731
    for layer, shape in dict.fromkeys((r.layer, r.shape) for r in rows):
        eager_copy = index.get((layer, shape, "copy", "eager", "fwd"))
        cloned = index.get((layer, shape, "clone", "eager", "fwd"))
        ref = index.get((layer, shape, "reference", "loops", "fwd"))
        for mode in dict.fromkeys(r.mode for r in rows if r.mode != "loops"):
            get = lambda v, p: index.get((layer, shape, v, mode, p))  # noqa: B023, E731
            attn, copy = get("attention", "fwd"), get("copy", "fwd")
            lines.append(
                f"| {layer} | {shape} | {mode} | {fmt(get('module', 'fwd'))} "
                f"| {fmt(get('module', 'fwd+bwd'))} | {fmt(attn)} "
                f"| {fmt(get('attention', 'fwd+bwd'))} | {fmt(copy)} | {fmt(eager_copy)} "
                f"| {fmt(cloned)} | {ratio(attn, copy)} | {ratio(attn, eager_copy)} "
                f"| {ratio(attn, cloned)} | {fmt(ref)} |"
            )
    return "\n".join(lines)


def verdicts(rows: list[Row], stat: str = "median_ms") -> dict[str, dict[str, float]]:
    """Attention-only forward over each floor, per ``"layer shape mode"``.

    Keys of the result: ``copy`` (the copy in the same mode: the target's floor),
    ``eager_copy`` and ``clone`` (the eager copies).
    """
    index = {(r.layer, r.shape, r.variant, r.mode, r.pass_): getattr(r, stat) for r in rows}
    out: dict[str, dict[str, float]] = {"copy": {}, "eager_copy": {}, "clone": {}}
    for r in rows:
        if r.variant != "attention" or r.pass_ != "fwd":
            continue
        attn, key = getattr(r, stat), f"{r.layer} {r.shape} {r.mode}"
        floors = {
            "copy": index[(r.layer, r.shape, "copy", r.mode, "fwd")],
            "eager_copy": index[(r.layer, r.shape, "copy", "eager", "fwd")],
            "clone": index[(r.layer, r.shape, "clone", "eager", "fwd")],
        }
        for name, floor in floors.items():
            out[name][key] = round(attn / floor, 3)
    return out


def _use_allocator(name: str, argv: list[str] | None) -> None:
    """Restart this script with the environment of ``--allocator name`` unless it has it.

    glibc reads its tunables when the process starts and PyTorch its huge-page switch at
    the first allocation, so setting them from inside this process would be too late.
    """
    wanted = ALLOCATORS[name]
    if all(os.environ.get(k) == v for k, v in wanted.items()):
        return
    env = {**os.environ, **wanted}
    args = sys.argv[1:] if argv is None else argv
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *args], env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, eager only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument(
        "--layers", nargs="+", default=list(LAYERS), choices=LAYERS, help="layers to time"
    )
    parser.add_argument(
        "--shapes", nargs="+", type=_chw, default=None, metavar="CxHxW",
        help="feature-map shapes (default: 2048x7x7 768x14x14)",
    )  # fmt: skip
    parser.add_argument("--fields", type=int, default=5, help="stacked flow fields L")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per timer")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--stat",
        default="median_ms",
        choices=["median_ms", "best_ms"],
        help="statistic of the summary table: median, or fastest block on a busy machine",
    )
    parser.add_argument("--skip-reference", action="store_true", help="skip the slow loops")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=list(CLOCKS),
        help="wall time, or the CPU time of the one benchmark thread (forces --threads 1; "
        "robust to other jobs on a shared machine)",
    )
    parser.add_argument(
        "--allocator",
        default="default",
        choices=list(ALLOCATORS),
        help="CPU memory: as the environment has it, glibc reusing freed memory (no page "
        "faults), or PyTorch's transparent huge pages; the script restarts itself with the "
        "environment variables set",
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON path")
    args = parser.parse_args(argv)
    _use_allocator(args.allocator, argv)
    if args.quick:
        args.min_run_time = min(args.min_run_time, 0.2)
    if args.clock == "thread":
        if args.device != "cpu":
            parser.error("--clock thread measures CPU time: use it with --device cpu")
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)

    env = {k: v for k, v in os.environ.items() if k in ALLOCATOR_ENV}
    print(f"allocator: {args.allocator} {env}, clock: {args.clock}, threads: "
          f"{torch.get_num_threads()}")  # fmt: skip
    rows, measurements = run(args)
    compare = benchmark.Compare(measurements)
    compare.trim_significant_figures()
    compare.print()
    table = summary(rows, args.stat)
    print(table)
    ratios = verdicts(rows, args.stat)
    met = {k: v <= TARGET_RATIO for k, v in ratios["copy"].items()}
    print(f"target: attention-only fwd <= {TARGET_RATIO}x one copy of its input, the copy "
          f"timed in the same mode ({args.stat})")  # fmt: skip
    print(f"  {'':>32}  vs copy  (vs eager copy, vs clone)")
    for key, r in ratios["copy"].items():
        print(
            f"  {key:>32}: {r:6.2f}x ({ratios['eager_copy'][key]:5.2f}x, "
            f"{ratios['clone'][key]:5.2f}x)  {'met' if met[key] else 'NOT met'}"
        )

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.output or ROOT / "benchmarks" / "results" / f"layers-{args.device}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "bench_layers",
        "date": stamp,
        "machine": machine(),
        "commit": commit(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "target_ratio": TARGET_RATIO,
        "attention_over_copy": ratios["copy"],
        "attention_over_eager_copy": ratios["eager_copy"],
        "attention_over_clone": ratios["clone"],
        "allocator": args.allocator,
        "env": env,
        "target_met": met,
        "rows": [asdict(r) for r in rows],
        "summary_markdown": table,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
