"""GAPAuxLoss: plain GAP equivalence, region weighting, zero regions, gradients, CAMs, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from hypothesis import given
from hypothesis import strategies as st

from attnvideo import reference as R
from attnvideo.layers import FlowGuidedSpatialAttention, GAPAuxLoss


def _aux(channels: int = 8, num_classes: int = 5, **kwargs) -> GAPAuxLoss:
    torch.manual_seed(0)
    return GAPAuxLoss(channels, num_classes, **kwargs)


@given(batch=st.integers(1, 3), segments=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_region_none_is_gap_linear_cross_entropy(batch, segments, seed):
    g = torch.Generator().manual_seed(seed)
    aux = _aux(weight=0.7)
    x = torch.randn(batch, segments, 8, 3, 4, generator=g)
    target = torch.randint(0, 5, (batch,), generator=g)
    out = aux(x, target)
    segment_logits = aux.fc(x.mean(dim=(-2, -1)))
    logits = segment_logits.mean(dim=1)
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.loss, 0.7 * F.cross_entropy(logits, target))


@given(batch=st.integers(1, 3), segments=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_region_weighted_pooling_matches_reference(batch, segments, seed):
    g = torch.Generator().manual_seed(seed)
    aux = _aux()
    x = torch.randn(batch * segments, 8, 3, 3, generator=g)
    region = torch.rand(batch * segments, 1, 3, 3, generator=g)
    target = torch.randint(0, 5, (batch,), generator=g)
    out = aux(x, target, num_segments=segments, region=region)
    pooled = R.region_pool(x, region)
    logits = rearrange(aux.fc(pooled), "(b t) k -> b t k", t=segments).mean(dim=1)
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.loss, 0.5 * F.cross_entropy(logits, target))


def test_4d_infers_segments_from_target_and_matches_5d():
    aux = _aux()
    x, target = torch.randn(2, 3, 8, 4, 4), torch.tensor([0, 4])
    region = torch.rand(2, 3, 1, 4, 4)
    out5 = aux(x, target, region=region)
    flat = lambda a: rearrange(a, "b t c h w -> (b t) c h w")  # noqa: E731
    out4 = aux(flat(x), target, region=flat(region))
    out4t = aux(flat(x), target, num_segments=3, region=flat(region))
    torch.testing.assert_close(out4.loss, out5.loss)
    torch.testing.assert_close(out4t.logits, out5.logits)


def test_all_zero_region_gives_a_finite_loss_and_gradients():
    aux = _aux()
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    region = torch.zeros(4, 1, 5, 5, requires_grad=True)
    out = aux(x, torch.tensor([1, 2]), region=region)
    # nothing pooled: the logits are the classifier's bias
    torch.testing.assert_close(out.logits, aux.fc.bias.expand(2, 5))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(region.grad).all()
    assert region.grad.abs().sum() > 0


def test_gradients_reach_classifier_and_through_region_the_attention():
    torch.manual_seed(0)
    spatial, aux = FlowGuidedSpatialAttention(8), GAPAuxLoss(8, 5)
    x, flow = torch.randn(2, 3, 8, 5, 5), torch.randn(2, 3, 4, 10, 10)
    out = spatial(x, flow)
    region = out.learned_map * (1 - out.motion_map)
    loss = aux(x, torch.tensor([3, 1]), region=region).loss
    loss.backward()
    for name, p in [*aux.named_parameters(), *spatial.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_weight_scales_the_loss_and_zero_turns_it_off():
    x, target = torch.randn(4, 8, 3, 3), torch.tensor([0, 1])
    base = _aux(weight=1.0)(x, target).loss
    torch.testing.assert_close(_aux(weight=0.25)(x, target).loss, 0.25 * base)
    assert _aux(weight=0.0)(x, target).loss == 0


def test_dropout_is_identity_when_zero_and_off_in_eval():
    assert isinstance(_aux().drop, torch.nn.Identity)
    aux = _aux(dropout=0.5)
    x, target = torch.randn(4, 8, 3, 3), torch.tensor([0, 1])
    aux.eval()
    torch.testing.assert_close(aux(x, target).logits, _aux()(x, target).logits)


def test_cam_mean_plus_bias_is_the_gap_logit():
    aux = _aux()
    x = torch.randn(6, 8, 4, 4)
    cams = aux.cam(x, class_index=torch.arange(6) % 5)
    assert cams.shape == (6, 4, 4)
    logits = aux.fc(x.mean(dim=(-2, -1)))
    expected = logits[torch.arange(6), torch.arange(6) % 5] - aux.fc.bias[torch.arange(6) % 5]
    torch.testing.assert_close(cams.mean(dim=(-2, -1)), expected)
    ref = R.class_activation_map(x, aux.fc.weight.detach(), torch.arange(6) % 5)
    torch.testing.assert_close(cams.detach(), ref)


def test_cam_defaults_to_predicted_class_and_5d_layout():
    aux = _aux()
    x = torch.randn(2, 3, 8, 4, 4)
    video_logits = aux.fc(x.mean(dim=(-2, -1))).mean(dim=1)
    pred = video_logits.argmax(dim=-1)
    cams = aux.cam(x)
    assert cams.shape == (2, 3, 4, 4)
    torch.testing.assert_close(cams, aux.cam(x, class_index=pred))
    torch.testing.assert_close(aux.cam(x, 2)[1], aux.cam(x[1], torch.full((3,), 2)))


X4 = torch.randn(6, 8, 3, 3)
T2 = torch.tensor([0, 1])


@pytest.mark.parametrize(
    ("x", "target", "kwargs", "error", "match"),
    [
        (torch.randn(6, 8, 3), T2, {}, ValueError, r"x: .*4D.*5D.*\(6, 8, 3\)"),
        (torch.randn(6, 7, 3, 3), T2, {}, ValueError, r"x: .*\(8\).*\(6, 7, 3, 3\)"),
        (X4.long(), T2, {}, TypeError, r"x: .*floating.*\(N, C, H, W\).*int64.*\(6, 8, 3, 3\)"),
        (torch.randn(6, 8, 0, 3), T2, {}, ValueError, r"x: .*non-empty.*\(6, 8, 0, 3\).*axis 2"),
        (X4, torch.tensor([0, 1, 2, 3]), {}, ValueError, r"x: .*B = len\(target\) = 4.*\(6, 8"),
        (X4, T2, {"num_segments": 4}, ValueError, r"x: .*num_segments = 4.*\(6, 8, 3, 3\)"),
        (X4, torch.tensor([0, 1, 2]), {"num_segments": 3}, ValueError, r"target: .*\(2,\).*\(3,\)"),
        (X4, torch.tensor([0.0, 1.0]), {}, TypeError, r"target: .*integer.*float32"),
        (X4, torch.tensor([0, 5]), {}, ValueError, r"target: .*\[0, 5\).*\[0, 5\]"),
        (X4, [0, 1], {}, ValueError, r"target: .*list"),
        (X4, T2, {"region": torch.rand(6, 2, 3, 3)}, ValueError, r"region: .*\(6, 2, 3, 3\)"),
        (X4, T2, {"region": torch.rand(6, 1, 4, 4)}, ValueError, r"region: .*\(6, 1, 4, 4\)"),
        (X4, T2, {"region": torch.rand(2, 3, 1, 3, 3)}, ValueError, r"region: .*4D.*\(2, 3, 1"),
        (X4, T2, {"region": -torch.rand(6, 1, 3, 3)}, ValueError, r"region: .*\[0.0, inf\]"),
        (
            X4,
            T2,
            {"region": torch.ones(6, 1, 3, 3, dtype=torch.long)},
            TypeError,
            r"region: .*floating.*\(N, 1, H, W\).*int64",
        ),
        (X4, T2, {"region": torch.full((6, 1, 3, 3), float("nan"))}, ValueError, "region: .*NaN"),
        (torch.randn(2, 3, 8, 3, 3), T2, {"num_segments": 4}, ValueError, r"num_segments: .*T = 3"),
    ],
)
def test_bad_input_names_the_argument(x, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        _aux()(x, target, **kwargs)


def test_bad_cam_class_index():
    with pytest.raises(ValueError, match=r"class_index: .*\[0, 5\).*7"):
        _aux().cam(X4, 7)
    with pytest.raises(ValueError, match=r"class_index: .*\(6,\).*\(2,\)"):
        _aux().cam(X4, T2)
    with pytest.raises(TypeError, match=r"class_index: .*integer.*float32"):
        _aux().cam(X4, torch.zeros(6))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"channels": 0}, "channels"), ({"num_classes": 0}, "num_classes"),
     ({"weight": -1.0}, "weight"), ({"dropout": 1.0}, "dropout")],
)  # fmt: skip
def test_bad_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GAPAuxLoss(**{"channels": 8, "num_classes": 5, **kwargs})


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_any_integer_target_gives_the_int64_loss(dtype):
    torch.manual_seed(0)
    aux = GAPAuxLoss(8, 5).eval()
    x, target = torch.randn(2, 3, 8, 3, 3), torch.tensor([1, 4])
    want = aux(x, target)
    got = aux(x, target.to(dtype))
    torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0)
    torch.testing.assert_close(aux.cam(x, target.to(dtype)), aux.cam(x, target))
