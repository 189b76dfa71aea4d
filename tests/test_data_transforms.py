"""Group transforms: one draw for RGB and flow, flow x negated by flips, TSN crop rules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnvideo.data import transforms as T


def coords(t: int, c: int, h: int, w: int) -> torch.Tensor:
    """A tensor whose value tells where it came from: 1000 * row + col (+ 0.1 * channel)."""
    rows = torch.arange(h, dtype=torch.float64)[:, None] * 1000
    cols = torch.arange(w, dtype=torch.float64)[None, :]
    chans = torch.arange(c, dtype=torch.float64)[:, None, None] * 0.1
    return (rows + cols + chans).expand(t, c, h, w).clone()


sizes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 24), st.integers(2, 24))


@given(shape=sizes)
def test_flip_twice_is_identity_and_negates_only_flow_x(shape):
    t, l2, h, w = shape[0], 2 * shape[1], shape[2], shape[3]
    flow, rgb = torch.randn(t, l2, h, w), torch.rand(t, 3, h, w)
    flip = T.GroupRandomHorizontalFlip(p=1.0)
    once = flip({"rgb": rgb, "flow": flow})
    assert torch.equal(once["rgb"], rgb.flip(-1))
    assert torch.equal(once["flow"][:, 0::2], -flow[:, 0::2].flip(-1))  # x components
    assert torch.equal(once["flow"][:, 1::2], flow[:, 1::2].flip(-1))  # y components
    twice = flip(once)
    assert torch.equal(twice["rgb"], rgb) and torch.equal(twice["flow"], flow)


def test_flipped_motion_points_the_other_way():
    # A block moving right by 2 px: its flow x is +2 where the block is.
    flow = torch.zeros(1, 2, 4, 8)
    flow[0, 0, :, 1:3] = 2.0 / 20
    out = T.GroupRandomHorizontalFlip(p=1.0)({"flow": flow})["flow"]
    assert torch.equal(out[0, 0, :, 5:7], torch.full((4, 2), -2.0 / 20))  # now moving left
    assert out[0, 0, :, :5].abs().sum() == 0 and out[0, 1].abs().sum() == 0


def test_flip_probability_zero_and_other_keys_pass_through():
    sample = {"rgb": torch.rand(1, 3, 2, 2), "label": 3}
    out = T.GroupRandomHorizontalFlip(p=0.0)(sample)
    assert out["rgb"] is sample["rgb"] and out["label"] == 3


@given(
    h=st.integers(8, 80), w=st.integers(8, 80), size=st.integers(4, 40), seed=st.integers(0, 999)
)
def test_multiscale_crop_sizes_and_offsets_follow_tsn(h, w, size, seed):
    scales = (1.0, 0.875, 0.75, 0.66)
    crop = T.GroupMultiScaleCrop(size, scales)
    base = min(h, w)
    sides = [int(base * s) for s in scales]
    allowed = {
        (min(size if abs(a - size) < 3 else a, h), min(size if abs(b - size) < 3 else b, w))
        for i, a in enumerate(sides)
        for j, b in enumerate(sides)
        if abs(i - j) <= 1
    }
    assert set(crop.crop_sizes(h, w)) == allowed
    for ch, cw in allowed:
        for top, left in crop.offsets(h, w, ch, cw):
            assert 0 <= top <= h - ch and 0 <= left <= w - cw
    torch.manual_seed(seed)
    out = crop({"rgb": torch.rand(2, 3, h, w), "flow": torch.rand(2, 4, h, w)})
    assert out["rgb"].shape == (2, 3, size, size) and out["flow"].shape == (2, 4, size, size)


def test_multiscale_crop_takes_a_window_at_a_fixed_offset():
    # Crop side 16 == input size: no resize, so the output is exactly a window of the input.
    crop = T.GroupMultiScaleCrop(16, (0.5,), generator=torch.Generator().manual_seed(0))
    x = coords(1, 1, 32, 48)
    seen = set()
    for _ in range(60):
        out = crop({"rgb": x})["rgb"]
        top, left = int(out[0, 0, 0, 0]) // 1000, int(out[0, 0, 0, 0]) % 1000
        assert torch.equal(out, x[..., top : top + 16, left : left + 16])
        seen.add((top, left))
    assert seen <= set(crop.offsets(32, 48, 16, 16)) and len(seen) > 5


@given(seed=st.integers(0, 10_000))
def test_train_transform_is_one_draw_for_rgb_and_flow(seed):
    # rgb channel 0 and flow y channels carry the same picture: after crop+flip they agree.
    h, w = 30, 40
    picture = torch.rand(3, 1, h, w)
    sample = {"rgb": picture.expand(3, 3, h, w).clone(), "flow": picture.expand(3, 4, h, w).clone()}
    t = T.GroupCompose([T.GroupMultiScaleCrop(16), T.GroupRandomHorizontalFlip()])
    torch.manual_seed(seed)
    out = t(sample)
    assert torch.allclose(out["rgb"][:, 0], out["flow"][:, 1], atol=1e-6)
    assert torch.allclose(out["rgb"][:, 0], out["flow"][:, 3], atol=1e-6)
    assert torch.allclose(out["rgb"][:, 0], -out["flow"][:, 0], atol=1e-6) or torch.allclose(
        out["rgb"][:, 0], out["flow"][:, 0], atol=1e-6
    )


def test_mismatched_sizes_are_rejected():
    with pytest.raises(ValueError, match="same height and width"):
        T.GroupCenterCrop(2)({"rgb": torch.rand(1, 3, 4, 4), "flow": torch.rand(1, 2, 4, 6)})
    with pytest.raises(ValueError, match="crop size \\(5, 5\\) is larger than the frames"):
        T.GroupCenterCrop(5)({"rgb": torch.rand(1, 3, 4, 4)})
    with pytest.raises(ValueError, match="expected an 'rgb' and/or 'flow' entry"):
        T.GroupCenterCrop(2)({"label": 1})


def test_ten_crop_is_five_crops_and_their_mirrors():
    x = coords(2, 4, 10, 12)
    out = T.GroupTenCrop(6)({"rgb": x[:, :3], "flow": x})
    assert out["rgb"].shape == (10, 2, 3, 6, 6) and out["flow"].shape == (10, 2, 4, 6, 6)
    corners = [(0, 0), (0, 6), (4, 0), (4, 6), (2, 3)]
    for i, (top, left) in enumerate(corners):
        window = x[..., top : top + 6, left : left + 6]
        assert torch.equal(out["flow"][i], window)
        mirrored = window.flip(-1)
        mirrored[:, 0::2] *= -1
        assert torch.equal(out["flow"][5 + i], mirrored)
    centre = T.GroupCenterCrop(6)({"rgb": x[:, :3]})["rgb"]
    assert torch.equal(out["rgb"][4], centre)


def test_three_crop_covers_the_long_side():
    x = coords(1, 3, 8, 20)
    out = T.GroupThreeCrop(8)({"rgb": x})["rgb"]
    assert [int(out[i, 0, 0, 0, 0]) for i in range(3)] == [0, 6, 12]
    tall = T.GroupThreeCrop(8)({"rgb": coords(1, 3, 20, 8)})["rgb"]
    assert [int(tall[i, 0, 0, 0, 0]) // 1000 for i in range(3)] == [0, 6, 12]


def test_resize_short_side_and_normalize():
    out = T.GroupResize(16)({"rgb": torch.rand(2, 3, 32, 48), "flow": torch.rand(2, 2, 32, 48)})
    assert out["rgb"].shape == (2, 3, 16, 24) and out["flow"].shape == (2, 2, 16, 24)
    rgb, flow = torch.rand(2, 3, 4, 4), torch.rand(2, 2, 4, 4)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    norm = T.GroupNormalize(mean, std)({"rgb": rgb, "flow": flow})
    for c in range(3):
        assert torch.allclose(norm["rgb"][:, c], (rgb[:, c] - mean[c]) / std[c])
    assert torch.equal(norm["flow"], flow)  # flow is already centred in [-1, 1]


def test_test_transform_shapes_and_values():
    rgb = torch.rand(2, 3, 40, 60)
    one = T.test_transform(24, resize=32, crops=1, mean=(0, 0, 0), std=(1, 1, 1))({"rgb": rgb})
    resized = T.GroupResize(32)({"rgb": rgb})["rgb"]
    assert torch.allclose(one["rgb"], resized[..., 4:28, 12:36])
    assert T.test_transform(24, 32, crops=3)({"rgb": rgb})["rgb"].shape == (3, 2, 3, 24, 24)
    with pytest.raises(ValueError, match="crops: expected 1, 3 or 10, got 4"):
        T.test_transform(crops=4)


def test_constructor_errors():
    with pytest.raises(ValueError, match="scales: expected fractions"):
        T.GroupMultiScaleCrop(8, (1.5,))
    with pytest.raises(TypeError, match="input_size: expected an int or an"):
        T.GroupMultiScaleCrop("8")
    with pytest.raises(ValueError, match="p: expected a probability"):
        T.GroupRandomHorizontalFlip(p=2)
    with pytest.raises(ValueError, match="std: expected positive values"):
        T.GroupNormalize(std=(1, 0, 1))


@given(shape=sizes, seed=st.integers(0, 999))
def test_uint8_flow_flip_is_the_quantised_negation(shape, seed):
    from attnvideo.functional import dequantize_flow, quantize_flow

    t, l2, h, w = shape[0], 2 * shape[1], shape[2], shape[3]
    g = torch.Generator().manual_seed(seed)
    q = quantize_flow(torch.randn(t, l2, h, w, generator=g) * 10)
    flipped = T.GroupRandomHorizontalFlip(p=1.0)({"flow": q})["flow"]
    assert flipped.dtype == torch.uint8
    v, vf = dequantize_flow(q), dequantize_flow(flipped)
    assert torch.allclose(vf[:, 0::2], -v[:, 0::2].flip(-1), atol=1e-5)  # x negated, exactly
    assert torch.equal(flipped[:, 1::2], q[:, 1::2].flip(-1))


@pytest.mark.skipif(T.cv2 is None, reason="OpenCV not installed")
@given(
    h=st.integers(4, 40), w=st.integers(4, 40), oh=st.integers(4, 40), ow=st.integers(4, 40),
    seed=st.integers(0, 999),
)  # fmt: skip
def test_fast_uint8_resize_agrees_with_torch(h, w, oh, ow, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (2, 5, h, w), generator=g, dtype=torch.uint8)[..., 1:, :]
    fast = T._resize(x, (oh, ow))
    slow = T._resize(x, (oh, ow), fast=False)
    assert fast.dtype == slow.dtype == torch.uint8 and fast.shape == (2, 5, oh, ow)
    assert (fast.int() - slow.int()).abs().max() <= 1


def test_uint8_pipeline_matches_float_pipeline():
    from attnvideo.functional import dequantize_flow, quantize_flow

    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (2, 3, 40, 52), generator=g, dtype=torch.uint8)
    flow = quantize_flow(torch.randn(2, 4, 40, 52, generator=g) * 5)
    as_float = {"rgb": rgb.float() / 255, "flow": dequantize_flow(flow) / 20}
    for make in (lambda: T.train_transform(32), lambda: T.test_transform(24, 32, crops=10)):
        torch.manual_seed(1)
        a = make()({"rgb": rgb, "flow": flow})
        torch.manual_seed(1)
        b = make()(as_float)
        assert a["rgb"].dtype == a["flow"].dtype == torch.float32
        # uint8 resizing rounds to whole grey levels: within one level of the float path.
        assert torch.allclose(a["rgb"], b["rgb"], atol=1.01 / 255 / 0.224)
        assert torch.allclose(a["flow"], b["flow"], atol=1.01 * 2 / 255)


def test_normalize_uint8_equals_dequantised_flow_and_scaled_rgb():
    from attnvideo.functional import dequantize_flow

    q = torch.arange(256, dtype=torch.uint8).reshape(1, 2, 8, 16)
    rgb = torch.arange(256 * 3 // 2, dtype=torch.int64).remainder(256).to(torch.uint8)
    rgb = rgb.reshape(1, 3, 8, 16)
    out = T.GroupNormalize((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))({"rgb": rgb, "flow": q})
    assert torch.allclose(out["flow"], dequantize_flow(q) / 20, atol=1e-6)
    ref = T.GroupNormalize((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))({"rgb": rgb.double() / 255})
    assert torch.allclose(out["rgb"].double(), ref["rgb"], atol=1e-5)
