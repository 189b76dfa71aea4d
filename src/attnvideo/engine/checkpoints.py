"""Checkpoints: atomic files, weights in safetensors, one policy for loading a stream.

A stream's folder holds, while it trains, ``model-<tag>.safetensors`` (weights),
``state-<tag>.pt`` (optimiser, scheduler, scaler, progress, every rank's RNG state;
loadable with ``torch.load(weights_only=True)``) and ``latest.json`` naming the newest
complete pair; once trained, ``final.safetensors`` and ``done.json``. Every file is
written to a temporary name and renamed, so a kill at any point leaves a usable folder.

The loading policy (:func:`load_stream_weights`): a finished stream is loaded into a
model only when the architecture recorded in its ``done.json`` (``"model"``) is the one
asked for; any difference is a ``ValueError`` naming it (streams trained before the
architecture was recorded are loaded strictly: every tensor must fit). Whether a finished stream is
*reused* instead of trained again is the trainer's business: when its training settings
(``"config"``) are those of the run.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..models.backbone import adapt_input_channels, find_first_conv
from .distributed import DistEnv, all_gather_objects

__all__ = [
    "atomic_write",
    "init_weights",
    "load_checkpoint",
    "load_stream_weights",
    "read_weights",
    "rng_state",
    "save_checkpoint",
    "save_final",
    "set_rng_state",
]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.json"
        >>> atomic_write(p, lambda tmp: tmp.write_text("{}")).read_text()
        '{}'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


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
    """Restore the RNG states saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    progress: dict[str, int],
    env: DistEnv,
    config: dict[str, Any] | None = None,
) -> None:
    """Weights to safetensors, the rest to a torch file, then switch ``latest.json``.

    Every rank's RNG state is gathered, so a resumed DDP run continues each rank exactly.
    A kill at any point leaves ``latest.json`` naming a complete checkpoint. ``config``
    (the settings that define the training, JSON-ready) is kept in ``latest.json``, so
    that :func:`load_checkpoint` refuses to continue it with other settings.
    """
    rngs = all_gather_objects(rng_state(), env)
    if not env.is_main:
        return
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"e{progress['epoch']:04d}-s{progress['step']:06d}"
    weights = _state_dict(model)
    atomic_write(folder / f"model-{tag}.safetensors", lambda p: save_file(weights, str(p)))
    state = {
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "progress": progress,
        "rng": rngs,
        "world_size": env.world_size,
    }
    atomic_write(folder / f"state-{tag}.pt", lambda p: torch.save(state, p))
    pointer = {"weights": f"model-{tag}.safetensors", "state": f"state-{tag}.pt", **progress}
    if config is not None:
        pointer["config"] = config
    atomic_write(folder / "latest.json", lambda p: p.write_text(json.dumps(pointer)))
    for old in folder.glob("*-e*-s*.*"):
        if tag not in old.name:
            old.unlink(missing_ok=True)


