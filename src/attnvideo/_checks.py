"""Input validation at the library's boundary.

Every helper raises a ``TypeError`` or ``ValueError`` whose message names the argument,
what was seen and what was expected, so a user never gets an error from deep inside an
einsum or a matmul. Checks that need the tensor's *values* (NaN, all-masked rows, ranges)
synchronise with the device, so they run in eager mode only and are skipped while
``torch.compile`` / ``torch.export`` trace the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_all_finite",
    "check_dim",
    "check_floating",
    "check_mask",
    "check_matches",
    "check_nonempty",
    "check_odd_kernel",
    "check_positive_int",
    "check_range",
    "check_target",
    "describe",
    "tracing",
]


def describe(x: object) -> str:
    """Say what ``x`` is, for error messages: dtype and shape of a tensor, else its type."""
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, int | float | str) else type(x).__name__


def tracing() -> bool:
    """True while ``torch.compile`` or ``torch.export`` traces: skip value checks then."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def check_positive_int(name: str, value: object) -> int:
    """Raise ``ValueError`` unless ``value`` is a positive int (bools are rejected); return it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {describe(value)}")
    return value


def check_odd_kernel(name: str, value: object) -> int:
    """Raise ``ValueError`` unless ``value`` is an odd positive int (a 'same' padded kernel)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name}: expected an odd positive int, got {describe(value)}")
    return value


def check_floating(name: str, x: object, layout: str | None = None) -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor; return it.

    ``layout`` names the expected shape in the message, e.g. ``"(B, T, dim)"``.
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        shape = f" of shape {layout}" if layout else ""
        raise TypeError(f"{name}: expected a floating-point tensor{shape}, got {describe(x)}")
    return x


def check_dim(name: str, x: Tensor, layouts: dict[int, str]) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``layouts`` (ndim -> axis names).

    Every axis must also be non-empty: a size-0 axis (no segments, no channels, no pixels)
    would otherwise surface as NaN or as an error from deep inside a convolution.
    """
    if x.ndim not in layouts:
        expected = " or ".join(f"{n}D {axes}" for n, axes in layouts.items())
        raise ValueError(f"{name}: expected a {expected} tensor, got shape {tuple(x.shape)}")
    check_nonempty(name, x, layouts[x.ndim])


def check_nonempty(name: str, x: Tensor, layout: str) -> None:
    """Raise ``ValueError`` if an axis of ``x`` has size 0; ``layout`` names the axes."""
    if 0 in x.shape:
        empty = [i for i, n in enumerate(x.shape) if n == 0]
        raise ValueError(
            f"{name}: expected a non-empty {layout} tensor, got shape {tuple(x.shape)} "
            f"(axis {', '.join(map(str, empty))} of size 0)"
        )


def check_matches(
    name: str, x: Tensor, dims: Sequence[int], expected: Sequence[int], layout: str
) -> None:
    """Raise ``ValueError`` unless ``x.shape[d] == e`` for each pair of ``dims``/``expected``.

    ``layout`` names the axes of the expected shape in the message, e.g. ``"(B, T, ...)"``.
    """
    seen = tuple(x.shape[d] for d in dims)
    if seen != tuple(expected):
        want = ", ".join(str(e) for e in expected)
        raise ValueError(
            f"{name}: expected shape {layout} with axes {list(dims)} = ({want}), "
            f"got shape {tuple(x.shape)}"
        )


def check_mask(mask: object, batch: int, segments: int) -> Tensor:
    """Validate a segment mask: bool ``(B, T)``, at least one valid segment per row."""
    if not torch.is_tensor(mask) or mask.dtype != torch.bool:
        raise TypeError(f"mask: expected a bool tensor of shape (B, T), got {describe(mask)}")
    if tuple(mask.shape) != (batch, segments):
        raise ValueError(
            f"mask: expected shape (B, T) = ({batch}, {segments}), got {tuple(mask.shape)}"
        )
    if not tracing():
        empty = ~mask.any(dim=1)
        if bool(empty.any()):
            rows = empty.nonzero().flatten().tolist()
            raise ValueError(
                f"mask: every row needs at least one valid (True) segment; rows {rows} "
                f"of mask with shape {tuple(mask.shape)} are all False"
            )
    return mask


def check_all_finite(name: str, x: Tensor) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinity (eager mode only)."""
    # One cheap reduction: a NaN or inf anywhere makes the sum non-finite. Only then count
    # (a sum can also overflow, so a non-finite sum with no bad entry passes).
    if tracing() or x.numel() == 0 or bool(torch.isfinite(x.sum())):
        return
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f"{name}: expected finite values, got {bad} NaN/inf entries in a tensor "
            f"of shape {tuple(x.shape)}"
        )


def check_range(name: str, x: Tensor, low: float, high: float) -> None:
    """Raise ``ValueError`` unless ``low <= x <= high`` everywhere (eager mode only)."""
    if not tracing() and not bool(((x >= low) & (x <= high)).all()):
        raise ValueError(
            f"{name}: expected values in [{low}, {high}], got a tensor of shape "
            f"{tuple(x.shape)} with range [{float(x.min())}, {float(x.max())}]"
        )


_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_target(target: object, batch: int, num_classes: int, *, name: str = "target") -> Tensor:
    """Validate class indices: integer ``(B,)`` in ``[0, num_classes)``; ``name`` for errors.

    Returns the indices as int64 (what ``cross_entropy`` and indexing take), converting
    other integer dtypes.
    """
    if not torch.is_tensor(target) or target.dtype not in _INTEGER_DTYPES:
        raise TypeError(
            f"{name}: expected an integer (int64) tensor of class indices with shape (B,), "
            f"got {describe(target)}"
        )
    if tuple(target.shape) != (batch,):
        raise ValueError(f"{name}: expected shape (B,) = ({batch},), got {tuple(target.shape)}")
    target = target.long()
    if tracing() or target.numel() == 0:
        return target
    if not bool(((target >= 0) & (target < num_classes)).all()):
        raise ValueError(
            f"{name}: expected class indices in [0, {num_classes}), got values in "
            f"[{int(target.min())}, {int(target.max())}]"
        )
    return target
