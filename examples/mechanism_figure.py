"""What does the attention do? A figure of the mechanism, for test clips chosen by a rule.

For a finished synthetic run of ``attnvideo-train`` (``examples/train_stacnn.py``), this
script evaluates the RGB and flow streams of one run (default: the last of ``--runs``,
``stacnn`` by default) on the test split, one clip at a time, and

- draws, for the clips chosen by the rule below, the RGB frame of every test segment with
  the actor (white circle) and the context cue (magenta square) outlined, the RGB
  stream's spatial attention split into its parts (the motion map ``M`` from the flow,
  the learned map ``A``, and ``S = M + A - M * A``) as heatmaps on one fixed ``[0, 1]``
  scale, and the temporal weights of the flow and RGB streams per segment, with the
  segments that overlap the recorded action window shaded and ``1 / T`` (TSN's uniform
  weight) dashed: one PNG (default ``docs/img/mechanism.png``);
- measures, over **all** test clips: the mean of ``A`` inside the cue box, outside it and
  on the actor; the mean of ``M`` on the actor and elsewhere; the temporal weight mass on
  the action segments against the share ``1 / T`` weights would give (as
  ``segment_analysis.py`` defines it); written with the per-clip numbers to a JSON file
  (default: the PNG's path with suffix ``.json``).

**The rule** (no clip is picked by hand): for each of the first ``--clip-classes`` classes
(4 by default), the first clip of the split's test list (``testlist01.txt`` for split 1,
in file order) whose context cue shows its own class; a class without such a clip is left
out. Every outcome is shown, right or wrong, and the predictions are printed.

The actor and the cue are located by rendering the clip again
(:func:`attnvideo.data.synthetic.render_action` is deterministic; the clip's file name
gives its index via ``SyntheticConfig.locate``), checked against ``annotations.json``.
A map of ``h x w`` cells is compared with a region by giving every input pixel the value
of the cell it falls in (the maps are shown the same way, unsmoothed); the mean over a
region is the mean over its pixels, averaged over segments and clips.

Run it with the flags of the training run (parsed with ``attnvideo-train``'s parser, the
trained streams read from ``--output-dir``), plus its own ``--png``, ``--json`` and
``--clip-classes``::

    attnvideo-train --output-dir runs/default
    python examples/mechanism_figure.py --output-dir runs/default

It prints the chosen clips, their predictions and the all-clips statistics as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from attnvideo import viz
from attnvideo.data.synthetic import SyntheticConfig, render_action
from attnvideo.engine import StreamSpec, TrainConfig, load_run
from attnvideo.engine.distributed import DistEnv
from attnvideo.engine.inputs import build_dataset, prepare_data
from attnvideo.functional import fuse_streams
from attnvideo.train import config_from_args, get_args_parser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment_analysis import action_segments, snippet_plan  # one rule, one home

ROOT = Path(__file__).resolve().parents[1]
RULE = (
    "for each of the first {n} classes, the first clip of testlist0{split}.txt (file order) "
    "whose context cue shows its own class; every outcome shown, right or wrong"
)
_OWN = ("png", "json", "clip_classes")


# ----------------------------------------------------------------------------- data


def choose_clips(paths: list[str], labels: list[int], annotations: dict, classes: int) -> list[int]:
    """Indices (in test-list order) of the clips the rule chooses, in class order.

    Args:
        paths: The test videos' relative paths, in test-list order.
        labels: Their labels.
        annotations: ``annotations.json`` of the synthetic dataset.
        classes: The rule takes classes ``0 .. classes - 1``.

    Example:
        >>> ann = {"videos": {"a": {"cue_label": 1}, "b": {"cue_label": 0},
        ...                   "c": {"cue_label": 1}, "d": {"cue_label": 1}}}
        >>> choose_clips(["a", "b", "c", "d"], [0, 0, 1, 1], ann, classes=2)
        [1, 2]
    """
    chosen: dict[int, int] = {}
    for i, (path, label) in enumerate(zip(paths, labels, strict=True)):
        own = annotations["videos"][path]["cue_label"] == label
        if label < classes and label not in chosen and own:
            chosen[label] = i
    return [chosen[k] for k in sorted(chosen)]


def _input_geometry(frame_hw: tuple[int, int], resize: int, crop: int) -> tuple[float, ...]:
    """``(sx, sy, left, top)``: frame pixel ``x`` is input ``(x + 0.5) * sx - 0.5 - left``.

    The test transform: the short side resized to ``resize``, then a centre crop.
    """
    h, w = frame_hw
    h2, w2 = (resize, max(1, round(w * resize / h))) if h <= w else (round(h * resize / w), resize)
    return w2 / w, h2 / h, float((w2 - crop) // 2), float((h2 - crop) // 2)


def _regions(clip, frame: int, geometry: tuple[float, ...], size: int) -> dict[str, np.ndarray]:
    """Boolean ``(size, size)`` masks of the actor disc and the cue box in the input."""
    sx, sy, left, top = geometry
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y, r = (float(v) for v in clip.actor_track[frame])
    cx, cy = (x + 0.5) * sx - 0.5 - left, (y + 0.5) * sy - 0.5 - top
    masks = {"actor": np.hypot(xs - cx, ys - cy) <= r * math.sqrt(sx * sy)}
    if clip.cue_box is not None:
        x0, y0, x1, y1 = clip.cue_box[frame]
        px, py = xs + 0.5, ys + 0.5  # pixel centres, in edge coordinates
        masks["cue"] = (
            (px >= x0 * sx - left) & (px < x1 * sx - left)
            & (py >= y0 * sy - top) & (py < y1 * sy - top)
        )  # fmt: skip
    return masks


def _cells(maps: np.ndarray, size: int) -> np.ndarray:
    """``(T, h, w)`` maps to ``(T, size, size)``: each pixel gets the value of its cell."""
    h, w = maps.shape[-2:]
    rows = np.minimum(np.arange(size) * h // size, h - 1)
    cols = np.minimum(np.arange(size) * w // size, w - 1)
    return maps[:, rows][:, :, cols]


def _mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    return float(values[mask].mean()) if mask is not None and mask.any() else math.nan


def clip_numbers(maps: dict[str, np.ndarray], masks: list[dict], on: np.ndarray) -> dict:
    """Region means of one clip's maps, per segment (NaN where a region is absent)."""
    rows: dict[str, list[float]] = {}
    for t, region in enumerate(masks):
        actor, cue = region["actor"], region.get("cue")
        values = {
            "A_cue": _mean(maps["A"][t], cue),
            "A_outside_cue": _mean(maps["A"][t], ~cue if cue is not None else None),
            "A_actor": _mean(maps["A"][t], actor),
            "A_elsewhere": _mean(maps["A"][t], ~actor & (~cue if cue is not None else True)),
            "M_actor": _mean(maps["M"][t], actor),
            "M_elsewhere": _mean(maps["M"][t], ~actor),
            "M_actor_action": _mean(maps["M"][t], actor) if on[t] else math.nan,
            "M_actor_still": math.nan if on[t] else _mean(maps["M"][t], actor),
            "S_actor": _mean(maps["S"][t], actor),
            "S_cue": _mean(maps["S"][t], cue),
        }
        for key, value in values.items():
            rows.setdefault(key, []).append(value)
    return {k: np.asarray(v) for k, v in rows.items()}


