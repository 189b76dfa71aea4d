"""The training and prediction engine: what ``attnvideo-train`` and ``attnvideo-predict`` run.

- :mod:`~attnvideo.engine.config`: presets and the frozen run configuration
  (:class:`TrainConfig`, :func:`resolve_config`), saved as ``config.json`` in the run;
- :mod:`~attnvideo.engine.trainer`: :func:`train` (every stream of every run, resumable),
  :func:`train_one_epoch`, optimiser and schedule;
- :mod:`~attnvideo.engine.evaluation`: view averaging, clip/video/mean-class accuracy,
  top-k, fusion of streams evaluated apart;
- :mod:`~attnvideo.engine.checkpoints`: atomic checkpoints in safetensors and the one
  policy for loading a finished stream;
- :mod:`~attnvideo.engine.distributed` and :mod:`~attnvideo.engine.samplers`: torchrun
  or SLURM processes, reproducible sampling;
- :mod:`~attnvideo.engine.rundir` and :mod:`~attnvideo.engine.predictor`: run folders
  that describe themselves (``run.json``) and :class:`Predictor`, which classifies videos
  with one.

Library errors are exceptions (``ValueError``, ``FileNotFoundError``, ...); only the
command-line modules (:mod:`attnvideo.train`, :mod:`attnvideo.predict`) turn them into
exit codes.
"""

from .checkpoints import init_weights, load_stream_weights, read_weights
from .config import PRESETS, RUNS, StreamRecipe, StreamSpec, TrainConfig, resolve_config
from .distributed import DistEnv, init_distributed
from .evaluation import compute_metrics, evaluate, fuse_scores, wilson_interval
from .predictor import Prediction, Predictor
from .rundir import RunInfo, StreamInfo, load_run
from .samplers import ResumableDistributedSampler, SeededSamples, ShardSampler
from .streams import ModelSpec, OfflineError
from .trainer import NonFiniteLoss, format_footer, format_table, train, train_one_epoch

__all__ = [
    "PRESETS",
    "RUNS",
    "DistEnv",
    "ModelSpec",
    "NonFiniteLoss",
    "OfflineError",
    "Prediction",
    "Predictor",
    "ResumableDistributedSampler",
    "RunInfo",
    "SeededSamples",
    "ShardSampler",
    "StreamInfo",
    "StreamRecipe",
    "StreamSpec",
    "TrainConfig",
    "compute_metrics",
    "evaluate",
    "format_footer",
    "format_table",
    "fuse_scores",
    "init_distributed",
    "init_weights",
    "load_run",
    "load_stream_weights",
    "read_weights",
    "resolve_config",
    "train",
    "train_one_epoch",
    "wilson_interval",
]
