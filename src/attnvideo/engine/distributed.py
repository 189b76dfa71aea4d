"""Processes of a run: one, torchrun's, or SLURM's (``srun``); gloo on CPU, NCCL on GPU.

:func:`init_distributed` reads the launcher's environment once and returns a
:class:`DistEnv`; the helpers take it explicitly (no global state beyond
``torch.distributed``'s own process group).

- torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``.
- ``srun`` sets ``SLURM_STEP_ID``, ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` (or
  ``SLURM_NTASKS``) and ``SLURM_LOCALID`` (a batch script itself, outside ``srun``, is one
  process); the rendezvous address comes from ``MASTER_ADDR``/``MASTER_PORT``,
  which the job script exports (e.g. ``export MASTER_ADDR=$(scontrol show hostnames
  $SLURM_JOB_NODELIST | head -n 1) MASTER_PORT=29500``).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistEnv",
    "all_gather_objects",
    "barrier",
    "init_distributed",
    "launcher_ranks",
    "shutdown",
]


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the run.

    Attributes:
        rank: Global rank (0 = the main process, the one that writes files and prints).
        world_size: Number of processes.
        local_rank: Rank on this machine (picks the GPU).
        device: The device this process trains on.

    Example:
        >>> env = DistEnv(0, 1, 0, torch.device("cpu"))
        >>> env.is_main, env.distributed
        (True, False)
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1


def launcher_ranks(environ: dict[str, str] | None = None) -> tuple[int, int, int, str]:
    """``(rank, world_size, local_rank, launcher)`` from torchrun's or srun's variables.

    Args:
        environ: The environment (default ``os.environ``).

    Returns:
        The ranks and ``"torchrun"``, ``"slurm"`` or ``"none"`` (one process).

    Raises:
        ValueError: A SLURM multi-task step without ``MASTER_ADDR``/``MASTER_PORT``.

    Example:
        >>> launcher_ranks({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
        (3, 8, 1, 'torchrun')
        >>> launcher_ranks({"SLURM_STEP_ID": "0", "SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8",
        ...                 "SLURM_LOCALID": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "29500"})
        (5, 8, 1, 'slurm')
        >>> launcher_ranks({})
        (0, 1, 0, 'none')
    """
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)), "torchrun"
    tasks = env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS")
    if "SLURM_PROCID" in env and tasks and int(tasks) > 1 and "SLURM_STEP_ID" in env:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in env]
        if missing:
            raise ValueError(
                f"SLURM: {tasks} tasks but no {' and '.join(missing)} in the environment; "
                "export them in the job script before srun (MASTER_ADDR: the first node's "
                "host name, MASTER_PORT: a free port such as 29500)"
            )
        return int(env["SLURM_PROCID"]), int(tasks), int(env.get("SLURM_LOCALID", 0)), "slurm"
    return 0, 1, 0, "none"


def init_distributed(device: str | None = None, *, batch_size: int | None = None) -> DistEnv:
    """Join the process group of torchrun or srun (nothing to join for one process).

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; None picks CUDA when there is one.
            ``"cuda"`` takes the GPU of the local rank.
        batch_size: The global batch, checked to split evenly over the processes.

    Returns:
        This process's :class:`DistEnv`.

    Raises:
        ValueError: ``batch_size`` does not divide by the number of processes, or a SLURM
            step without a rendezvous address.

    Example:
        >>> init_distributed("cpu", batch_size=8)  # one process (no launcher)
        DistEnv(rank=0, world_size=1, local_rank=0, device=device(type='cpu'))
    """
    rank, world_size, local_rank, launcher = launcher_ranks()
    if batch_size is not None and batch_size % world_size:
        raise ValueError(
            f"batch_size: the global batch {batch_size} (--batch-size) must be divisible by "
            f"the {world_size} processes"
        )
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        if launcher == "slurm":  # env:// rendezvous reads these
            os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size))
            os.environ["LOCAL_RANK"] = str(local_rank)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return DistEnv(rank, world_size, local_rank, dev)


def barrier(env: DistEnv) -> None:
    """Wait for every process (a no-op for one)."""
    if env.distributed:
        dist.barrier()


def all_gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` for one process)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def shutdown(env: DistEnv) -> None:
    """Leave the process group (a no-op for one process)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
