"""Train and evaluate STA-CNN and its TSN ablations (RGB, flow and fused two-stream).

With no arguments the script makes (or reuses) the built-in synthetic action dataset in
``~/.cache/attnvideo``, computes its optical flow, trains TSN and STA-CNN on a tiny CPU
backbone and prints the comparison table (4-8 minutes on 2 CPU cores; see
docs/reproducing.md for the measured table)::

    python examples/train_stacnn.py

The paper's recipe on UCF-101 / HMDB-51 (TSN protocol: 3 segments in training, 25
snippets x 10 crops in testing, RGB and flow streams trained separately and fused 1 : 1.5)::

    attnvideo-flow /data/UCF-101 /data/UCF-101-flow --workers 16          # flow once
    python examples/train_stacnn.py --preset ucf101 --data-root /data/UCF-101 \\
        --annotations /data/ucfTrainTestlist --flow-root /data/UCF-101-flow
    torchrun --nproc_per_node=8 examples/train_stacnn.py --preset ucf101 \\
        --data-root /data/UCF-101 --annotations /data/ucfTrainTestlist \\
        --flow-root /data/UCF-101-flow --ablation --output-dir runs/ucf101-split1

One stream at a time: ``--modality rgb`` or ``--modality flow`` (``two_stream``, the
default, trains both, then fuses). ``--ablation`` trains TSN, TSN+TA, TSN+SA and STA-CNN
with the same seed and data. ``--resume`` continues from the checkpoints in
``--output-dir`` (mid-epoch included); ``--eval-only`` evaluates what is there.

``--batch-size`` is the *global* batch: torchrun splits it over the processes, so a run
on 8 GPUs and one on 1 GPU take the same optimisation steps.

Writes to ``--output-dir``: ``metrics.json`` (``{run: {"rgb"|"flow"|"fused": {top1,
top5, mean_class_accuracy, clip_accuracy}}}``), ``log.jsonl`` (one line per epoch and per
evaluation), ``<stream>/`` checkpoints (weights in safetensors, the rest loadable with
``torch.load(weights_only=True)``) and ``figures/`` (attention PNG + GIF).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from einops import rearrange, reduce
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm.auto import tqdm

import attnvideo
from attnvideo import viz
from attnvideo.data import (
    HMDB51,
    UCF101,
    GroupNormalize,
    VideoList,
    test_transform,
    train_transform,
)
from attnvideo.data.flow import precompute_flow
from attnvideo.data.synthetic import make_synthetic_actions

# ----------------------------------------------------------------------------- presets
# The runs of an ablation: (temporal attention, spatial attention).
RUNS = {
    "tsn": (False, False),
    "tsn+ta": (True, False),
    "tsn+sa": (False, True),
    "stacnn": (True, True),
}

# Every flag a preset may fill (others keep their parser defaults). Per-stream values
# are "rgb"/"flow" pairs. Paper recipe (STACNN.md section 5): SGD 0.9, wd 5e-4, batch
# 128, RGB lr 1e-3 and flow lr 5e-3 with step decay x0.1, dropout 0.8 / 0.7, clipping,
# partial BN, T = 3 in training and 25 x 10 crops in testing. BN-Inception is not in
# timm: ResNet-50 (ImageNet) stands in. Epochs follow TSN's iterations at batch 128
# on UCF-101 split 1 (74 iterations per epoch): RGB 3.4k (80 epochs, steps 30/60);
# flow 20k (270 epochs, steps at 12k/18k = 160/240).
TSN_RECIPE: dict[str, Any] = dict(
    backbone="resnet50.tv_in1k",
    pretrained=True,
    num_segments=3,
    new_length=5,
    input_size=224,
    resize=256,
    test_segments=25,
    test_crops=10,
    opt="sgd",
    batch_size=128,
    lr={"rgb": 0.001, "flow": 0.005},
    epochs={"rgb": 80, "flow": 270},
    lr_steps={"rgb": [30, 60], "flow": [160, 240]},
    lr_scheduler="step",
    weight_decay=5e-4,
    clip_grad={"rgb": 40.0, "flow": 20.0},
    partial_bn=True,
    flip=True,
    workers=8,
)

PRESETS: dict[str, dict[str, Any]] = {
    "ucf101": dict(dataset="ucf101", **TSN_RECIPE),
    # HMDB-51: same recipe (TSN uses it unchanged; 3.6k training clips per split).
    "hmdb51": dict(dataset="hmdb51", **TSN_RECIPE),
    # The no-argument demo: small synthetic actions, a tiny backbone trained from
    # scratch on 2 CPU cores: the whole run (data + flow + 4 trainings + eval) takes
    # about 5 min; see docs/reproducing.md for the table.
    "synthetic": dict(
        dataset="synthetic",
        backbone="test_resnet",
        pretrained=False,
        num_segments=8,
        new_length=5,  # TSN's and the paper's L = 5 (L = 2 lost to TSN on both seeds run)
        input_size=64,
        resize=64,
        test_segments=8,
        test_crops=1,
        opt="adamw",
        batch_size=8,
        lr={"rgb": 3e-3, "flow": 3e-3},
        epochs={"rgb": 15, "flow": 40},
        lr_steps={"rgb": [], "flow": []},
        lr_scheduler="cosine",
        weight_decay=0.05,
        clip_grad={"rgb": 5.0, "flow": 5.0},
        dropout=0.2,
        partial_bn=False,
        flip=False,
        workers=1,
        runs="tsn,stacnn",
    ),
}

# Synthetic dataset knobs of the demo (attnvideo.data.synthetic.SyntheticConfig).
SYNTHETIC = dict(num_classes=10, videos_per_class=30, num_frames=32, size=(64, 64), seed=0)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0 (0 = off), got {text!r}")
    return value


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The command line; flags left at None are filled by ``--preset``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    g = p.add_argument_group("data")
    g.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="fill the recipe (default: synthetic when --dataset is synthetic)",
    )
    g.add_argument(
        "--dataset", default="synthetic", choices=["synthetic", "ucf101", "hmdb51", "list"]
    )
    g.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="video folder (synthetic: the cache folder, default ~/.cache/attnvideo)",
    )
    g.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="split folder (ucf101/hmdb51) or 'train.txt,test.txt' lists (list)",
    )
    g.add_argument("--split", type=int, default=1, choices=[1, 2, 3])
    g.add_argument(
        "--flow-root",
        type=Path,
        default=None,
        help="optical-flow cache (default: <data-root>-flow); missing flow is "
        "computed on the fly and cached",
    )
    g.add_argument("--flow-method", default="dis", help="dis | farneback | tvl1")
    g.add_argument(
        "--frame-dirs",
        action="store_true",
        help="read TSN frame folders (img_/flow_x_/flow_y_%%05d.jpg)",
    )
    g.add_argument("--num-segments", type=int, default=None, help="T in training")
    g.add_argument("--new-length", type=int, default=None, help="L flow fields per snippet")
    g.add_argument("--input-size", type=int, default=None)
    g.add_argument("--resize", type=int, default=None, help="test: short side before crops")
    g.add_argument("--test-segments", type=int, default=None, help="T in testing (TSN: 25)")
    g.add_argument("--test-crops", type=int, default=None, choices=[1, 3, 10])
    g.add_argument("--workers", type=int, default=None, help="DataLoader workers per process")
    g.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flip in training (off for synthetic: its classes "
        "include left/right motions)",
    )

    g = p.add_argument_group("model")
    g.add_argument("--modality", default="two_stream", choices=["rgb", "flow", "two_stream"])
    g.add_argument("--backbone", default=None, help="any timm model name")
    g.add_argument(
        "--pretrained",
        action="store_true",
        default=None,
        help="start from timm's pretrained weights (must be cached when offline)",
    )
    g.add_argument("--ablation", action="store_true", help="run tsn, tsn+ta, tsn+sa, stacnn")
    g.add_argument(
        "--runs",
        default=None,
        help=f"comma-separated runs among {list(RUNS)} (overrides --ablation)",
    )
    g.add_argument("--no-temporal-attention", action="store_true")
    g.add_argument("--no-spatial-attention", action="store_true")
    g.add_argument("--aux-weight", type=float, default=0.5)
    g.add_argument("--dropout", type=float, default=None, help="default 0.8 rgb / 0.7 flow")
    g.add_argument("--partial-bn", action="store_true", default=None)
    g.add_argument("--fusion-weights", type=float, nargs=2, default=(1.0, 1.5))
    for stream in ("rgb", "flow"):
        g.add_argument(
            f"--init-{stream}",
            type=Path,
            default=None,
            metavar="FILE",
            help=f"start the {stream} stream from these weights (a .safetensors file, e.g. "
            "a finished stream's final.safetensors): tensors whose name and shape match are "
            "loaded, the others keep their initialisation and are listed",
        )

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=None, help="global (all processes)")
    g.add_argument("--opt", default=None, choices=["sgd", "adamw"])
    g.add_argument("--lr", type=float, default=None, help="default: preset (rgb / flow)")
    g.add_argument("--flow-lr", type=float, default=None, help="flow stream lr (default --lr)")
    g.add_argument("--flow-epochs", type=int, default=None)
    g.add_argument("--lr-scheduler", default=None, choices=["step", "cosine"])
    g.add_argument("--lr-steps", type=int, nargs="*", default=None, help="epochs of x0.1")
    g.add_argument("--lr-warmup-epochs", type=float, default=0.0)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--clip-grad", type=float, default=None, help="max grad norm (0 = off)")
    g.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")

    g = p.add_argument_group("run")
    g.add_argument("--output-dir", type=Path, default=Path("runs/stacnn"))
    g.add_argument("--resume", action="store_true", help="continue from --output-dir")
    g.add_argument("--eval-only", action="store_true", help="evaluate trained streams")
    g.add_argument(
        "--save-every",
        type=int,
        default=100,
        help="also checkpoint every N steps inside an epoch (0 = epoch ends)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default=None, help="cpu | cuda | cuda:1 (default: cuda if any)")
    g.add_argument("--figures", type=int, default=4, help="test videos to draw (0 = none)")
    g.add_argument("--synthetic-videos-per-class", type=int, default=SYNTHETIC["videos_per_class"])
    g.add_argument("--synthetic-classes", type=int, default=SYNTHETIC["num_classes"])
    g.add_argument("--synthetic-frames", type=int, default=SYNTHETIC["num_frames"])
    g.add_argument(
        "--synthetic-size",
        type=int,
        default=SYNTHETIC["size"][0],
        help="synthetic frame side in pixels",
    )

    g = p.add_argument_group("evaluation memory")
    g.add_argument(
        "--test-batch-size",
        type=_positive_int,
        default=None,
        help="test videos per forward pass, per process (default: 1 when a video has several "
        "views, i.e. --test-crops > 1 or --test-segments > --num-segments, as in the ucf101 "
        "and hmdb51 presets; otherwise the training batch per process)",
    )
    g.add_argument(
        "--eval-chunk-frames",
        type=_non_negative_int,
        default=64,
        help="in testing, at most this many frames (videos x crops x segments) go through "
        "the backbone at once: bounds memory, same logits up to float rounding (0 = all "
        "frames of a batch at once)",
    )
    return p


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill unset flags from the preset; split per-stream values into rgb/flow."""
    preset = PRESETS[args.preset or (args.dataset if args.dataset in PRESETS else "ucf101")]
    if args.preset:
        args.dataset = preset["dataset"]
    per_stream = {
        "lr": args.lr,
        "epochs": args.epochs,
        "lr_steps": args.lr_steps,
        "clip_grad": args.clip_grad,
    }
    for key, value in preset.items():
        if key in per_stream or key in ("dataset", "runs"):
            continue
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    flow_over = {"lr": args.flow_lr, "epochs": args.flow_epochs}
    args.stream = {}
    for stream in ("rgb", "flow"):
        cfg = {}
        for key, value in per_stream.items():
            cfg[key] = value if value is not None else preset[key][stream]
            if stream == "flow" and flow_over.get(key) is not None:
                cfg[key] = flow_over[key]
        args.stream[stream] = cfg
    if args.runs is None:
        if args.ablation:
            args.runs = list(RUNS)
        elif "runs" in preset and not (args.no_temporal_attention or args.no_spatial_attention):
            args.runs = preset["runs"].split(",")
        else:
            key = (not args.no_temporal_attention, not args.no_spatial_attention)
            args.runs = [name for name, flags in RUNS.items() if flags == key]
    else:
        args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    bad = [r for r in args.runs if r not in RUNS]
    if bad:
        raise SystemExit(f"--runs: unknown run(s) {bad}; expected some of {list(RUNS)}")
    args.streams = ["rgb", "flow"] if args.modality == "two_stream" else [args.modality]
    if args.dataset == "synthetic" and args.data_root is None:
        cache = Path(os.environ.get("ATTNVIDEO_CACHE", Path.home() / ".cache" / "attnvideo"))
        args.data_root = cache / (
            f"synthetic-c{args.synthetic_classes}-v{args.synthetic_videos_per_class}"
            f"-f{args.synthetic_frames}-{args.synthetic_size}px-s{SYNTHETIC['seed']}"
        )
    return args


