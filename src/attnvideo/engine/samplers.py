"""Samplers that make training reproducible across processes, workers and resumes.

- :class:`SeededSamples` makes every random augmentation a function of (seed, epoch,
  index) alone;
- :class:`ResumableDistributedSampler` hands out ``(epoch, index)`` keys, shards them
  over processes and can start mid-epoch;
- :class:`ShardSampler` splits a test set over processes with no padding.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

__all__ = ["ResumableDistributedSampler", "SeededSamples", "ShardSampler"]


class SeededSamples(Dataset):
    """Makes every random augmentation a function of (seed, epoch, index) alone.

    Keys are ``(epoch, index)`` pairs (from :class:`ResumableDistributedSampler`, so the
    epoch reaches persistent workers too). Item ``i`` of epoch ``e`` is drawn with
    torch/numpy/python RNGs seeded from ``(seed, e, i)`` (the caller's RNG states are
    restored afterwards). So the samples do not depend on the number of processes or
    workers, nor on where a run was resumed: the basis of exact resume and of DDP
    matching a single process.

    Args:
        dataset: The map-style dataset to draw from.
        seed: The run's seed.

    Example:
        >>> class Draw(Dataset):
        ...     def __len__(self): return 2
        ...     def __getitem__(self, i): return torch.rand(()).item()
        >>> ds = SeededSamples(Draw(), seed=0)
        >>> ds[0, 1] == ds[0, 1], ds[0, 1] == ds[1, 1]
        (True, False)
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        digest = hashlib.blake2b(f"{self.seed}/{epoch}/{index}".encode(), digest_size=8)
        seed = int.from_bytes(digest.digest(), "little") & (2**63 - 1)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random.seed(seed)
                np.random.seed(seed % 2**32)
                return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler (also used with one process) that can skip the first items.

    Yields ``(epoch, index)`` keys for :class:`SeededSamples`. ``set_start(n)`` skips this
    process's first ``n`` items of the epoch (a resume mid-epoch).

    Example:
        >>> s = ResumableDistributedSampler(range(6), num_replicas=1, rank=0, shuffle=False)
        >>> s.set_start(4)
        >>> list(s), len(s)
        ([(0, 4), (0, 5)], 2)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` items of this process in the epoch."""
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        return iter([(self.epoch, i) for i in list(super().__iter__())[self.start :]])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Evaluation sampler: rank r takes items r, r + W, ...; no padding, no duplicates.

    Args:
        n: Items in the dataset.
        rank: This process's rank.
        world_size: Number of processes.

    Example:
        >>> list(ShardSampler(5, rank=0, world_size=2)), list(ShardSampler(5, 1, 2))
        ([0, 2, 4], [1, 3])
    """

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
