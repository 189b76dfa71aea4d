"""attnvideo.viz: figure geometry, heatmap placement, weight bars, files written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from attnvideo import viz
from attnvideo.viz import BAR_HEIGHT, PAD, TITLE_HEIGHT


def _frames(t: int, h: int, w: int, value: int = 100) -> np.ndarray:
    return np.full((t, h, w, 3), value, dtype=np.uint8)


@pytest.mark.parametrize(
    ("t", "h", "w", "scale", "weights", "title"),
    [(3, 16, 16, 2, True, None), (5, 12, 20, 1, False, "x"), (1, 8, 8, 3, True, "t")],
)
def test_figure_size_follows_the_documented_layout(t, h, w, scale, weights, title):
    tw = np.full(t, 1.0 / t) if weights else None
    image = viz.attention_figure(_frames(t, h, w), np.ones((t, 2, 2)), tw, title=title, scale=scale)
    width = t * w * scale + (t + 1) * PAD
    height = h * scale + 2 * PAD + (BAR_HEIGHT + PAD if weights else 0)
    height += TITLE_HEIGHT if title else 0
    assert image.size == (width, height)
    assert image.mode == "RGB"


def test_default_scale_makes_panels_at_least_96_px():
    image = viz.attention_figure(_frames(2, 20, 30))
    # ceil(96 / 20) = 5
    assert image.size == (2 * 30 * 5 + 3 * PAD, 20 * 5 + 2 * PAD)


@pytest.mark.parametrize(("peak_i", "peak_j"), [(0, 0), (1, 2), (3, 3), (2, 0)])
def test_heatmap_hot_spot_sits_over_the_attention_peak(peak_i, peak_j):
    t, size, cells, scale = 3, 32, 4, 2
    attention = np.zeros((t, cells, cells), dtype=np.float32)
    attention[1, peak_i, peak_j] = 1.0  # only segment 1 has a peak
    image = np.asarray(viz.attention_figure(_frames(t, size, size), attention, scale=scale))
    ps = size * scale
    cell = ps // cells
    panel = image[PAD : PAD + ps, PAD + 1 * (ps + PAD) : PAD + 1 * (ps + PAD) + ps].astype(int)
    redness = panel[..., 0] - panel[..., 2]
    per_cell = redness.reshape(cells, cell, cells, cell).mean(axis=(1, 3))
    assert np.unravel_index(np.argmax(per_cell), per_cell.shape) == (peak_i, peak_j)
    # and the hottest pixel lies in the peak cell or touches it
    y, x = np.unravel_index(np.argmax(redness), redness.shape)
    assert abs(y // cell - peak_i) <= 1 and abs(x // cell - peak_j) <= 1
    # The segments without a peak are drawn at the figure minimum: uniformly blue.
    other = image[PAD : PAD + ps, PAD : PAD + ps].astype(int)
    assert (other[..., 2] > other[..., 0]).all()


def test_overlay_alpha_blends_exactly():
    frame = np.full((4, 4, 3), 200, dtype=np.uint8)
    heat = np.zeros((4, 4))
    out = viz.overlay_heatmap(frame, heat, alpha=0.25)
    blue = viz.colorize(heat)  # (0, 0, 128)
    expected = np.round(0.75 * 200 + 0.25 * blue.astype(float)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(viz.overlay_heatmap(frame, heat, alpha=0.0), frame)


def test_colorize_runs_blue_to_red():
    ramp = viz.colorize(np.linspace(0, 1, 9)[None])[0].astype(int)
    assert ramp[0].tolist() == [0, 0, 128] and ramp[-1].tolist() == [128, 0, 0]
    assert ramp[4].tolist() == [128, 255, 128]  # the middle is green-ish
    # low values have more blue than red, high values more red than blue
    assert (ramp[:4, 2] > ramp[:4, 0]).all() and (ramp[5:, 0] > ramp[5:, 2]).all()


def _bar_heights(image: np.ndarray, t: int, pw: int, top: int) -> list[int]:
    heights = []
    for i in range(t):
        x0 = PAD + i * (pw + PAD)
        area = image[top : top + BAR_HEIGHT, x0 : x0 + pw].astype(int)
        is_bar = (np.abs(area - np.array(viz._BAR)) <= 1).all(axis=-1)
        heights.append(int(is_bar.any(axis=1).sum()))
    return heights


def test_bars_are_proportional_to_the_temporal_weights():
    t, size = 4, 24
    weights = np.array([0.1, 0.4, 0.2, 0.3])
    image = np.asarray(viz.attention_figure(_frames(t, size, size), None, weights, scale=2))
    heights = _bar_heights(image, t, size * 2, PAD + size * 2 + PAD)
    usable = BAR_HEIGHT - 11
    assert heights == [round(usable * w / weights.max()) for w in weights]
    assert int(np.argmax(heights)) == 1


def test_torch_inputs_and_to_uint8_frames_roundtrip():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (3, 3, 8, 8), generator=gen, dtype=torch.uint8)
    x = (raw.float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    back = viz.to_uint8_frames(x, mean=mean, std=std)
    np.testing.assert_array_equal(back, raw.permute(0, 2, 3, 1).numpy())
    attention = torch.rand(3, 1, 2, 2, generator=gen, requires_grad=True)
    image = viz.attention_figure(back, attention, torch.softmax(torch.randn(3), 0), scale=1)
    assert image.size == (3 * 8 + 4 * PAD, 8 + 2 * PAD + BAR_HEIGHT + PAD)


def test_save_writes_png_and_gif_with_one_frame_per_segment(tmp_path):
    t, size = 3, 16
    attention = np.random.default_rng(0).random((t, 4, 4))
    weights = [0.2, 0.5, 0.3]
    png, gif = viz.save_attention_figures(
        tmp_path / "sub" / "fig.png", _frames(t, size, size), attention, weights, scale=2
    )
    assert png == tmp_path / "sub" / "fig.png" and gif == tmp_path / "sub" / "fig.gif"
    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.size == (t * 32 + (t + 1) * PAD, 32 + 2 * PAD + BAR_HEIGHT + PAD)
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == t
        assert im.size == (32 + 2 * PAD, 32 + 2 * PAD + BAR_HEIGHT + PAD)
    assert not list((tmp_path / "sub").glob(".*tmp*"))


def test_animation_highlights_the_current_segment():
    t, size = 3, 24
    frames = viz.attention_animation(_frames(t, size, size), None, [0.3, 0.3, 0.4], scale=2)
    for i, im in enumerate(frames):
        arr = np.asarray(im).astype(int)
        bars = arr[size * 2 + 2 * PAD :]
        slot = size * 2 / t
        hot = (np.abs(bars - np.array(viz._BAR_CURRENT)) <= 1).all(axis=-1)
        cols = np.nonzero(hot.any(axis=0))[0] - PAD
        assert cols.size and (cols // slot == i).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": np.zeros((2, 3, 8, 8))}, "frames"),
        ({"attention": np.zeros((3, 2, 2))}, "attention"),
        ({"temporal_weights": [1.0]}, "temporal_weights"),
        ({"temporal_weights": [1.0, -1.0]}, "temporal_weights"),
        ({"attention": np.full((2, 2, 2), np.nan)}, "attention"),
        ({"normalize": "bogus", "attention": np.zeros((2, 2, 2))}, "normalize"),
        ({"scale": 0}, "scale"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"frames": _frames(2, 8, 8), "attention": None, "temporal_weights": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        viz.attention_figure(
            args.pop("frames"), args.pop("attention"), args.pop("temporal_weights"), **args
        )
