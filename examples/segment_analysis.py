"""Which segments matter? Segment-level analysis of a finished synthetic training run.

The synthetic dataset records when each clip's actor performs its class motion
(``annotations.json``: ``action_window``). For every stream that
``examples/train_stacnn.py`` trained, this script evaluates the test split one clip at a
time and reports, in video top-1 %:

- ``average``: the segment logits averaged (TSN's consensus);
- ``oracle``: the segment logits averaged over the segments whose snippet overlaps the
  action window only (all segments when none does): what a perfect temporal attention
  would give with the same per-segment classifier;
- ``learned``: the model's own consensus (its temporal weights; equals ``average`` for
  TSN, and the accuracy that ``train_stacnn.py`` printed);
- ``weight_on_action`` / ``uniform_share``: the mean share of the learned temporal weight
  on the action segments, against the share 1/T weights would give.

Run it with the flags of the training run (it parses them with the training script's
parser and reads ``--output-dir``)::

    python examples/train_stacnn.py --seed 1 --output-dir runs/seed1
    python examples/segment_analysis.py --seed 1 --output-dir runs/seed1

It prints one JSON line per stream and writes ``segments.json`` in the output folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from attnvideo.data import plan_snippets, probe_video
from attnvideo.data.flow import flow_cache_path, load_or_compute_flow

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so that the training script imports when loaded by path
    sys.path.insert(0, str(HERE))


def action_segments(ds, index: int, window: tuple[int, int]) -> torch.Tensor:
    """(T,) bool: which test snippets of video ``index`` overlap the action window."""
    path = ds.root / ds.records[index].path
    frames = probe_video(path).num_frames
    if ds.uses_flow:  # as the dataset does: frames that both the video and its flow have
        cache = flow_cache_path(path, ds.root, ds.flow_root)
        frames = min(frames, load_or_compute_flow(path, cache, ds.flow_method).shape[0] + 1)
    plan = plan_snippets(frames, ds.num_segments, ds.new_length, flow=ds.uses_flow)
    if ds.uses_flow and not ds.uses_rgb:  # field i moves frame i to i + 1
        spans = [(int(f.min()), int(f.max()) + 2) for f in plan.flow_fields]
    else:
        spans = [(int(c), int(c) + 1) for c in plan.rgb_frames]
    start, stop = window
    return torch.tensor([lo < stop and hi > start for lo, hi in spans])


def _top1(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (scores.argmax(-1) == labels).float().mean().item()


def analyse(train, args) -> dict[str, dict[str, float]]:
    """Accuracies and weight shares of every trained stream (see the module docstring)."""
    annotations = json.loads((Path(args.video_root).parent / "annotations.json").read_text())
    num_classes = train.num_classes_of(args)
    results = {}
    for run in args.runs:
        temporal, spatial = train.RUNS[run]
        for stream in args.streams:
            key = train.stream_key(run, stream)
            weights_file = args.output_dir / key / "final.safetensors"
            if not weights_file.exists():
                continue
            model = train.build_model(args, stream, temporal, spatial, num_classes)
            model.load_state_dict(load_file(str(weights_file)))
            model.eval()
            ds = train.build_dataset(args, stream, spatial and stream == "rgb", False,
                                     model.data_config)  # fmt: skip
            if ds.num_clips != 1:
                raise SystemExit("segment_analysis: expects one clip per test video")
            logits, weights, labels, action = [], [], [], []
            with torch.inference_mode():
                for i in range(len(ds)):
                    sample = ds.normalize(ds[i])
                    motion = sample.get("flow") if stream == "rgb" else None
                    out = model(sample[stream][None],
                                motion=None if motion is None else motion[None])  # fmt: skip
                    record = ds.records[sample["video_index"]]
                    logits.append(out.segment_logits[0].float())
                    weights.append(out.temporal_weights[0].float())
                    labels.append(record.label)
                    window = annotations["videos"][record.path]["action_window"]
                    action.append(action_segments(ds, sample["video_index"], window))
            seg, w, y = torch.stack(logits), torch.stack(weights), torch.tensor(labels)
            on = torch.stack(action).float()
            oracle_w = torch.where(on.sum(1, keepdim=True) > 0, on, torch.ones_like(on))
            oracle_w = oracle_w / oracle_w.sum(1, keepdim=True)
            results[key] = {
                "average": _top1(seg.mean(1), y),
                "oracle": _top1(torch.einsum("bt,btk->bk", oracle_w, seg), y),
                "learned": _top1(torch.einsum("bt,btk->bk", w, seg), y),
                "weight_on_action": (w * on).sum(1).mean().item(),
                "uniform_share": on.mean().item(),
            }
    return results


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    import train_stacnn as train  # beside this script: its parser, models and data

    args = train.resolve_args(train.get_args_parser().parse_args(argv))
    if args.dataset != "synthetic":
        raise SystemExit("segment_analysis: needs the synthetic dataset's action windows")
    train.init_distributed(args)
    train.prepare_data(args)
    results = analyse(train, args)
    if not results:
        raise SystemExit(f"segment_analysis: no trained stream in {args.output_dir}")
    for key, r in results.items():
        print(json.dumps({"stream": key, **{k: round(v, 3) for k, v in r.items()}}))
    (args.output_dir / "segments.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
