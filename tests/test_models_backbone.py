"""The backbone adapter: any timm family -> (N, C, h, w), and flow input adaptation."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from attnvideo.models import FeatureMapBackbone, adapt_input_channels, find_first_conv
from attnvideo.models.backbone import create_backbone


def _eval(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, **kwargs).eval()


@pytest.mark.parametrize("name", ["test_resnet", "test_convnext", "test_maxvit"])
def test_nchw_models_give_forward_features_unchanged(name: str) -> None:
    kwargs = {"img_size": 64} if name == "test_maxvit" else {}
    model = _eval(name, **kwargs)
    x = torch.randn(2, 3, 64, 64)
    expected = model.forward_features(x)
    backbone = FeatureMapBackbone(model)
    assert torch.equal(backbone(x), expected)
    assert backbone.num_features == expected.shape[1] == model.num_features


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("test_mambaout", {}),
        ("swin_tiny_patch4_window7_224", dict(embed_dim=24, depths=(1, 1), num_heads=(1, 2),
                                              img_size=64, window_size=4)),
    ],
)  # fmt: skip
def test_nhwc_models_are_permuted(name: str, kwargs: dict) -> None:
    model = _eval(name, **kwargs)
    x = torch.randn(2, 3, 64, 64)
    nhwc = model.forward_features(x)
    out = FeatureMapBackbone(model)(x)
    # written by hand: (n, h, w, c) -> (n, c, h, w)
    assert torch.equal(out, nhwc.permute(0, 3, 1, 2))
    assert out.shape[1] == model.num_features


@pytest.mark.parametrize(
    ("name", "kwargs", "prefix"),
    [
        ("test_vit", {}, 1),
        ("deit_tiny_distilled_patch16_224", dict(depth=1, img_size=64), 2),
        ("eva02_tiny_patch14_224", dict(depth=1, img_size=56), 1),
    ],
)
def test_token_models_drop_prefix_tokens_and_fold_the_grid(
    name: str, kwargs: dict, prefix: int
) -> None:
    model = _eval(name, **kwargs)
    size = kwargs.get("img_size", 64)
    x = torch.randn(2, 3, size, size)
    tokens = model.forward_features(x)
    grid = size // model.patch_embed.patch_size[0]
    assert tokens.shape[1] == prefix + grid * grid
    out = FeatureMapBackbone(model)(x)
    by_hand = tokens[:, prefix:].transpose(1, 2).reshape(2, -1, grid, grid)
    assert torch.equal(out, by_hand)
    # a token's position survives the fold: token (i, j) sits at map[:, :, i, j]
    assert torch.equal(out[:, :, 1, 2], tokens[:, prefix + 1 * grid + 2])


def test_dynamic_size_vit_takes_any_multiple_of_the_patch() -> None:
    backbone = FeatureMapBackbone(_eval("test_vit"))
    assert backbone(torch.randn(1, 3, 48, 80)).shape == (1, 64, 3, 5)


def test_token_model_without_patch_embed_folds_by_aspect_ratio() -> None:
    model = _eval("levit_128s", img_size=128)
    x = torch.randn(2, 3, 128, 128)
    tokens = model.forward_features(x)
    out = FeatureMapBackbone(model)(x)
    side = int(tokens.shape[1] ** 0.5)
    assert side > 1
    assert out.shape == (2, tokens.shape[2], side, side)
    assert torch.equal(out.flatten(2).transpose(1, 2), tokens)


def test_fixed_size_vit_rejects_other_sizes_clearly() -> None:
    backbone = FeatureMapBackbone(_eval("deit_tiny_patch16_224", depth=1, img_size=32))
    with pytest.raises(ValueError, match=r"exactly 32x32.*\(2, 3, 48, 48\).*dynamic_img_size"):
        backbone(torch.randn(2, 3, 48, 48))


@pytest.mark.parametrize(("name", "size"), [("test_convnext", 2), ("test_vit", 8)])
def test_too_small_frames_get_a_clear_error(name: str, size: int) -> None:
    backbone = FeatureMapBackbone(_eval(name))
    with pytest.raises(ValueError, match=rf"{size}x{size}.*too small.*{name}"):
        backbone(torch.randn(2, 3, size, size))


def test_model_without_spatial_map_is_named_in_the_error() -> None:
    model = _eval("test_resnet")
    features = model.forward_features
    model.forward_features = lambda x: features(x).mean(dim=(2, 3))  # pooled (N, C)
    with pytest.raises(ValueError, match=r"'test_resnet'.*\(2, 96\).*not a spatial map"):
        FeatureMapBackbone(model)(torch.randn(2, 3, 32, 32))


def test_non_timm_module_is_rejected() -> None:
    with pytest.raises(TypeError, match="backbone: expected a timm model"):
        FeatureMapBackbone(nn.Conv2d(3, 8, 3))


def test_classifier_is_removed() -> None:
    backbone = FeatureMapBackbone(_eval("test_resnet", num_classes=7))
    assert backbone.model.get_classifier().__class__ is nn.Identity
    assert not any("fc." in n for n, _ in backbone.named_parameters())


@pytest.mark.parametrize(
    ("name", "conv_name"),
    [("test_resnet", "conv1.0"), ("test_vit", "patch_embed.proj"), ("test_nfnet", "stem.conv1")],
)
def test_mean_init_is_the_mean_of_the_rgb_filters(name: str, conv_name: str) -> None:
    model = _eval(name)
    rgb = model.get_submodule(conv_name).weight.detach().clone()
    adapt_input_channels(model, 10, "mean")
    found, conv = find_first_conv(model)
    assert found == conv_name and conv.in_channels == 10 and conv.weight.shape[1] == 10
    mean = (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) / 3
    for k in range(10):
        torch.testing.assert_close(conv.weight[:, k], mean)


def test_repeat_init_cycles_rgb_filters_scaled_by_3_over_in_chans() -> None:
    model = _eval("test_resnet")
    rgb = model.conv1[0].weight.detach().clone()
    adapt_input_channels(model, 10, "repeat")
    weight = model.conv1[0].weight
    for k in range(10):
        torch.testing.assert_close(weight[:, k], rgb[:, k % 3] * 3 / 10)


def test_mean_init_keeps_the_response_to_a_grey_frame() -> None:
    """A constant frame: flow conv with 2L copies of mean(w) answers 2L/3 x the RGB conv."""
    model = _eval("test_resnet")
    conv = model.conv1[0]
    grey = torch.full((1, 3, 16, 16), 0.3)
    rgb_response = conv(grey)
    adapt_input_channels(model, 10, "mean")
    flow_response = conv(torch.full((1, 10, 16, 16), 0.3))
    torch.testing.assert_close(flow_response, rgb_response * 10 / 3)


def test_adapted_model_runs_on_flow_and_keeps_gradients() -> None:
    model = adapt_input_channels(_eval("test_resnet").train(), 4, "mean")
    out = FeatureMapBackbone(model)(torch.randn(2, 4, 32, 32))
    out.sum().backward()
    assert model.conv1[0].weight.grad is not None


def test_adapt_input_channels_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="flow_init: expected one of"):
        adapt_input_channels(_eval("test_resnet"), 10, "zeros")
    with pytest.raises(ValueError, match="in_chans: expected a positive int"):
        adapt_input_channels(_eval("test_resnet"), 0)
    model = adapt_input_channels(_eval("test_resnet"), 4)
    with pytest.raises(ValueError, match=r"takes 4 channels.*3-channel RGB"):
        adapt_input_channels(model, 10)


def test_find_first_conv_falls_back_to_the_first_conv2d() -> None:
    net = nn.Sequential(nn.Identity(), nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    assert find_first_conv(net) == ("1", net[1])
    with pytest.raises(ValueError, match=r"no nn\.Conv2d"):
        find_first_conv(nn.Linear(3, 3))


def test_create_backbone_rejects_unknown_names_and_kwargs_on_modules() -> None:
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet_nonexistent'"):
        create_backbone("resnet_nonexistent")
    with pytest.raises(TypeError, match=r"timm model name or nn\.Module"):
        create_backbone(3)
    with pytest.raises(ValueError, match="only apply to a model name"):
        create_backbone(_eval("test_resnet"), pretrained=True)
