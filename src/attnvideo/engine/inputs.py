"""The data of a run: checks, the synthetic dataset, datasets and loaders of each stream.

Workers hand over uint8 frames and quantised flow (a quarter of the bytes to collate and
copy); each dataset carries a ``normalize`` (:class:`~attnvideo.data.GroupNormalize`) that
turns a batch into float on the device: RGB with the backbone's mean/std, flow centred to
``[-1, 1]``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..data import (
    HMDB51,
    UCF101,
    GroupNormalize,
    VideoDataset,
    VideoList,
    read_class_index,
    test_transform,
    train_transform,
)
from .config import SYNTHETIC, StreamSpec, TrainConfig
from .distributed import DistEnv, barrier
from .samplers import ResumableDistributedSampler, SeededSamples, ShardSampler

__all__ = [
    "annotation_files",
    "build_dataset",
    "check_dataset",
    "class_names",
    "eval_batch_size",
    "prepare_data",
    "read_class_names",
    "test_loader",
    "train_loader",
]

_EXPECTED = {
    "ucf101": "the UCF-101 videos (UCF-101/<Class>/v_*.avi)",
    "hmdb51": "the HMDB-51 videos (<class>/<video>.avi)",
    "list": "the videos of your lists",
}


def annotation_files(cfg: TrainConfig) -> list[Path]:
    """The split folder (ucf101, hmdb51, synthetic) or the train and test lists (list).

    Raises:
        ValueError: ``--annotations`` missing, or not ``train.txt,test.txt`` for a list.
    """
    if cfg.annotations is None:
        raise ValueError(f"--annotations is required for --dataset {cfg.dataset}")
    if cfg.dataset == "list":
        parts = str(cfg.annotations).split(",")
        if len(parts) != 2:
            raise ValueError("--annotations for --dataset list: expected 'train.txt,test.txt'")
        return [Path(p) for p in parts]
    return [Path(cfg.annotations)]


def check_dataset(cfg: TrainConfig) -> None:
    """Raise at once, naming what is missing and where it was looked for.

    Raises:
        ValueError: ``--data-root``/``--annotations`` not given.
        FileNotFoundError: The video folder, a split file or the classes file is missing.
    """
    if cfg.dataset == "synthetic":
        return
    if cfg.video_root is None:
        raise ValueError(f"--data-root is required for --dataset {cfg.dataset}")
    if not cfg.video_root.is_dir():
        raise FileNotFoundError(
            f"dataset not found: {_EXPECTED[cfg.dataset]} were looked for in "
            f"{cfg.video_root.resolve()} (--data-root), which does not exist"
        )
    for path in annotation_files(cfg):
        if not path.exists():
            raise FileNotFoundError(
                f"annotations not found: {path.resolve()} does not exist "
                f"(--annotations {cfg.annotations})"
            )
    if cfg.classes_file is not None and not cfg.classes_file.is_file():
        raise FileNotFoundError(f"--classes {cfg.classes_file}: no such file")


def prepare_data(cfg: TrainConfig, env: DistEnv) -> None:
    """Make the synthetic dataset (once, then reused) and its flow; other datasets as is."""
    if cfg.dataset != "synthetic":
        return
    from ..data.flow import precompute_flow
    from ..data.synthetic import make_synthetic_actions

    assert cfg.data_root is not None and cfg.video_root is not None
    if env.is_main:
        print(f"synthetic actions in {cfg.data_root} (made once, then reused)", flush=True)
        options = {
            **SYNTHETIC,
            "num_classes": cfg.synthetic_classes,
            "videos_per_class": cfg.synthetic_videos_per_class,
            "test_videos_per_class": cfg.synthetic_test_videos_per_class,
            "num_frames": cfg.synthetic_frames,
            "size": (cfg.synthetic_size, cfg.synthetic_size),
        }
        make_synthetic_actions(cfg.data_root, progress=True, **options)
    barrier(env)
    if env.is_main and cfg.needs_flow():
        precompute_flow(
            cfg.video_root,
            cfg.flow_root,
            method=cfg.flow_method,
            workers=max(1, min(2, os.cpu_count() or 1)),
            progress=True,
            **{k: v for k, v in cfg.resize_at_decode.items() if v is not None},
        )
    barrier(env)


def read_class_names(path: str | os.PathLike) -> list[str]:
    r"""Class names from a file.

    One name per line (line ``i`` is label ``i``), or UCF-101's ``classInd.txt`` form
    (``<1-based index> <name>`` lines).

    Raises:
        ValueError: An empty file or repeated names.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "classes.txt"
        >>> _ = p.write_text("cooking\nsweeping\n")
        >>> read_class_names(p)
        ['cooking', 'sweeping']
        >>> _ = p.write_text("1 Archery\r\n2 Bowling\r\n")
        >>> read_class_names(p)
        ['Archery', 'Bowling']
    """
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no class names")
    if all(len(line.split(maxsplit=1)) == 2 and line.split()[0].isdigit() for line in lines):
        return read_class_index(path)
    if len(set(lines)) != len(lines):
        raise ValueError(f"{path}: repeated class names")
    return lines


def class_names(cfg: TrainConfig) -> list[str]:
    """The dataset's class names, in label order (a list without ``--classes``: "0", "1"...)."""
    if cfg.classes_file is not None:
        return read_class_names(cfg.classes_file)
    if cfg.dataset in ("synthetic", "ucf101"):
        return read_class_index(Path(str(cfg.annotations)) / "classInd.txt")
    ds = build_dataset(cfg, StreamSpec.of("tsn", "rgb"), False, {"mean": (0,) * 3, "std": (1,) * 3})
    return list(ds.classes)