def _nanmean(values: list[np.ndarray] | np.ndarray) -> float | None:
    flat = np.concatenate([np.ravel(v) for v in values]) if isinstance(values, list) else values
    flat = flat[~np.isnan(flat)]
    return float(flat.mean()) if flat.size else None


# ----------------------------------------------------------------------------- evaluation


def evaluate_clips(cfg: TrainConfig, run: str) -> dict[str, Any]:
    """Every test clip through the run's RGB and flow streams: maps, weights, regions."""
    data_root = Path(cfg.video_root).parent
    annotations = json.loads((data_root / "annotations.json").read_text())
    synthetic = SyntheticConfig(**json.loads((data_root / "synthetic.json").read_text())["config"])
    info = load_run(cfg.output_dir)
    if info.test.get("crops", 1) != 1:
        raise SystemExit("mechanism_figure: expects one test crop (--test-crops 1)")
    streams = info.streams_of(run)
    if set(streams) != {"rgb", "flow"}:
        raise SystemExit(f"mechanism_figure: run {run!r} needs both streams, has {list(streams)}")
    models = {m: streams[m].load().eval() for m in ("rgb", "flow")}
    if models["rgb"].spatial is None or models["rgb"].guidance != "flow":
        raise SystemExit(f"mechanism_figure: run {run!r} has no flow-guided spatial attention")
    sets = {
        m: build_dataset(cfg, StreamSpec.of(run, m), False, models[m].data_config)
        for m in ("rgb", "flow")
    }
    size = int(info.test["input_size"])
    clips: list[dict[str, Any]] = []
    with torch.inference_mode():
        for i in range(len(sets["rgb"])):
            sample = sets["rgb"].normalize(sets["rgb"][i])
            flow_sample = sets["flow"].normalize(sets["flow"][i])
            index = sample["video_index"]
            if flow_sample["video_index"] != index or sets["rgb"].num_clips != 1:
                raise SystemExit("mechanism_figure: expects one clip per test video")
            rgb = models["rgb"](sample["rgb"][None], motion=sample["flow"][None])
            flow = models["flow"](flow_sample["flow"][None])
            record = sets["rgb"].records[index]
            meta = annotations["videos"][record.path]
            label, clip_index = synthetic.locate(record.path)
            clip = render_action(label, synthetic, index=clip_index)
            if (
                list(clip.action_window) != meta["action_window"]
                or clip.cue_label != meta["cue_label"]
            ):
                raise SystemExit(f"mechanism_figure: {record.path} renders differently")
            window = tuple(meta["action_window"])
            frames = snippet_plan(sets["rgb"], index).rgb_frames.tolist()
            geometry = _input_geometry(clip.frames.shape[1:3], int(info.test["resize"]), size)
            maps = {
                "M": rgb.motion_map[0, :, 0].float().numpy(),
                "A": rgb.learned_map[0, :, 0].float().numpy(),
                "S": rgb.spatial_attention[0, :, 0].float().numpy(),
            }
            on_rgb = action_segments(sets["rgb"], index, window).numpy()
            masks = [_regions(clip, f, geometry, size) for f in frames]
            numbers = clip_numbers({k: _cells(v, size) for k, v in maps.items()}, masks, on_rgb)
            clips.append(
                {
                    "path": record.path,
                    "label": record.label,
                    "cue_label": clip.cue_label,
                    "action_window": list(window),
                    "frames": frames,
                    "on_action": {
                        "rgb": on_rgb.tolist(),
                        "flow": action_segments(sets["flow"], index, window).numpy().tolist(),
                    },
                    "logits": {"rgb": rgb.logits[0].float(), "flow": flow.logits[0].float()},
                    "weights": {
                        "rgb": rgb.temporal_weights[0].float().numpy(),
                        "flow": flow.temporal_weights[0].float().numpy(),
                    },
                    "maps": maps,
                    "numbers": numbers,
                    "image": viz.to_uint8_frames(
                        sample["rgb"],
                        mean=models["rgb"].data_config["mean"],
                        std=models["rgb"].data_config["std"],
                    ),
                    "clip": clip._replace(frames=None, flow=None),  # outlines: track and box
                    "geometry": geometry,
                }
            )
    return {"classes": list(info.classes), "fusion": info.fusion_weights, "clips": clips}


