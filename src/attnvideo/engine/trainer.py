"""Training: the optimiser and schedule, one epoch, one stream (resumable), a whole run.

:func:`train` runs a :class:`~attnvideo.engine.TrainConfig`: the streams of every run
(RGB and flow trained apart, as TSN does), their evaluation, the two-stream fusion, the
figures, and writes ``metrics.json``, ``log.jsonl``, ``config.json``, ``run.json`` and
one folder per stream into ``output_dir``.

Every stream starts from the same seed (same initial weights for shared parts, same data
order); samples are a function of (seed, epoch, index) (:class:`SeededSamples`), so a run
killed and resumed ends exactly as an uninterrupted one, and torchrun with N processes
takes the same optimisation steps as one process.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import viz
from ..data import GroupNormalize
from ..models import STACNN
from .checkpoints import (
    atomic_write,
    init_weights,
    load_checkpoint,
    load_stream_weights,
    save_checkpoint,
    save_final,
)
from .config import StreamRecipe, StreamSpec, TrainConfig
from .distributed import DistEnv, barrier, init_distributed, shutdown
from .evaluation import autocast, compute_metrics, evaluate, fuse_scores, model_inputs
from .inputs import (
    build_dataset,
    check_dataset,
    class_names,
    prepare_data,
    test_loader,
    train_loader,
)
from .rundir import RunRecord
from .streams import ModelSpec, check_pretrained_available

__all__ = [
    "NonFiniteLoss",
    "format_footer",
    "format_table",
    "make_optimizer",
    "make_scheduler",
    "seed_all",
    "train",
    "train_one_epoch",
]


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite (the last good checkpoint is kept)."""


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: STACNN, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over the stream's param groups (no decay on norms)."""
    groups = model.param_groups(lr, cfg.weight_decay)
    if cfg.opt == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)
    if cfg.opt == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"opt: expected 'sgd' or 'adamw', got {cfg.opt!r}")


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, recipe: StreamRecipe, iters_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up, then step decay (x0.1 at ``lr_steps``) or cosine."""
    total = recipe.epochs * iters_per_epoch
    warmup = int(recipe.lr_warmup_epochs * iters_per_epoch)
    milestones = [s * iters_per_epoch for s in recipe.lr_steps]
    cosine = cfg.lr_scheduler == "cosine"

    def factor(it: int) -> float:
        f = min(1.0, (it + 1) / warmup) if warmup else 1.0
        if cosine:
            return f * 0.5 * (1 + math.cos(math.pi * min(it, total) / max(1, total)))
        return f * 0.1 ** sum(it >= m for m in milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    loader: DataLoader,
    epoch: int,
    env: DistEnv,
    *,
    stream: str,
    normalize: GroupNormalize,
    clip_grad: float = 0.0,
    amp: str = "off",
    start_step: int = 0,
    save_every: int = 0,
    checkpoint: Callable[[int, int], None] | None = None,
    on_step: Callable[[], None] | None = None,
    name: str = "",
    folder: Path | None = None,
) -> dict[str, float]:
    """One pass over ``loader`` (which may start mid-epoch at ``start_step``).

    Args:
        model: The stream (possibly wrapped in DDP / compiled).
        optimizer: Its optimiser.
        scheduler: A per-step scheduler.
        scaler: The gradient scaler (fp16).
        loader: Training batches of this process.
        epoch: 0-based epoch.
        env: The processes.
        stream: ``"rgb"`` or ``"flow"``.
        normalize: The dataset's ``normalize``.
        clip_grad: Maximum gradient norm (0 = off).
        amp: ``"off"``, ``"bf16"`` or ``"fp16"``.
        start_step: Steps of this epoch already done.
        save_every: Call ``checkpoint(epoch, step)`` every this many steps (0 = never).
        checkpoint: Saves a mid-epoch checkpoint.
        on_step: Called after every step.
        name: The stream's name, for messages.
        folder: The stream's folder, for messages.

    Returns:
        ``{"loss": mean loss, "accuracy": train accuracy}``.

    Raises:
        NonFiniteLoss: The loss became NaN or infinite.
    """
    model.train()
    steps = start_step + len(loader)
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = seen = 0
    bar = tqdm(
        loader,
        desc=f"{name} epoch {epoch + 1}",
        initial=start_step,
        total=steps,
        disable=not env.is_main,
        leave=False,
        dynamic_ncols=True,
    )
    for step, batch in enumerate(bar, start=start_step):
        x, motion, _ = model_inputs(batch, stream, env.device, normalize)
        target = batch["label"].to(env.device, non_blocking=True)
        with autocast(env.device, amp):
            out = model(x, motion=motion, target=target)
        loss = out.loss
        reduced = loss.detach().float().clone()
        if env.distributed:
            dist.all_reduce(reduced)
            reduced /= env.world_size
        if not math.isfinite(reduced.item()):
            raise NonFiniteLoss(
                f"{name}: loss is {reduced.item()} at epoch {epoch + 1}, step {step + 1}; "
                f"stopped. The last good checkpoint is in {folder} (latest.json); "
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
        if save_every and checkpoint is not None and done % save_every == 0 and done < steps:
            checkpoint(epoch, done)
        if on_step is not None:
            on_step()
    bar.close()
    n = max(1, steps - start_step)
    return {"loss": float(total_loss) / n, "accuracy": correct / max(1, seen)}


def _signature(cfg: TrainConfig, spec: StreamSpec) -> dict[str, Any]:
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
    sig: dict[str, Any] = {k: getattr(cfg, k) for k in keys}
    sig["data_root"] = str(cfg.data_root)
    recipe = cfg.stream_recipe(spec)
    # Here, not in "stream", so that streams trained when it was one value stay reusable.
    sig["lr_warmup_epochs"] = recipe.lr_warmup_epochs
    sig["stream"] = {
        "lr": recipe.lr,
        "epochs": recipe.epochs,
        "lr_steps": list(recipe.lr_steps),
        "clip_grad": recipe.clip_grad,
    }
    sig["temporal_attention"] = spec.temporal_attention
    sig["spatial_attention"] = spec.spatial_attention
    for key in ("frame_size", "short_side", "pretrained_file"):  # only when set
        if getattr(cfg, key) is not None:
            sig[key] = str(getattr(cfg, key))
    source = cfg.warm_start(spec)
    if source is not None:  # starts from the stream this config trains as `source`
        sig["warm_start"] = _signature(cfg, source)
    else:
        init = cfg.init_file(spec.stream)
        if init is not None:
            sig["init"] = str(Path(init).resolve())
    return json.loads(json.dumps(sig))


class _Run:
    """The state of one :func:`train` call: config, processes, log, step counter."""

    def __init__(self, cfg: TrainConfig, env: DistEnv, classes: list[str]) -> None:
        self.cfg, self.env, self.classes = cfg, env, classes
        self.steps = 0
        self.crash_after = int(os.environ.get("ATTNVIDEO_CRASH_AFTER_STEPS", "0"))
        self.record = RunRecord.start(cfg, classes, write=env.is_main)

    def log(self, record: dict[str, Any]) -> None:
        if self.env.is_main:
            self.cfg.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.cfg.output_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def say(self, text: str) -> None:
        if self.env.is_main:
            print(text, flush=True)

    def on_step(self) -> None:
        """Count steps; a test hook kills the process (a real, unclean kill) at step N."""
        self.steps += 1
        if self.crash_after and self.steps >= self.crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def build(self, spec: StreamSpec) -> tuple[STACNN, ModelSpec]:
        cfg = self.cfg
        arch = ModelSpec.of(cfg, spec, len(self.classes))
        model = arch.build(
            pretrained=cfg.pretrained,
            pretrained_file=None if cfg.pretrained_file is None else str(cfg.pretrained_file),
        )
        return model, arch

    def train_stream(self, spec: StreamSpec) -> STACNN:
        """Train one stream (or resume it, or reuse a finished one); returns the bare model."""
        cfg, env = self.cfg, self.env
        key = spec.key
        folder = cfg.output_dir / key
        recipe = cfg.stream_recipe(spec)
        source = cfg.warm_start(spec)
        # Same seed for every run: same initial weights for shared parts, same data order.
        seed_all(cfg.seed)
        model, arch = self.build(spec)
        model.to(env.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        signature = _signature(cfg, spec)
        done = folder / "done.json"
        if done.is_file():
            same = json.loads(done.read_text()).get("config") == signature
            if same or cfg.eval_only:
                load_stream_weights(folder, model, arch.to_dict())
                note = "" if same else " (trained with other settings)"
                self.say(f"{key}: trained already, reusing {folder / 'final.safetensors'}{note}")
                return model
        if cfg.eval_only:
            raise FileNotFoundError(f"--eval-only: {key} has no finished training in {folder}")
        init = cfg.init_file(spec.stream)
        if source is not None:  # --ta-from-tsn: the TSN stream first (reused when trained)
            self.train_stream(source)
            init = cfg.output_dir / source.key / "final.safetensors"
        if init is not None:
            loaded, kept = init_weights(model, init)
            rest = f"; kept their initialisation: {', '.join(kept)}" if kept else ""
            self.say(f"{key}: {loaded} tensors from {init}{rest}")
        train_set = build_dataset(cfg, spec, True, model.data_config)
        loader, sampler = train_loader(train_set, cfg, env)
        iters = len(loader)
        if iters == 0:
            raise ValueError(
                f"{key}: {len(train_set)} training videos is less than one batch "
                f"({cfg.batch_size}, --batch-size)"
            )
        optimizer = make_optimizer(model, cfg, recipe.lr)
        scheduler = make_scheduler(optimizer, cfg, recipe, iters)
        scaler = torch.amp.GradScaler(env.device.type, enabled=cfg.amp == "fp16")
        progress = {"epoch": 0, "step": 0}
        if folder.exists() and not cfg.resume and env.is_main:
            shutil.rmtree(folder)  # a fresh run: forget an older one's checkpoints
        barrier(env)
        if cfg.resume:
            found = load_checkpoint(folder, model, optimizer, scheduler, scaler, env, signature)
            if found is not None:
                progress = found
                self.say(
                    f"{key}: resuming at epoch {progress['epoch'] + 1}, step {progress['step']}"
                )
        if progress == {"epoch": 0, "step": 0}:
            torch.manual_seed(cfg.seed + 1000 * env.rank)  # dropout differs per rank
        bare = model
        train_model: torch.nn.Module = model
        if env.distributed:
            # Some timm backbones keep head parameters that forward_features never uses
            # (e.g. ConvNeXt's head.norm, ViT's fc_norm with average pooling). The set of
            # used parameters is the same every step, so DDP's static graph finds them
            # once, in the first step, instead of walking the autograd graph every step
            # as find_unused_parameters=True does.
            train_model = torch.nn.parallel.DistributedDataParallel(
                model,
                device_ids=[env.device.index] if env.device.type == "cuda" else None,
                static_graph=True,
            )
        if cfg.compile:
            train_model = torch.compile(train_model)

        def checkpoint(epoch: int, step: int) -> None:
            progress = {"epoch": epoch, "step": step}
            save_checkpoint(folder, bare, optimizer, scheduler, scaler, progress, env, signature)

        start = time.time()
        per_process = cfg.batch_size // env.world_size
        for epoch in range(progress["epoch"], recipe.epochs):
            start_step = progress["step"] if epoch == progress["epoch"] else 0
            sampler.set_epoch(epoch)
            sampler.set_start(start_step * per_process)
            t0 = time.time()
            corrupt0 = train_set.corrupt_count
            stats = train_one_epoch(
                train_model,
                optimizer,
                scheduler,
                scaler,
                loader,
                epoch,
                env,
                stream=spec.stream,
                normalize=train_set.normalize,  # type: ignore[attr-defined]
                clip_grad=recipe.clip_grad,
                amp=cfg.amp,
                start_step=start_step,
                save_every=cfg.save_every,
                checkpoint=checkpoint,
                on_step=self.on_step,
                name=key,
                folder=folder,
            )
            checkpoint(epoch + 1, 0)
            record = {
                "job": key,
                "run": spec.run,
                "stream": spec.stream,
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": stats["loss"],
                "train_accuracy": stats["accuracy"],
                "epoch_time_s": time.time() - t0,
                "corrupt_videos": train_set.corrupt_count - corrupt0,
                "resumed_at_step": start_step,
            }
            self.log(record)
            self.say(
                f"{key} epoch {epoch + 1}/{recipe.epochs}: loss {stats['loss']:.3f} "
                f"train acc {100 * stats['accuracy']:.1f}% ({record['epoch_time_s']:.0f} s)"
            )
        summary = {
            "config": signature,
            "model": arch.to_dict(),
            "run": spec.run,
            "stream": spec.stream,
            "train_time_s": time.time() - start,
            "corrupt_videos": train_set.corrupt_count,
        }
        save_final(folder, bare, summary, env)
        barrier(env)
        return bare

    def figures(self, model: STACNN, test_set: Any, run: str) -> list[Path]:
        """PNG + GIF of the first test video of a few classes: frames, attention, weights."""
        cfg = self.cfg
        if cfg.figures <= 0 or not self.env.is_main:
            return []
        model.eval()
        wanted: set[int] = set()
        picked: list[int] = []
        for i, record in enumerate(test_set.records):
            if record.label not in wanted:
                wanted.add(record.label)
                picked.append(i * test_set.num_clips)
            if len(picked) == cfg.figures:
                break
        data_config = model.data_config
        paths: list[Path] = []
        with torch.inference_mode():
            for index in picked:
                sample = test_set.normalize(test_set[index])
                x = sample["rgb"]
                motion = sample.get("flow")
                if x.ndim == 5:  # crops: take the first (centre) crop
                    x, motion = x[0], motion[0] if motion is not None else None
                out = model(
                    x[None].to(self.env.device),
                    motion=motion[None].to(self.env.device) if motion is not None else None,
                    chunk_frames=cfg.eval_chunk_frames or None,
                )
                frames = viz.to_uint8_frames(x, mean=data_config["mean"], std=data_config["std"])
                attention = out.spatial_attention[0] if out.spatial_attention is not None else None
                name = Path(test_set.records[sample["video_index"]].path).stem
                pred = test_set.classes[int(out.logits.argmax())]
                png, gif = viz.save_attention_figures(
                    cfg.output_dir / "figures" / f"{run}-{name}",
                    frames,
                    attention,
                    out.temporal_weights[0],
                    title=f"{run}: {name} (predicted {pred})",
                )
                paths += [png, gif]
        return paths

    def evaluate_stream(self, model: STACNN, spec: StreamSpec) -> tuple[dict, Any]:
        cfg = self.cfg
        test_set = build_dataset(cfg, spec, False, model.data_config)
        scores = evaluate(
            model,
            test_loader(test_set, cfg, self.env),
            self.env,
            stream=spec.stream,
            num_videos=len(test_set.records),
            num_classes=test_set.num_classes,
            normalize=test_set.normalize,  # type: ignore[attr-defined]
            chunk_frames=cfg.eval_chunk_frames or None,
            amp=cfg.amp,
            desc=f"{spec.key} test",
        )
        return scores, test_set


def format_table(metrics: dict[str, dict[str, dict[str, float]]], streams: tuple[str, ...]) -> str:
    """The comparison table: video top-1 and mean class accuracy per stream (and fused).

    Example:
        >>> m = {"tsn": {"rgb": {"top1": 50.0, "mean_class_accuracy": 40.0}}}
        >>> print(format_table(m, ("rgb",)))
        run | rgb top1 | rgb mca
        ----+----------+--------
        tsn |     50.0 |    40.0
    """
    both = len(streams) == 2
    cols = [
        (s, k)
        for s in (list(streams) + (["fused"] if both else []))
        for k in ("top1", "mean_class_accuracy")
    ]
    head = ["run"] + [f"{s} {'top1' if k == 'top1' else 'mca'}" for s, k in cols]
    if both:
        head.append("fused top5")
        cols.append(("fused", "top5"))
    rows = [head] + [[run] + [f"{m[s][k]:.1f}" for s, k in cols] for run, m in metrics.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def format_footer(metrics: dict[str, dict[str, dict[str, Any]]], cfg: TrainConfig) -> str:
    """The note under the table: the test set's size and each top-1's binomial interval.

    With few test clips one run's accuracy is uncertain by several points before any
    training noise: the note says how many clips and gives each run's 95% Wilson
    interval (of the fused score when there is one). It ends with an open ``;`` clause.

    Example:
        >>> from attnvideo.engine import resolve_config
        >>> m = {"tsn": {"rgb": {"num_videos": 400, "top1_wilson95": [45.12, 54.88]}}}
        >>> text = format_footer(m, resolve_config(modality="rgb"))
        >>> "400 test videos (one = 0.25 points)" in text, text.endswith("tsn rgb [45.1, 54.9]")
        (True, True)
    """
    intervals = []
    n = 0
    for run, per in metrics.items():
        metric = "fused" if "fused" in per else next(iter(per))
        n = int(per[metric]["num_videos"])
        lo, hi = per[metric]["top1_wilson95"]
        intervals.append(f"{run} {metric} [{lo:.1f}, {hi:.1f}]")
    return (
        f"(video accuracy in %, mca = mean class accuracy; {n} test videos (one = "
        f"{100 / max(n, 1):.2f} points), {cfg.test_segments} segments x {cfg.test_crops} "
        f"crop(s); 95% interval of top-1 from the test set's size alone (Wilson): "
        + ", ".join(intervals)
    )


def _pretrained_hint(cfg: TrainConfig) -> str:
    """What avoids the download, naming only flags the user can give now."""
    if "pretrained" in cfg.from_preset:
        return (
            f"this run takes the {cfg.preset} recipe (TSN's), which starts from pretrained "
            "weights: add --no-pretrained to train from scratch (with --no-partial-bn), or "
            "--pretrained-file PATH to load a local weights file"
        )
    return (
        "or train from scratch without --pretrained, or load a local weights file with "
        "--pretrained-file PATH"
    )


_SCORES_LAYOUT = (
    "'{run}/{stream}': video logits (videos, classes) float64 for stream rgb, flow or "
    "fused; 'labels': (videos,) int64; videos in the test list's order"
)


def train(cfg: TrainConfig) -> dict[str, dict[str, dict[str, float]]]:
    """Train and evaluate every stream of every run of ``cfg``; the metrics per run.

    Returns:
        ``{run: {"rgb"|"flow"|"fused": {top1, top5, mean_class_accuracy, clip_accuracy,
        num_videos}}}``, also written to ``output_dir/metrics.json``. The per-video
        predictions go to ``predictions.json`` and the video scores (logits, to fuse
        with other weights) to ``scores.safetensors``: ``"{run}/{stream}"`` of shape
        ``(videos, classes)`` and ``"labels"``, in the test list's order.

    Raises:
        ValueError, FileNotFoundError: A bad setting or missing data, before any work.
        OfflineError: Pretrained weights asked for, not cached, and no network.
        NonFiniteLoss: The loss diverged (the last good checkpoint is kept).
    """
    env = init_distributed(cfg.device, batch_size=cfg.batch_size)
    start = time.time()
    torch.backends.cudnn.benchmark = True
    try:
        check_dataset(cfg)
        if cfg.pretrained and cfg.pretrained_file is None:
            check_pretrained_available(cfg.backbone, hint=_pretrained_hint(cfg))
        if cfg.pretrained_file is not None and not cfg.pretrained_file.is_file():
            raise FileNotFoundError(f"--pretrained-file {cfg.pretrained_file}: no such file")
        for stream in ("rgb", "flow"):
            init = cfg.init_file(stream)
            if init is not None and not init.is_file():
                raise FileNotFoundError(f"--init-{stream} {init}: no such file")
        prepare_data(cfg, env)
        if env.is_main:
            cfg.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(
                cfg.output_dir / "config.json",
                lambda p: p.write_text(json.dumps(cfg.to_dict(), indent=1)),
            )
        run = _Run(cfg, env, class_names(cfg))
        run.say(
            f"runs {list(cfg.runs)}, streams {list(cfg.streams)}, backbone {cfg.backbone}, "
            f"{env.world_size} process(es) on {env.device}"
        )
        metrics: dict[str, dict] = {}
        scores_cache: dict[str, dict] = {}
        predictions: dict[str, Any] = {}
        scores: dict[str, torch.Tensor] = {}
        corrupt = 0
        num_classes = len(run.classes)
        for name in cfg.runs:
            metrics[name] = {}
            per_stream = {}
            for stream in cfg.streams:
                spec = StreamSpec.of(name, stream)
                model = run.train_stream(spec)
                arch = ModelSpec.of(cfg, spec, num_classes)
                run.record.add_stream(spec, arch, model.data_config)
                if spec.key not in scores_cache:
                    scores_cache[spec.key], test_set = run.evaluate_stream(model, spec)
                    corrupt += test_set.corrupt_count
                    if stream == "rgb":
                        run.figures(model, test_set, name)
                per_stream[stream] = scores_cache[spec.key]
                metrics[name][stream] = compute_metrics(per_stream[stream], num_classes)
            if len(cfg.streams) == 2:
                fused = fuse_scores(per_stream["rgb"], per_stream["flow"], cfg.fusion_weights)
                metrics[name]["fused"] = compute_metrics(fused, num_classes)
                per_stream["fused"] = fused
            predictions[name] = {
                k: v["video_logits"].argmax(1).tolist() for k, v in per_stream.items()
            }
            labels = next(iter(per_stream.values()))["video_labels"].cpu()
            predictions["labels"] = labels.tolist()
            scores["labels"] = labels
            for k, v in per_stream.items():
                scores[f"{name}/{k}"] = v["video_logits"].cpu().clone()  # runs share streams
            run.log({"run": name, "test": metrics[name]})
        if env.is_main:
            path = cfg.output_dir / "metrics.json"
            atomic_write(path, lambda p: p.write_text(json.dumps(metrics, indent=2)))
            atomic_write(
                cfg.output_dir / "predictions.json",
                lambda p: p.write_text(json.dumps(predictions)),
            )
            atomic_write(
                cfg.output_dir / "scores.safetensors",
                lambda p: save_file(scores, str(p), metadata={"layout": _SCORES_LAYOUT}),
            )
            print("\n" + format_table(metrics, cfg.streams))
            print(
                "\n"
                + format_footer(metrics, cfg)
                + f"; corrupt test videos replaced: {corrupt}; {time.time() - start:.0f} s)"
                + f" -> {path}",
                flush=True,
            )
        return metrics
    finally:
        shutdown(env)