def _options(
    cfg: TrainConfig, spec: StreamSpec, train: bool, data_config: dict
) -> tuple[dict[str, Any], GroupNormalize]:
    norm = {}
    if spec.stream == "rgb":
        norm = {"mean": tuple(data_config["mean"]), "std": tuple(data_config["std"])}
    if train:
        transform = train_transform(
            cfg.input_size,
            scales=(1, 0.875, 0.75, 0.66) if spec.stream == "rgb" else (1, 0.875, 0.75),
            flip=cfg.flip,
            normalize=False,
        )
    else:
        transform = test_transform(
            cfg.input_size, resize=cfg.resize, crops=cfg.test_crops, normalize=False
        )
    options = dict(
        modality=spec.modality,
        num_segments=cfg.num_segments if train else cfg.test_segments,
        new_length=cfg.new_length,
        test_mode=not train,
        transform=transform,
        flow_root=cfg.flow_root,
        frame_dirs=cfg.frame_dirs,
        flow_method=cfg.flow_method,
        to_float=False,
    )
    if cfg.frame_size is not None:
        options["frame_size"] = cfg.frame_size
    if cfg.short_side is not None:
        options["short_side"] = cfg.short_side
    return options, GroupNormalize(**norm)


def build_dataset(
    cfg: TrainConfig, spec: StreamSpec, train: bool, data_config: dict
) -> VideoDataset:
    """The train or test dataset of one stream, with ``dataset.normalize`` for its batches.

    Args:
        cfg: The run.
        spec: The stream (its modality reads RGB with flow when flow guides attention).
        train: The training split (random snippets, augmentation) or the test split.
        data_config: The model's ``data_config`` (its RGB mean and std).
    """
    common, normalize = _options(cfg, spec, train, data_config)
    if cfg.dataset in ("synthetic", "ucf101"):
        ds: VideoDataset = UCF101(
            cfg.video_root, cfg.annotations, split=cfg.split, train=train, **common
        )
    elif cfg.dataset == "hmdb51":
        ds = HMDB51(cfg.video_root, cfg.annotations, split=cfg.split, train=train, **common)
    else:
        train_list, test_list = annotation_files(cfg)
        classes = None if cfg.classes_file is None else read_class_names(cfg.classes_file)
        ds = VideoList(
            train_list if train else test_list, cfg.video_root, classes=classes, **common
        )
    ds.normalize = normalize  # type: ignore[attr-defined]
    return ds


def _worker_context(workers: int) -> str | None:
    """Start loader workers from a clean process, never by forking this one.

    A forked worker inherits PyAV/FFmpeg objects whose threads did not survive the fork
    (the main process decodes frames for the figures); freeing them deadlocks.
    """
    if workers == 0:
        return None
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def train_loader(
    dataset: Dataset, cfg: TrainConfig, env: DistEnv
) -> tuple[DataLoader, ResumableDistributedSampler]:
    """The training loader (seeded samples, this process's shard) and its sampler."""
    seeded = SeededSamples(dataset, cfg.seed)
    sampler = ResumableDistributedSampler(
        seeded,
        num_replicas=env.world_size,
        rank=env.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=True,
    )
    loader = DataLoader(
        seeded,
        batch_size=cfg.batch_size // env.world_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=env.device.type == "cuda",
        drop_last=True,
        generator=torch.Generator().manual_seed(cfg.seed),
        persistent_workers=cfg.workers > 0,
        multiprocessing_context=_worker_context(cfg.workers),
    )
    return loader, sampler


def eval_batch_size(cfg: TrainConfig, world_size: int) -> int:
    """Test videos per batch and process.

    ``--test-batch-size``, else 1 for a multi-view protocol (TSN's 25 snippets x 10 crops
    are 250 frames a video), else the training batch per process.
    """
    if cfg.test_batch_size is not None:
        return cfg.test_batch_size
    if cfg.test_crops > 1 or cfg.test_segments > cfg.num_segments:
        return 1
    return max(1, cfg.batch_size // world_size)


def test_loader(dataset: Dataset, cfg: TrainConfig, env: DistEnv) -> DataLoader:
    """The test loader: this process's shard of the test set, in order."""
    return DataLoader(
        dataset,
        batch_size=eval_batch_size(cfg, env.world_size),
        sampler=ShardSampler(len(dataset), env.rank, env.world_size),  # type: ignore[arg-type]
        num_workers=cfg.workers,
        pin_memory=env.device.type == "cuda",
        multiprocessing_context=_worker_context(cfg.workers),
    )


# Not a pytest test, although its name starts with ``test_``.
test_loader.__test__ = False  # type: ignore[attr-defined]
