"""The run configuration: presets, the runs of an ablation, one frozen record of a run.

A run is described once, by a :class:`TrainConfig` that :func:`resolve_config` builds from
what the user gave and a preset (the user's values win; a value left at None takes the
preset's). The record is frozen, saved as JSON in the run folder (``config.json``) and
read back with :meth:`TrainConfig.from_dict`; nothing mutates it afterwards.

Per-stream values (learning rate, epochs, steps, clipping) sit in a :class:`StreamRecipe`
per stream. The streams a run trains are described by :class:`StreamSpec`
(:func:`stream_specs`): which run, which modality, which attention, and the folder name.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models.stacnn import has_spatial_attention

__all__ = [
    "PRESETS",
    "RUNS",
    "SYNTHETIC",
    "StreamRecipe",
    "StreamSpec",
    "TrainConfig",
    "resolve_config",
    "stream_specs",
]

RUNS: dict[str, tuple[bool, bool]] = {
    "tsn": (False, False),
    "tsn+ta": (True, False),
    "tsn+sa": (False, True),
    "stacnn": (True, True),
}
"""The runs of an ablation: name -> (temporal attention, spatial attention)."""

# Paper recipe (STACNN.md section 5): SGD 0.9, wd 5e-4, batch 128, RGB lr 1e-3 and flow
# lr 5e-3 with step decay x0.1, dropout 0.8 / 0.7, clipping, partial BN, T = 3 in
# training and 25 x 10 crops in testing. BN-Inception is not in timm: ResNet-50
# (ImageNet) stands in. Epochs follow TSN's iterations at batch 128 on UCF-101 split 1
# (74 iterations per epoch): RGB 3.4k (80 epochs, steps 30/60); flow 20k (270 epochs,
# steps at 12k/18k = 160/240).
_TSN_RECIPE: dict[str, Any] = dict(
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
    lr_warmup_epochs={"rgb": 0.0, "flow": 0.0},
    weight_decay=5e-4,
    clip_grad={"rgb": 40.0, "flow": 20.0},
    partial_bn=True,
    flip=True,
    workers=8,
    # The paper's protocol as we read it: the attention stream trained like TSN's, from
    # ImageNet. --ta-from-tsn starts it from the trained TSN flow stream instead (values
    # below; not measured on UCF-101 or HMDB-51).
    ta_from_tsn=False,
    ta_epochs=40,
    ta_lr=5e-4,
)

PRESETS: dict[str, dict[str, Any]] = {
    "ucf101": dict(dataset="ucf101", **_TSN_RECIPE),
    # HMDB-51: same recipe (TSN uses it unchanged; 3.6k training clips per split).
    "hmdb51": dict(dataset="hmdb51", **_TSN_RECIPE),
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
        # RGB streams: a linear warm-up over the first 2 epochs. Without it the spatial
        # attention's RGB stream trained worse than TSN's on 2 of 20 seeds and STA-CNN's
        # fused gain was +5.9 [+3.8, +7.9]; with it +8.3 [+6.6, +9.9], 20 of 20 (seeds
        # 0-9 and 20-29; docs/reproducing.md). The flow streams: no warm-up.
        lr_warmup_epochs={"rgb": 2.0, "flow": 0.0},
        weight_decay=0.05,
        clip_grad={"rgb": 5.0, "flow": 5.0},
        dropout=0.2,
        partial_bn=False,
        flip=False,
        # Decoding in the training process: on 2 cores a loader worker competes with the
        # 2-thread training for the CPU (the whole run: 5:00 against 7:23 with 1 worker,
        # same table to the digit: samples depend on seed, epoch and index only).
        workers=0,
        runs="tsn,stacnn",
        # The flow stream's temporal attention starts from the run's trained TSN flow
        # stream (flow-avg; the attention starts as its average consensus) and trains 10
        # epochs: +2.2 flow [+1.3, +3.1] over a control trained the same way without it,
        # 19 of 20 seeds (bench_learning --ablations; docs/reproducing.md). From scratch
        # it lost to TSN's flow on 2 of 5 seeds.
        ta_from_tsn=True,
        ta_epochs=10,
        ta_lr=1e-3,
    ),
}
"""The recipes: every value a preset fills (per-stream values as ``{"rgb", "flow"}``)."""

SYNTHETIC: dict[str, Any] = dict(
    num_classes=10,
    videos_per_class=30,
    test_videos_per_class=40,
    num_frames=32,
    size=(64, 64),
    seed=0,
)
"""The synthetic dataset of the demo (:class:`attnvideo.data.synthetic.SyntheticConfig`)."""

_PER_STREAM = ("lr", "epochs", "lr_steps", "clip_grad", "lr_warmup_epochs")
_DATASETS = ("synthetic", "ucf101", "hmdb51", "list")


@dataclass(frozen=True)
class StreamRecipe:
    """The optimisation values that differ between the RGB and the flow stream.

    Attributes:
        lr: Base learning rate.
        epochs: Training epochs.
        lr_steps: Epochs at which a step schedule multiplies the rate by 0.1.
        clip_grad: Maximum gradient norm (0 = no clipping).
        lr_warmup_epochs: Epochs of linear learning-rate warm-up at the start (0 = none).
    """

    lr: float
    epochs: int
    lr_steps: tuple[int, ...] = ()
    clip_grad: float = 0.0
    lr_warmup_epochs: float = 0.0


@dataclass(frozen=True)
class StreamSpec:
    """One stream that a run trains: run name, modality, attention, folder.

    Attributes:
        run: The run (a key of :data:`RUNS`).
        stream: ``"rgb"`` or ``"flow"``.
        temporal_attention: Learned temporal attention (False: TSN's average).
        spatial_attention: Flow-guided spatial attention (only ever on the RGB stream).

    Example:
        >>> StreamSpec.of("stacnn", "flow")
        StreamSpec(run='stacnn', stream='flow', temporal_attention=True, spatial_attention=False)
        >>> StreamSpec.of("tsn+sa", "flow").key, StreamSpec.of("tsn+sa", "rgb").key
        ('flow-avg', 'rgb-tsn+sa')
    """

    run: str
    stream: str
    temporal_attention: bool
    spatial_attention: bool

    @classmethod
    def of(cls, run: str, stream: str) -> StreamSpec:
        """The spec of ``stream`` in ``run``.

        Raises:
            ValueError: An unknown run or stream.
        """
        if run not in RUNS:
            raise ValueError(f"run: expected one of {list(RUNS)}, got {run!r}")
        if stream not in ("rgb", "flow"):
            raise ValueError(f"stream: expected 'rgb' or 'flow', got {stream!r}")
        temporal, spatial = RUNS[run]
        return cls(run, stream, temporal, has_spatial_attention(stream, spatial))

    @property
    def key(self) -> str:
        """The stream's folder in the run: flow streams are shared by runs with the same TA.

        The flow stream has no spatial attention, so tsn and tsn+sa share one flow stream
        (``"flow-avg"``) and tsn+ta and stacnn another (``"flow-ta"``).
        """
        if self.stream == "flow":
            return "flow-ta" if self.temporal_attention else "flow-avg"
        return f"rgb-{self.run}"

    @property
    def modality(self) -> str:
        """The dataset modality: RGB with the flow that guides it, or the stream's own."""
        return "rgb+flow" if self.spatial_attention else self.stream


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, resolved (no value left to a preset).

    Build one with :func:`resolve_config`; save it with :meth:`to_dict` (JSON-ready) and
    read it back with :meth:`from_dict`. The fields are those of ``attnvideo-train
    --help`` (one field per flag, ``--flow-lr``/``--flow-epochs`` folded into ``flow``),
    plus the folders derived from them (``video_root``, ``flow_root``) and ``from_preset``,
    the fields whose value the preset chose.

    Example:
        >>> cfg = resolve_config()  # the default synthetic job
        >>> cfg.backbone, cfg.runs, cfg.rgb.epochs, cfg.flow.epochs
        ('test_resnet', ('tsn', 'stacnn'), 15, 40)
        >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    # data
    dataset: str
    preset: str
    data_root: Path | None
    video_root: Path | None
    annotations: str | None
    split: int
    flow_root: Path | None
    flow_method: str
    frame_dirs: bool
    classes_file: Path | None
    frame_size: tuple[int, int] | None
    short_side: int | None
    num_segments: int
    new_length: int
    input_size: int
    resize: int
    test_segments: int
    test_crops: int
    workers: int
    flip: bool
    synthetic_classes: int
    synthetic_videos_per_class: int
    synthetic_test_videos_per_class: int
    synthetic_frames: int
    synthetic_size: int
    # model
    modality: str
    streams: tuple[str, ...]
    runs: tuple[str, ...]
    backbone: str
    pretrained: bool
    pretrained_file: Path | None
    aux_weight: float
    dropout: float | None
    partial_bn: bool
    fusion_weights: tuple[float, float]
    init_rgb: Path | None
    init_flow: Path | None
    ta_from_tsn: bool
    ta_epochs: int
    ta_lr: float
    # optimisation
    batch_size: int
    opt: str
    rgb: StreamRecipe
    flow: StreamRecipe
    lr_scheduler: str
    momentum: float
    weight_decay: float
    amp: str
    channels_last: bool
    compile: bool
    # run
    output_dir: Path
    resume: bool
    eval_only: bool
    save_every: int
    seed: int
    device: str | None
    figures: int
    test_batch_size: int | None
    eval_chunk_frames: int
    from_preset: tuple[str, ...] = field(default=(), compare=False)

    def recipe(self, stream: str) -> StreamRecipe:
        """The :class:`StreamRecipe` of ``"rgb"`` or ``"flow"``."""
        if stream not in ("rgb", "flow"):
            raise ValueError(f"stream: expected 'rgb' or 'flow', got {stream!r}")
        return self.rgb if stream == "rgb" else self.flow

    def init_file(self, stream: str) -> Path | None:
        """The weights file a stream starts from (``init_rgb`` / ``init_flow``)."""
        return self.init_rgb if stream == "rgb" else self.init_flow

    def warm_start(self, spec: StreamSpec) -> StreamSpec | None:
        """The stream ``spec`` starts from (``--ta-from-tsn``), or None: from scratch.

        With ``ta_from_tsn``, the flow stream with temporal attention (``flow-ta``) starts
        from this run's trained TSN flow stream (``flow-avg``): the attention's last layer
        starts at zero, so it starts as exactly that stream, and training only learns
        where to look (``ta_epochs`` epochs at ``ta_lr``).

        Example:
            >>> cfg = resolve_config()  # the synthetic default: ta_from_tsn
            >>> cfg.warm_start(StreamSpec.of("stacnn", "flow")).key
            'flow-avg'
            >>> cfg.warm_start(StreamSpec.of("stacnn", "rgb")) is None
            True
        """
        if self.ta_from_tsn and spec.stream == "flow" and spec.temporal_attention:
            return StreamSpec.of("tsn", "flow")
        return None

    def stream_recipe(self, spec: StreamSpec) -> StreamRecipe:
        """The optimisation of one stream: its modality's, or the warm start's.

        A warm-started stream trains ``ta_epochs`` at ``ta_lr``, with its modality's
        gradient clipping and no warm-up.

        Example:
            >>> cfg = resolve_config()
            >>> cfg.stream_recipe(StreamSpec.of("stacnn", "rgb"))
            StreamRecipe(lr=0.003, epochs=15, lr_steps=(), clip_grad=5.0, lr_warmup_epochs=2.0)
            >>> cfg.stream_recipe(StreamSpec.of("stacnn", "flow"))
            StreamRecipe(lr=0.001, epochs=10, lr_steps=(), clip_grad=5.0, lr_warmup_epochs=0.0)
        """
        recipe = self.recipe(spec.stream)
        if self.warm_start(spec) is None:
            return recipe
        return StreamRecipe(self.ta_lr, self.ta_epochs, (), recipe.clip_grad)

    @property
    def resize_at_decode(self) -> dict[str, Any]:
        """``{"size": frame_size, "short_side": short_side}`` for the data readers."""
        return {"size": self.frame_size, "short_side": self.short_side}

    def specs(self) -> list[StreamSpec]:
        """Every stream of every run, in training order (see :func:`stream_specs`)."""
        return stream_specs(self.runs, self.streams)

    def needs_flow(self) -> bool:
        """Whether any stream reads flow (a flow stream, or flow guiding the RGB one)."""
        return any(s.modality != "rgb" for s in self.specs())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings, tuples as lists)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config saved by :meth:`to_dict` (unknown keys are an error).

        Raises:
            ValueError: A key that is not a field, or a missing field.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        data = dict(data)
        if "lr_warmup_epochs" in data:  # run folders written when it was one value for both
            warmup = data.pop("lr_warmup_epochs")
            for stream in ("rgb", "flow"):
                if isinstance(data.get(stream), dict):
                    data[stream] = {"lr_warmup_epochs": warmup, **data[stream]}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"data: unknown TrainConfig fields {unknown}")
        # Fields added after a run folder was written take the value that reproduces it.
        data = {**_ADDED_LATER, **data}
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = _from_json(name, value)
        missing = sorted(
            n for n, f in names.items() if n not in values and f.default is dataclasses.MISSING
        )
        if missing:
            raise ValueError(f"data: missing TrainConfig fields {missing}")
        return cls(**values)


