r"""``attnvideo-train``: train and evaluate STA-CNN and its TSN ablations (RGB, flow, fused).

With no arguments it makes (or reuses) the built-in synthetic action dataset in
``~/.cache/attnvideo``, computes its optical flow, trains TSN and STA-CNN on a tiny CPU
backbone and prints the comparison table with the 400 test clips' 95% intervals::

    attnvideo-train                     # or: python -m attnvideo.train

The paper's recipe on UCF-101 (TSN protocol: 3 segments in training, 25 snippets x 10
crops in testing, RGB and flow streams trained separately and fused 1 : 1.5), on one
process, with torchrun, or under SLURM (``srun``; export ``MASTER_ADDR``/``MASTER_PORT``)::

    attnvideo-train --preset ucf101 --data-root /data/UCF-101 \
        --annotations /data/ucfTrainTestlist --flow-root /data/UCF-101-flow
    torchrun --nproc_per_node=8 -m attnvideo.train --preset ucf101 ...
    srun --ntasks=8 attnvideo-train --preset ucf101 ...

Your own videos: ``--dataset list --data-root DIR --annotations train.txt,test.txt
--classes classes.txt`` (see the "Train on your own data" guide). ``--batch-size`` is the
*global* batch. The run folder (``--output-dir``) describes itself (``run.json``), so
``attnvideo-predict RUN_DIR VIDEO...`` classifies videos with it anywhere.

Errors (missing data, weights not available offline, a diverging loss) end the command
with a message and exit status 2 (bad input) or 1 (failure during the run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .engine import PRESETS, RUNS, TrainConfig, resolve_config
from .engine.config import SYNTHETIC

__all__ = ["config_from_args", "get_args_parser", "main"]


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


def _frame_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 340x256, got {text!r}")
    return int(parts[0]), int(parts[1])


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The command line; flags left at None are filled by the preset."""
    p = argparse.ArgumentParser(
        prog="attnvideo-train",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        add_help=add_help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="fill the recipe (default: the dataset's; list takes ucf101's)",
    )
    g.add_argument(
        "--dataset",
        default=None,
        choices=["synthetic", "ucf101", "hmdb51", "list"],
        help="the data (default: the preset's, else synthetic); with --preset, the recipe "
        "of that preset on this data",
    )
    g.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="video folder (synthetic: the cache folder, default ~/.cache/attnvideo)",
    )
    g.add_argument(
        "--annotations",
        default=None,
        help="split folder (ucf101/hmdb51) or 'train.txt,test.txt' lists (list)",
    )
    g.add_argument(
        "--classes",
        dest="classes_file",
        type=Path,
        default=None,
        metavar="FILE",
        help="class names of a list dataset: one per line (line i = label i), or classInd.txt "
        "lines '<1-based index> <name>' (default: the labels '0', '1', ...)",
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
    size = g.add_mutually_exclusive_group()
    size.add_argument(
        "--short-side",
        type=_positive_int,
        default=None,
        metavar="N",
        help="decode frames resized so that their short side is N pixels (and compute flow "
        "at that size): a 1080p video costs the memory of a small one",
    )
    size.add_argument(
        "--frame-size",
        type=_frame_size,
        default=None,
        metavar="WxH",
        help="decode frames resized to WxH (TSN: 340x256)",
    )
    g.add_argument("--num-segments", type=int, default=None, help="T in training")
    g.add_argument("--new-length", type=int, default=None, help="L flow fields per snippet")
    g.add_argument("--input-size", type=int, default=None)
    g.add_argument("--resize", type=int, default=None, help="test: short side before crops")
    g.add_argument("--test-segments", type=int, default=None, help="T in testing (TSN: 25)")
    g.add_argument("--test-crops", type=int, default=None, choices=[1, 3, 10])
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers per process (default: the preset's, at most the usable CPUs)",
    )
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
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start from timm's pretrained weights (cached, or downloaded when online); "
        "--no-pretrained trains from scratch (default: the preset's)",
    )
    g.add_argument(
        "--pretrained-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="start the backbone from this local timm weights file (.safetensors, .pth) "
        "instead of downloading; the flow stream's first convolution gets TSN's "
        "cross-modality init (RGB filters averaged over channels, replicated to 2L)",
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
    g.add_argument(
        "--partial-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TSN's partial batch norm (default: the preset's)",
    )
    g.add_argument("--fusion-weights", type=float, nargs=2, default=(1.0, 1.5))
    for stream in ("rgb", "flow"):
        g.add_argument(
            f"--init-{stream}",
            type=Path,
            default=None,
            metavar="FILE",
            help=f"start the {stream} stream from these weights: a stream's .safetensors "
            "(e.g. another run's final.safetensors) or a plain timm checkpoint of the "
            "backbone; tensors whose name and shape match are loaded, the others keep "
            "their initialisation and are listed",
        )

    g.add_argument(
        "--ta-from-tsn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start the flow stream with temporal attention from this run's trained TSN "
        "flow stream (flow-avg; trained first if no run reports it) and train it "
        "--ta-epochs at --ta-lr: the attention starts as TSN's average consensus and only "
        "learns where to look (default: the preset's; synthetic on, ucf101/hmdb51 off)",
    )
    g.add_argument("--ta-epochs", type=_positive_int, default=None, help="see --ta-from-tsn")
    g.add_argument("--ta-lr", type=float, default=None, help="see --ta-from-tsn")

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=None, help="global (all processes)")
    g.add_argument("--opt", default=None, choices=["sgd", "adamw"])
    g.add_argument("--lr", type=float, default=None, help="default: preset (rgb / flow)")
    g.add_argument("--flow-lr", type=float, default=None, help="flow stream lr (default --lr)")
    g.add_argument("--flow-epochs", type=int, default=None)
    g.add_argument("--lr-scheduler", default=None, choices=["step", "cosine"])
    g.add_argument("--lr-steps", type=int, nargs="*", default=None, help="epochs of x0.1")
    g.add_argument(
        "--lr-warmup-epochs",
        type=float,
        default=None,
        help="epochs of linear lr warm-up (default: preset; synthetic RGB 2, flow 0)",
    )
    g.add_argument(
        "--flow-lr-warmup-epochs",
        type=float,
        default=None,
        help="flow stream warm-up (default: --lr-warmup-epochs if given, else the preset's)",
    )
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
    g.add_argument(
        "--synthetic-test-videos-per-class",
        type=_non_negative_int,
        default=SYNTHETIC["test_videos_per_class"],
        help="test clips per class (split 1) at least; extra clips are test-only, so "
        "training is unchanged (0 = the videos-per-class share, 9 of 30)",
    )
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


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~attnvideo.engine.TrainConfig` of parsed command-line flags.

    Raises:
        ValueError: Inconsistent flags (an unknown run, ...).

    Example:
        >>> cfg = config_from_args(get_args_parser().parse_args(["--preset", "ucf101",
        ...     "--data-root", "/data/UCF-101", "--no-pretrained", "--no-partial-bn"]))
        >>> cfg.pretrained, cfg.partial_bn, cfg.backbone
        (False, False, 'resnet50.tv_in1k')
    """
    given = dict(vars(args))
    preset = given.pop("preset")
    return resolve_config(preset, **given)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``attnvideo-train``; returns the exit status (0, 1 failure, 2 bad input)."""
    from .data import VideoDecodeError
    from .engine import NonFiniteLoss, OfflineError, train

    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        train(config_from_args(args))
    except (ValueError, FileNotFoundError, OfflineError) as err:
        print(f"attnvideo-train: error: {err}", file=sys.stderr)
        return 2
    except (NonFiniteLoss, VideoDecodeError) as err:
        print(f"attnvideo-train: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
