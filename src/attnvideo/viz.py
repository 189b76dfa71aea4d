"""Attention figures: per-segment frames with the spatial attention and the temporal weights.

A figure is a row of panels, one per segment: the segment's frame with the spatial
attention map laid over it as a heatmap, and under it a bar for the segment's temporal
attention weight (a dashed line marks ``1 / T``, the weight TSN's average consensus gives
every segment). The animation shows one segment per GIF frame with the same bars, the
current segment's bar highlighted.

Only Pillow and numpy are needed; inputs may be numpy arrays or CPU/GPU tensors.

Axis legend: ``t`` segments, ``h w`` frame height and width, ``hh ww`` attention-map
height and width (any size: maps are resized to the frame).

Example:
    >>> import numpy as np
    >>> frames = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    >>> attention = np.zeros((3, 4, 4)); attention[:, 1, 2] = 1.0
    >>> image = attention_figure(frames, attention, [0.2, 0.5, 0.3], scale=2)
    >>> image.size
    (112, 84)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "attention_animation",
    "attention_figure",
    "colorize",
    "overlay_heatmap",
    "save_attention_figures",
    "to_uint8_frames",
]

PAD = 4
"""Pixels of white space around and between panels."""
BAR_HEIGHT = 40
"""Height in pixels of the temporal-weight bar area under each panel."""
TITLE_HEIGHT = 14
"""Height in pixels of the title line, when a title is given."""

_BACKGROUND = (255, 255, 255)
_BAR = (70, 110, 200)
_BAR_CURRENT = (230, 90, 40)
_TEXT = (20, 20, 20)
_UNIFORM = (150, 150, 150)

Normalize = Literal["figure", "segment", "none"]


def _numpy(x: Any, name: str) -> np.ndarray:
    """Turn a tensor or array-like into a numpy array (detaching tensors, moving to CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as err:  # pragma: no cover - message only
        raise TypeError(f"{name}: expected an array or tensor, got {type(x).__name__}") from err
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array or tensor, got dtype object")
    return arr


def to_uint8_frames(
    frames: Any,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """Turn channel-first, normalised frames (as a dataset returns them) into uint8 images.

    Undoes ``(x - mean) / std`` per channel (when ``mean`` and ``std`` are given), clips to
    ``[0, 1]`` and scales to ``[0, 255]``.

    Args:
        frames: RGB frames, channel first, floating point.
        mean: Per-channel mean used for normalisation (e.g. ``model.data_config["mean"]``).
        std: Per-channel standard deviation used for normalisation.

    Shape:
        - frames: ``(T, 3, H, W)``
        - output: ``(T, H, W, 3)``, uint8

    Returns:
        The frames as uint8 images, channel last.

    Example:
        >>> x = np.full((2, 3, 4, 4), -1.0)
        >>> to_uint8_frames(x, mean=(0.5,) * 3, std=(0.5,) * 3)[0, 0, 0].tolist()
        [0, 0, 0]
    """
    arr = _numpy(frames, "frames").astype(np.float32)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise ValueError(f"frames: expected shape (T, 3, H, W), got {tuple(arr.shape)}")
    if (mean is None) != (std is None):
        raise ValueError("mean and std: give both or neither")
    if mean is not None and std is not None:
        m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
        s = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
        arr = arr * s + m
    arr = np.clip(arr, 0.0, 1.0) * 255.0
    return np.ascontiguousarray(np.round(arr).astype(np.uint8).transpose(0, 2, 3, 1))


def colorize(heatmap: Any, *, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map a 2-D array to RGB with a jet-like colormap (blue = low, red = high).

    Args:
        heatmap: Values; ``vmin`` maps to blue, ``vmax`` to dark red, values are clipped.
        vmin: Value drawn as the lowest colour.
        vmax: Value drawn as the highest colour (must exceed ``vmin``).

    Shape:
        - heatmap: ``(H, W)``
        - output: ``(H, W, 3)``, uint8

    Returns:
        The coloured map.

    Example:
        >>> colorize(np.array([[0.0, 1.0]]))[0].tolist()
        [[0, 0, 128], [128, 0, 0]]
    """
    arr = _numpy(heatmap, "heatmap").astype(np.float32)
    if arr.ndim != 2:
        raise ValueError(f"heatmap: expected shape (H, W), got {tuple(arr.shape)}")
    if not vmax > vmin:
        raise ValueError(f"vmax: expected a value above vmin={vmin}, got {vmax}")
    v = np.clip((arr - vmin) / (vmax - vmin), 0.0, 1.0)
    # Piecewise-linear jet: each channel is a tent centred at 0.25 (b), 0.5 (g), 0.75 (r).
    r = np.clip(1.5 - np.abs(4.0 * v - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * v - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * v - 1.0), 0.0, 1.0)
    rgb = np.stack([r, g, b], axis=-1) * 255.0
    return np.round(rgb).astype(np.uint8)


def _resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map to ``size = (H, W)``."""
    h, w = size
    if heatmap.shape == (h, w):
        return heatmap.astype(np.float32)
    img = Image.fromarray(heatmap.astype(np.float32), mode="F")
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def overlay_heatmap(
    frame: Any,
    heatmap: Any,
    *,
    alpha: float = 0.5,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> np.ndarray:
    """Blend a coloured heatmap over a frame; the map is resized (bilinear) to the frame.

    Args:
        frame: An RGB image, uint8 or floating point in ``[0, 1]``.
        heatmap: The attention map, any resolution.
        alpha: Opacity of the heatmap, in ``[0, 1]``.
        vmin: Map value drawn as the lowest colour.
        vmax: Map value drawn as the highest colour.

    Shape:
        - frame: ``(H, W, 3)``
        - heatmap: ``(hh, ww)``
        - output: ``(H, W, 3)``, uint8

    Returns:
        The blended image.

    Example:
        >>> frame = np.zeros((4, 4, 3), dtype=np.uint8)
        >>> overlay_heatmap(frame, np.ones((2, 2)), alpha=1.0)[0, 0].tolist()
        [128, 0, 0]
    """
    img = _frame_uint8(frame, "frame")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
    hm = _numpy(heatmap, "heatmap").astype(np.float32)
    if hm.ndim != 2:
        raise ValueError(f"heatmap: expected shape (hh, ww), got {tuple(hm.shape)}")
    color = colorize(_resize_map(hm, img.shape[:2]), vmin=vmin, vmax=vmax).astype(np.float32)
    out = (1.0 - alpha) * img.astype(np.float32) + alpha * color
    return np.round(out).astype(np.uint8)


def _frame_uint8(frame: Any, name: str) -> np.ndarray:
    arr = _numpy(frame, name)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected an RGB image of shape (H, W, 3), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name}: expected uint8 or floating point in [0, 1], got {arr.dtype}")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _prepare(
    frames: Any, attention: Any, temporal_weights: Any, normalize: Normalize
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[tuple[float, float]]]:
    """Validate the inputs and return frames, maps, weights and per-segment (vmin, vmax)."""
    fr = _numpy(frames, "frames")
    if fr.ndim != 4 or fr.shape[-1] != 3:
        raise ValueError(
            f"frames: expected shape (T, H, W, 3) (use to_uint8_frames for (T, 3, H, W)), "
            f"got {tuple(fr.shape)}"
        )
    t = fr.shape[0]
    frames_u8 = np.stack([_frame_uint8(f, "frames") for f in fr])
    maps = None
    limits = [(0.0, 1.0)] * t
    if attention is not None:
        maps = _numpy(attention, "attention").astype(np.float32)
        if maps.ndim == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        if maps.ndim != 3 or maps.shape[0] != t:
            raise ValueError(
                f"attention: expected shape (T, hh, ww) or (T, 1, hh, ww) with T={t}, "
                f"got {tuple(_numpy(attention, 'attention').shape)}"
            )
        if not np.isfinite(maps).all():
            raise ValueError("attention: contains NaN or infinite values")
        if normalize == "figure":
            lo, hi = float(maps.min()), float(maps.max())
            limits = [(lo, hi if hi > lo else lo + 1.0)] * t
        elif normalize == "segment":
            limits = []
            for m in maps:
                lo, hi = float(m.min()), float(m.max())
                limits.append((lo, hi if hi > lo else lo + 1.0))
        elif normalize != "none":
            raise ValueError(
                f"normalize: expected 'figure', 'segment' or 'none', got {normalize!r}"
            )
    weights = None
    if temporal_weights is not None:
        weights = _numpy(temporal_weights, "temporal_weights").astype(np.float64).reshape(-1)
        if weights.shape[0] != t:
            raise ValueError(
                f"temporal_weights: expected {t} values (one per segment), got {weights.shape[0]}"
            )
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("temporal_weights: expected finite, non-negative values")
    return frames_u8, maps, weights, limits


def _panel(frame: np.ndarray, heatmap: np.ndarray | None, limits, alpha, scale) -> Image.Image:
    img = overlay_heatmap(frame, heatmap, alpha=alpha, vmin=limits[0], vmax=limits[1])
    h, w = img.shape[:2]
    return Image.fromarray(img).resize((w * scale, h * scale), Image.Resampling.NEAREST)


def _draw_bar(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    weight: float,
    top: float,
    uniform: float,
    color: tuple[int, int, int],
) -> None:
    """Draw one weight bar in ``box = (x0, y0, x1, y1)``; ``top`` is the largest weight."""
    x0, y0, x1, y1 = box
    label_h = 11
    usable = (y1 - y0) - label_h
    height = round(usable * weight / top) if top > 0 else 0
    bar_w = max(2, (x1 - x0) // 3)
    cx = (x0 + x1) // 2
    if height > 0:
        draw.rectangle((cx - bar_w // 2, y1 - height, cx + bar_w // 2, y1 - 1), fill=color)
    # Dashed line at the uniform weight 1 / T (TSN's average consensus).
    yu = y1 - round(usable * uniform / top) if top > 0 else y1
    for x in range(x0, x1, 4):
        draw.line((x, yu, min(x + 1, x1 - 1), yu), fill=_UNIFORM)
    draw.text((x0 + 1, y0), f"{weight:.2f}", fill=_TEXT)


def _default_scale(height: int) -> int:
    return max(1, math.ceil(96 / height))


def attention_figure(
    frames: Any,
    attention: Any = None,
    temporal_weights: Any = None,
    *,
    title: str | None = None,
    alpha: float = 0.5,
    normalize: Normalize = "figure",
    scale: int | None = None,
) -> Image.Image:
    """One row of panels: each segment's frame with its attention heatmap and weight bar.

    Panels are the frames upscaled by an integer ``scale`` (nearest neighbour, so small
    frames stay crisp). The figure is ``T * W * scale + (T + 1) * PAD`` pixels wide and
    ``H * scale + 2 * PAD`` high, plus ``BAR_HEIGHT + PAD`` with temporal weights and
    ``TITLE_HEIGHT`` with a title. Bars are scaled so the largest weight fills the bar
    area; the dashed line marks ``1 / T``.

    Args:
        frames: One RGB frame per segment, uint8 or float in ``[0, 1]``, channel last
            (convert dataset tensors with :func:`to_uint8_frames`).
        attention: Spatial attention per segment, any resolution, or None (no overlay).
        temporal_weights: Temporal attention weight per segment, or None (no bars).
        title: Optional text above the panels.
        alpha: Heatmap opacity.
        normalize: Colour scale of the heatmaps: ``"figure"`` (min..max over all
            segments, so segments compare), ``"segment"`` (each map its own min..max) or
            ``"none"`` (fixed ``[0, 1]``, for maps that are already probabilities).
        scale: Integer upscaling of the frames; default makes panels at least 96 px high.

    Shape:
        - frames: ``(T, H, W, 3)``
        - attention: ``(T, hh, ww)`` or ``(T, 1, hh, ww)``
        - temporal_weights: ``(T,)``

    Returns:
        An RGB ``PIL.Image.Image``.

    Example:
        >>> frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
        >>> attention_figure(frames, np.ones((2, 2, 2)), [0.5, 0.5], scale=1).size
        (28, 60)
    """
    fr, maps, weights, limits = _prepare(frames, attention, temporal_weights, normalize)
    t, h, w, _ = fr.shape
    s = _default_scale(h) if scale is None else int(scale)
    if s < 1:
        raise ValueError(f"scale: expected a positive integer, got {scale}")
    ph, pw = h * s, w * s
    top_h = TITLE_HEIGHT if title else 0
    bars_h = BAR_HEIGHT + PAD if weights is not None else 0
    canvas = Image.new("RGB", (t * pw + (t + 1) * PAD, top_h + ph + 2 * PAD + bars_h), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, 1), title, fill=_TEXT)
    top = float(weights.max()) if weights is not None else 0.0
    for i in range(t):
        x = PAD + i * (pw + PAD)
        y = top_h + PAD
        if maps is None:
            panel = Image.fromarray(fr[i]).resize((pw, ph), Image.Resampling.NEAREST)
        else:
            panel = _panel(fr[i], maps[i], limits[i], alpha, s)
        canvas.paste(panel, (x, y))
        if weights is not None:
            box = (x, y + ph + PAD, x + pw, y + ph + PAD + BAR_HEIGHT)
            _draw_bar(draw, box, float(weights[i]), top, 1.0 / t, _BAR)
    return canvas


def attention_animation(
    frames: Any,
    attention: Any = None,
    temporal_weights: Any = None,
    *,
    alpha: float = 0.5,
    normalize: Normalize = "figure",
    scale: int | None = None,
) -> list[Image.Image]:
    """One image per segment: its frame with the heatmap, and all weight bars below.

    Each image is ``W * scale + 2 * PAD`` wide and ``H * scale + 2 * PAD`` high, plus
    ``BAR_HEIGHT + PAD`` with temporal weights; the current segment's bar is highlighted.
    Save them as a GIF with :func:`save_attention_figures`.

    Args:
        frames: One RGB frame per segment (see :func:`attention_figure`).
        attention: Spatial attention per segment, or None.
        temporal_weights: Temporal attention weight per segment, or None.
        alpha: Heatmap opacity.
        normalize: Colour scale of the heatmaps (see :func:`attention_figure`).
        scale: Integer upscaling of the frames; default makes them at least 96 px high.

    Shape:
        - frames: ``(T, H, W, 3)``
        - attention: ``(T, hh, ww)`` or ``(T, 1, hh, ww)``
        - temporal_weights: ``(T,)``

    Returns:
        ``T`` RGB images of equal size.

    Example:
        >>> frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
        >>> images = attention_animation(frames, scale=2)
        >>> len(images), images[0].size
        (3, (24, 24))
    """
    fr, maps, weights, limits = _prepare(frames, attention, temporal_weights, normalize)
    t, h, w, _ = fr.shape
    s = _default_scale(h) if scale is None else int(scale)
    if s < 1:
        raise ValueError(f"scale: expected a positive integer, got {scale}")
    ph, pw = h * s, w * s
    bars_h = BAR_HEIGHT + PAD if weights is not None else 0
    images = []
    top = float(weights.max()) if weights is not None else 0.0
    for i in range(t):
        canvas = Image.new("RGB", (pw + 2 * PAD, ph + 2 * PAD + bars_h), _BACKGROUND)
        if maps is None:
            panel = Image.fromarray(fr[i]).resize((pw, ph), Image.Resampling.NEAREST)
        else:
            panel = _panel(fr[i], maps[i], limits[i], alpha, s)
        canvas.paste(panel, (PAD, PAD))
        if weights is not None:
            draw = ImageDraw.Draw(canvas)
            slot = pw / t
            for j in range(t):
                x0 = PAD + round(j * slot)
                x1 = PAD + round((j + 1) * slot)
                box = (x0, ph + 2 * PAD, x1, ph + 2 * PAD + BAR_HEIGHT)
                color = _BAR_CURRENT if j == i else _BAR
                _draw_bar(draw, box, float(weights[j]), top, 1.0 / t, color)
        images.append(canvas)
    return images


def _atomic_save(image: Image.Image, path: Path, **kwargs: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    image.save(tmp, format=kwargs.pop("format"), **kwargs)
    os.replace(tmp, path)


def save_attention_figures(
    path: str | os.PathLike[str],
    frames: Any,
    attention: Any = None,
    temporal_weights: Any = None,
    *,
    title: str | None = None,
    alpha: float = 0.5,
    normalize: Normalize = "figure",
    scale: int | None = None,
    duration_ms: int = 600,
) -> tuple[Path, Path]:
    """Write the figure as ``<path>.png`` and the animation as ``<path>.gif``.

    Files are written atomically (temporary file, then rename); parent directories are
    created.

    Args:
        path: Output path without suffix (a ``.png``/``.gif`` suffix is replaced).
        frames: One RGB frame per segment (see :func:`attention_figure`).
        attention: Spatial attention per segment, or None.
        temporal_weights: Temporal attention weight per segment, or None.
        title: Optional title of the PNG figure.
        alpha: Heatmap opacity.
        normalize: Colour scale of the heatmaps (see :func:`attention_figure`).
        scale: Integer upscaling of the frames.
        duration_ms: Display time of each GIF frame.

    Returns:
        The PNG and GIF paths.

    Example:
        >>> import tempfile
        >>> frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     png, gif = save_attention_figures(Path(d) / "fig", frames, None, [0.3, 0.7])
        ...     print(png.name, gif.name, Image.open(gif).n_frames)
        fig.png fig.gif 2
    """
    base = Path(path)
    if base.suffix.lower() in {".png", ".gif"}:
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    png, gif = base.with_name(base.name + ".png"), base.with_name(base.name + ".gif")
    common = {"alpha": alpha, "normalize": normalize, "scale": scale}
    figure = attention_figure(frames, attention, temporal_weights, title=title, **common)
    _atomic_save(figure, png, format="PNG")
    frames_gif = attention_animation(frames, attention, temporal_weights, **common)
    first, *rest = frames_gif
    _atomic_save(
        first,
        gif,
        format="GIF",
        save_all=True,
        append_images=rest,
        duration=duration_ms,
        loop=0,
    )
    return png, gif