def _predictions(clip: dict, classes: list[str], fusion: tuple[float, float]) -> dict[str, str]:
    z = dict(clip["logits"])
    z["fused"] = fuse_streams(z["rgb"], z["flow"], fusion)  # the library's one fusion rule
    return {k: classes[int(v.argmax())] for k, v in z.items()}


def _weight_stats(clips: list[dict], stream: str) -> dict[str, float]:
    w = np.stack([c["weights"][stream] for c in clips])
    on = np.stack([np.asarray(c["on_action"][stream], dtype=float) for c in clips])
    top_on = on[np.arange(len(on)), w.argmax(1)]
    return {
        "weight_on_action": float((w * on).sum(1).mean()),
        "uniform_share": float(on.mean()),
        "top_segment_on_action": float(top_on.mean()),
        "mean_weight_by_segment": np.round(w.mean(0), 4).tolist(),
    }


def summarise(result: dict[str, Any], run: str, classes: int, split: int) -> dict[str, Any]:
    """The JSON record: rule, chosen clips with their numbers, all-clips statistics."""
    clips, names, fusion = result["clips"], result["classes"], result["fusion"]
    keys = list(clips[0]["numbers"])
    labels = [c["label"] for c in clips]
    fused = [_predictions(c, names, fusion)["fused"] for c in clips]
    cue_own = [c["cue_label"] == c["label"] for c in clips]
    overall: dict[str, Any] = {
        "clips": len(clips),
        "segments": int(sum(len(c["frames"]) for c in clips)),
        "fused_top1": 100.0
        * float(np.mean([names[y] == p for y, p in zip(labels, fused, strict=True)])),
        **{k: _nanmean([c["numbers"][k] for c in clips]) for k in keys},
        "A_cue_own_class_cue": _nanmean(
            [c["numbers"]["A_cue"] for c, own in zip(clips, cue_own, strict=True) if own]
        ),
        "A_cue_other_class_cue": _nanmean(
            [c["numbers"]["A_cue"] for c, own in zip(clips, cue_own, strict=True) if not own]
        ),
        "A_cue_above_outside": _nanmean(
            [
                (c["numbers"]["A_cue"] > c["numbers"]["A_outside_cue"] + 1e-6).astype(float)
                for c in clips
                if c["cue_label"] >= 0
            ]
        ),
        "flow": _weight_stats(clips, "flow"),
        "rgb": _weight_stats(clips, "rgb"),
    }
    chosen = choose_clips([c["path"] for c in clips], labels, {"videos": {
        c["path"]: {"cue_label": c["cue_label"]} for c in clips}}, classes)  # fmt: skip
    per_clip = []
    for i in chosen:
        c = clips[i]
        t = len(c["frames"])
        per_clip.append(
            {
                "index_in_test_list": i,
                "path": c["path"],
                "label": names[c["label"]],
                "cue": names[c["cue_label"]] if c["cue_label"] >= 0 else None,
                "action_window": c["action_window"],
                "frames": c["frames"],
                "on_action": c["on_action"],
                "predicted": _predictions(c, names, fusion),
                "weights": {k: np.round(v, 4).tolist() for k, v in c["weights"].items()},
                "uniform_weight": 1.0 / t,
                "flow_weight_on_action": float(
                    (c["weights"]["flow"] * np.asarray(c["on_action"]["flow"])).sum()
                ),
                "rgb_weight_on_action": float(
                    (c["weights"]["rgb"] * np.asarray(c["on_action"]["rgb"])).sum()
                ),
                **{k: _nanmean(c["numbers"][k]) for k in keys},
                "maps": {k: np.round(v, 4).tolist() for k, v in c["maps"].items()},
            }
        )
    return {
        "run": str(run),
        "rule": RULE.format(n=classes, split=split),
        "definitions": {
            "A_cue / A_outside_cue / A_actor": "mean of the learned map A over the input "
            "pixels in the cue box / outside it / in the actor disc (each pixel takes the "
            "value of its feature cell), per segment, then averaged over segments and clips",
            "A_elsewhere": "A over the pixels in neither the cue box nor the actor disc",
            "M_actor / M_elsewhere": "the same for the motion map M, on / off the actor",
            "M_actor_action / M_actor_still": "M on the actor in segments whose RGB frame is "
            "inside / outside the action window",
            "A_cue_above_outside": "share of segments (clips with a cue) with A_cue > "
            "A_outside_cue + 1e-6",
            "weight_on_action": "temporal weight mass on the segments that overlap the action "
            "window (segment_analysis.py's rule), mean over clips",
            "uniform_share": "the same mass for uniform 1/T weights",
            "top_segment_on_action": "share of clips whose largest weight is on such a segment",
            "mean_weight_by_segment": "the weight of segment t, mean over clips",
        },
        "all_clips": overall,
        "chosen": per_clip,
        "_chosen_indices": chosen,
    }


