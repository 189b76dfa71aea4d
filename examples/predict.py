"""Classify video files with the streams that ``examples/train_stacnn.py`` trained.

For each video it samples the test snippets as the training run's evaluation does (its
``--test-segments`` segments, ``--test-crops`` crops), computes the optical flow (cached
in ``--flow-cache``), runs the RGB and flow streams of one run, fuses them as TSN does
(``--fusion-weights``, 1 : 1.5 by default) and prints the top classes with their
probabilities and each stream's temporal weights; ``--figures-dir`` also saves the RGB
segments with the spatial attention and the temporal weights drawn on them.

Pass the training run's flags (the script parses them with the training script's parser
and reads the trained weights from ``--output-dir``); it stops with a clear message when
those flags do not match the finished training::

    python examples/train_stacnn.py --output-dir runs/stacnn
    python examples/predict.py my_video.mp4 other.avi --output-dir runs/stacnn

It prints one JSON line per video. A video that cannot be decoded is reported on stderr
and the others are still classified (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.utils.data import default_collate

from attnvideo import viz
from attnvideo.data import VideoDataset, VideoRecord

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so that the training script imports when loaded by path
    sys.path.insert(0, str(HERE))


def get_args_parser() -> argparse.ArgumentParser:
    """The flags of this script; every other flag goes to the training script's parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,  # "--figures 1" is the training script's flag, not --figures-dir
        epilog="Every other flag is the training run's: see python examples/train_stacnn.py "
        "--help. Give the ones the run was trained with (at least --output-dir).",
    )
    parser.add_argument("videos", nargs="+", type=Path, help="video files to classify")
    parser.add_argument(
        "--run",
        default=None,
        help="which trained run to use (default: the last of the training run's --runs)",
    )
    parser.add_argument("--top-k", type=int, default=5, help="classes to print per video")
    parser.add_argument(
        "--figures-dir",
        type=Path,
        default=None,
        help="also save each video's RGB segments with the spatial attention and the "
        "temporal weights there (PNG + GIF, attnvideo.viz)",
    )
    parser.add_argument(
        "--flow-cache",
        type=Path,
        default=None,
        help="folder for the videos' optical flow (default: OUTPUT_DIR/predict-flow)",
    )
    return parser


def finished(train, args, run: str, stream: str) -> Path:
    """The folder of a finished stream; stop with a clear message when there is none."""
    key = train.stream_key(run, stream)
    folder = args.output_dir / key
    if not ((folder / "done.json").is_file() and (folder / "final.safetensors").is_file()):
        raise SystemExit(
            f"predict: no finished training of {key} in {folder}; run "
            "examples/train_stacnn.py with these flags first (it writes done.json there)"
        )
    return folder


def load_stream(train, args, run: str, stream: str, num_classes: int):
    """The trained model of one stream, checked against the flags it was trained with."""
    temporal, spatial = train.RUNS[run]
    key = train.stream_key(run, stream)
    folder = finished(train, args, run, stream)
    done, weights = folder / "done.json", folder / "final.safetensors"
    trained = json.loads(done.read_text()).get("config", {})
    wanted = train.job_signature(args, run, stream)
    differ = sorted(k for k in set(trained) | set(wanted) if trained.get(k) != wanted.get(k))
    if differ:
        shown = ", ".join(f"{k}: trained {trained.get(k)!r}, given {wanted.get(k)!r}"
                          for k in differ)  # fmt: skip
        raise SystemExit(f"predict: {key} was trained with other settings ({shown})")
    model = train.build_model(args, stream, temporal, spatial, num_classes)
    model.load_state_dict(load_file(str(weights), device="cpu"))
    return model.to(args.device).eval()


class UnreadableVideo(Exception):
    """A video that cannot be decoded."""


def video_dataset(train, args, run: str, video: Path, stream: str, model, flow_cache: Path):
    """A one-video test dataset with the options of the run's own test datasets."""
    spatial = train.RUNS[run][1] and stream == "rgb"
    options, normalize = train.dataset_options(args, stream, spatial, False, model.data_config)
    options.update(flow_root=flow_cache, frame_dirs=False)  # a video file, its own flow
    ds = VideoDataset([VideoRecord(video.name, 0)], video.parent, ["?"], **options)
    ds.normalize = normalize
    return ds