_ADDED_LATER: dict[str, Any] = dict(
    synthetic_test_videos_per_class=0, ta_from_tsn=False, ta_epochs=10, ta_lr=1e-3
)

_PATHS = {
    "data_root",
    "video_root",
    "flow_root",
    "classes_file",
    "pretrained_file",
    "init_rgb",
    "init_flow",
    "output_dir",
}
_TUPLES = {"frame_size", "streams", "runs", "fusion_weights", "from_preset"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _from_json(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _PATHS:
        return Path(value)
    if name in _TUPLES:
        return tuple(value)
    if name in ("rgb", "flow"):
        recipe = dict(value)
        recipe["lr_steps"] = tuple(recipe.get("lr_steps", ()))
        return StreamRecipe(**recipe)
    return value


def stream_specs(runs: tuple[str, ...] | list[str], streams: tuple[str, ...] | list[str]):
    """The streams to train, run by run: ``[StreamSpec.of(r, s) for r in runs for s in streams]``.

    Example:
        >>> [s.key for s in stream_specs(("tsn", "stacnn"), ("rgb", "flow"))]
        ['rgb-tsn', 'flow-avg', 'rgb-stacnn', 'flow-ta']
    """
    return [StreamSpec.of(run, stream) for run in runs for stream in streams]


def _default_cache() -> Path:
    return Path(os.environ.get("ATTNVIDEO_CACHE", Path.home() / ".cache" / "attnvideo"))


def resolve_config(preset: str | None = None, **given: Any) -> TrainConfig:
    """Build the :class:`TrainConfig` of a run from the given values and a preset.

    A value given as None (or not given) takes the preset's, then the default of
    ``attnvideo-train``. The preset defaults to the dataset's (``synthetic``, ``ucf101``,
    ``hmdb51``; ``list`` takes ``ucf101``, TSN's recipe); the dataset defaults to the
    preset's, and a given one wins (``--preset synthetic --dataset list``: the small CPU
    recipe on your own videos). ``lr``, ``epochs``, ``lr_steps``, ``clip_grad`` and
    ``lr_warmup_epochs`` set both streams; ``flow_lr``, ``flow_epochs`` and
    ``flow_lr_warmup_epochs`` the flow stream. ``runs`` (comma-separated or a list) wins
    over ``ablation`` and ``no_temporal_attention``/``no_spatial_attention``.

    Args:
        preset: A key of :data:`PRESETS`, or None.
        **given: Field values (see :class:`TrainConfig`), ``lr``/``epochs``/``lr_steps``/
            ``clip_grad``/``lr_warmup_epochs``/``flow_lr``/``flow_epochs``/
            ``flow_lr_warmup_epochs``, ``ablation``,
            ``no_temporal_attention``, ``no_spatial_attention``.

    Returns:
        The resolved config.

    Raises:
        ValueError: An unknown preset, dataset, run or key, or inconsistent values.

    Example:
        >>> cfg = resolve_config("ucf101", data_root="/data/UCF-101", pretrained=False)
        >>> cfg.pretrained, cfg.partial_bn, cfg.rgb.lr, cfg.flow.lr, cfg.test_crops
        (False, True, 0.001, 0.005, 10)
        >>> cfg.flow_root.as_posix(), "pretrained" in cfg.from_preset
        ('/data/UCF-101-flow', False)
    """
    given = {k: v for k, v in given.items() if v is not None}
    dataset = given.pop("dataset", None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    if dataset is None:  # the preset's data, or the built-in synthetic actions
        dataset = PRESETS[preset]["dataset"] if preset is not None else "synthetic"
    recipe = PRESETS[preset or (dataset if dataset in PRESETS else "ucf101")]
    if dataset not in _DATASETS:
        raise ValueError(f"dataset: expected one of {list(_DATASETS)}, got {dataset!r}")
    per_stream = {k: given.pop(k, None) for k in _PER_STREAM}
    flow_over = {
        "lr": given.pop("flow_lr", None),
        "epochs": given.pop("flow_epochs", None),
        "lr_warmup_epochs": given.pop("flow_lr_warmup_epochs", None),
    }
    ablation = bool(given.pop("ablation", False))
    no_ta = bool(given.pop("no_temporal_attention", False))
    no_sa = bool(given.pop("no_spatial_attention", False))
    values: dict[str, Any] = dict(_DEFAULTS)
    chosen: list[str] = []
    for key, value in recipe.items():
        if key in _PER_STREAM or key in ("dataset", "runs"):
            continue
        if key not in given:
            values[key] = value
            chosen.append(key)
    recipes = {}
    for stream in ("rgb", "flow"):
        cfg = {}
        for key, value in per_stream.items():
            cfg[key] = value if value is not None else recipe[key][stream]
            if stream == "flow" and flow_over.get(key) is not None:
                cfg[key] = flow_over[key]
        recipes[stream] = StreamRecipe(
            lr=float(cfg["lr"]),
            epochs=int(cfg["epochs"]),
            lr_steps=tuple(int(s) for s in cfg["lr_steps"]),
            clip_grad=float(cfg["clip_grad"] or 0.0),
            lr_warmup_epochs=float(cfg["lr_warmup_epochs"]),
        )
        if recipes[stream].lr_warmup_epochs < 0:
            name = "flow_lr_warmup_epochs" if stream == "flow" else "lr_warmup_epochs"
            raise ValueError(
                f"{name}: expected epochs >= 0, got {recipes[stream].lr_warmup_epochs}"
            )
    runs = given.pop("runs", None)
    if runs is None:
        if ablation:
            runs = list(RUNS)
        elif "runs" in recipe and not (no_ta or no_sa):
            runs = recipe["runs"].split(",")
        else:
            key = (not no_ta, not no_sa)
            runs = [name for name, flags in RUNS.items() if flags == key]
    elif isinstance(runs, str):
        runs = [r.strip() for r in runs.split(",") if r.strip()]
    bad = [r for r in runs if r not in RUNS]
    if bad:
        raise ValueError(f"runs: unknown run(s) {bad}; expected some of {list(RUNS)}")
    unknown = sorted(set(given) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"given: unknown settings {unknown}")
    values.update(given)
    if "workers" in chosen:  # a preset's count is a GPU node's: no more than this machine has
        values["workers"] = min(values["workers"], len(os.sched_getaffinity(0)))
    modality = values["modality"]
    if modality not in ("rgb", "flow", "two_stream"):
        raise ValueError(f"modality: expected 'rgb', 'flow' or 'two_stream', got {modality!r}")
    if values["frame_size"] is not None and values["short_side"] is not None:
        raise ValueError("frame_size, short_side: give one of them (--frame-size or --short-side)")
    # A flow cache at another frame size than the default one gets its own folder.
    suffix = ""
    if values["frame_size"] is not None:
        suffix = "-{}x{}".format(*values["frame_size"])
    elif values["short_side"] is not None:
        suffix = f"-s{values['short_side']}"
    data_root = _path(values["data_root"])
    annotations = values["annotations"]
    video_root = data_root
    flow_root = _path(values["flow_root"])
    if dataset == "synthetic":
        if data_root is None:
            tests = values["synthetic_test_videos_per_class"]
            data_root = _default_cache() / (
                f"synthetic-c{values['synthetic_classes']}-"
                f"v{values['synthetic_videos_per_class']}-"
                + (f"t{tests}-" if tests else "")
                + f"f{values['synthetic_frames']}-{values['synthetic_size']}px-s{SYNTHETIC['seed']}"
            )
        video_root, annotations = data_root / "videos", str(data_root / "splits")
        flow_root = flow_root or data_root / f"flow-{values['flow_method']}{suffix}"
    elif video_root is not None and flow_root is None:
        flow_root = video_root.with_name(f"{video_root.name}-flow{suffix}")
    for name in ("classes_file", "pretrained_file", "init_rgb", "init_flow", "output_dir"):
        values[name] = _path(values[name])
    values.update(
        dataset=dataset,
        preset=preset or (dataset if dataset in PRESETS else "ucf101"),
        data_root=data_root,
        video_root=video_root,
        annotations=None if annotations is None else str(annotations),
        flow_root=flow_root,
        streams=("rgb", "flow") if modality == "two_stream" else (modality,),
        runs=tuple(runs),
        rgb=recipes["rgb"],
        flow=recipes["flow"],
        fusion_weights=tuple(float(w) for w in values["fusion_weights"]),
        frame_size=None if values["frame_size"] is None else tuple(values["frame_size"]),
        from_preset=tuple(chosen),
    )
    if values["pretrained_file"] is not None:
        if given.get("pretrained") is False:
            raise ValueError(
                "pretrained_file: loads pretrained weights from a file, but pretrained is "
                "False (give --pretrained-file without --no-pretrained)"
            )
        values["pretrained"] = True
        values["from_preset"] = tuple(k for k in chosen if k != "pretrained")
    for key in ("pretrained", "partial_bn", "flip", "ta_from_tsn"):
        values[key] = bool(values[key])
    values["ta_epochs"], values["ta_lr"] = int(values["ta_epochs"]), float(values["ta_lr"])
    if values["ta_epochs"] < 1 or values["ta_lr"] <= 0:
        raise ValueError(
            f"ta_epochs, ta_lr: expected >= 1 epoch at a learning rate > 0, got "
            f"{values['ta_epochs']} at {values['ta_lr']}"
        )
    if values["synthetic_test_videos_per_class"] < 0:
        raise ValueError(
            "synthetic_test_videos_per_class: expected an integer >= 0, got "
            f"{values['synthetic_test_videos_per_class']}"
        )
    return TrainConfig(**values)


def _path(value: Any) -> Path | None:
    return None if value is None else Path(value)


# The defaults of the values no preset fills (and placeholders for those every preset
# fills, overwritten in resolve_config).
_DEFAULTS: dict[str, Any] = dict(
    data_root=None,
    annotations=None,
    split=1,
    flow_root=None,
    flow_method="dis",
    frame_dirs=False,
    classes_file=None,
    frame_size=None,
    short_side=None,
    num_segments=None,
    new_length=None,
    input_size=None,
    resize=None,
    test_segments=None,
    test_crops=None,
    workers=None,
    flip=None,
    synthetic_classes=SYNTHETIC["num_classes"],
    synthetic_videos_per_class=SYNTHETIC["videos_per_class"],
    synthetic_test_videos_per_class=SYNTHETIC["test_videos_per_class"],
    synthetic_frames=SYNTHETIC["num_frames"],
    synthetic_size=SYNTHETIC["size"][0],
    modality="two_stream",
    backbone=None,
    pretrained=None,
    pretrained_file=None,
    aux_weight=0.5,
    dropout=None,
    partial_bn=None,
    fusion_weights=(1.0, 1.5),
    init_rgb=None,
    init_flow=None,
    ta_from_tsn=None,
    ta_epochs=None,
    ta_lr=None,
    batch_size=None,
    opt=None,
    lr_scheduler=None,
    momentum=0.9,
    weight_decay=None,
    amp="off",
    channels_last=False,
    compile=False,
    output_dir=Path("runs/stacnn"),
    resume=False,
    eval_only=False,
    save_every=100,
    seed=0,
    device=None,
    figures=4,
    test_batch_size=None,
    eval_chunk_frames=64,
)