# ----------------------------------------------------------------------- distributed
def init_distributed(args: argparse.Namespace) -> None:
    """Set rank/world size from torchrun's environment; gloo on CPU, NCCL on GPU."""
    args.rank = int(os.environ.get("RANK", 0))
    args.world_size = int(os.environ.get("WORLD_SIZE", 1))
    args.local_rank = int(os.environ.get("LOCAL_RANK", 0))
    args.distributed = args.world_size > 1
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", args.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    args.device = device
    if args.distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    if args.batch_size % args.world_size:
        raise SystemExit(
            f"--batch-size {args.batch_size} (global) must be divisible by the "
            f"{args.world_size} processes"
        )


def is_main(args: argparse.Namespace) -> bool:
    return args.rank == 0


def barrier(args: argparse.Namespace) -> None:
    if args.distributed:
        dist.barrier()


def all_gather_objects(obj: Any, args: argparse.Namespace) -> list[Any]:
    if not args.distributed:
        return [obj]
    out: list[Any] = [None] * args.world_size
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------------ data
class SeededSamples(Dataset):
    """Makes every random augmentation a function of (seed, epoch, index) alone.

    Keys are ``(epoch, index)`` pairs (from :class:`ResumableDistributedSampler`, so the
    epoch reaches persistent workers too). Item ``i`` of epoch ``e`` is drawn with
    torch/numpy/python RNGs seeded from ``(seed, e, i)`` (the caller's RNG states are
    restored afterwards). So the samples do not depend on the number of processes or
    workers, nor on where a run was resumed: the basis of exact resume and of DDP
    matching a single process.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        digest = hashlib.blake2b(f"{self.seed}/{epoch}/{index}".encode(), digest_size=8)
        seed = int.from_bytes(digest.digest(), "little") & (2**63 - 1)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random.seed(seed)
                np.random.seed(seed % 2**32)
                return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler (also used with one process) that can skip the first items.

    Yields ``(epoch, index)`` keys for :class:`SeededSamples`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        return iter([(self.epoch, i) for i in list(super().__iter__())[self.start :]])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank r takes items r, r + W, ...; no padding, no duplicates."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def prepare_data(args: argparse.Namespace) -> None:
    """Check the dataset is there (or make the synthetic one) and make sure flow exists."""
    if args.dataset == "synthetic":
        root = synthetic_paths(args)
        if is_main(args):
            print(f"synthetic actions in {root} (made once, then reused)", flush=True)
            cfg = {
                **SYNTHETIC,
                "num_classes": args.synthetic_classes,
                "videos_per_class": args.synthetic_videos_per_class,
                "num_frames": args.synthetic_frames,
                "size": (args.synthetic_size, args.synthetic_size),
            }
            make_synthetic_actions(root, progress=True, **cfg)
        barrier(args)
        if is_main(args) and "flow" in needed_modalities(args):
            precompute_flow(
                args.video_root,
                args.flow_root,
                method=args.flow_method,
                workers=max(1, min(2, os.cpu_count() or 1)),
                progress=True,
            )
        barrier(args)
        return


def synthetic_paths(args: argparse.Namespace) -> Path:
    """Point the video, split and flow folders at the synthetic dataset; return its root."""
    root = Path(args.data_root)
    args.video_root, args.annotations = root / "videos", root / "splits"
    if args.flow_root is None:
        args.flow_root = root / f"flow-{args.flow_method}"
    return root


def check_dataset(args: argparse.Namespace) -> None:
    """Stop at once, naming what is missing and where it was looked for."""
    if args.dataset == "synthetic":
        synthetic_paths(args)
        return
    if args.data_root is None:
        raise SystemExit(f"--data-root is required for --dataset {args.dataset}")
    args.video_root = Path(args.data_root)
    expected = {
        "ucf101": "the UCF-101 videos (UCF-101/<Class>/v_*.avi)",
        "hmdb51": "the HMDB-51 videos (<class>/<video>.avi)",
        "list": "the videos of your lists",
    }[args.dataset]
    if not args.video_root.is_dir():
        raise SystemExit(
            f"dataset not found: {expected} were looked for in "
            f"{args.video_root.resolve()} (--data-root), which does not exist"
        )
    if args.annotations is None:
        raise SystemExit(f"--annotations is required for --dataset {args.dataset}")
    for path in annotation_files(args):
        if not path.exists():
            raise SystemExit(
                f"annotations not found: {path.resolve()} does not exist "
                f"(--annotations {args.annotations})"
            )
    if args.flow_root is None:
        args.flow_root = args.video_root.with_name(args.video_root.name + "-flow")


def annotation_files(args: argparse.Namespace) -> list[Path]:
    if args.dataset == "list":
        parts = str(args.annotations).split(",")
        if len(parts) != 2:
            raise SystemExit("--annotations for --dataset list: expected 'train.txt,test.txt'")
        return [Path(p) for p in parts]
    return [Path(args.annotations)]


def needed_modalities(args: argparse.Namespace) -> set[str]:
    need = set(args.streams)
    if "rgb" in args.streams and any(RUNS[r][1] for r in args.runs):
        need.add("flow")  # spatial attention is guided by the flow
    return need


def dataset_options(
    args, stream: str, spatial: bool, train: bool, data_config: dict
) -> tuple[dict, GroupNormalize]:
    """The dataset options of one stream (RGB + flow when flow guides attention), and the
    normalisation its batches get on the device.

    Workers hand over uint8 frames and quantised flow (a quarter of the bytes to collate
    and copy); the returned ``GroupNormalize`` turns a batch into float on the device: RGB
    with the backbone's mean/std, flow centred to [-1, 1].
    """
    norm = {}
    if stream == "rgb":
        norm = {"mean": tuple(data_config["mean"]), "std": tuple(data_config["std"])}
    if train:
        transform = train_transform(
            args.input_size,
            scales=(1, 0.875, 0.75, 0.66) if stream == "rgb" else (1, 0.875, 0.75),
            flip=bool(args.flip),
            normalize=False,
        )
    else:
        transform = test_transform(
            args.input_size, resize=args.resize, crops=args.test_crops, normalize=False
        )
    options = dict(
        modality="rgb+flow" if stream == "rgb" and spatial else stream,
        num_segments=args.num_segments if train else args.test_segments,
        new_length=args.new_length,
        test_mode=not train,
        transform=transform,
        flow_root=args.flow_root,
        frame_dirs=args.frame_dirs,
        flow_method=args.flow_method,
        to_float=False,
    )
    return options, GroupNormalize(**norm)


def build_dataset(args, stream: str, spatial: bool, train: bool, data_config: dict):
    """The train or test dataset of one stream; ``dataset.normalize`` as in
    :func:`dataset_options`."""
    common, normalize = dataset_options(args, stream, spatial, train, data_config)
    if args.dataset in ("synthetic", "ucf101"):
        ds = UCF101(args.video_root, args.annotations, split=args.split, train=train, **common)
    elif args.dataset == "hmdb51":
        ds = HMDB51(args.video_root, args.annotations, split=args.split, train=train, **common)
    else:
        train_list, test_list = annotation_files(args)
        ds = VideoList(train_list if train else test_list, args.video_root, **common)
    ds.normalize = normalize
    return ds


def train_loader(dataset: Dataset, args, epoch_seed: int) -> tuple[DataLoader, Any]:
    seeded = SeededSamples(dataset, epoch_seed)
    sampler = ResumableDistributedSampler(
        seeded,
        num_replicas=args.world_size,
        rank=args.rank,
        shuffle=True,
        seed=epoch_seed,
        drop_last=True,
    )
    loader = DataLoader(
        seeded,
        batch_size=args.batch_size // args.world_size,
        sampler=sampler,
        num_workers=args.workers,
        pin_memory=args.device.type == "cuda",
        drop_last=True,
        generator=torch.Generator().manual_seed(epoch_seed),
        persistent_workers=args.workers > 0,
        multiprocessing_context=worker_context(args),
    )
    return loader, sampler


def worker_context(args) -> str | None:
    """Start loader workers from a clean process, never by forking this one.

    A forked worker inherits PyAV/FFmpeg objects whose threads did not survive the fork
    (the main process decodes frames for the figures); freeing them deadlocks.
    """
    if args.workers == 0:
        return None
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def eval_batch_size(args) -> int:
    """Test videos per batch and process: ``--test-batch-size``, else 1 for a multi-view
    protocol (TSN's 25 snippets x 10 crops are 250 frames a video), else the training
    batch per process."""
    if args.test_batch_size is not None:
        return args.test_batch_size
    if args.test_crops > 1 or args.test_segments > args.num_segments:
        return 1
    return max(1, args.batch_size // args.world_size)


def eval_chunk(args) -> int | None:
    """The model's ``chunk_frames`` in testing (``--eval-chunk-frames``; 0 gives None)."""
    return args.eval_chunk_frames or None


def test_loader(dataset: Dataset, args) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=eval_batch_size(args),
        sampler=ShardSampler(len(dataset), args.rank, args.world_size),
        num_workers=args.workers,
        pin_memory=args.device.type == "cuda",
        multiprocessing_context=worker_context(args),
    )


