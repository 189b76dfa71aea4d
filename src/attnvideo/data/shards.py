"""Split a list of videos between processes or machines: every video exactly once.

A :class:`Shard` ``I/N`` takes every ``N``-th name of the **sorted**, de-duplicated list,
starting at the ``I``-th (0-based), so ``N`` processes given the same list and
``0/N`` ... ``N-1/N`` together cover every name once, with no coordination between them
and whatever order they start in. :meth:`Shard.from_env` reads the shard a job scheduler
assigned: a SLURM job array (``SLURM_ARRAY_TASK_ID`` / ``SLURM_ARRAY_TASK_COUNT``, with
``SLURM_ARRAY_TASK_MIN`` and ``_STEP`` for arrays like ``--array=1-8`` or ``0-14:2``), else
torchrun's ``RANK`` / ``WORLD_SIZE``, else the tasks of one ``srun -n N``
(``SLURM_PROCID`` / ``SLURM_NTASKS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Shard"]


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the names at ``index, index + count, ...`` once sorted.

    Args:
        index: 0-based, ``0 <= index < count``.
        count: The number of shards, at least 1.

    Raises:
        ValueError: ``index`` or ``count`` out of range (naming ``shard``).

    Example:
        >>> names = ["c.avi", "a.avi", "d.avi", "b.avi", "e.avi", "a.avi"]
        >>> Shard(0, 2).select(names), Shard(1, 2).select(names)
        (['a.avi', 'c.avi', 'e.avi'], ['b.avi', 'd.avi'])
        >>> Shard.parse("1/2") == Shard(1, 2), str(Shard(1, 2))
        (True, '1/2')
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        for value in (self.index, self.count):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"shard: expected integers I/N, got {self.index!r}/{self.count!r}")
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard: expected I/N with 0 <= I < N (I counts from 0), "
                f"got {self.index}/{self.count}"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """A shard from ``"I/N"`` (``--shard`` on the command line).

        Raises:
            ValueError: not of the form ``I/N`` with ``0 <= I < N``.

        Example:
            >>> Shard.parse("2/2")
            Traceback (most recent call last):
            ...
            ValueError: shard: expected I/N with 0 <= I < N (I counts from 0), got 2/2
        """
        index, sep, count = str(text).partition("/")
        i, n = _int(index), _int(count)
        if not sep or i is None or n is None:
            raise ValueError(f"shard: expected I/N such as 0/4 (I counts from 0), got {text!r}")
        return cls(i, n)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> tuple[Shard, str] | None:
        """The shard a SLURM job array, torchrun or ``srun`` assigned to this process, if any.

        Args:
            environ: The environment to read (default ``os.environ``).

        Returns:
            ``(shard, where it came from)``, or None when neither is set.

        Raises:
            ValueError: The variables are set but do not give a shard (naming them).

        Example:
            >>> env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3",
            ...        "SLURM_ARRAY_TASK_MIN": "1"}
            >>> Shard.from_env(env)
            (Shard(index=2, count=3), 'SLURM_ARRAY_TASK_ID=3 of SLURM_ARRAY_TASK_COUNT=3')
            >>> Shard.from_env({"RANK": "0", "WORLD_SIZE": "2"})[0]
            Shard(index=0, count=2)
            >>> Shard.from_env({}) is None
            True
        """
        env = os.environ if environ is None else environ
        if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            task, count = _int(env["SLURM_ARRAY_TASK_ID"]), _int(env["SLURM_ARRAY_TASK_COUNT"])
            first = _int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            step = _int(env.get("SLURM_ARRAY_TASK_STEP", "1"))
            where = (
                f"SLURM_ARRAY_TASK_ID={env['SLURM_ARRAY_TASK_ID']} of "
                f"SLURM_ARRAY_TASK_COUNT={env['SLURM_ARRAY_TASK_COUNT']}"
            )
            valid = None not in (task, count, first, step) and step > 0
            if valid and (task - first) % step == 0 and count > 0:
                index = (task - first) // step
                if 0 <= index < count:
                    return cls(index, count), where
            raise ValueError(
                f"shard: {where} (SLURM_ARRAY_TASK_MIN={env.get('SLURM_ARRAY_TASK_MIN')}, "
                f"SLURM_ARRAY_TASK_STEP={env.get('SLURM_ARRAY_TASK_STEP')}) is not one of "
                "evenly spaced tasks; use an array such as --array=0-N or pass --shard I/N"
            )
        for rank_key, size_key in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
            if rank_key in env and size_key in env:
                rank, size = _int(env[rank_key]), _int(env[size_key])
                where = f"{rank_key}={env[rank_key]} of {size_key}={env[size_key]}"
                if rank is None or size is None:
                    raise ValueError(f"shard: {where} are not integers")
                try:
                    return cls(rank, size), where
                except ValueError as err:
                    raise ValueError(f"{err} (from {where})") from None
        return None

    def select(self, names: Iterable[str]) -> list[str]:
        """This shard's names: the sorted, de-duplicated list, from ``index``, every ``count``."""
        return sorted(set(names))[self.index :: self.count]
