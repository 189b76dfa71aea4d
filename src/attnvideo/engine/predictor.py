"""Classify video files with a finished run, at a bounded cost.

:class:`Predictor` rebuilds a run's streams from its folder (:func:`load_run`: no dataset,
no training flags, no network) and classifies a video the way the run's evaluation did:
the test snippets of its segments, its crops, its normalisation, the two streams fused
with its weights. It keeps only the frames those snippets need (and, for flow, their
neighbours), converted and resized as they leave the decoder to the run's working
resolution (one pass over the video; nothing else is converted or held), and computes
flow only for the frame pairs of those snippets, with the run's flow method and TSN's
quantisation. The flow of a video can be cached on disk, keyed by the video's
absolute path, size and modification time together with the resolution and flow method.

Working resolution: the size the run decoded its frames at (``--frame-size`` /
``--short-side``); for a run trained at the videos' own size, frames are decoded with
their short side at the test protocol's ``resize`` (the size the test transform resizes
to anyway), so the flow is in pixels of the frames the model sees whatever the video's
resolution. For videos already that size (the usual case of the training set) this is the
evaluation's pipeline exactly.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange, reduce

from .. import viz
from ..data import (
    GroupNormalize,
    plan_snippets,
    probe_video,
    read_frames,
    scaled_size,
    scan_frames,
    test_transform,
)
from ..data.flow import compute_flow
from ..functional import fuse_streams, quantize_flow
from .checkpoints import atomic_write
from .evaluation import model_inputs
from .rundir import RunInfo, load_run

__all__ = ["Prediction", "Predictor"]


def _stated_frames(path: Path) -> tuple[int, int, int]:
    """The frame count the container states (0 when it states none), width, height."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return 0, 0, 0
            stream = container.streams.video[0]
            return int(stream.frames or 0), int(stream.width), int(stream.height)
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return 0, 0, 0  # the probe names the problem


@dataclass
class Prediction:
    """What :meth:`Predictor.predict` returns for one video.

    Attributes:
        video: The video file.
        run: The run whose streams classified it.
        classes: Class names, index = label.
        logits: Fused (or single-stream) video logits ``(K,)``, float64.
        probabilities: ``softmax(logits)``.
        streams: Per stream: ``{"logits": (K,), "temporal_weights": (T,)}``, crops averaged.
        frames: The RGB test frames of the first crop ``(T, H, W, 3)`` uint8 (for figures).
        spatial_attention: The RGB stream's map of the first crop ``(T, 1, h, w)``, or None.
    """

    video: Path
    run: str
    classes: tuple[str, ...]
    logits: torch.Tensor
    probabilities: torch.Tensor
    streams: dict[str, dict[str, torch.Tensor]]
    frames: np.ndarray | None = None
    spatial_attention: torch.Tensor | None = field(default=None, repr=False)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities."""
        probs, index = self.probabilities.topk(min(k, len(self.classes)))
        return [(self.classes[i], float(p)) for p, i in zip(probs, index.tolist(), strict=True)]

    def to_json(self, k: int = 5) -> dict[str, Any]:
        """A JSON-ready summary: video, run, top-k classes, each stream's temporal weights."""
        return {
            "video": str(self.video),
            "run": self.run,
            "top": [[name, round(p, 4)] for name, p in self.top(k)],
            "temporal_weights": {
                s: [round(float(w), 4) for w in v["temporal_weights"]]
                for s, v in self.streams.items()
            },
        }


