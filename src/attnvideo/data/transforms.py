"""Group transforms: one random draw applied identically to a sample's frames and flow.

Axis legend: T segments, C channels (3 for RGB, 2L for flow with x at even and y at odd
channels: x1, y1, x2, y2, ...), H x W pixels, n crops.

A transform takes and returns a sample dict with an ``"rgb"`` entry ``(T, 3, H, W)`` and/or
a ``"flow"`` entry ``(T, 2L, H, W)``; other keys pass through untouched. Datasets hand
over uint8 tensors, RGB pixels and TSN's quantised flow (``q = round(255 (v + 20) / 40)``),
and the geometric transforms work on them in uint8 (cheap: a crop is a view, a resize
runs OpenCV's fixed-point bilinear kernel per plane); :class:`GroupNormalize`, the last
step, turns them into float: RGB normalised with the backbone's mean/std, flow
dequantised and divided by the bound 20, i.e. centred in ``[-1, 1]``. Float inputs (RGB
in ``[0, 1]``, flow in ``[-1, 1]``) are accepted by every transform too.

Every crop, resize and flip is drawn once per sample and applied to both, so RGB and flow
stay aligned pixel for pixel. Flow values are not rescaled when a crop is resized (TSN
treats flow fields as images); a horizontal flip negates the x channels (``255 - q`` in
uint8, which is exactly the quantised ``-v``). Multi-crop test transforms add a leading
crops axis: ``(n, T, C, H, W)``.

The recipe of TSN (Wang et al., 2016): :class:`GroupMultiScaleCrop` (corner cropping +
scale jittering), :class:`GroupRandomHorizontalFlip`, :class:`GroupNormalize` for
training; :class:`GroupResize` + :class:`GroupCenterCrop` / :class:`GroupThreeCrop` /
:class:`GroupTenCrop` for testing. :func:`train_transform` and :func:`test_transform`
assemble them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import pack, unpack
from torch import Tensor

try:  # OpenCV's uint8 bilinear resize is several times faster than torch's on CPU
    import cv2
except ImportError:  # pragma: no cover - depends on the install
    cv2 = None

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "GroupCenterCrop",
    "GroupCompose",
    "GroupMultiScaleCrop",
    "GroupNormalize",
    "GroupRandomHorizontalFlip",
    "GroupResize",
    "GroupTenCrop",
    "GroupThreeCrop",
    "test_transform",
    "train_transform",
]

Sample = dict[str, object]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""ImageNet RGB mean (timm's ``IMAGENET_DEFAULT_MEAN``), the default normalisation; pass a
model's ``data_config["mean"]`` to match its backbone."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""ImageNet RGB std (timm's ``IMAGENET_DEFAULT_STD``); pass ``data_config["std"]``."""

_KEYS = ("rgb", "flow")