# ----------------------------------------------------------------------------- drawing

_BG, _TEXT, _GRID = (255, 255, 255), (20, 20, 20), (150, 150, 150)
_ACTOR, _CUE = (255, 255, 255), (255, 0, 255)
_FLOW, _RGB, _SHADE = (31, 90, 180), (230, 130, 20), (214, 238, 214)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _outline(draw: ImageDraw.ImageDraw, clip, frame: int, geometry, scale: int, at) -> None:
    sx, sy, left, top = geometry
    x, y, r = (float(v) for v in clip.actor_track[frame])
    cx = ((x + 0.5) * sx - left) * scale + at[0]
    cy = ((y + 0.5) * sy - top) * scale + at[1]
    rr = r * math.sqrt(sx * sy) * scale
    draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), outline=_ACTOR, width=2)
    if clip.cue_box is not None:
        x0, y0, x1, y1 = (float(v) for v in clip.cue_box[frame])
        box = (
            (x0 * sx - left) * scale + at[0],
            (y0 * sy - top) * scale + at[1],
            (x1 * sx - left) * scale + at[0] - 1,
            (y1 * sy - top) * scale + at[1] - 1,
        )
        draw.rectangle(box, outline=_CUE, width=2)


def _dashed(draw: ImageDraw.ImageDraw, x0: float, x1: float, y: float, fill) -> None:
    for x in range(int(x0), int(x1), 6):
        draw.line((x, y, min(x + 3, x1), y), fill=fill, width=1)


