"""TemporalSegmentAttention: TSN consensus at init, weights, masks, permutations, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnvideo import reference as R
from attnvideo.layers import TemporalSegmentAttention


def _masks(batch: int, segments: int):
    """Random (B, T) bool masks with at least one True per row."""
    rows = st.lists(st.booleans(), min_size=segments, max_size=segments).filter(any)
    return st.lists(rows, min_size=batch, max_size=batch).map(torch.tensor)


def _trained(dim: int, kernel_size: int = 3, seed: int = 0) -> TemporalSegmentAttention:
    """A module whose scorer is no longer zero, so the weights are not uniform."""
    torch.manual_seed(seed)
    attn = TemporalSegmentAttention(dim, kernel_size=kernel_size)
    torch.nn.init.normal_(attn.fc2.weight, std=1.0)
    torch.nn.init.normal_(attn.fc2.bias, std=1.0)
    return attn


@given(
    batch=st.integers(1, 3),
    segments=st.integers(1, 9),
    data=st.data(),
)
def test_init_is_exact_masked_average_consensus(batch, segments, data):
    mask = data.draw(_masks(batch, segments))
    torch.manual_seed(segments)
    attn = TemporalSegmentAttention(6)
    x, values = torch.randn(batch, segments, 6), torch.randn(batch, segments, 4)
    out = attn(x, values=values, mask=mask)
    valid = mask.sum(dim=1, keepdim=True)
    expected = torch.where(mask, 1.0 / valid.float(), torch.zeros(()))
    assert torch.equal(out.weights, expected)  # exactly 1/(valid T), exactly 0 if masked
    mean = (values * mask[..., None]).sum(dim=1) / valid
    torch.testing.assert_close(out.pooled, mean)


@given(batch=st.integers(1, 3), segments=st.integers(1, 8), data=st.data())
def test_trained_weights_are_a_distribution_zero_where_masked(batch, segments, data):
    mask = data.draw(_masks(batch, segments))
    attn = _trained(5, seed=segments)
    x = torch.randn(batch, segments, 5) * 3
    weights = attn(x, mask=mask).weights
    assert (weights >= 0).all()
    assert (weights[~mask] == 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))
    row = int(mask.sum(dim=1).argmax())
    if mask[row].sum() >= 2:  # really learned: not the uniform average
        assert not torch.allclose(weights[row][mask[row]], weights[row][mask[row]].mean())
    reference = R.masked_softmax(attn.scores(x).detach(), mask)
    torch.testing.assert_close(weights.detach(), reference)


@given(segments=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_kernel_one_is_permutation_equivariant(segments, seed):
    attn = _trained(4, kernel_size=1, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x, values = torch.randn(2, segments, 4, generator=g), torch.randn(2, segments, 3, generator=g)
    perm = torch.randperm(segments, generator=g)
    out, shuffled = attn(x, values), attn(x[:, perm], values[:, perm])
    torch.testing.assert_close(shuffled.weights, out.weights[:, perm])
    torch.testing.assert_close(shuffled.pooled, out.pooled)


def test_pooled_is_weighted_sum_of_values_with_any_trailing_shape():
    attn = _trained(8)
    x, values = torch.randn(2, 5, 8), torch.randn(2, 5, 3, 4, 4)
    out = attn(x, values)
    expected = R.weighted_consensus(values, out.weights.detach())
    assert out.pooled.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out.pooled.detach(), expected)


def test_default_values_are_x():
    attn, x = _trained(8), torch.randn(2, 5, 8)
    torch.testing.assert_close(attn(x).pooled, attn(x, values=x).pooled)


def test_train_on_3_segments_test_on_25():
    attn = _trained(8)
    opt = torch.optim.SGD(attn.parameters(), lr=0.1)
    loss = attn(torch.randn(4, 3, 8)).pooled.square().mean()
    loss.backward()
    opt.step()
    attn.eval()
    weights = attn(torch.randn(2, 25, 8)).weights
    assert weights.shape == (2, 25)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))


def test_temperature_flattens_the_weights():
    x = torch.randn(1, 6, 4)
    sharp, flat = _trained(4, seed=1), _trained(4, seed=1)
    flat.temperature = 100.0
    spread = lambda w: float(w.detach().max() - w.detach().min())  # noqa: E731
    assert spread(flat(x).weights) < spread(sharp(x).weights)


def test_every_parameter_gets_a_gradient_after_one_step():
    torch.manual_seed(0)
    attn = TemporalSegmentAttention(8)
    x, values = torch.randn(3, 4, 8), torch.randn(3, 4, 5)
    loss = (attn(x, values).pooled * torch.randn(3, 5)).sum()
    loss.backward()
    # At init only the zero last conv gets a gradient (the first sees a zero upstream).
    assert attn.fc2.weight.grad.abs().sum() > 0
    attn.zero_grad()
    attn = _trained(8)
    (attn(x, values).pooled * torch.randn(3, 5)).sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": torch.randn(2, 4)}, ValueError, r"x: expected a 3D \(B, T, dim\).*\(2, 4\)"),
        ({"x": torch.randn(2, 4, 7)}, ValueError, r"x: .*= \(8\).*\(2, 4, 7\)"),
        (
            {"x": torch.ones(2, 4, 8, dtype=torch.long)},
            TypeError,
            r"x: .*floating.*\(B, T, dim\).*int64.*\(2, 4, 8\)",
        ),
        ({"x": torch.randn(2, 0, 8)}, ValueError, r"x: .*non-empty \(B, T, dim\).*\(2, 0, 8\)"),
        (
            {"values": torch.ones(2, 4, 3, dtype=torch.long)},
            TypeError,
            r"values: .*floating.*\(B, T, \.\.\.\).*int64",
        ),
        ({"values": torch.randn(2, 5, 3)}, ValueError, r"values: .*\(2, 4\).*\(2, 5, 3\)"),
        ({"values": torch.randn(3)}, ValueError, r"values: .*\(3,\)"),
        ({"mask": torch.ones(2, 5, dtype=torch.bool)}, ValueError, r"mask: .*\(2, 4\).*\(2, 5\)"),
        ({"mask": torch.ones(2, 4)}, TypeError, r"mask: .*bool.*float32"),
        (
            {"mask": torch.tensor([[True] * 4, [False] * 4])},
            ValueError,
            r"mask: .*rows \[1\].*all False",
        ),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    attn = TemporalSegmentAttention(8)
    args = {"x": torch.randn(2, 4, 8), **kwargs}
    with pytest.raises(error, match=match):
        attn(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 0}, "dim"),
        ({"kernel_size": 2}, "kernel_size"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_bad_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TemporalSegmentAttention(**{"dim": 4, **kwargs})
