"""Optimiser parameter groups and TSN's partial batch normalisation.

TSN fine-tunes with two rules that this module implements for any model:

- **Parameter groups**: no weight decay on norm parameters and biases (every tensor with
  at most one dimension, plus the names a timm model lists in ``no_weight_decay()``, such
  as position embeddings and class tokens), and a learning-rate multiplier for the first
  convolution (TSN/TSM use 5x for the flow stream, whose first layer was adapted from RGB).
- **Partial BN**: every batch norm of the backbone except the first is frozen: kept in
  eval mode (running statistics fixed) and its affine parameters no longer trained. With
  small video datasets this stops the statistics from drifting away from ImageNet's.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["batch_norms", "freeze_partial_bn", "param_groups"]


def batch_norms(module: nn.Module) -> list[nn.Module]:
    """Every batch-norm layer of ``module``, in registration order (a CNN's run order).

    Covers ``BatchNorm1d/2d/3d``, ``SyncBatchNorm`` and timm's ``BatchNormAct2d``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4))
        >>> len(batch_norms(net))
        2
    """
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def freeze_partial_bn(module: nn.Module) -> list[nn.Module]:
    """TSN's partial BN: freeze every batch norm of ``module`` but the first.

    The frozen layers are put in eval mode and their affine parameters stop requiring
    gradients. ``module.train()`` puts them back in training mode, so a model using
    partial BN must call this again after every ``train()`` (:class:`STACNN` does).

    Args:
        module: The network whose batch norms to freeze (the backbone, not new layers).

    Returns:
        The frozen batch-norm layers.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4))
        >>> frozen = freeze_partial_bn(net.train())
        >>> net[1].training, net[2].training, net[2].weight.requires_grad
        (True, False, False)
    """
    frozen = batch_norms(module)[1:]
    for bn in frozen:
        bn.eval()
        for p in bn.parameters(recurse=False):
            p.requires_grad_(False)
    return frozen


def param_groups(
    module: nn.Module,
    lr: float,
    weight_decay: float,
    *,
    first_conv: nn.Module | None = None,
    first_conv_lr_mult: float = 1.0,
    no_weight_decay: Iterable[str] = (),
    prefix: str = "",
) -> list[dict]:
    """Optimiser parameter groups: decay / no decay, and a first-conv lr multiplier.

    Frozen parameters (``requires_grad=False``) are left out; empty groups are dropped.
    Every group carries its ``lr``, ``weight_decay`` and a ``name``.

    Args:
        module: The model.
        lr: Base learning rate.
        weight_decay: Weight decay of the decayed group.
        first_conv: The first convolution, whose parameters get ``lr * first_conv_lr_mult``.
        first_conv_lr_mult: Learning-rate multiplier of the first convolution.
        no_weight_decay: Parameter names (relative to ``module``) that never decay, on top
            of every tensor with at most one dimension (norm weights, biases).
        prefix: Prepended to each group's name (e.g. ``"flow."``).

    Returns:
        A list of dicts for ``torch.optim`` constructors.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(10, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
        >>> groups = param_groups(net, 0.01, 5e-4, first_conv=net[0], first_conv_lr_mult=5)
        >>> for g in groups:
        ...     print(g["name"], len(g["params"]), g["lr"], g["weight_decay"])
        first_conv 1 0.05 0.0005
        first_conv_no_decay 1 0.05 0.0
        decay 1 0.01 0.0005
        no_decay 3 0.01 0.0
    """
    skip = set(no_weight_decay)
    first = {id(p) for p in first_conv.parameters()} if first_conv is not None else set()
    keys = ("first_conv", "first_conv_no_decay", "decay", "no_decay")
    buckets: dict[str, list] = {k: [] for k in keys}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        decays = p.ndim > 1 and name not in skip and name.rsplit(".", 1)[-1] not in skip
        if id(p) in first:
            key = "first_conv" if decays else "first_conv_no_decay"
        else:
            key = "decay" if decays else "no_decay"
        buckets[key].append(p)
    mult = {"first_conv": first_conv_lr_mult, "first_conv_no_decay": first_conv_lr_mult}
    return [
        {
            "params": params,
            "lr": lr * mult.get(key, 1.0),
            "weight_decay": weight_decay if key in ("first_conv", "decay") else 0.0,
            "name": f"{prefix}{key}",
        }
        for key, params in buckets.items()
        if params
    ]