def _summary_line(stats: dict[str, Any]) -> str:
    flow, rgb = stats["flow"], stats["rgb"]
    return (
        f"All {stats['clips']} test clips: mean A in the cue box {stats['A_cue']:.2f}, outside "
        f"it {stats['A_outside_cue']:.2f}, on the actor {stats['A_actor']:.2f}; mean M on the "
        f"actor {stats['M_actor']:.2f}, elsewhere {stats['M_elsewhere']:.2f}; temporal weight "
        f"on action segments: flow {flow['weight_on_action']:.2f} (1/T gives "
        f"{flow['uniform_share']:.2f}), RGB {rgb['weight_on_action']:.2f} (1/T gives "
        f"{rgb['uniform_share']:.2f})."
    )


def draw_figure(result: dict[str, Any], record: dict[str, Any]) -> Image.Image:
    """The PNG: a header (rule, legend, colour scale) and one block per chosen clip."""
    clips, chosen = result["clips"], record["_chosen_indices"]
    t = len(clips[0]["frames"]) if clips else 1
    size = clips[0]["image"].shape[1] if clips else 64
    scale = max(1, round(120 / size))
    panel, pad, label_w, bars_h = size * scale, 6, 120, 130
    width = max(1000, label_w + t * (panel + pad) + pad)
    f_small, f_text, f_title = _font(12), _font(14), _font(18)
    rule = "Clips chosen by rule: " + record["rule"] + "."
    header_lines = [
        f"STA-CNN mechanism, run '{record['run']}': spatial attention of the RGB stream "
        f"(M motion from flow, A learned, S = M + A - MA) and temporal weights",
        *textwrap.wrap(rule, width=max(60, width // 8)),
        *textwrap.wrap(_summary_line(record["all_clips"]), width=max(60, width // 8)),
    ]
    header_h = 30 + 20 * len(header_lines) + 50
    block_h = 44 + 4 * (panel + pad) + bars_h + 30
    canvas = Image.new("RGB", (width, header_h + block_h * max(1, len(chosen))), _BG)
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 6), header_lines[0], fill=_TEXT, font=f_title)
    for k, line in enumerate(header_lines[1:]):
        draw.text((pad, 32 + 20 * k), line, fill=_TEXT, font=f_text)
    # Legend: colour scale, outlines, bars.
    y = header_h - 44
    ramp = viz.colorize(np.tile(np.linspace(0, 1, 200), (12, 1)))
    canvas.paste(Image.fromarray(ramp), (pad + 40, y))
    draw.text((pad, y - 1), "map 0", fill=_TEXT, font=f_small)
    draw.text((pad + 246, y - 1), "1  (fixed scale, maps shown at their feature-cell size)",
              fill=_TEXT, font=f_small)  # fmt: skip
    y += 20
    x = pad
    items = [
        ("circle", _ACTOR, "actor (from re-render)"),
        ("box", _CUE, "context cue"),
        ("bar", _FLOW, "flow stream weight"),
        ("bar", _RGB, "RGB stream weight"),
        ("shade", _SHADE, "segment overlaps action window"),
        ("dash", _TEXT, "1/T (uniform)"),
        ("star", (0, 120, 0), "RGB frame in the action window"),
    ]
    for kind, color, text in items:
        if kind == "circle":
            draw.rectangle((x, y, x + 16, y + 16), fill=(90, 90, 90))
            draw.ellipse((x + 2, y + 2, x + 14, y + 14), outline=color, width=2)
        elif kind == "box":
            draw.rectangle((x, y, x + 16, y + 16), fill=(90, 90, 90))
            draw.rectangle((x + 2, y + 2, x + 14, y + 14), outline=color, width=2)
        elif kind == "dash":
            _dashed(draw, x, x + 16, y + 8, color)
        elif kind == "star":
            draw.text((x + 4, y), "*", fill=color, font=f_text)
        else:
            draw.rectangle((x, y + 2, x + 16, y + 14), fill=color)
        draw.text((x + 22, y + 1), text, fill=_TEXT, font=f_small)
        x += 28 + int(draw.textlength(text, font=f_small)) + 14

    rows = [("RGB frame", None), ("M: motion", "M"), ("A: learned", "A"), ("S = M+A-MA", "S")]
    for b, (i, info) in enumerate(zip(chosen, record["chosen"], strict=True)):
        c = clips[i]
        top = header_h + b * block_h
        draw.line((0, top, width, top), fill=_GRID, width=1)
        pred = info["predicted"]
        verdict = "right" if pred["fused"] == info["label"] else "wrong"
        title = (
            f"{Path(c['path']).stem}: class {info['label']}, cue {info['cue']}, action frames "
            f"{c['action_window'][0]}-{c['action_window'][1] - 1}; predicted {pred['fused']} "
            f"({verdict}; RGB {pred['rgb']}, flow {pred['flow']})"
        )
        draw.text((pad, top + 6), title, fill=_TEXT, font=f_text)
        y0 = top + 44
        for s in range(t):
            x0 = label_w + s * (panel + pad)
            on = c["on_action"]["rgb"][s]
            head = f"seg {s + 1}, frame {c['frames'][s]}" + (" *" if on else "")
            draw.text((x0, y0 - 18), head, fill=(0, 120, 0) if on else _TEXT, font=f_small)
        for r, (name, key) in enumerate(rows):
            y = y0 + r * (panel + pad)
            draw.text((pad, y + panel // 2 - 8), name, fill=_TEXT, font=f_text)
            for s in range(t):
                frame = c["image"][s]
                if key is not None:
                    frame = viz.overlay_heatmap(frame, _cells(c["maps"][key][s : s + 1], size)[0])
                at = (label_w + s * (panel + pad), y)
                img = Image.fromarray(frame).resize((panel, panel), Image.Resampling.NEAREST)
                canvas.paste(img, at)
                _outline(draw, c["clip"], c["frames"][s], c["geometry"], scale, at)
        # Bars: flow and RGB temporal weights per segment.
        y = y0 + 4 * (panel + pad) + 4
        base = y + bars_h - 22
        w = c["weights"]
        top_w = max(float(w["flow"].max()), float(w["rgb"].max()), 1.0 / t) * 1.15
        height = bars_h - 40
        draw.text((pad, y + 10), "temporal\nweights", fill=_TEXT, font=f_text)
        draw.line((label_w - 8, base - height, label_w - 8, base), fill=_TEXT)
        for v in (0.0, top_w / 1.15):
            yy = base - height * v / top_w
            draw.line((label_w - 12, yy, label_w - 8, yy), fill=_TEXT)
            draw.text((label_w - 48, yy - 7), f"{v:.2f}", fill=_TEXT, font=f_small)
        for s in range(t):
            x0 = label_w + s * (panel + pad)
            if c["on_action"]["flow"][s] or c["on_action"]["rgb"][s]:
                draw.rectangle((x0, base - height - 4, x0 + panel, base), fill=_SHADE)
            bar = panel // 4
            for k, (stream, color) in enumerate((("flow", _FLOW), ("rgb", _RGB))):
                value = float(w[stream][s])
                bx = x0 + panel // 2 - bar - 2 + k * (bar + 4)
                draw.rectangle((bx, base - height * value / top_w, bx + bar, base), fill=color)
                draw.text((bx - 2, base + 3), f"{value:.2f}", fill=color, font=f_small)
            _dashed(draw, x0, x0 + panel, base - height / t / top_w, _TEXT)
        draw.line((label_w - 8, base, width - pad, base), fill=_TEXT)
    return canvas


# ----------------------------------------------------------------------------- main


def get_parser() -> argparse.ArgumentParser:
    """``attnvideo-train``'s flags plus ``--png``, ``--json`` and ``--clip-classes``."""
    p = argparse.ArgumentParser(
        prog="mechanism_figure.py",
        parents=[get_args_parser(add_help=False)],
        description="Figure of the STA-CNN mechanism on clips chosen by a rule",
    )
    p.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "mechanism.png")
    p.add_argument("--json", type=Path, default=None, help="default: the PNG's path, .json")
    p.add_argument("--clip-classes", type=int, default=4, help="classes the rule takes")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = vars(get_parser().parse_args(argv))
    own = {k: args.pop(k) for k in _OWN}
    cfg = config_from_args(argparse.Namespace(**args))
    if cfg.dataset != "synthetic":
        raise SystemExit("mechanism_figure: needs the synthetic dataset's actor, cue, windows")
    prepare_data(cfg, DistEnv(0, 1, 0, torch.device("cpu")))
    run = cfg.runs[-1]
    result = evaluate_clips(cfg, run)
    record = summarise(result, run, own["clip_classes"], cfg.split)
    png = Path(own["png"])
    path = Path(own["json"]) if own["json"] is not None else png.with_suffix(".json")
    png.parent.mkdir(parents=True, exist_ok=True)
    image = draw_figure(result, record)  # a 256-colour palette: a quarter of the bytes
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        png, optimize=True
    )
    record.pop("_chosen_indices")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, allow_nan=False))
    print(json.dumps({"rule": record["rule"]}))
    for clip in record["chosen"]:
        shown = ("path", "label", "cue", "action_window", "predicted", "flow_weight_on_action")
        print(json.dumps({k: clip[k] for k in shown}))
    print(json.dumps({"all_clips": record["all_clips"]}))
    print(f"wrote {png} and {path}")
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
