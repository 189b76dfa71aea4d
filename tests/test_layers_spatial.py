"""FlowGuidedSpatialAttention: map ranges, zero motion, layouts, motion kinds, errors."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from hypothesis import given
from hypothesis import strategies as st

from attnvideo import functional as AF
from attnvideo import reference as R
from attnvideo.layers import FlowGuidedSpatialAttention


def _attn(channels: int = 8, **kwargs) -> FlowGuidedSpatialAttention:
    torch.manual_seed(0)
    return FlowGuidedSpatialAttention(channels, **kwargs).eval()


@given(
    n=st.integers(1, 3),
    fields=st.integers(1, 3),
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    flow_size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    scale=st.sampled_from([1.0, 1 / 20, 50.0]),
    seed=st.integers(0, 2**16),
)
def test_maps_in_unit_range_and_features_are_residual(n, fields, size, flow_size, scale, seed):
    g = torch.Generator().manual_seed(seed)
    attn = _attn()
    x = torch.randn(n, 8, *size, generator=g)
    flow = torch.randn(n, 2 * fields, *flow_size, generator=g) * scale
    out = attn(x, flow)
    for name in ("attention", "motion_map", "learned_map"):
        m = getattr(out, name)
        assert m.shape == (n, 1, *size), name
        assert ((m >= 0) & (m <= 1)).all(), name
    assert torch.equal(out.features, x * (1 + out.attention))
    torch.testing.assert_close(
        out.attention, R.soft_union(out.motion_map, out.learned_map), rtol=0, atol=1e-6
    )
    # Flow of any resolution is pooled to the feature map, per the reference.
    torch.testing.assert_close(out.motion_map, R.flow_saliency(flow, size), rtol=1e-5, atol=1e-5)


def test_motion_map_does_not_depend_on_flow_scale():
    attn = _attn()
    x, flow = torch.randn(2, 8, 7, 7), torch.randn(2, 10, 56, 56) * 5
    torch.testing.assert_close(attn(x, flow).motion_map, attn(x, flow / 20).motion_map)


def test_zero_flow_gives_zero_motion_and_no_nan():
    attn = _attn()
    x = torch.randn(2, 8, 7, 7, requires_grad=True)
    flow = torch.zeros(2, 10, 28, 28, requires_grad=True)
    out = attn(x, flow)
    assert torch.equal(out.motion_map, torch.zeros(2, 1, 7, 7))
    torch.testing.assert_close(out.attention, out.learned_map)
    out.features.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert flow.grad is None  # raw flow is data: no gradient flows back into it


def test_motion_none_uses_the_learned_map_only():
    attn = _attn()
    x = torch.randn(2, 8, 5, 5)
    out = attn(x)
    assert out.motion_map is None
    assert torch.equal(out.attention, out.learned_map)
    torch.testing.assert_close(out.learned_map, attn.learned(x))
    assert torch.equal(out.features, x * (1 + out.learned_map))


def test_learned_map_is_the_documented_bottleneck():
    attn = _attn(8, hidden_channels=4)
    x = torch.randn(3, 8, 5, 5)
    expected = torch.sigmoid(attn.proj(torch.relu(attn.norm(attn.conv(x)))))
    torch.testing.assert_close(attn(x).learned_map, expected)
    assert attn.conv.out_channels == 4 and attn.proj.out_channels == 1
    assert isinstance(_attn(8, norm_layer=None).norm, torch.nn.Identity)


def test_local_motion_lights_up_the_right_cell():
    attn = _attn()
    flow = torch.zeros(1, 4, 28, 28)
    flow[0, 0, 8:12, 16:20] = 3.0  # inside feature cell (row 2, col 4) of a 7x7 map
    motion = attn(torch.randn(1, 8, 7, 7), flow).motion_map[0, 0]
    assert motion[2, 4] == 1 and motion.sum() == 1


def test_4d_and_5d_give_the_same_numbers():
    attn = _attn()
    x, flow = torch.randn(2, 3, 8, 6, 6), torch.randn(2, 3, 4, 24, 24)
    out5 = attn(x, flow)
    x4, flow4 = (rearrange(a, "b t c h w -> (b t) c h w") for a in (x, flow))
    out4 = attn(x4, flow4)
    for a, b in zip(out5, out4, strict=True):
        assert a.shape[:2] == (2, 3)
        torch.testing.assert_close(rearrange(a, "b t c h w -> (b t) c h w"), b)


def test_camera_compensation_removes_a_uniform_pan():
    torch.manual_seed(0)
    flow = torch.zeros(1, 2, 16, 16)
    flow[0, 0] = 4.0  # the camera pans right
    flow[0, 0, :4, :4] += 3.0  # one object moves faster in the top-left corner
    plain = _attn(motion="flow")(torch.randn(1, 8, 4, 4), flow).motion_map[0, 0]
    comp = _attn(camera_compensation=True)(torch.randn(1, 8, 4, 4), flow).motion_map[0, 0]
    assert plain.min() > 0.5  # without compensation the pan dominates everywhere
    assert comp[0, 0] == 1 and comp.sum() == 1  # with it only the object remains


def test_feature_and_saliency_motion_kinds():
    x = torch.randn(2, 8, 4, 4)
    feats = torch.randn(2, 32, 8, 8)
    out = _attn(motion="features")(x, feats)
    torch.testing.assert_close(out.motion_map, R.feature_saliency(feats, (4, 4)))
    saliency = torch.rand(2, 1, 8, 8)
    out = _attn(motion="saliency")(x, saliency)
    torch.testing.assert_close(out.motion_map, R.adaptive_avg_pool2d(saliency, (4, 4)))
    # the same tensor read as flow would differ: the kind is chosen, not guessed
    assert not torch.allclose(out.motion_map, AF.feature_saliency(saliency, (4, 4)))


def test_backward_reaches_every_parameter_and_x():
    torch.manual_seed(0)
    attn = FlowGuidedSpatialAttention(8).train()
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    out = attn(x, torch.randn(4, 6, 10, 10))
    (out.features * torch.randn_like(out.features)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


X4 = torch.randn(2, 8, 5, 5)
X5 = torch.randn(2, 3, 8, 5, 5)


@pytest.mark.parametrize(
    ("x", "motion", "kind", "error", "match"),
    [
        (torch.randn(8, 5, 5), None, "flow", ValueError, r"x: .*4D .* 5D .*\(8, 5, 5\)"),
        (torch.randn(2, 7, 5, 5), None, "flow", ValueError, r"x: .*\(8\).*\(2, 7, 5, 5\)"),
        (X4.long(), None, "flow", TypeError, r"x: .*floating.*\(N, C, H, W\).*int64"),
        (torch.randn(2, 8, 0, 5), None, "flow", ValueError, r"x: .*non-empty.*\(2, 8, 0, 5\)"),
        (X4, torch.randn(2, 0, 9, 9), "flow", ValueError, r"motion: .*non-empty.*\(2, 0, 9, 9\)"),
        (X5, torch.randn(2, 3, 0, 9, 9), "flow", ValueError, r"motion: .*non-empty.*axis 2"),
        (X4, torch.randn(2, 4, 0, 9), "flow", ValueError, r"motion: .*non-empty.*\(2, 4, 0, 9\)"),
        (X4, torch.randn(2, 0, 5, 5), "features", ValueError, r"motion: .*non-empty.*\(N, C'"),
        (X4, torch.randn(3, 4, 9, 9), "flow", ValueError, r"motion: .*\(2\).*\(3, 4, 9, 9\)"),
        (X4, torch.randn(2, 3, 9, 9), "flow", ValueError, r"motion: .*even.*\(2, 3, 9, 9\)"),
        (X4, torch.randn(2, 3, 4, 9, 9), "flow", ValueError, r"motion: .*4D.*\(2, 3, 4, 9, 9\)"),
        (X5, torch.randn(2, 4, 4, 9, 9), "flow", ValueError, r"motion: .*3\).*\(2, 4, 4, 9, 9\)"),
        (X5, torch.randn(6, 4, 9, 9), "flow", ValueError, r"motion: expected a 5D.*\(6, 4, 9, 9\)"),
        (X4, torch.full((2, 2, 9, 9), float("nan")), "flow", ValueError, r"motion: .*finite.*NaN"),
        (
            X4,
            torch.ones(2, 4, 9, 9).index_fill(3, torch.tensor([2]), float("inf")),
            "flow",
            ValueError,
            r"motion: .*finite.* 72 NaN/inf.*\(2, 4, 9, 9\)",
        ),
        (
            X4,
            torch.ones(2, 4, 9, 9, dtype=torch.uint8),
            "flow",
            TypeError,
            r"motion: .*floating.*\(N, 2L, h, w\).*uint8",
        ),
        (X4, torch.rand(2, 2, 9, 9), "saliency", ValueError, r"motion: .*\(1\).*\(2, 2, 9, 9\)"),
        (X4, torch.rand(2, 1, 9, 9) + 1, "saliency", ValueError, r"motion: .*\[0.0, 1.0\]"),
    ],
)
def test_bad_input_names_the_argument(x, motion, kind, error, match):
    with pytest.raises(error, match=match):
        _attn(motion=kind)(x, motion)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"motion": "optical"}, r"motion: expected one of \('flow', 'features', 'saliency'\)"),
        ({"motion": "features", "camera_compensation": True}, "camera_compensation"),
        ({"channels": 0}, "channels"),
        ({"hidden_channels": 0}, "hidden_channels"),
        ({"kernel_size": 4}, "kernel_size"),
    ],
)
def test_bad_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowGuidedSpatialAttention(**{"channels": 8, **kwargs})


def test_huge_but_finite_flow_is_accepted():
    # the finite check sums the tensor; a sum that overflows alone must not raise
    flow = torch.full((2, 4, 9, 9), 1e36)
    assert not torch.isfinite(flow.sum())
    out = _attn()(X4, flow)
    torch.testing.assert_close(out.motion_map, torch.ones(2, 1, 5, 5))