def model_inputs(batch: dict, stream: str, device: torch.device, normalize: GroupNormalize):
    """(x, motion) for a stream, normalised on the device; test crops fold into the batch."""
    images = {k: batch[k].to(device, non_blocking=True) for k in ("rgb", "flow") if k in batch}
    images = normalize(images)
    x = images[stream]
    motion = None
    if stream == "rgb" and "flow" in images:  # the flow that guides the spatial attention
        motion = images["flow"]
    crops = 1
    if x.ndim == 6:  # (B, crops, T, C, H, W) from a multi-crop test transform
        crops = x.shape[1]
        x = rearrange(x, "b n t c h w -> (b n) t c h w")
        if motion is not None:
            motion = rearrange(motion, "b n t c h w -> (b n) t c h w")
    return x, motion, crops


# ----------------------------------------------------------------------------- model
def check_pretrained_available(backbone: str) -> None:
    """Stop at once when timm weights are neither cached nor downloadable."""
    import timm
    from huggingface_hub import constants, try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None:
        raise SystemExit(f"--pretrained: timm has no pretrained weights for {backbone!r}")
    hub_id = cfg.hf_hub_id
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        names = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
        for name in names:
            found = try_to_load_from_cache(repo, name, revision=revision or None)
            if isinstance(found, str):
                return
        where = f"the Hugging Face cache {constants.HF_HUB_CACHE} (repo {repo}, files {names})"
    else:
        torch_hub = Path(torch.hub.get_dir()) / "checkpoints"
        url = cfg.url or ""
        if url and (torch_hub / os.path.basename(url)).is_file():
            return
        where = f"{torch_hub} (file {os.path.basename(url) or '?'})"
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or not _online()
    if offline:
        raise SystemExit(
            f"--pretrained: no cached weights for {backbone!r} and no network. Looked in "
            f"{where}. Download them once on a machine with network "
            f"(python -c \"import timm; timm.create_model('{backbone}', pretrained=True)\") "
            "and copy the cache, or drop --pretrained."
        )