class Predictor:
    """A finished run's streams, ready to classify video files.

    Args:
        info: The run (:func:`load_run`).
        run: Which run's streams (default: the last one trained).
        device: Where the models run.
        flow_cache: Folder to cache each video's flow in (None: no cache).
        chunk_frames: At most this many frames through a backbone at once (bounds memory).
        decode_threads: Threads decoding each video (0: FFmpeg's choice). The default 1
            is safe in a process that later forks ``DataLoader`` workers;
            ``attnvideo-predict``, which does not fork, uses 0. The frames are the same.

    Example:
        >>> predictor = Predictor.from_run("runs/stacnn")  # doctest: +SKIP
        >>> predictor.predict("my_video.mp4").top(3)  # doctest: +SKIP
        [('MoveLeft', 0.99), ('ZoomIn', 0.004), ('ShakeHorizontal', 0.002)]
    """

    def __init__(
        self,
        info: RunInfo,
        *,
        run: str | None = None,
        device: str | torch.device = "cpu",
        flow_cache: str | os.PathLike | None = None,
        chunk_frames: int | None = 64,
        decode_threads: int = 1,
    ) -> None:
        if not isinstance(decode_threads, int) or decode_threads < 0:
            raise ValueError(f"decode_threads: expected an integer >= 0, got {decode_threads!r}")
        self.decode_threads = decode_threads
        self.info = info
        self.run = run or info.runs[-1]
        self.device = torch.device(device)
        self.flow_cache = None if flow_cache is None else Path(flow_cache)
        self.chunk_frames = chunk_frames
        self.streams = info.streams_of(self.run)
        self.models = {s: i.load(self.device) for s, i in self.streams.items()}
        test = info.test
        self.transform = test_transform(
            test["input_size"], resize=test["resize"], crops=test["crops"], normalize=False
        )
        self.normalize = {
            s: GroupNormalize(mean=i.mean, std=i.std) if s == "rgb" else GroupNormalize()
            for s, i in self.streams.items()
        }

    @classmethod
    def from_run(cls, path: str | os.PathLike, **kwargs: Any) -> Predictor:
        """A predictor over the run folder ``path`` (see the class for the options)."""
        return cls(load_run(path), **kwargs)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, index = label."""
        return self.info.classes

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        """The ``(width, height)`` a ``width`` x ``height`` video is decoded at."""
        frames = self.info.frames
        if frames.get("size") is not None:
            return scaled_size(width, height, size=tuple(frames["size"]))
        short = frames.get("short_side") or self.info.test["resize"]
        return scaled_size(width, height, short_side=int(short))

    def _plans(self, num_frames: int) -> dict[str, Any]:
        plans = {}
        for stream, info in self.streams.items():
            uses_flow = info.spec.modality != "rgb"
            plans[stream] = plan_snippets(
                num_frames,
                self.info.test["num_segments"],
                info.model.new_length,
                flow=uses_flow,
            )
        return plans

    def read_inputs(self, video: str | os.PathLike) -> dict[str, dict[str, torch.Tensor]]:
        """The uint8 test samples of each stream, before the crops (``rgb``/``flow``).

        Keeps only the frames the test snippets need (and the frame after each flow
        field), at :meth:`decode_size`, and computes (or reads from the cache) the flow
        of those frame pairs only. When the container states its frame count (MP4, AVI,
        MOV, ...), the video is decoded once, front to back, converting only the frames
        it keeps; a count that turns out wrong is corrected by reading what is missing
        with :func:`~attnvideo.data.read_frames`. Without a stated count it is probed
        (:func:`~attnvideo.data.probe_video`) and the frames read with ``read_frames``.
        Either way the frames are those of a plain full decode, bit for bit.

        Raises:
            FileNotFoundError: ``video`` does not exist.
            VideoDecodeError: It cannot be decoded.
        """
        path = Path(video).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{video}: no such video file")
        stated, width, height = _stated_frames(path)
        if stated >= 2:
            size = self.decode_size(width, height)
            num_frames, frames = self._one_pass(path, size, stated)
        else:
            probe = probe_video(path)
            num_frames = probe.num_frames
            size = self.decode_size(probe.width, probe.height)
            frames = {}
        plans = self._plans(num_frames)
        wanted_fields = sorted(
            {f for plan in plans.values() if plan.flow_fields is not None
             for f in plan.flow_fields.reshape(-1).tolist()}
        )  # fmt: skip
        fields = self._cached_fields(path, size, wanted_fields)
        missing = [f for f in wanted_fields if f not in fields]
        wanted = self._frames_needed(plans, missing)
        unread = sorted(wanted - set(frames))
        if unread:
            frames.update(zip(unread, read_frames(path, unread, size=size), strict=True))
        if missing:
            fields.update(self._flow(frames, missing))
            self._store_fields(path, size, fields)
        samples: dict[str, dict[str, torch.Tensor]] = {}
        for stream, plan in plans.items():
            sample: dict[str, torch.Tensor] = {}
            if self.streams[stream].spec.modality != "flow":
                rgb = np.stack([frames[f] for f in plan.rgb_frames.tolist()])
                sample["rgb"] = rearrange(torch.from_numpy(rgb), "t h w c -> t c h w")
            if plan.flow_fields is not None:
                q = np.stack([fields[f] for f in plan.flow_fields.reshape(-1).tolist()])
                t = plan.flow_fields.shape[0]
                sample["flow"] = rearrange(torch.from_numpy(q), "(t l) c h w -> t (l c) h w", t=t)
            samples[stream] = sample
        return samples

    def _frames_needed(self, plans: dict[str, Any], fields: list[int]) -> set[int]:
        """The RGB frames of the snippets, and both frames of every flow field to compute."""
        needed: set[int] = set()
        for stream, plan in plans.items():
            if self.streams[stream].spec.modality != "flow":
                needed.update(plan.rgb_frames.tolist())
        for f in fields:
            needed.update((f, f + 1))
        return needed

    def _one_pass(
        self, path: Path, size: tuple[int, int], stated: int
    ) -> tuple[int, dict[int, np.ndarray]]:
        """Decode once, keeping the frames a video of ``stated`` frames needs; the count."""
        plans = self._plans(stated)
        every_field = [
            f
            for plan in plans.values()
            if plan.flow_fields is not None
            for f in plan.flow_fields.reshape(-1).tolist()
        ]
        keep = self._frames_needed(plans, every_field)
        return scan_frames(path, sorted(keep), size=size, threads=self.decode_threads)

    def _flow(self, frames: dict[int, np.ndarray], fields: list[int]) -> dict[int, np.ndarray]:
        """Quantised flow fields ``(2, H, W)`` uint8, computed over runs of consecutive fields."""
        flow = self.info.flow
        out: dict[int, np.ndarray] = {}
        start = 0
        while start < len(fields):
            stop = start
            while stop + 1 < len(fields) and fields[stop + 1] == fields[stop] + 1:
                stop += 1
            first, last = fields[start], fields[stop]
            stack = np.stack([frames[f] for f in range(first, last + 2)])
            pixels = compute_flow(stack, flow["method"], preset=flow.get("preset"))
            q = quantize_flow(torch.from_numpy(pixels), float(flow["bound"])).numpy()
            for i, f in enumerate(range(first, last + 1)):
                out[f] = q[i]
            start = stop + 1
        return out

    def _cache_file(self, path: Path, size: tuple[int, int]) -> Path | None:
        if self.flow_cache is None:
            return None
        stat = path.stat()
        flow = self.info.flow
        key = (
            f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{size[0]}x{size[1]}|"
            f"{flow['method']}|{flow.get('preset')}|{flow['bound']}"
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.flow_cache / f"{digest}.npz"

    def _cached_fields(
        self, path: Path, size: tuple[int, int], wanted: list[int]
    ) -> dict[int, np.ndarray]:
        file = self._cache_file(path, size)
        if file is None or not file.is_file():
            return {}
        try:
            with np.load(file, allow_pickle=False) as data:
                index = {int(f): i for i, f in enumerate(data["indices"])}
                stack = data["fields"]
                return {f: stack[index[f]] for f in wanted if f in index}
        except (OSError, ValueError, KeyError):
            return {}

    def _store_fields(
        self, path: Path, size: tuple[int, int], fields: dict[int, np.ndarray]
    ) -> None:
        file = self._cache_file(path, size)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        indices = np.array(sorted(fields), dtype=np.int64)
        stack = np.stack([fields[int(f)] for f in indices])

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, indices=indices, fields=stack)

        atomic_write(file, write)

    @torch.inference_mode()
    def predict(self, video: str | os.PathLike) -> Prediction:
        """Classify one video file.

        Raises:
            FileNotFoundError: ``video`` does not exist.
            VideoDecodeError: It cannot be decoded.
        """
        samples = self.read_inputs(video)
        streams: dict[str, dict[str, torch.Tensor]] = {}
        frames, attention = None, None
        for stream, model in self.models.items():
            sample = self.transform(samples[stream])
            batch = {k: v[None] for k, v in sample.items()}
            x, motion, crops = model_inputs(batch, stream, self.device, self.normalize[stream])
            out = model(x, motion=motion, chunk_frames=self.chunk_frames)
            logits = reduce(out.logits.float(), "(b n) k -> b k", "mean", n=crops)[0]
            weights = reduce(out.temporal_weights.float(), "(b n) t -> b t", "mean", n=crops)[0]
            streams[stream] = {"logits": logits.cpu(), "temporal_weights": weights.cpu()}
            if stream == "rgb":
                info = self.streams["rgb"]
                frames = viz.to_uint8_frames(x[0].cpu(), mean=info.mean, std=info.std)
                if out.spatial_attention is not None:
                    attention = out.spatial_attention[0].float().cpu()
        if len(streams) == 2:
            logits = fuse_streams(
                streams["rgb"]["logits"].double(),
                streams["flow"]["logits"].double(),
                self.info.fusion_weights,
            )
        else:
            logits = next(iter(streams.values()))["logits"].double()
        return Prediction(
            video=Path(video),
            run=self.run,
            classes=self.classes,
            logits=logits,
            probabilities=logits.softmax(-1),
            streams=streams,
            frames=frames,
            spatial_attention=attention,
        )

    def save_figures(self, prediction: Prediction, folder: str | os.PathLike) -> list[Path]:
        """The RGB segments with the spatial attention and the temporal weights (PNG + GIF)."""
        if prediction.frames is None:
            return []
        stem = Path(prediction.video).stem
        png, gif = viz.save_attention_figures(
            Path(folder) / f"{prediction.run}-{stem}",
            prediction.frames,
            prediction.spatial_attention,
            prediction.streams["rgb"]["temporal_weights"],
            title=f"{prediction.run}: {stem} (predicted {prediction.top(1)[0][0]})",
        )
        return [png, gif]