def _pair(name: str, size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from an int or a pair, validated."""
    if isinstance(size, int) and not isinstance(size, bool):
        pair = (size, size)
    elif isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, int) for s in size):
        pair = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{name}: expected an int or an (height, width) pair, got {size!r}")
    if min(pair) < 1:
        raise ValueError(f"{name}: expected positive sizes, got {size!r}")
    return pair


def _images(sample: Sample) -> dict[str, Tensor]:
    """The sample's image tensors, checked to share their spatial size."""
    found = {k: sample[k] for k in _KEYS if k in sample}
    if not found:
        raise ValueError(f"sample: expected an 'rgb' and/or 'flow' entry, got keys {list(sample)}")
    sizes = {k: tuple(v.shape[-2:]) for k, v in found.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"sample: rgb and flow must have the same height and width, got {sizes}")
    return found


def _size(sample: Sample) -> tuple[int, int]:
    return tuple(next(iter(_images(sample).values())).shape[-2:])


def _map(sample: Sample, fn: Callable[[str, Tensor], Tensor]) -> Sample:
    out = dict(sample)
    for key, value in _images(sample).items():
        out[key] = fn(key, value)
    return out


def _resize(x: Tensor, size: tuple[int, int], *, fast: bool = True) -> Tensor:
    """Bilinear resize of the last two axes of a (..., C, H, W) tensor (half-pixel centres).

    uint8 CPU tensors go through OpenCV when it is installed (``fast``): one call per
    image when the channels are interleaved in memory (a ``t h w c -> t c h w`` view of
    decoded frames, returned in the same layout), else plane by plane; otherwise
    ``F.interpolate`` (uint8 is rounded back). The two agree to 1 grey level.
    """
    if tuple(x.shape[-2:]) == size:
        return x
    if fast and cv2 is not None and x.dtype == torch.uint8 and x.device.type == "cpu":
        planes = x.numpy()
        pixels = np.moveaxis(planes, -3, -1)  # (..., H, W, C) view
        channels = pixels.shape[-1]
        if 1 < channels <= 4 and pixels.strides[-1] == 1 and pixels.strides[-2] == channels:
            out = np.empty((*pixels.shape[:-3], *size, channels), np.uint8)
            for index in np.ndindex(pixels.shape[:-3]):
                cv2.resize(
                    pixels[index], size[::-1], dst=out[index], interpolation=cv2.INTER_LINEAR
                )
            return torch.from_numpy(np.moveaxis(out, -1, -3))
        if planes.strides[-1] != 1:
            planes = np.ascontiguousarray(planes)
        out = np.empty((*planes.shape[:-2], *size), np.uint8)
        for index in np.ndindex(planes.shape[:-2]):
            cv2.resize(planes[index], size[::-1], dst=out[index], interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(out)
    flat, packed = pack([x], "* c h w")
    out = F.interpolate(flat.float(), size=size, mode="bilinear", align_corners=False)
    if x.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return unpack(out.to(x.dtype), packed, "* c h w")[0]


def _crop(x: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    return x[..., top : top + height, left : left + width]


def _hflip(key: str, x: Tensor) -> Tensor:
    x = x.flip(-1)  # a copy, so the in-place negation below is safe
    if key == "flow":  # a mirrored motion moves the other way along x
        along_x = x[..., 0::2, :, :]
        if x.dtype == torch.uint8:
            torch.sub(255, along_x, out=along_x)  # v(255 - q) == -v(q) exactly
        else:
            along_x.neg_()
    return x


def _randint(high: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(high, (1,), generator=generator))


class GroupCompose:
    """Apply group transforms in order.

    Args:
        transforms: Callables taking and returning a sample dict.

    Example:
        >>> t = GroupCompose([GroupResize(4), GroupCenterCrop(4)])
        >>> t({"rgb": torch.rand(2, 3, 8, 12)})["rgb"].shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""
        for t in self.transforms:
            sample = t(sample)
        return sample

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"{type(self).__name__}([{inner}\n])"


class GroupMultiScaleCrop:
    """TSN's corner cropping with scale jittering, then a resize to ``input_size``.

    The crop's height and width are each the short side times one of ``scales`` (sizes
    within 3 px of the target snap to it), at most ``max_distort`` scale steps apart, so
    the aspect ratio is jittered too. Its position is one of the fixed offsets: the four
    corners and the centre, plus (``more_fix_crop``) the four edge centres and the four
    quarter points.

    Args:
        input_size: Output size, an int or (height, width).
        scales: Crop sides as fractions of the short side. TSN uses (1, .875, .75, .66)
            for RGB and the first three for flow.
        max_distort: Largest allowed distance between the height and width scale indices.
        more_fix_crop: Use the 13 TSN offsets instead of 5.
        generator: Torch generator for the draws (default: the global one).

    Shape:
        ``(..., C, H, W)`` -> ``(..., C, input_h, input_w)``.

    Example:
        >>> crop = GroupMultiScaleCrop(16, scales=(1, 0.5))
        >>> out = crop({"rgb": torch.rand(2, 3, 20, 30), "flow": torch.rand(2, 4, 20, 30)})
        >>> out["rgb"].shape, out["flow"].shape
        (torch.Size([2, 3, 16, 16]), torch.Size([2, 4, 16, 16]))
    """

    def __init__(
        self,
        input_size: int | Sequence[int] = 224,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        *,
        max_distort: int = 1,
        more_fix_crop: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        self.input_size = _pair("input_size", input_size)
        scales = tuple(float(s) for s in scales)
        if not scales or not all(0 < s <= 1 for s in scales):
            raise ValueError(f"scales: expected fractions in (0, 1], got {scales!r}")
        if not isinstance(max_distort, int) or max_distort < 0:
            raise ValueError(f"max_distort: expected an int >= 0, got {max_distort!r}")
        self.scales, self.max_distort = scales, max_distort
        self.more_fix_crop, self.generator = more_fix_crop, generator

    def crop_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """All (crop_h, crop_w) pairs allowed for an image of this size."""
        base = min(height, width)
        sides = [int(base * s) for s in self.scales]
        hs = [self.input_size[0] if abs(s - self.input_size[0]) < 3 else s for s in sides]
        ws = [self.input_size[1] if abs(s - self.input_size[1]) < 3 else s for s in sides]
        return [
            (min(h, height), min(w, width))
            for i, h in enumerate(hs)
            for j, w in enumerate(ws)
            if abs(i - j) <= self.max_distort
        ]

    def offsets(self, height: int, width: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
        """The fixed (top, left) offsets for a crop of this size."""
        hs, ws = (height - crop_h) // 4, (width - crop_w) // 4
        out = [(0, 0), (0, 4 * ws), (4 * hs, 0), (4 * hs, 4 * ws), (2 * hs, 2 * ws)]
        if self.more_fix_crop:
            out += [(2 * hs, 0), (2 * hs, 4 * ws), (4 * hs, 2 * ws), (0, 2 * ws)]
            out += [(hs, ws), (hs, 3 * ws), (3 * hs, ws), (3 * hs, 3 * ws)]
        return out

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""
        height, width = _size(sample)
        sizes = self.crop_sizes(height, width)
        crop_h, crop_w = sizes[_randint(len(sizes), self.generator)]
        offsets = self.offsets(height, width, crop_h, crop_w)
        top, left = offsets[_randint(len(offsets), self.generator)]
        return _map(
            sample, lambda _, x: _resize(_crop(x, top, left, crop_h, crop_w), self.input_size)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={self.input_size}, scales={self.scales})"


class GroupRandomHorizontalFlip:
    """Flip all frames and flow of a sample with probability ``p``; flow x is negated.

    Args:
        p: Flip probability.
        generator: Torch generator for the draw (default: the global one).

    Example:
        >>> flip = GroupRandomHorizontalFlip(p=1.0)
        >>> flow = torch.tensor([0.5, -0.25, 0.0, 0.75]).reshape(1, 2, 1, 2)  # x then y
        >>> flip({"flow": flow})["flow"].flatten().tolist()
        [0.25, -0.5, 0.75, 0.0]
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
        self.p, self.generator = p, generator

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""
        if float(torch.rand((), generator=self.generator)) >= self.p:
            return sample
        return _map(sample, _hflip)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class GroupResize:
    """Resize the short side to ``size`` keeping the aspect ratio (or to an exact pair).

    Args:
        size: Short side (int) or exact (height, width).

    Example:
        >>> GroupResize(8)({"rgb": torch.rand(1, 3, 16, 24)})["rgb"].shape
        torch.Size([1, 3, 8, 12])
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.short = size if isinstance(size, int) and not isinstance(size, bool) else None
        self.size = _pair("size", size)

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""
        height, width = _size(sample)
        if self.short is None:
            target = self.size
        elif height <= width:
            target = (self.short, max(1, round(width * self.short / height)))
        else:
            target = (max(1, round(height * self.short / width)), self.short)
        return _map(sample, lambda _, x: _resize(x, target))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.short or self.size})"


def _check_fits(size: tuple[int, int], height: int, width: int) -> None:
    if size[0] > height or size[1] > width:
        raise ValueError(f"crop size {size} is larger than the frames ({height}, {width})")


class GroupCenterCrop:
    """Crop the centre of every frame and flow field.

    Args:
        size: Crop size, int or (height, width).

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> GroupCenterCrop(2)({"rgb": x})["rgb"].flatten().tolist()
        [5.0, 6.0, 9.0, 10.0]
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair("size", size)

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""
        height, width = _size(sample)
        _check_fits(self.size, height, width)
        top, left = (height - self.size[0]) // 2, (width - self.size[1]) // 2
        return _map(sample, lambda _, x: _crop(x, top, left, *self.size))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class _MultiCrop:
    """Crops at fixed boxes, stacked on a new first axis (subclasses choose the boxes)."""

    mirrored = False  # also stack the horizontal flips of the crops (flow x negated)

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair("size", size)

    def boxes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The (top, left) corners of the crops for frames of this size."""
        raise NotImplementedError

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""
        height, width = _size(sample)
        _check_fits(self.size, height, width)
        boxes = self.boxes(height, width)

        def crops(key: str, x: Tensor) -> Tensor:
            views = [_crop(x, top, left, *self.size) for top, left in boxes]
            if self.mirrored:
                views += [_hflip(key, v) for v in views]
            return torch.stack(views)

        return _map(sample, crops)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class GroupThreeCrop(_MultiCrop):
    """Three crops along the long side (start, centre, end), stacked on a new first axis.

    Args:
        size: Crop size, int or (height, width).

    Shape:
        ``(T, C, H, W)`` -> ``(3, T, C, h, w)``.

    Example:
        >>> x = torch.arange(6.0).reshape(1, 1, 1, 6)
        >>> GroupThreeCrop((1, 2))({"rgb": x})["rgb"].flatten().tolist()
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """

    def boxes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Start, centre and end of the longer free axis."""
        h, w = self.size
        if width - w >= height - h:
            return [((height - h) // 2, left) for left in (0, (width - w) // 2, width - w)]
        return [(top, (width - w) // 2) for top in (0, (height - h) // 2, height - h)]


class GroupTenCrop(_MultiCrop):
    """The four corners and the centre, and their horizontal flips (flow x negated).

    Args:
        size: Crop size, int or (height, width).

    Shape:
        ``(T, C, H, W)`` -> ``(10, T, C, h, w)``: crops 5-9 mirror crops 0-4.

    Example:
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> out = GroupTenCrop(2)({"rgb": x})["rgb"]
        >>> out.shape, out[0].flatten().tolist(), out[5].flatten().tolist()
        (torch.Size([10, 1, 1, 2, 2]), [0.0, 1.0, 3.0, 4.0], [1.0, 0.0, 4.0, 3.0])
    """

    mirrored = True

    def boxes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Top-left, top-right, bottom-left, bottom-right, centre."""
        h, w = self.size
        dh, dw = height - h, width - w
        return [(0, 0), (0, dw), (dh, 0), (dh, dw), (dh // 2, dw // 2)]


class GroupNormalize:
    """Turn a sample into float: RGB normalised with the backbone's mean/std, flow centred.

    uint8 RGB is scaled to ``[0, 1]`` first; uint8 flow is dequantised to pixels and
    divided by the bound 20 (:func:`attnvideo.functional.dequantize_flow`), giving
    ``[-1, 1]`` (computed as ``q * 2 / 255 - 1``, the same numbers). Float flow is taken
    as already centred and left as it is.

    It works on any leading axes and any device, so it also normalises a whole uint8
    batch on the GPU (a dataset built with ``to_float=False``), with the same numbers as
    in the workers.

    Args:
        mean: Per-channel RGB mean (of pixels in [0, 1]).
        std: Per-channel RGB std.

    Shape:
        ``rgb`` ``(..., 3, H, W)``, ``flow`` ``(..., 2L, H, W)``, unchanged.

    Example:
        >>> norm = GroupNormalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> norm({"rgb": torch.ones(1, 3, 1, 1)})["rgb"].flatten().tolist()
        [1.0, 1.0, 1.0]
        >>> q = torch.tensor([0, 255], dtype=torch.uint8).reshape(1, 2, 1, 1)
        >>> norm({"flow": q})["flow"].flatten().tolist()
        [-1.0, 1.0]
    """

    def __init__(
        self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean, std: expected 3 values each, got {mean!r} and {std!r}")
        if min(std) <= 0:
            raise ValueError(f"std: expected positive values, got {std!r}")
        self.mean, self.std = mean, std

    def __call__(self, sample: Sample) -> Sample:
        """Transform a sample dict (see the module docstring); other keys pass through."""

        def norm(key: str, x: Tensor) -> Tensor:
            if key == "flow":  # dequantize_flow(q) / FLOW_BOUND == q * 2 / 255 - 1, in 2 passes
                return x.float().mul_(2.0 / 255.0).sub_(1.0) if x.dtype == torch.uint8 else x
            pixel = 255.0 if x.dtype == torch.uint8 else 1.0
            # uint8 made contiguous first (a layout copy of uint8 then a straight conversion
            # beats one strided converting copy), so the output is contiguous whatever came in
            x = x.contiguous().float() if x.dtype == torch.uint8 else x.clone()
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None]
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None]
            return x.mul_(1.0 / (std * pixel)).sub_(mean / std)

        return _map(sample, norm)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def train_transform(
    input_size: int | Sequence[int] = 224,
    scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    flip: bool = True,
    normalize: bool = True,
) -> GroupCompose:
    """TSN's training augmentation: multi-scale corner crop, random flip, normalisation.

    Args:
        input_size: Network input size.
        scales: Crop scales (TSN: (1, .875, .75, .66) for RGB, (1, .875, .75) for flow).
        mean: RGB mean (the backbone's ``data_config["mean"]``).
        std: RGB std.
        flip: Add the random horizontal flip.
        normalize: End with :class:`GroupNormalize`. False leaves uint8 input in uint8
            (for datasets built with ``to_float=False``, normalised on the device).

    Returns:
        A :class:`GroupCompose`.

    Example:
        >>> t = train_transform(32)
        >>> t({"rgb": torch.rand(2, 3, 40, 52)})["rgb"].shape
        torch.Size([2, 3, 32, 32])
        >>> rgb = torch.zeros(2, 3, 40, 52, dtype=torch.uint8)
        >>> train_transform(32, normalize=False)({"rgb": rgb})["rgb"].dtype
        torch.uint8
    """
    steps: list[Callable[[Sample], Sample]] = [GroupMultiScaleCrop(input_size, scales)]
    if flip:
        steps.append(GroupRandomHorizontalFlip())
    if normalize:
        steps.append(GroupNormalize(mean, std))
    return GroupCompose(steps)


def test_transform(
    input_size: int | Sequence[int] = 224,
    resize: int = 256,
    crops: int = 1,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    normalize: bool = True,
) -> GroupCompose:
    """Testing views: resize the short side, then 1 (centre), 3 or 10 crops, normalise.

    Args:
        input_size: Crop size.
        resize: Short side after resizing.
        crops: 1, 3 or 10. With 3 or 10 the tensors gain a leading crops axis.
        mean: RGB mean.
        std: RGB std.
        normalize: End with :class:`GroupNormalize` (see :func:`train_transform`).

    Returns:
        A :class:`GroupCompose`.

    Example:
        >>> t = test_transform(24, resize=32, crops=10)
        >>> t({"rgb": torch.rand(2, 3, 40, 52)})["rgb"].shape
        torch.Size([10, 2, 3, 24, 24])
    """
    kinds = {1: GroupCenterCrop, 3: GroupThreeCrop, 10: GroupTenCrop}
    if crops not in kinds:
        raise ValueError(f"crops: expected 1, 3 or 10, got {crops!r}")
    steps = [GroupResize(resize), kinds[crops](input_size)]
    if normalize:
        steps.append(GroupNormalize(mean, std))
    return GroupCompose(steps)


# Not a pytest test, although its name starts with ``test_`` (tests import it).
test_transform.__test__ = False