@torch.inference_mode()
def classify(train, args, run: str, models: dict, video: Path, flow_cache: Path) -> dict:
    """Fused logits, and each stream's logits and temporal weights, of one video."""
    out: dict = {"streams": {}}
    fused = None
    for stream, model in models.items():
        ds = video_dataset(train, args, run, video, stream, model, flow_cache)
        try:
            sample = ds[0]
        except RuntimeError as err:  # the dataset's "no readable video" after a decode error
            raise UnreadableVideo(str(err)) from err
        batch = default_collate([sample])
        x, motion, crops = train.model_inputs(batch, stream, args.device, ds.normalize)
        result = model(x, motion=motion, chunk_frames=train.eval_chunk(args))
        logits = result.logits.float().reshape(1, crops, -1).mean(1)[0].cpu()
        weights = result.temporal_weights.float().reshape(crops, -1).mean(0).cpu()
        out["streams"][stream] = {"logits": logits, "temporal_weights": weights}
        if stream == "rgb":  # first (centre) crop, for the figures
            cfg = model.data_config
            out["frames"] = viz.to_uint8_frames(x[0].cpu(), mean=cfg["mean"], std=cfg["std"])
            spatial_map = result.spatial_attention
            out["spatial"] = None if spatial_map is None else spatial_map[0].float().cpu()
            out["rgb_weights"] = result.temporal_weights[0].float().cpu()
        weight = args.fusion_weights[0 if stream == "rgb" else 1]
        scaled = weight * logits.double() if len(models) == 2 else logits.double()
        fused = scaled if fused is None else fused + scaled
    out["logits"] = fused
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    own, rest = get_args_parser().parse_known_args(argv)
    import train_stacnn as train  # beside this script: its parser, models and data

    args = train.resolve_args(train.get_args_parser().parse_args(rest))
    run = own.run or args.runs[-1]
    if run not in train.RUNS:
        raise SystemExit(f"--run: unknown run {run!r}; expected one of {list(train.RUNS)}")
    if own.top_k < 1:
        raise SystemExit(f"--top-k: expected a positive int, got {own.top_k}")
    missing = [str(v) for v in own.videos if not v.is_file()]
    if missing:
        raise SystemExit(f"predict: no such video file(s): {', '.join(missing)}")
    train.init_distributed(args)
    train.check_dataset(args)
    for stream in args.streams:
        finished(train, args, run, stream)
    classes = train.class_names(args)
    num_classes = len(classes)
    models = {stream: load_stream(train, args, run, stream, num_classes) for stream in args.streams}
    flow_cache = own.flow_cache or args.output_dir / "predict-flow"
    results, failed = [], 0
    for video in own.videos:
        try:
            scores = classify(train, args, run, models, video.resolve(), flow_cache)
        except UnreadableVideo as err:
            print(f"predict: {video}: cannot read the video ({err})", file=sys.stderr)
            failed += 1
            continue
        probs = scores["logits"].softmax(-1)
        top = probs.topk(min(own.top_k, num_classes))
        line = {
            "video": str(video),
            "run": run,
            "top": [[classes[i], round(float(p), 4)] for p, i in zip(*top, strict=True)],
            "temporal_weights": {
                s: [round(float(w), 4) for w in v["temporal_weights"]]
                for s, v in scores["streams"].items()
            },
        }
        if own.figures_dir is not None and "frames" in scores:
            png, gif = viz.save_attention_figures(
                own.figures_dir / f"{run}-{video.stem}",
                scores["frames"],
                scores["spatial"],
                scores["rgb_weights"],
                title=f"{run}: {video.stem} (predicted {line['top'][0][0]})",
            )
            line["figures"] = [str(png), str(gif)]
        print(json.dumps(line), flush=True)
        results.append({**line, "logits": scores["logits"], "streams": scores["streams"]})
    if failed:
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    main()
