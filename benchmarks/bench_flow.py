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

A second table measures **storage** of the quantised DIS flow (:mod:`attnvideo.data.flow_store`
against today's uncompressed ``.npy`` cache and TSN's per-field JPEGs, quality 95, x and y
apart) on the real clips in ``tests/data/real`` (every frame decoded, resized to 340 x 256
with ``INTER_LINEAR``) and on the synthetic clips above: bytes per field pair (x and y,
file overhead included), the mean and max error the storage adds to the stored uint8 (in
pixels, 40/255 px per level), and CPU milliseconds (one thread) to encode and decode a
pair, and to read one random L = 5 snippet from its file. ``--store-alternatives`` adds
codecs the store does not offer (libx264 over the field sequence, WebP, AVIF) to the curve.

Run::

    python benchmarks/bench_flow.py                  # a few minutes on 2 CPU cores
    python benchmarks/bench_flow.py --quick          # seconds (small frames, 2 clips)
    python benchmarks/bench_flow.py --store-only --store-alternatives  # curve, ~7 min
    /tmp/cvcontrib/bin/python benchmarks/bench_flow.py   # with TV-L1, see docs/benchmarks.md

It prints Markdown tables and writes JSON (machine, versions, commit, every measurement)
to ``benchmarks/results/bench_flow.json``. ``bench_data.py`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from _common import commit, machine_line
from einops import rearrange

from attnvideo.data.flow import (
    DEFAULT_DIS_PRESET,
    _quantize,
    compute_flow,
    read_video,
    save_flow,
)
from attnvideo.data.flow_store import (
    DEFAULT_FLOW_CODEC,
    DEFAULT_FLOW_QUALITY,
    FLOW_STORE_SUFFIX,
    FlowStoreWriter,
    open_flow_store,
)
from attnvideo.data.synthetic import SyntheticConfig, render_action
from attnvideo.functional import FLOW_BOUND

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


# --- Storage: the flow store against today's .npy cache and TSN's per-field JPEGs --------

REAL_CLIPS = ROOT / "tests" / "data" / "real"
SNIPPET = 5  # TSN's L: a flow snippet is 5 consecutive fields
TARGET_STORE_BYTES = 8192  # per field pair (x and y), default setting, real clips
TARGET_STORE_ERROR_PX = 0.02  # mean error the storage adds to TSN's uint8
PX_PER_LEVEL = 2 * FLOW_BOUND / 255
STORE_SETTINGS: tuple[tuple[str, int], ...] = (
    ("jpeg", 90), ("jpeg", 92), ("jpeg", 93), ("jpeg", 94), ("jpeg", 95), ("jpeg", 97),
    ("png", 1), ("png", 6),
)  # fmt: skip


@dataclass
class StoreRow:
    """One storage setting's measurements on one set of clips (CPU time, one thread)."""

    clips: str
    setting: str
    pairs: int
    bytes_per_pair: float
    error_px: float
    max_error_px: float
    encode_ms: float
    decode_ms: float
    snippet_ms: float  # one random L = 5 snippet read from its file; nan: not a file format


def real_flows(folder: Path, size_hw: tuple[int, int], clips: int | None, frames: int | None):
    """Quantised DIS flow of the real clips, frames resized to ``size_hw`` (INTER_LINEAR)."""
    videos = sorted(p for p in folder.iterdir() if p.suffix in (".avi", ".mp4"))[:clips]
    height, width = size_hw
    flows = []
    for video in videos:
        rgb = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR)
                        for f in read_video(video)[:frames]])  # fmt: skip
        flows.append(_quantize(compute_flow(rgb)))
    return flows


def _store_run(codec: str, quality: int):
    """Write each clip to a store, read it all back, then read random snippets."""

    def run(flows, tmp: Path, starts):
        paths = [tmp / f"{k}{FLOW_STORE_SUFFIX}" for k in range(len(flows))]
        start = time.process_time()
        for path, flow in zip(paths, flows, strict=True):
            with FlowStoreWriter(path, codec=codec, quality=quality) as writer:
                for field in flow:
                    writer.append(field)
        encode = time.process_time() - start
        stores = [open_flow_store(p) for p in paths]
        start = time.process_time()
        decoded = [s[:] for s in stores]
        decode = time.process_time() - start
        start = time.process_time()
        for k, first in starts:
            stores[k][first : first + SNIPPET]
        snippet = (time.process_time() - start) / len(starts)
        return sum(p.stat().st_size for p in paths), decoded, encode, decode, snippet

    return run


def _npy_run(flows, tmp: Path, starts):
    """Today's cache: ``save_flow``'s uncompressed .npy, snippets through a memory map."""
    paths = [tmp / f"{k}.npy" for k in range(len(flows))]
    start = time.process_time()
    for path, flow in zip(paths, flows, strict=True):
        save_flow(path, flow)
    encode = time.process_time() - start
    start = time.process_time()
    decoded = [np.load(p) for p in paths]
    decode = time.process_time() - start
    start = time.process_time()
    for k, first in starts:
        np.array(np.load(paths[k], mmap_mode="r")[first : first + SNIPPET])
    snippet = (time.process_time() - start) / len(starts)
    return sum(p.stat().st_size for p in paths), decoded, encode, decode, snippet


def _image_run(encode_field, decode_field):
    """A per-field image codec, in memory (TSN's JPEGs; codecs the store does not offer)."""

    def run(flows, tmp: Path, starts):
        start = time.process_time()
        blobs = [[encode_field(field) for field in flow] for flow in flows]
        encode = time.process_time() - start
        start = time.process_time()
        decoded = [np.stack([decode_field(b, flow.shape[1:]) for b in clip])
                   for clip, flow in zip(blobs, flows, strict=True)]  # fmt: skip
        decode = time.process_time() - start
        size = sum(len(b) for clip in blobs for field in clip for b in field)
        return size, decoded, encode, decode, float("nan")

    return run


def _cv2_image(ext: str, params: list[int], stacked: bool):
    """Encode/decode a field with OpenCV: x and y apart (TSN), or x stacked over y."""

    def encode(field):
        if stacked:
            return [cv2.imencode(ext, rearrange(field, "c h w -> (c h) w"), params)[1]]
        return [cv2.imencode(ext, channel, params)[1] for channel in field]

    def decode(blobs, shape):
        images = [cv2.imdecode(b, cv2.IMREAD_GRAYSCALE) for b in blobs]
        return rearrange(images[0], "(c h) w -> c h w", c=2) if stacked else np.stack(images)

    return _image_run(encode, decode)


def _x264_run(options: dict[str, str], gop: int):
    """libx264 (PyAV) over the field sequence, x over y in one gray frame, a fresh encoder
    (closed GOP) every ``gop`` fields; a snippet decodes the GOPs that hold it."""
    import av

    def encode_clip(flow):
        frames, gops = rearrange(flow, "f c h w -> f (c h) w"), []
        for first in range(0, len(frames), gop):
            ctx = av.CodecContext.create("libx264", "w")
            ctx.width, ctx.height, ctx.pix_fmt = frames.shape[2], frames.shape[1], "gray"
            ctx.time_base, ctx.gop_size, ctx.thread_count = Fraction(1, 25), gop, 1
            ctx.options = dict(options)
            packets = []
            for i, image in enumerate(frames[first : first + gop]):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray")
                frame.pts = i
                packets += [bytes(p) for p in ctx.encode(frame)]
            gops.append(packets + [bytes(p) for p in ctx.encode(None)])
        return gops

    def decode_gop(packets, rows):
        ctx = av.CodecContext.create("h264", "r")
        ctx.thread_count = 1
        frames = [f for b in packets for f in ctx.decode(av.Packet(b))]
        frames += ctx.decode(None)  # flush
        # The decoder hands out yuv420p: the first rows are the luma plane, the fields.
        return np.stack([f.to_ndarray()[:rows] for f in frames])

    def decode_clip(gops, shape):
        images = np.concatenate([decode_gop(g, 2 * shape[2]) for g in gops])
        return rearrange(images, "f (c h) w -> f c h w", c=2)

    def run(flows, tmp: Path, starts):
        start = time.process_time()
        encoded = [encode_clip(flow) for flow in flows]
        encode = time.process_time() - start
        start = time.process_time()
        decoded = [decode_clip(g, f.shape) for g, f in zip(encoded, flows, strict=True)]
        decode = time.process_time() - start
        start = time.process_time()
        for k, first in starts:
            last = min(first + SNIPPET, len(flows[k])) - 1
            gops = encoded[k][first // gop : last // gop + 1]
            decode_clip(gops, flows[k].shape)
        snippet = (time.process_time() - start) / len(starts)
        size = sum(len(p) for clip in encoded for g in clip for p in g)
        return size, decoded, encode, decode, snippet

    return run


def store_settings(quick: bool, alternatives: bool) -> list[tuple[str, object]]:
    """(name, run) of every storage setting compared: naive baselines first."""
    default = (DEFAULT_FLOW_CODEC, DEFAULT_FLOW_QUALITY[DEFAULT_FLOW_CODEC])
    settings = STORE_SETTINGS if not quick else (default, ("png", DEFAULT_FLOW_QUALITY["png"]))
    runs: list[tuple[str, object]] = [
        ("npy uint8 (today's cache)", _npy_run),
        ("TSN: jpeg 95, x and y apart", _cv2_image(".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95], False)),
    ]
    for codec, quality in settings:
        mark = " (default)" if (codec, quality) == default else ""
        runs.append((f"store {codec} {quality}{mark}", _store_run(codec, quality)))
    if alternatives:  # codecs the store does not offer, for the curve
        psnr = {"preset": "veryfast", "tune": "psnr"}
        runs += [
            ("x264 lossless, GOP 8", _x264_run({"qp": "0", "preset": "veryfast"}, 8)),
            ("x264 crf 4 psnr, GOP 8", _x264_run({"crf": "4", **psnr}, 8)),
            ("x264 crf 8 psnr, GOP 8", _x264_run({"crf": "8", **psnr}, 8)),
            ("webp lossless, stacked",
             _cv2_image(".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], True)),
            ("webp 100, stacked", _cv2_image(".webp", [cv2.IMWRITE_WEBP_QUALITY, 100], True)),
        ]  # fmt: skip
        if cv2.haveImageWriter(".avif"):
            params = [cv2.IMWRITE_AVIF_QUALITY, 95, cv2.IMWRITE_AVIF_SPEED, 8]
            runs.append(("avif 95, stacked", _cv2_image(".avif", params, True)))
    return runs


def measure_store(name: str, run, flows, label: str, seed: int = 0) -> StoreRow:
    """Size, error against the stored uint8, and CPU time per pair of one setting."""
    rng = np.random.default_rng(seed)
    weights = np.array([len(f) for f in flows], np.float64)
    clips = rng.choice(len(flows), 200, p=weights / weights.sum())
    starts = [(int(k), int(rng.integers(0, max(len(flows[k]) - SNIPPET, 0) + 1))) for k in clips]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            size, decoded, encode, decode, snippet = run(flows, Path(tmp), starts)
    finally:
        cv2.setNumThreads(threads)
    pairs = int(weights.sum())
    error = [np.abs(d.astype(np.int16) - f) for d, f in zip(decoded, flows, strict=True)]
    return StoreRow(
        clips=label,
        setting=name,
        pairs=pairs,
        bytes_per_pair=size / pairs,
        error_px=float(sum(e.sum() for e in error) / sum(e.size for e in error) * PX_PER_LEVEL),
        max_error_px=float(max(e.max() for e in error) * PX_PER_LEVEL),
        encode_ms=encode / pairs * 1e3,
        decode_ms=decode / pairs * 1e3,
        snippet_ms=snippet * 1e3,
    )


def store_table(rows: Sequence[StoreRow]) -> str:
    """The Markdown table of the storage rows."""
    lines = [
        "| clips | storage | bytes/pair | of .npy | mean err px | max err px | "
        "encode ms/pair | decode ms/pair | L=5 snippet ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        npy = next(x for x in rows if x.clips == r.clips and x.setting.startswith("npy"))
        snippet = "n/a" if np.isnan(r.snippet_ms) else f"{r.snippet_ms:.2f}"
        lines.append(
            f"| {r.clips} | {r.setting} | {r.bytes_per_pair:,.0f} | "
            f"{r.bytes_per_pair / npy.bytes_per_pair:.1%} | {r.error_px:.4f} | "
            f"{r.max_error_px:.2f} | {r.encode_ms:.2f} | {r.decode_ms:.2f} | {snippet} |"
        )
    return "\n".join(lines)


def store_verdict(rows: Sequence[StoreRow]) -> str:
    """Whether the default store setting meets the targets on the real clips."""
    real = [r for r in rows if r.clips.startswith("real")] or list(rows)
    default = next(r for r in real if r.setting.endswith("(default)"))
    tsn = next(r for r in real if r.setting.startswith("TSN"))
    ok = default.bytes_per_pair <= TARGET_STORE_BYTES and default.error_px <= TARGET_STORE_ERROR_PX
    return (
        f"flow store default ({default.setting.removesuffix(' (default)')}) on "
        f"{default.clips}: {default.bytes_per_pair:,.0f} B/pair, {default.error_px:.4f} px "
        f"(targets <= {TARGET_STORE_BYTES} B, <= {TARGET_STORE_ERROR_PX} px: "
        f"{'met' if ok else 'NOT met'}); TSN's JPEGs: {tsn.bytes_per_pair:,.0f} B/pair, "
        f"{tsn.error_px:.4f} px"
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
    p.add_argument("--real", default=str(REAL_CLIPS), help="folder of real clips for storage")
    p.add_argument("--skip-store", action="store_true", help="flow methods only")
    p.add_argument("--store-only", action="store_true", help="storage only")
    p.add_argument(
        "--store-alternatives",
        action="store_true",
        help="also codecs the store does not offer: libx264, WebP, AVIF (slow)",
    )
    return p


def run_store(args, clips) -> list[StoreRow]:
    """The storage table: every setting on the real clips, then on the synthetic ones."""
    size = (256, 340)  # TSN's frame size, whatever --height/--width say
    real = real_flows(Path(args.real), size, 2 if args.quick else None, 8 if args.quick else None)
    synthetic = [_quantize(compute_flow(c.frames)) for c in clips]
    sets = [(f"real ({len(real)} clips)", real), (f"synthetic ({len(clips)} clips)", synthetic)]
    settings = store_settings(args.quick, args.store_alternatives)
    return [measure_store(n, run, flows, label) for label, flows in sets for n, run in settings]


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark; print the table; write and return the JSON record."""
    args = get_args_parser().parse_args(argv)
    if args.show:
        record = json.loads(Path(args.show).read_text())
        fields = {f for f in Row.__dataclass_fields__}
        rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in record["rows"]]
        print(f"{record['date']}, {record['machine']}, commit {record['commit']}")
        if rows:
            print(table(rows))
            print(verdict(rows))
        if record.get("store_rows"):
            print(store_table([StoreRow(**r) for r in record["store_rows"]]))
            print(record["store_verdict"])
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
    rows = [] if args.store_only else [measure(m, p, clips, args.repeats) for m, p in methods]
    store_rows = [] if args.skip_store else run_store(args, clips)
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
            "store_real": args.real,
            "store_size_hw": [256, 340],
            "store_clock": "process_time, OpenCV/PyAV/Pillow on 1 thread",
        },
        "rows": [asdict(r) | {"pairs_per_s_2core": r.pairs_per_s_2core} for r in rows],
        "verdict": verdict(rows) if rows else None,
        "store_rows": [asdict(r) for r in store_rows],
        "store_verdict": store_verdict(store_rows) if store_rows else None,
    }
    if rows:
        print(
            f"Optical flow at {args.width}x{args.height}, {rows[0].pairs} frame pairs; "
            f"{record['machine']}; OpenCV {cv2.__version__}; commit {record['commit']}"
        )
        print(table(rows))
        print(record["verdict"])
    if store_rows:
        print(
            f"\nFlow storage at 340x256 (real clips) and {args.width}x{args.height} "
            f"(synthetic); CPU time, one thread; {record['machine']}"
        )
        print(store_table(store_rows))
        print(record["store_verdict"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
