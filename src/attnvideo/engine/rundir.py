"""Run folders that describe themselves: ``run.json`` and :func:`load_run`.

A run folder (``--output-dir``) holds, besides the stream folders, ``run.json``: the
attnvideo version, the class names, the fusion weights, the test protocol, how frames are
decoded and how flow is computed and quantised, and for each finished stream its
architecture (:class:`~attnvideo.engine.ModelSpec`) and input normalisation. With it, a
stream is rebuilt with ``pretrained=False`` and its weights loaded anywhere, with no
dataset, no training flags and no network, whatever folder the run was moved to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.flow import DEFAULT_DIS_PRESET
from ..functional import FLOW_BOUND
from ..models import STACNN
from .checkpoints import atomic_write, load_stream_weights
from .config import RUNS, StreamSpec, TrainConfig
from .streams import ModelSpec

__all__ = ["RUN_FILE", "RunInfo", "RunRecord", "StreamInfo", "load_run"]

RUN_FILE = "run.json"
"""The name of a run's self-description inside its folder."""

_FORMAT = 1


def _version() -> str:
    from .. import __version__

    return __version__


class RunRecord:
    """Writes ``run.json`` as a run goes: at its start, then as each stream finishes."""

    def __init__(self, path: Path, data: dict[str, Any], write: bool) -> None:
        self.path, self.data, self.write = path, data, write

    @classmethod
    def start(cls, cfg: TrainConfig, classes: list[str], *, write: bool = True) -> RunRecord:
        """The record of a run starting (kept streams already recorded in the folder)."""
        path = cfg.output_dir / RUN_FILE
        streams: dict[str, Any] = {}
        if path.is_file():
            try:
                streams = json.loads(path.read_text()).get("streams", {})
            except (OSError, ValueError):
                streams = {}
        decode = {"size": cfg.frame_size, "short_side": cfg.short_side}
        data = {
            "format": _FORMAT,
            "attnvideo_version": _version(),
            "classes": list(classes),
            "runs": list(cfg.runs),
            "fusion_weights": list(cfg.fusion_weights),
            "test": {
                "num_segments": cfg.test_segments,
                "crops": cfg.test_crops,
                "resize": cfg.resize,
                "input_size": cfg.input_size,
            },
            "frames": {
                "size": None if cfg.frame_size is None else list(cfg.frame_size),
                "short_side": cfg.short_side,
                "note": "decoded size of the training frames (None: the video's own)",
            },
            "flow": {
                "method": cfg.flow_method,
                # the preset the flow was computed with (DIS: the default of this version)
                "preset": DEFAULT_DIS_PRESET if cfg.flow_method == "dis" else None,
                "bound": FLOW_BOUND,
                "quantization": "uint8, q = round(255 * (clip(v, -bound, bound) + bound) / "
                "(2 * bound)); the model sees q * 2 / 255 - 1",
                "new_length": cfg.new_length,
                "size": decode["size"],
                "short_side": decode["short_side"],
            },
            "streams": streams,
            "dataset": cfg.dataset,
        }
        record = cls(path, data, write)
        record.save()
        return record

    def add_stream(self, spec: StreamSpec, arch: ModelSpec, data_config: dict[str, Any]) -> None:
        """Record a finished stream: its architecture and input normalisation."""
        self.data["streams"][spec.key] = {
            "run": spec.run,
            "stream": spec.stream,
            "model": arch.to_dict(),
            "mean": [float(v) for v in data_config["mean"]],
            "std": [float(v) for v in data_config["std"]],
            "weights": f"{spec.key}/final.safetensors",
        }
        self.save()

    def save(self) -> None:
        """Write ``run.json`` atomically (main process only)."""
        if not self.write:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, indent=1)
        atomic_write(self.path, lambda p: p.write_text(text))


