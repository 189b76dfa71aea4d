"""attnvideo.functional: fused math against the slow references, properties, gradients."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from hypothesis import given
from hypothesis import strategies as st

from attnvideo import functional as AF
from attnvideo import reference as R

seeds = st.integers(0, 2**16)
sizes = st.tuples(st.integers(1, 5), st.integers(1, 5))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mask(batch: int, segments: int, g: torch.Generator) -> torch.Tensor:
    mask = torch.rand(batch, segments, generator=g) > 0.4
    mask[:, 0] |= ~mask.any(dim=1)  # at least one valid segment per row
    return mask


# ----------------------------------------------------------------------------- float32


@given(batch=st.integers(1, 4), segments=st.integers(1, 9), temp=st.floats(0.1, 10), seed=seeds)
def test_masked_softmax_matches_reference(batch, segments, temp, seed):
    g = _gen(seed)
    scores, mask = torch.randn(batch, segments, generator=g) * 4, _mask(batch, segments, g)
    weights = AF.masked_softmax(scores, mask, temp)
    torch.testing.assert_close(weights, R.masked_softmax(scores, mask, temp))
    assert (weights[~mask] == 0).all() and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))


def test_masked_softmax_all_masked_row_is_zero_not_nan():
    weights = AF.masked_softmax(torch.randn(2, 3), torch.tensor([[True] * 3, [False] * 3]))
    assert torch.equal(weights[1], torch.zeros(3))


def test_masked_softmax_equal_scores_give_exactly_one_over_valid():
    mask = torch.tensor([[True, True, True, False, False, False, True]])
    weights = AF.masked_softmax(torch.full((1, 7), 3.25, dtype=torch.bfloat16), mask)
    assert weights.dtype == torch.float32
    assert torch.equal(weights[mask], torch.full((4,), 0.25))


@given(batch=st.integers(1, 3), segments=st.integers(1, 6), trail=st.integers(0, 2), seed=seeds)
def test_weighted_consensus_matches_reference(batch, segments, trail, seed):
    g = _gen(seed)
    values = torch.randn(batch, segments, *([3] * trail), generator=g)
    weights = torch.rand(batch, segments, generator=g)
    out = AF.weighted_consensus(values, weights)
    torch.testing.assert_close(out, R.weighted_consensus(values, weights))


@given(
    n=st.integers(1, 3),
    fields=st.integers(1, 3),
    flow_size=sizes.map(lambda s: (s[0] * 3, s[1] * 2 + 1)),
    size=sizes,
    comp=st.booleans(),
    seed=seeds,
)
def test_flow_saliency_matches_reference(n, fields, flow_size, size, comp, seed):
    flow = torch.randn(n, 2 * fields, *flow_size, generator=_gen(seed)) * 5
    out = AF.flow_saliency(flow, size, camera_compensation=comp)
    expected = R.flow_saliency(flow, size, camera_compensation=comp)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert ((out >= 0) & (out <= 1)).all()
    assert torch.equal(out.amax(dim=(-2, -1)), torch.ones(n, 1))  # per-sample max is 1


@given(
    fields=st.integers(1, 3),
    flow_size=sizes.map(lambda s: (s[0] * 3, s[1] * 2 + 1)),
    size=sizes,
    comp=st.booleans(),
    fused=st.booleans(),
    seed=seeds,
)
def test_flow_saliency_gpu_and_compiled_form_matches_reference(
    fields, flow_size, size, comp, fused, seed
):
    # The all-fields expression that flow_saliency uses on GPUs (fused=False) and under
    # torch.compile (fused=True); on the CPU in eager mode it takes the fields one by one.
    flow = torch.randn(2, 2 * fields, *flow_size, generator=_gen(seed)) * 5
    grid = rearrange(flow, "n (l uv) h w -> n l uv h w", uv=2)
    camera = None
    if comp:
        stride = AF.median_stride(*flow_size)
        sub = rearrange(grid[..., ::stride, ::stride], "n l uv h w -> n l uv (h w)")
        camera = sub.median(dim=-1).values
    out = AF._saliency_all_fields(grid, camera, size, fused=fused)
    expected = R.flow_saliency(flow, size, camera_compensation=comp)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


@given(scale=st.floats(1e-3, 1e3), seed=seeds)
def test_flow_saliency_is_scale_invariant(scale, seed):
    flow = torch.randn(2, 4, 9, 9, generator=_gen(seed))
    torch.testing.assert_close(
        AF.flow_saliency(flow * scale, (3, 3)), AF.flow_saliency(flow, (3, 3)), rtol=1e-5, atol=1e-5
    )


def test_flow_saliency_zero_motion_is_zero_and_flow_is_data():
    flow = torch.zeros(2, 4, 8, 8, requires_grad=True)
    for comp in (False, True):
        out = AF.flow_saliency(flow, (4, 4), camera_compensation=comp)
        assert torch.equal(out, torch.zeros(2, 1, 4, 4))
        assert not out.requires_grad  # documented: no gradient flows back into raw flow


def test_camera_median_uses_a_strided_grid():
    assert AF.median_stride(224, 224) == 4 and AF.median_stride(64, 64) == 1
    # 128 x 128 gives stride 2: the grid sees only pixels with even row and column.
    flow = torch.ones(1, 2, 128, 128)
    flow[0, :, ::2, ::2] = 0.0  # zero on the grid, one elsewhere (3/4 of the pixels)
    out = AF.flow_saliency(flow, (128, 128), camera_compensation=True)
    # grid median = 0 (a full median would be 1 and invert the map)
    assert torch.equal(out[0, 0], flow[0, 0])
    torch.testing.assert_close(out, R.flow_saliency(flow, (128, 128), camera_compensation=True))


def test_flow_saliency_averages_fields_and_uses_magnitude():
    flow = torch.zeros(1, 4, 2, 2)
    flow[0, 0, 0, 0], flow[0, 1, 0, 0] = 3.0, 4.0  # field 1 at (0, 0): |(3, 4)| = 5
    flow[0, 3, 1, 1] = -10.0  # field 2 at (1, 1): |(0, -10)| = 10
    torch.testing.assert_close(
        AF.flow_saliency(flow, (2, 2)), torch.tensor([[[[0.5, 0.0], [0.0, 1.0]]]])
    )


@given(n=st.integers(1, 3), c=st.integers(1, 6), src=sizes, size=sizes, seed=seeds)
def test_feature_saliency_matches_reference(n, c, src, size, seed):
    features = torch.randn(n, c, src[0] * 2, src[1] * 3, generator=_gen(seed))
    out = AF.feature_saliency(features, size)
    torch.testing.assert_close(out, R.feature_saliency(features, size), rtol=1e-5, atol=1e-6)
    assert torch.equal(AF.feature_saliency(torch.zeros_like(features), size), torch.zeros_like(out))


@given(n=st.integers(1, 3), src=sizes, size=sizes, seed=seeds)
def test_saliency_to_is_adaptive_average_pooling(n, src, size, seed):
    saliency = torch.rand(n, 1, src[0] * 3 + 1, src[1] * 2, generator=_gen(seed))
    out = AF.saliency_to(saliency, size)
    torch.testing.assert_close(out, R.adaptive_avg_pool2d(saliency, size))
    assert ((out >= 0) & (out <= 1)).all()


@given(seed=seeds)
def test_soft_union_properties(seed):
    g = _gen(seed)
    a, b = torch.rand(2, 1, 4, 4, generator=g), torch.rand(2, 1, 4, 4, generator=g)
    u = AF.soft_union(a, b)
    torch.testing.assert_close(u, R.soft_union(a, b))
    torch.testing.assert_close(u, AF.soft_union(b, a))
    assert (u >= torch.maximum(a, b) - 1e-6).all() and (u <= 1).all()
    assert torch.equal(AF.soft_union(a, torch.zeros_like(b)), a)
    assert torch.equal(AF.soft_union(a, torch.ones_like(b)), torch.ones_like(a))


@given(n=st.integers(1, 3), c=st.integers(1, 5), size=sizes, seed=seeds)
def test_residual_attention_matches_reference(n, c, size, seed):
    g = _gen(seed)
    x, s = torch.randn(n, c, *size, generator=g), torch.rand(n, 1, *size, generator=g)
    torch.testing.assert_close(AF.residual_attention(x, s), R.residual_attention(x, s))


@given(n=st.integers(1, 3), c=st.integers(1, 5), size=sizes, seed=seeds)
def test_region_pool_matches_reference(n, c, size, seed):
    g = _gen(seed)
    x, region = torch.randn(n, c, *size, generator=g), torch.rand(n, 1, *size, generator=g)
    torch.testing.assert_close(AF.region_pool(x, region), R.region_pool(x, region))
    torch.testing.assert_close(AF.region_pool(x), R.region_pool(x))
    # a constant region is plain GAP (up to eps)
    torch.testing.assert_close(AF.region_pool(x, torch.ones_like(region)), x.mean(dim=(-2, -1)))
    assert torch.equal(AF.region_pool(x, torch.zeros_like(region)), torch.zeros(n, c))


@given(n=st.integers(1, 4), k=st.integers(1, 5), size=sizes, seed=seeds)
def test_class_activation_map_matches_reference(n, k, size, seed):
    g = _gen(seed)
    x, weight = torch.randn(n, 6, *size, generator=g), torch.randn(k, 6, generator=g)
    index = torch.randint(0, k, (n,), generator=g)
    out = AF.class_activation_map(x, weight, index)
    torch.testing.assert_close(out, R.class_activation_map(x, weight, index))


# ---------------------------------------------------------------------------- bfloat16


def test_fused_in_bfloat16_is_close_to_float32_reference():
    g = _gen(0)
    x = torch.randn(3, 8, 4, 4, generator=g).bfloat16()
    flow = (torch.randn(3, 4, 12, 12, generator=g) * 5).bfloat16()
    region = torch.rand(3, 1, 4, 4, generator=g).bfloat16()
    values, weights = torch.randn(3, 5, 7, generator=g).bfloat16(), torch.rand(3, 5).bfloat16()
    loose = {"rtol": 3e-2, "atol": 3e-2}
    cases = [
        (AF.flow_saliency(flow, (4, 4)), R.flow_saliency(flow.float(), (4, 4))),
        (AF.flow_saliency(flow, (4, 4), camera_compensation=True),
         R.flow_saliency(flow.float(), (4, 4), camera_compensation=True)),
        (AF.feature_saliency(x, (2, 2)), R.feature_saliency(x.float(), (2, 2))),
        (AF.region_pool(x, region), R.region_pool(x.float(), region.float())),
        (AF.residual_attention(x, region), R.residual_attention(x.float(), region.float())),
        (AF.weighted_consensus(values, weights),
         R.weighted_consensus(values.float(), weights.float())),
        (AF.masked_softmax(values[..., 0]), R.masked_softmax(values[..., 0].float())),
    ]  # fmt: skip
    for i, (fused, ref) in enumerate(cases):
        assert fused.dtype in (torch.bfloat16, torch.float32), i
        torch.testing.assert_close(fused.float(), ref, **loose, msg=f"case {i}")


# --------------------------------------------------------------------------- gradients


def _double(*shape, seed=0, low=None):
    t = torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)
    if low is not None:
        t = t.abs() + low
    return t.requires_grad_()


@pytest.mark.parametrize(
    ("name", "fn", "inputs"),
    [
        ("masked_softmax",
         lambda s: AF.masked_softmax(s, torch.tensor([[True, False, True], [True] * 3]), 0.7),
         (_double(2, 3),)),
        ("weighted_consensus", AF.weighted_consensus, (_double(2, 3, 4), _double(2, 3, seed=1))),
        ("feature_saliency", lambda f: AF.feature_saliency(f, (3, 2)), (_double(2, 3, 6, 4),)),
        ("soft_union", AF.soft_union, (_double(2, 1, 3, 3), _double(2, 1, 3, 3, seed=1))),
        ("residual_attention", AF.residual_attention, (_double(2, 3, 2, 2), _double(2, 1, 2, 2))),
        ("region_pool", AF.region_pool, (_double(2, 3, 3, 3), _double(2, 1, 3, 3, low=0.1))),
        ("cam", lambda x, w: AF.class_activation_map(x, w, torch.tensor([1, 0])),
         (_double(2, 3, 2, 2), _double(2, 3, seed=2))),
    ],
)  # fmt: skip
def test_gradcheck_float64(name, fn, inputs):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5), name


# ---------------------------------------------------------------------- compile / host


def test_functional_compiles_fullgraph_including_median():
    def pipeline(x, flow, scores, mask):
        motion = AF.flow_saliency(flow, (4, 4), camera_compensation=True)
        energy = AF.feature_saliency(x, (4, 4))
        attention = AF.soft_union(motion, energy)
        pooled = AF.region_pool(AF.residual_attention(x, attention), attention)
        weights = AF.masked_softmax(scores, mask)
        return AF.weighted_consensus(pooled.reshape(2, 3, -1), weights)

    g = _gen(0)
    args = (
        torch.randn(6, 5, 4, 4, generator=g),
        torch.randn(6, 4, 16, 16, generator=g),
        torch.randn(2, 3, generator=g),
        torch.tensor([[True, False, True], [True, True, True]]),
    )
    torch._dynamo.reset()
    compiled = torch.compile(pipeline, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(*args), pipeline(*args))


# ------------------------------------------------------------------------ quantisation


@given(seed=seeds, bound=st.sampled_from([20.0, 10.0, 1.0]))
def test_quantize_roundtrip_error_is_half_a_step(seed, bound):
    flow = (torch.rand(64, generator=_gen(seed)) * 2 - 1) * bound * 1.5
    back = AF.dequantize_flow(AF.quantize_flow(flow, bound), bound)
    step = 2 * bound / 255
    assert (back - flow.clamp(-bound, bound)).abs().max() <= step / 2 + 1e-5


@given(seed=seeds, bound=st.sampled_from([20.0, 10.0, 1.0]), n=st.integers(1, 200))
def test_quantize_and_dequantize_match_reference(seed, bound, n):
    g = _gen(seed)
    flow = (torch.rand(n, generator=g) * 2 - 1) * bound * 1.5
    flow[:: max(1, n // 4)] = bound * torch.tensor([-1.0, 1.0])[torch.randint(2, (1,), generator=g)]
    fused, ref = AF.quantize_flow(flow, bound), R.quantize_flow(flow, bound)
    assert fused.dtype == ref.dtype == torch.uint8 and fused.shape == ref.shape
    # The reference computes in float64, the fused version in float32: they can disagree
    # by one level only where the exact value sits at a rounding tie (x.5).
    exact = 255.0 * (flow.double().clamp(-bound, bound) + bound) / (2 * bound)
    near_tie = (exact - exact.floor() - 0.5).abs() < 1e-4
    diff = (fused.int() - ref.int()).abs()
    assert int(diff.max()) <= 1 and bool((diff[~near_tie] == 0).all())
    q = torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8)
    # One rounding (see dequantize_flow): every level is the float32 nearest its exact value.
    assert torch.equal(AF.dequantize_flow(q, bound), R.dequantize_flow(q, bound))


def test_quantize_matches_tsn_formula_and_rejects_bad_input():
    v = torch.tensor([-20.0, -10.0, 0.0, 7.3, 20.0])
    expected = torch.round(255 * (v + 20) / 40).to(torch.uint8)
    assert torch.equal(AF.quantize_flow(v), expected)
    with pytest.raises(TypeError, match=r"flow: .*floating.*uint8"):
        AF.quantize_flow(expected)
    with pytest.raises(TypeError, match=r"q: .*uint8.*float32"):
        AF.dequantize_flow(v)
    with pytest.raises(ValueError, match="bound"):
        AF.quantize_flow(v, bound=0)


@pytest.mark.parametrize("flow_hw", [(12, 12), (13, 11), (28, 56), (5, 3)])
def test_flow_saliency_exact_blocks_and_adaptive_windows_match_reference(flow_hw):
    # (12, 12) -> (4, 4) and (28, 56) -> (7, 7) take the exact-block reduction; (13, 11)
    # takes adaptive windows; (5, 3) upsamples (windows overlap).
    size = (7, 7) if flow_hw == (28, 56) else (4, 4)
    flow = torch.randn(2, 4, *flow_hw, generator=_gen(3)) * 2
    torch.testing.assert_close(
        AF.flow_saliency(flow, size), R.flow_saliency(flow, size), rtol=1e-5, atol=1e-6
    )
    compiled = torch.compile(AF.flow_saliency, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(flow, size), AF.flow_saliency(flow, size))


def test_region_pool_custom_backward_matches_autograd_of_plain_formula():
    x, region = _double(3, 4, 3, 2), _double(3, 1, 3, 2, seed=1, low=0.1)
    grad = torch.randn(3, 4, dtype=torch.float64, generator=_gen(2))
    fused = torch.autograd.grad(AF.region_pool(x, region), (x, region), grad)
    plain = (x * region).sum(dim=(-2, -1)) / (region.sum(dim=(-2, -1)) + 1e-6)
    expected = torch.autograd.grad(plain, (x, region), grad)
    for a, b in zip(fused, expected, strict=True):
        torch.testing.assert_close(a, b)
        assert a.is_contiguous()
    assert torch.autograd.gradgradcheck(AF.region_pool, (x, region))
    leaf = x.float().detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = AF.region_pool(leaf, region.float())
    out.float().sum().backward()  # under autocast the forward ran in bfloat16
    assert leaf.grad.dtype == torch.float32 and torch.isfinite(leaf.grad).all()
