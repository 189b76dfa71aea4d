"""Which segments matter? Segment-level analysis of a finished synthetic training run.

The synthetic dataset records when each clip's actor performs its class motion
(``annotations.json``: ``action_window``). For every stream that ``attnvideo-train``
(``examples/train_stacnn.py``) trained, this script evaluates the test split one clip at a
time and reports, in video top-1 %:

- ``average``: the segment logits averaged (TSN's consensus);
- ``oracle``: the segment logits averaged over the segments whose snippet overlaps the
  action window only (all segments when none does): what a perfect temporal attention
  would give with the same per-segment classifier;
- ``learned``: the model's own consensus (its temporal weights; equals ``average`` for
  TSN, and the accuracy that ``train_stacnn.py`` printed);
- ``weight_on_action`` / ``uniform_share``: the mean share of the learned temporal weight
  on the action segments, against the share 1/T weights would give.

Run it with the flags of the training run (it parses them with ``attnvideo-train``'s
parser, reads the trained streams from ``--output-dir`` through its ``run.json``)::

    python examples/train_stacnn.py --seed 1 --output-dir runs/seed1
    python examples/segment_analysis.py --seed 1 --output-dir runs/seed1

It prints one JSON line per stream and writes ``segments.json`` in the output folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from attnvideo.data import SnippetPlan, plan_snippets, probe_video
from attnvideo.data.flow import flow_cache_path, load_or_compute_flow
from attnvideo.engine import TrainConfig, load_run
from attnvideo.engine.distributed import DistEnv
from attnvideo.engine.inputs import build_dataset, prepare_data
from attnvideo.train import config_from_args, get_args_parser


def snippet_plan(ds, index: int) -> SnippetPlan:
    """The snippets the test set ``ds`` (one clip per video) reads for video ``index``."""
    path = ds.root / ds.records[index].path
    frames = probe_video(path).num_frames
    if ds.uses_flow:  # as the dataset does: frames that both the video and its flow have
        cache = flow_cache_path(path, ds.root, ds.flow_root)
        frames = min(frames, load_or_compute_flow(path, cache, ds.flow_method).shape[0] + 1)
    return plan_snippets(frames, ds.num_segments, ds.new_length, flow=ds.uses_flow)


def action_segments(ds, index: int, window: tuple[int, int]) -> torch.Tensor:
    """(T,) bool: which test snippets of video ``index`` overlap the action window.

    An RGB snippet is its frame; a flow snippet (flow stream) spans its fields' frames.
    """
    plan = snippet_plan(ds, index)
    if ds.uses_flow and not ds.uses_rgb:  # field i moves frame i to i + 1
        spans = [(int(f.min()), int(f.max()) + 2) for f in plan.flow_fields]
    else:
        spans = [(int(c), int(c) + 1) for c in plan.rgb_frames]
    start, stop = window
    return torch.tensor([lo < stop and hi > start for lo, hi in spans])


def _top1(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (scores.argmax(-1) == labels).float().mean().item()


def analyse(cfg: TrainConfig) -> dict[str, dict[str, float]]:
    """Accuracies and weight shares of every trained stream (see the module docstring)."""
    annotations = json.loads((Path(cfg.video_root).parent / "annotations.json").read_text())
    info = load_run(cfg.output_dir)
    results = {}
    for spec in cfg.specs():
        if spec.key in results or spec.key not in info.streams:
            continue
        model = info.streams[spec.key].load()
        ds = build_dataset(cfg, spec, False, model.data_config)
        if ds.num_clips != 1:
            raise SystemExit("segment_analysis: expects one clip per test video")
        logits, weights, labels, action = [], [], [], []
        with torch.inference_mode():
            for i in range(len(ds)):
                sample = ds.normalize(ds[i])
                motion = sample.get("flow") if spec.stream == "rgb" else None
                out = model(sample[spec.stream][None],
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
        results[spec.key] = {
            "average": _top1(seg.mean(1), y),
            "oracle": _top1(torch.einsum("bt,btk->bk", oracle_w, seg), y),
            "learned": _top1(torch.einsum("bt,btk->bk", w, seg), y),
            "weight_on_action": (w * on).sum(1).mean().item(),
            "uniform_share": on.mean().item(),
        }
    return results


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    cfg = config_from_args(get_args_parser().parse_args(argv))
    if cfg.dataset != "synthetic":
        raise SystemExit("segment_analysis: needs the synthetic dataset's action windows")
    prepare_data(cfg, DistEnv(0, 1, 0, torch.device("cpu")))
    results = analyse(cfg)
    if not results:
        raise SystemExit(f"segment_analysis: no trained stream in {cfg.output_dir}")
    for key, r in results.items():
        print(json.dumps({"stream": key, **{k: round(v, 3) for k, v in r.items()}}))
    (cfg.output_dir / "segments.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