def _online(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def build_model(args, stream: str, temporal: bool, spatial: bool, num_classes: int):
    model = attnvideo.create_stacnn(
        args.backbone,
        num_classes,
        num_segments=args.num_segments,
        modality=stream,
        new_length=args.new_length,
        temporal_attention=temporal,
        spatial_attention=spatial and stream == "rgb",
        aux_weight=args.aux_weight,
        dropout=args.dropout,
        partial_bn=bool(args.partial_bn),
        pretrained=bool(args.pretrained),
    )
    return model


def stream_key(run: str, stream: str) -> str:
    """Directory of a trained stream; flow streams are shared by runs with the same TA.

    The flow stream has no spatial attention, so tsn and tsn+sa share one flow stream
    ("flow-avg") and tsn+ta and stacnn another ("flow-ta").
    """
    if stream == "flow":
        return "flow-ta" if RUNS[run][0] else "flow-avg"
    return f"rgb-{run}"


# ------------------------------------------------------------------------ checkpoints
def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and primitives (weights_only-safe)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(
    folder: Path, model, optimizer, scheduler, scaler, progress: dict, args
) -> None:
    """Weights to safetensors, the rest to a torch file, then switch ``latest.json``.

    Every rank's RNG state is gathered, so a resumed DDP run continues each rank exactly.
    A kill at any point leaves ``latest.json`` naming a complete checkpoint.
    """
    rngs = all_gather_objects(rng_state(), args)
    if not is_main(args):
        return
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"e{progress['epoch']:04d}-s{progress['step']:06d}"
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(folder / f"model-{tag}.safetensors", lambda p: save_file(weights, str(p)))
    state = {
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "progress": progress,
        "rng": rngs,
        "world_size": args.world_size,
    }
    _atomic_write(folder / f"state-{tag}.pt", lambda p: torch.save(state, p))
    pointer = {"weights": f"model-{tag}.safetensors", "state": f"state-{tag}.pt", **progress}
    _atomic_write(folder / "latest.json", lambda p: p.write_text(json.dumps(pointer)))
    for old in folder.glob("*-e*-s*.*"):
        if tag not in old.name:
            old.unlink(missing_ok=True)


def load_checkpoint(folder: Path, model, optimizer, scheduler, scaler, args) -> dict | None:
    pointer_file = folder / "latest.json"
    if not pointer_file.is_file():
        return None
    pointer = json.loads(pointer_file.read_text())
    model.load_state_dict(load_file(str(folder / pointer["weights"]), device="cpu"))
    state = torch.load(folder / pointer["state"], map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    scaler.load_state_dict(state["scaler"])
    if state["world_size"] == args.world_size:
        set_rng_state(state["rng"][args.rank])
    elif is_main(args):
        print(
            f"note: checkpoint from {state['world_size']} processes, now "
            f"{args.world_size}: data order is kept, dropout RNG restarts",
            flush=True,
        )
    return state["progress"]


def save_final(folder: Path, model, summary: dict, args) -> None:
    if not is_main(args):
        return
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(folder / "final.safetensors", lambda p: save_file(weights, str(p)))
    _atomic_write(folder / "done.json", lambda p: p.write_text(json.dumps(summary)))
    for old in folder.glob("*-e*-s*.*"):
        old.unlink(missing_ok=True)
    (folder / "latest.json").unlink(missing_ok=True)


# -------------------------------------------------------------------------- training
class NonFiniteLoss(RuntimeError):
    pass


def autocast(args):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    return torch.autocast(args.device.type, dtype=dtype, enabled=dtype is not None)


def log_jsonl(args, record: dict) -> None:
    if is_main(args):
        args.output_dir.mkdir(parents=True, exist_ok=True)
        with open(args.output_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def train_one_epoch(
    model,
    optimizer,
    scheduler,
    scaler,
    loader,
    epoch: int,
    args,
    *,
    stream: str,
    clip_grad: float,
    start_step: int,
    checkpoint,
    normalize: GroupNormalize,
) -> dict:
    """One pass over ``loader`` (which may start mid-epoch at ``start_step``)."""
    model.train()
    steps = start_step + len(loader)
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = seen = 0
    crash_after = int(os.environ.get("ATTNVIDEO_CRASH_AFTER_STEPS", "0"))
    bar = tqdm(
        loader,
        desc=f"{args.job} epoch {epoch + 1}",
        initial=start_step,
        total=steps,
        disable=not is_main(args),
        leave=False,
        dynamic_ncols=True,
    )
    for step, batch in enumerate(bar, start=start_step):
        x, motion, _ = model_inputs(batch, stream, args.device, normalize)
        target = batch["label"].to(args.device, non_blocking=True)
        with autocast(args):
            out = model(x, motion=motion, target=target)
        loss = out.loss
        reduced = loss.detach().float().clone()
        if args.distributed:
            dist.all_reduce(reduced)
            reduced /= args.world_size
        if not math.isfinite(reduced.item()):
            raise NonFiniteLoss(
                f"{args.job}: loss is {reduced.item()} at epoch {epoch + 1}, step {step + 1}; "
                f"stopped. The last good checkpoint is in {args.job_dir} (latest.json); "
                "lower --lr, set --clip-grad or --amp off"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip_grad > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total_loss += reduced.double()
        correct += int((out.logits.argmax(-1) == target).sum())
        seen += target.numel()
        bar.set_postfix(loss=f"{reduced.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        done = step + 1
        if args.save_every and done % args.save_every == 0 and done < steps:
            checkpoint(epoch, done)
        if crash_after and args.global_step_counter(1) >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: a real, unclean kill
    bar.close()
    n = max(1, steps - start_step)
    return {"loss": float(total_loss) / n, "accuracy": correct / max(1, seen)}


@torch.inference_mode()
def evaluate(
    model,
    loader,
    args,
    *,
    stream: str,
    num_videos: int,
    num_classes: int,
    desc: str,
    normalize: GroupNormalize,
) -> dict[str, torch.Tensor]:
    """Clip and video scores; every test item is counted exactly once over all ranks.

    Returns the per-video logits (mean over clips and crops, before softmax: TSN),
    the video labels, and the per-clip logits and video indices.
    """
    model.eval()
    logits, indices, labels = [], [], []
    for batch in tqdm(
        loader, desc=desc, disable=not is_main(args), leave=False, dynamic_ncols=True
    ):
        x, motion, crops = model_inputs(batch, stream, args.device, normalize)
        with autocast(args):
            out = model(x, motion=motion, chunk_frames=eval_chunk(args))
        z = reduce(out.logits.float(), "(b n) k -> b k", "mean", n=crops)
        logits.append(z.cpu())
        indices.append(batch["video_index"].cpu())
        labels.append(batch["label"].cpu())
    local = (
        torch.cat(logits) if logits else torch.zeros(0, num_classes),
        torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long),
        torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long),
    )
    gathered = all_gather_objects(local, args)  # shards are disjoint: no padding to drop
    clip_logits = torch.cat([g[0] for g in gathered])
    clip_video = torch.cat([g[1] for g in gathered])
    clip_labels = torch.cat([g[2] for g in gathered])
    order = torch.argsort(clip_video * (len(clip_video) + 1) + torch.arange(len(clip_video)))
    clip_logits, clip_video, clip_labels = clip_logits[order], clip_video[order], clip_labels[order]
    video_logits = torch.zeros(num_videos, num_classes, dtype=torch.float64)
    counts = torch.zeros(num_videos, dtype=torch.float64)
    video_logits.index_add_(0, clip_video, clip_logits.double())
    counts.index_add_(0, clip_video, torch.ones_like(clip_video, dtype=torch.float64))
    video_labels = torch.full((num_videos,), -1, dtype=torch.long)
    video_labels[clip_video] = clip_labels
    seen = counts > 0
    video_logits[seen] /= counts[seen, None]
    return {
        "video_logits": video_logits[seen],
        "video_labels": video_labels[seen],
        "clip_logits": clip_logits,
        "clip_labels": clip_labels,
    }


def compute_metrics(scores: dict[str, torch.Tensor], num_classes: int) -> dict[str, float]:
    """Video top-1/top-5, mean class accuracy (TSN's eval scripts) and clip accuracy."""
    z, y = scores["video_logits"], scores["video_labels"]
    k = min(5, num_classes)
    topk = z.topk(k, dim=1).indices
    top1 = (topk[:, 0] == y).double()
    top5 = (topk == y[:, None]).any(dim=1).double()
    per_class = [top1[y == c].mean().item() for c in range(num_classes) if (y == c).any()]
    clip = (scores["clip_logits"].argmax(1) == scores["clip_labels"]).double()
    return {
        "top1": 100.0 * top1.mean().item(),
        "top5": 100.0 * top5.mean().item(),
        "mean_class_accuracy": 100.0 * float(np.mean(per_class)),
        "clip_accuracy": 100.0 * clip.mean().item(),
        "num_videos": len(y),
    }


def fuse(rgb: dict, flow: dict, weights: tuple[float, float]) -> dict[str, torch.Tensor]:
    """TSN's two-stream score: w_rgb * z_rgb + w_flow * z_flow (per clip and per video)."""
    if not torch.equal(rgb["video_labels"], flow["video_labels"]):
        raise RuntimeError("rgb and flow test sets differ: cannot fuse")
    return {
        "video_logits": weights[0] * rgb["video_logits"] + weights[1] * flow["video_logits"],
        "video_labels": rgb["video_labels"],
        "clip_logits": weights[0] * rgb["clip_logits"] + weights[1] * flow["clip_logits"],
        "clip_labels": rgb["clip_labels"],
    }


def make_optimizer(model, args, lr: float):
    groups = model.param_groups(lr, args.weight_decay)
    if args.opt == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=args.momentum)
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(optimizer, args, cfg: dict, iters_per_epoch: int):
    total = cfg["epochs"] * iters_per_epoch
    warmup = int(args.lr_warmup_epochs * iters_per_epoch)
    milestones = [s * iters_per_epoch for s in cfg["lr_steps"]]

    def factor(it: int) -> float:
        f = min(1.0, (it + 1) / warmup) if warmup else 1.0
        if args.lr_scheduler == "cosine":
            return f * 0.5 * (1 + math.cos(math.pi * min(it, total) / max(1, total)))
        return f * 0.1 ** sum(it >= m for m in milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_stream(args, run: str, stream: str, num_classes: int) -> tuple[Any, Path]:
    """Train one stream (or resume it, or reuse a finished one); returns the bare model."""
    temporal, spatial = RUNS[run]
    spatial = spatial and stream == "rgb"
    key = stream_key(run, stream)
    folder = args.output_dir / key
    args.job, args.job_dir = key, folder
    cfg = args.stream[stream]
    # Same seed for every run: same initial weights for shared parts, same data order.
    seed_all(args.seed)
    model = build_model(args, stream, temporal, spatial, num_classes)
    model.to(args.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    signature = job_signature(args, run, stream)
    done = folder / "done.json"
    if done.is_file():
        same = json.loads(done.read_text()).get("config") == signature
        if same or args.eval_only:
            model.load_state_dict(load_file(str(folder / "final.safetensors"), device="cpu"))
            if is_main(args):
                note = "" if same else " (trained with other settings)"
                print(
                    f"{key}: trained already, reusing {folder / 'final.safetensors'}{note}",
                    flush=True,
                )
            return model, folder
    if args.eval_only:
        raise SystemExit(f"--eval-only: {key} has no finished training in {folder}")
    init = getattr(args, f"init_{stream}", None)
    if init is not None:
        loaded, kept = init_weights(model, init)
        if is_main(args):
            rest = f"; kept their initialisation: {', '.join(kept)}" if kept else ""
            print(f"{key}: {loaded} tensors from {init}{rest}", flush=True)
    train_set = build_dataset(args, stream, spatial, True, model.data_config)
    loader, sampler = train_loader(train_set, args, args.seed)
    iters = len(loader)
    if iters == 0:
        raise SystemExit(
            f"{key}: {len(train_set)} training videos is less than one batch ({args.batch_size})"
        )
    optimizer = make_optimizer(model, args, cfg["lr"])
    scheduler = make_scheduler(optimizer, args, cfg, iters)
    scaler = torch.amp.GradScaler(args.device.type, enabled=args.amp == "fp16")
    progress = {"epoch": 0, "step": 0}
    if folder.exists() and not args.resume and is_main(args):
        shutil.rmtree(folder)  # a fresh run: forget an older one's checkpoints
    barrier(args)
    if args.resume:
        found = load_checkpoint(folder, model, optimizer, scheduler, scaler, args)
        if found is not None:
            progress = found
            if is_main(args):
                print(
                    f"{key}: resuming at epoch {progress['epoch'] + 1}, step {progress['step']}",
                    flush=True,
                )
    seed_offset = args.rank  # dropout differs per rank (as with any DDP run)
    if progress == {"epoch": 0, "step": 0}:
        torch.manual_seed(args.seed + 1000 * seed_offset)
    bare = model
    train_model = model
    if args.distributed:
        # Some timm backbones keep head parameters that forward_features never uses
        # (e.g. ConvNeXt's head.norm, ViT's fc_norm with average pooling). The set of
        # used parameters is the same every step, so DDP's static graph finds them once,
        # in the first step, instead of walking the autograd graph every step as
        # find_unused_parameters=True does.
        train_model = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[args.device.index] if args.device.type == "cuda" else None,
            static_graph=True,
        )
    if args.compile:
        train_model = torch.compile(train_model)

    def checkpoint(epoch: int, step: int) -> None:
        save_checkpoint(
            folder, bare, optimizer, scheduler, scaler, {"epoch": epoch, "step": step}, args
        )

    start = time.time()
    for epoch in range(progress["epoch"], cfg["epochs"]):
        start_step = progress["step"] if epoch == progress["epoch"] else 0
        sampler.set_epoch(epoch)
        sampler.set_start(start_step * (args.batch_size // args.world_size))
        t0 = time.time()
        corrupt0 = train_set.corrupt_count
        stats = train_one_epoch(
            train_model,
            optimizer,
            scheduler,
            scaler,
            loader,
            epoch,
            args,
            stream=stream,
            clip_grad=cfg["clip_grad"] or 0.0,
            start_step=start_step,
            checkpoint=checkpoint,
            normalize=train_set.normalize,
        )
        checkpoint(epoch + 1, 0)
        record = {
            "job": key,
            "run": run,
            "stream": stream,
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": stats["loss"],
            "train_accuracy": stats["accuracy"],
            "epoch_time_s": time.time() - t0,
            "corrupt_videos": train_set.corrupt_count - corrupt0,
            "resumed_at_step": start_step,
        }
        log_jsonl(args, record)
        if is_main(args):
            print(
                f"{key} epoch {epoch + 1}/{cfg['epochs']}: loss {stats['loss']:.3f} "
                f"train acc {100 * stats['accuracy']:.1f}% ({record['epoch_time_s']:.0f} s)",
                flush=True,
            )
    save_final(
        folder,
        bare,
        {
            "config": signature,
            "run": run,
            "stream": stream,
            "train_time_s": time.time() - start,
            "corrupt_videos": train_set.corrupt_count,
        },
        args,
    )
    barrier(args)
    return bare, folder


def job_signature(args, run: str, stream: str) -> dict[str, Any]:
    """The settings that define a trained stream: a finished one is reused only if equal."""
    keys = (
        "dataset",
        "split",
        "backbone",
        "pretrained",
        "num_segments",
        "new_length",
        "input_size",
        "batch_size",
        "opt",
        "lr_scheduler",
        "lr_warmup_epochs",
        "momentum",
        "weight_decay",
        "aux_weight",
        "dropout",
        "partial_bn",
        "flip",
        "amp",
        "seed",
        "flow_method",
        "synthetic_classes",
        "synthetic_videos_per_class",
        "synthetic_frames",
        "synthetic_size",
    )
    sig = {k: getattr(args, k) for k in keys}
    sig["data_root"] = str(args.data_root)
    sig["stream"] = args.stream[stream]
    sig["temporal_attention"] = RUNS[run][0]
    sig["spatial_attention"] = RUNS[run][1] and stream == "rgb"
    init = getattr(args, f"init_{stream}", None)
    if init is not None:  # only when set, so runs without it keep their signature
        sig["init"] = str(Path(init).resolve())
    return json.loads(json.dumps(sig))


def init_weights(model, path: Path) -> tuple[int, list[str]]:
    """Load the tensors of ``path`` whose name and shape match ``model``'s.

    Returns how many were loaded and the names of the model's tensors that were not (they
    keep their initialisation: e.g. the temporal attention, absent from a TSN stream, or a
    classifier for another number of classes). Stops when ``path`` is missing or nothing
    matches, since then the model was surely not the one meant.
    """
    if not Path(path).is_file():
        raise SystemExit(f"--init: {path} does not exist (expected a .safetensors file)")
    source = load_file(str(path), device="cpu")
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise SystemExit(
            f"--init: no tensor of {path} matches the model by name and shape "
            f"(it has {len(source)}, e.g. {sorted(source)[:3]}; the model has "
            f"{sorted(own)[:3]}, ...)"
        )
    model.load_state_dict(matched, strict=False)
    return len(matched), sorted(k for k in own if k not in matched)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -------------------------------------------------------------------------- figures
def attention_figures(model, test_set, args, run: str, num_classes: int) -> list[Path]:
    """PNG + GIF of the first test video of a few classes: frames, attention, weights."""
    if args.figures <= 0 or not is_main(args):
        return []
    model.eval()
    labels = [r.label for r in test_set.records]
    wanted, picked = set(), []
    for i, label in enumerate(labels):
        if label not in wanted:
            wanted.add(label)
            picked.append(i * test_set.num_clips)
        if len(picked) == args.figures:
            break
    cfg = model.data_config
    paths = []
    with torch.inference_mode():
        for index in picked:
            sample = test_set.normalize(test_set[index])
            x = sample["rgb"]
            motion = sample.get("flow")
            if x.ndim == 5:  # crops: take the first (centre) crop
                x, motion = x[0], motion[0] if motion is not None else None
            out = model(
                x[None].to(args.device),
                motion=motion[None].to(args.device) if motion is not None else None,
                chunk_frames=eval_chunk(args),
            )
            frames = viz.to_uint8_frames(x, mean=cfg["mean"], std=cfg["std"])
            attention = out.spatial_attention[0] if out.spatial_attention is not None else None
            name = Path(test_set.records[sample["video_index"]].path).stem
            pred = test_set.classes[int(out.logits.argmax())]
            title = f"{run}: {name} (predicted {pred})"
            png, gif = viz.save_attention_figures(
                args.output_dir / "figures" / f"{run}-{name}",
                frames,
                attention,
                out.temporal_weights[0],
                title=title,
            )
            paths += [png, gif]
    return paths


# ----------------------------------------------------------------------------- main
def print_table(metrics: dict, streams: list[str]) -> str:
    cols = [
        (s, k)
        for s in (streams + (["fused"] if len(streams) == 2 else []))
        for k in ("top1", "mean_class_accuracy")
    ]
    head = ["run"] + [f"{s} {'top1' if k == 'top1' else 'mca'}" for s, k in cols]
    if len(streams) == 2:
        head.append("fused top5")
        cols.append(("fused", "top5"))
    rows = [head] + [[run] + [f"{m[s][k]:.1f}" for s, k in cols] for run, m in metrics.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> dict:
    args = resolve_args(args)
    init_distributed(args)
    start = time.time()
    torch.backends.cudnn.benchmark = True
    try:
        check_dataset(args)
        if args.pretrained:
            check_pretrained_available(args.backbone)
        prepare_data(args)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        counter = {"n": 0}

        def global_step_counter(inc: int) -> int:
            counter["n"] += inc
            return counter["n"]

        args.global_step_counter = global_step_counter
        if is_main(args):
            print(
                f"runs {args.runs}, streams {args.streams}, backbone {args.backbone}, "
                f"{args.world_size} process(es) on {args.device}",
                flush=True,
            )
        metrics: dict[str, dict] = {}
        scores_cache: dict[str, dict] = {}
        corrupt = 0
        for run in args.runs:
            metrics[run] = {}
            per_stream = {}
            for stream in args.streams:
                key = stream_key(run, stream)
                model, _ = train_stream(args, run, stream, num_classes_of(args))
                if key not in scores_cache:
                    spatial = RUNS[run][1] and stream == "rgb"
                    test_set = build_dataset(args, stream, spatial, False, model.data_config)
                    scores_cache[key] = evaluate(
                        model,
                        test_loader(test_set, args),
                        args,
                        stream=stream,
                        num_videos=len(test_set.records),
                        num_classes=test_set.num_classes,
                        desc=f"{key} test",
                        normalize=test_set.normalize,
                    )
                    corrupt += test_set.corrupt_count
                    if stream == "rgb":
                        attention_figures(model, test_set, args, run, test_set.num_classes)
                per_stream[stream] = scores_cache[key]
                metrics[run][stream] = compute_metrics(per_stream[stream], num_classes_of(args))
            if len(args.streams) == 2:
                fused = fuse(per_stream["rgb"], per_stream["flow"], tuple(args.fusion_weights))
                metrics[run]["fused"] = compute_metrics(fused, num_classes_of(args))
            log_jsonl(args, {"run": run, "test": metrics[run]})
        if is_main(args):
            path = args.output_dir / "metrics.json"
            _atomic_write(path, lambda p: p.write_text(json.dumps(metrics, indent=2)))
            print("\n" + print_table(metrics, args.streams))
            print(
                f"\n(video accuracy in %, mca = mean class accuracy; {args.test_segments} "
                f"segments x {args.test_crops} crop(s); corrupt test videos replaced: "
                f"{corrupt}; {time.time() - start:.0f} s) -> {path}",
                flush=True,
            )
        return metrics
    except NonFiniteLoss as err:
        raise SystemExit(str(err)) from None
    finally:
        if args.distributed and dist.is_initialized():
            dist.destroy_process_group()


def class_names(args: argparse.Namespace) -> list[str]:
    """The dataset's class names, in label order."""
    if not hasattr(args, "_class_names"):
        if args.dataset in ("synthetic", "ucf101"):
            from attnvideo.data import read_class_index

            args._class_names = read_class_index(Path(args.annotations) / "classInd.txt")
        else:
            ds = build_dataset(args, "rgb", False, False, {"mean": (0,) * 3, "std": (1,) * 3})
            args._class_names = list(ds.classes)
    return args._class_names


def num_classes_of(args: argparse.Namespace) -> int:
    return len(class_names(args))


if __name__ == "__main__":
    main(get_args_parser().parse_args())