@dataclass(frozen=True)
class StreamInfo:
    """One finished stream of a run folder.

    Attributes:
        key: Its folder name (``rgb-stacnn``, ``flow-ta``, ...).
        spec: Run, modality and attention.
        model: Its architecture.
        mean: RGB normalisation mean (0 for flow).
        std: RGB normalisation std (1 for flow).
        folder: Its folder.
    """

    key: str
    spec: StreamSpec
    model: ModelSpec
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folder: Path

    def load(self, device: str | torch.device = "cpu") -> STACNN:
        """Rebuild the stream (``pretrained=False``: no network) and load its weights."""
        model = self.model.build(pretrained=False)
        load_stream_weights(self.folder, model, self.model.to_dict())
        return model.to(device).eval()


@dataclass(frozen=True)
class RunInfo:
    """What :func:`load_run` reads from a run folder.

    Attributes:
        path: The run folder.
        classes: Class names, index = label.
        runs: The runs trained, in order (the last is the default for prediction).
        fusion_weights: ``(w_rgb, w_flow)``.
        test: The test protocol: ``num_segments``, ``crops``, ``resize``, ``input_size``.
        frames: ``size`` / ``short_side`` the training frames were decoded at (None: own).
        flow: Flow ``method``, ``preset``, ``bound``, ``new_length`` and the decode size.
        streams: The finished streams by folder name.
        version: The attnvideo version that trained it.
    """

    path: Path
    classes: tuple[str, ...]
    runs: tuple[str, ...]
    fusion_weights: tuple[float, float]
    test: dict[str, Any]
    frames: dict[str, Any]
    flow: dict[str, Any]
    streams: dict[str, StreamInfo]
    version: str

    def streams_of(self, run: str | None = None) -> dict[str, StreamInfo]:
        """The finished streams of ``run`` (default: the last run), by modality.

        Raises:
            ValueError: ``run`` is not a run of this folder, or has no finished stream.
        """
        run = run or self.runs[-1]
        if run not in RUNS or run not in self.runs:
            raise ValueError(f"run: expected one of {list(self.runs)} (trained here), got {run!r}")
        found = {}
        for stream in ("rgb", "flow"):
            key = StreamSpec.of(run, stream).key
            if key in self.streams:
                found[stream] = self.streams[key]
        if not found:
            raise ValueError(f"run: {run!r} has no finished stream in {self.path}")
        return found


def load_run(path: str | os.PathLike) -> RunInfo:
    """Read a run folder's ``run.json`` (see the module docstring).

    Args:
        path: The run folder (``--output-dir`` of ``attnvideo-train``), wherever it is now.

    Returns:
        A :class:`RunInfo`; :meth:`StreamInfo.load` rebuilds a stream.

    Raises:
        FileNotFoundError: No ``run.json`` in ``path``.
        ValueError: A ``run.json`` of an unknown format.

    Example:
        >>> info = load_run("runs/stacnn")  # doctest: +SKIP
        >>> info.classes[:2], list(info.streams)  # doctest: +SKIP
        (('MoveDown', 'MoveLeft'), ['rgb-tsn', 'flow-avg', 'rgb-stacnn', 'flow-ta'])
    """
    path = Path(path)
    file = path / RUN_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no such file; {path} is not a finished attnvideo-train run folder "
            "(a run of an older attnvideo gets one from attnvideo-train --eval-only with "
            "the flags it was trained with)"
        )
    data = json.loads(file.read_text())
    if data.get("format") != _FORMAT:
        raise ValueError(f"{file}: unknown format {data.get('format')!r} (expected {_FORMAT})")
    streams = {}
    for key, entry in data["streams"].items():
        streams[key] = StreamInfo(
            key=key,
            spec=StreamSpec.of(entry["run"], entry["stream"]),
            model=ModelSpec.from_dict(entry["model"]),
            mean=tuple(entry["mean"]),
            std=tuple(entry["std"]),
            folder=path / key,
        )
    return RunInfo(
        path=path,
        classes=tuple(data["classes"]),
        runs=tuple(data["runs"]),
        fusion_weights=(float(data["fusion_weights"][0]), float(data["fusion_weights"][1])),
        test=dict(data["test"]),
        frames=dict(data["frames"]),
        flow=dict(data["flow"]),
        streams=streams,
        version=str(data["attnvideo_version"]),
    )