def load_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    env: DistEnv,
    config: dict[str, Any] | None = None,
) -> dict[str, int] | None:
    """Restore the newest checkpoint of ``folder``; its progress, or None when none.

    With another number of processes than the checkpoint's, the data order is kept and
    the dropout RNG restarts (a note is printed).

    Raises:
        ValueError: ``config`` differs from the one the checkpoint was saved with (a
            checkpoint saved without one is restored).
    """
    pointer_file = folder / "latest.json"
    if not pointer_file.is_file():
        return None
    pointer = json.loads(pointer_file.read_text())
    saved = pointer.get("config")
    if config is not None and saved is not None and saved != config:
        keys = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in keys)
        raise ValueError(
            f"resume: the checkpoint in {folder} was trained with other settings ({changes}); "
            "resume with the settings it was started with, or train into another "
            "--output-dir"
        )
    model.load_state_dict(load_file(str(folder / pointer["weights"]), device="cpu"))
    state = torch.load(folder / pointer["state"], map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    scaler.load_state_dict(state["scaler"])
    if state["world_size"] == env.world_size:
        set_rng_state(state["rng"][env.rank])
    elif env.is_main:
        print(
            f"note: checkpoint from {state['world_size']} processes, now "
            f"{env.world_size}: data order is kept, dropout RNG restarts",
            flush=True,
        )
    return state["progress"]


def save_final(folder: Path, model: nn.Module, summary: dict[str, Any], env: DistEnv) -> None:
    """Write ``final.safetensors`` and ``done.json`` (``summary``), drop the checkpoints."""
    if not env.is_main:
        return
    folder.mkdir(parents=True, exist_ok=True)
    weights = _state_dict(model)
    atomic_write(folder / "final.safetensors", lambda p: save_file(weights, str(p)))
    atomic_write(folder / "done.json", lambda p: p.write_text(json.dumps(summary, indent=1)))
    for old in folder.glob("*-e*-s*.*"):
        old.unlink(missing_ok=True)
    (folder / "latest.json").unlink(missing_ok=True)


def load_stream_weights(folder: str | os.PathLike, model: nn.Module, architecture: dict) -> dict:
    """Load a finished stream into ``model``: the one loading policy.

    Args:
        folder: The stream's folder (``done.json``, ``final.safetensors``).
        model: The model to fill, built from ``architecture``.
        architecture: The model's build arguments (``ModelSpec.to_dict()``).

    Returns:
        The stream's ``done.json``.

    Raises:
        FileNotFoundError: The stream has not finished training.
        ValueError: It was trained with another architecture (the differences named).
    """
    folder = Path(folder)
    done, weights = folder / "done.json", folder / "final.safetensors"
    if not (done.is_file() and weights.is_file()):
        raise FileNotFoundError(
            f"{folder}: no finished training (done.json and final.safetensors); train it first"
        )
    summary = json.loads(done.read_text())
    saved = summary.get("model")
    if saved is None:  # a stream of an older attnvideo: its weights must fit (strict load)
        saved = architecture
    wanted = json.loads(json.dumps(architecture))
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        shown = ", ".join(f"{k}: trained {saved.get(k)!r}, asked {wanted.get(k)!r}" for k in differ)
        raise ValueError(f"{folder.name} was trained as another model ({shown})")
    model.load_state_dict(load_file(str(weights), device="cpu"))
    return summary


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, on the CPU.

    ``.safetensors``, or a torch file (``.pth``, ``.bin``, ``.pt``) holding a bare state
    dict or one under ``"state_dict"``/``"model"``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected a weights file)")
    if path.suffix == ".safetensors":
        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path}: no tensors found")
    return tensors


def init_weights(model: nn.Module, path: str | os.PathLike) -> tuple[int, list[str]]:
    """Start ``model`` (an STA-CNN stream) from the tensors of ``path`` that fit it.

    ``path`` is a stream's weights (e.g. another run's ``final.safetensors``) or a plain
    timm checkpoint of the backbone (its names get the stream's ``backbone.model.``
    prefix). A 3-channel first convolution going into a flow stream is adapted with TSN's
    cross-modality rule (mean over the RGB channels, replicated to the 2L flow channels).

    Returns:
        How many tensors were loaded, and the names of the model's tensors that were not
        (they keep their initialisation: e.g. the temporal attention, absent from a TSN
        stream, or a classifier for another number of classes).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: No tensor of ``path`` matches the model by name and shape.

    Example:
        >>> import tempfile, timm
        >>> from attnvideo import create_stacnn
        >>> path = Path(tempfile.mkdtemp()) / "backbone.pth"
        >>> torch.save(timm.create_model("test_resnet").state_dict(), path)  # plain timm
        >>> flow = create_stacnn("test_resnet", 5, modality="flow", new_length=5)
        >>> loaded, kept = init_weights(flow, path)
        >>> flow.first_conv().in_channels, "fc.weight" in kept
        (10, True)
    """
    source = read_weights(path)
    own = model.state_dict()
    prefix = "backbone.model."
    as_is = sum(k in own for k in source)
    if sum(prefix + k in own for k in source) > as_is:  # a plain timm checkpoint
        source = {prefix + k: v for k, v in source.items()}
    conv_name = _first_conv_weight(model)
    if conv_name is not None and conv_name in source:
        weight, target = source[conv_name], own[conv_name]
        if weight.shape != target.shape and weight.shape[1] == 3 and weight.ndim == target.ndim:
            conv = nn.Conv2d(3, weight.shape[0], tuple(weight.shape[2:]), bias=False)
            with torch.no_grad():
                conv.weight.copy_(weight)
            holder = nn.Sequential(conv)
            adapt_input_channels(holder, target.shape[1], "mean")
            source[conv_name] = holder[0].weight.detach()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ValueError(
            f"no tensor of {path} matches the model by name and shape "
            f"(it has {len(source)}, e.g. {sorted(source)[:3]}; the model has "
            f"{sorted(own)[:3]}, ...)"
        )
    model.load_state_dict(matched, strict=False)
    return len(matched), sorted(k for k in own if k not in matched)


def _first_conv_weight(model: nn.Module) -> str | None:
    """The state-dict name of the stream's first convolution weight (None if not found)."""
    backbone = getattr(getattr(model, "backbone", None), "model", None)
    if backbone is None:
        return None
    try:
        name, _ = find_first_conv(backbone)
    except ValueError:
        return None
    return f"backbone.model.{name}.weight"
