"""STA-CNN streams and the two-stream model: values, gradients, ablations, bad input."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import timm
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attnvideo.layers import GAPAuxLoss, TemporalSegmentAttention
from attnvideo.models import (
    STACNN,
    AverageConsensus,
    STACNNOutput,
    TwoStreamOutput,
    TwoStreamSTACNN,
    batch_norms,
    create_stacnn,
)

SWIN = dict(embed_dim=24, depths=(1, 1), num_heads=(1, 2), window_size=4)
# (timm name, timm kwargs to shrink it, frame size giving a feature map of at least 2x2)
ARCHS = [
    ("test_resnet", {}, 64),
    pytest.param("resnext26ts", {}, 64, marks=pytest.mark.slow),  # largest models
    ("regnetx_002", {}, 64),
    ("test_efficientnet", {}, 64),
    ("mobilenetv3_small_050", {}, 64),
    ("ghostnet_050", {}, 64),
    pytest.param("densenet121", {}, 64, marks=pytest.mark.slow),  # largest models
    pytest.param("inception_v3", {}, 107, marks=pytest.mark.slow),  # largest models
    ("test_byobnet", {}, 64),
    ("test_nfnet", {}, 64),
    ("test_convnext", {}, 64),
    ("test_mambaout", {}, 64),
    ("mobilevit_xxs", {}, 64),
    ("test_coatnet", {"img_size": 64}, 64),
    ("test_maxvit", {"img_size": 64}, 64),
    ("swin_tiny_patch4_window7_224", {**SWIN, "img_size": 32}, 32),
    ("test_vit", {}, 32),
    ("deit_tiny_distilled_patch16_224", {"depth": 1, "img_size": 32}, 32),
    ("eva02_tiny_patch14_224", {"depth": 1, "img_size": 28}, 28),
    ("levit_128s", {"img_size": 128}, 128),
]
NUM_CLASSES = 5


def _arch_id(arch) -> str:
    return arch.values[0] if hasattr(arch, "values") else arch[0]


def _videos(b: int, t: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, c, size, size, generator=torch.Generator().manual_seed(seed))


def _flow(b: int, t: int, size: int, seed: int = 1) -> torch.Tensor:
    """Flow with motion in one corner only, so the motion map is not constant."""
    flow = torch.zeros(b, t, 10, size, size)
    flow[..., : size // 2, : size // 2] = _videos(b, t, 10, size // 2, seed) * 5
    return flow


def _perturb_temporal_scorer(model: STACNN) -> None:
    """The scorer's last conv starts at zero (alpha = 1/T), which zeroes the first conv's
    gradient; a small random value lets every attention parameter show its gradient."""
    if isinstance(model.consensus, TemporalSegmentAttention):
        with torch.no_grad():
            model.consensus.fc2.weight.normal_(0, 0.1)


@pytest.mark.parametrize(("name", "kwargs", "size"), ARCHS, ids=[_arch_id(a) for a in ARCHS])
def test_any_timm_family_forward_backward(name: str, kwargs: dict, size: int) -> None:
    torch.manual_seed(0)
    model = create_stacnn(name, NUM_CLASSES, num_segments=2, **kwargs)
    _perturb_temporal_scorer(model)
    x, flow = _videos(2, 2, 3, size), _flow(2, 2, size)
    out = model(x, motion=flow, target=torch.tensor([0, 4]))
    h, w = out.feature_map.shape[-2:]
    assert h * w >= 4, "pick a frame size that gives a real spatial map"
    assert out.feature_map.shape[2] == model.backbone.model.num_features
    assert out.logits.shape == (2, NUM_CLASSES)
    assert out.spatial_attention.shape == (2, 2, 1, h, w)
    assert out.motion_map.shape == out.learned_map.shape == (2, 2, 1, h, w)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss, out.loss_cls + out.loss_aux)
    attention_parts = [model.spatial, model.aux, model.consensus, model.fc]
    for part in attention_parts:
        for pname, p in part.named_parameters():
            assert p.grad is not None, f"{type(part).__name__}.{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{pname}: non-finite gradient"
            if part is model.consensus and pname == "fc2.bias":
                continue  # softmax ignores a shared shift: this gradient is exactly 0
            assert p.grad.abs().sum() > 0, f"{type(part).__name__}.{pname}: zero gradient"
    backbone_grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in backbone_grads)
    assert model.first_conv().weight.grad is not None


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [
        ("test_resnet", {}, 64),
        ("test_vit", {}, 32),
        ("swin_tiny_patch4_window7_224", {**SWIN, "img_size": 32}, 32),
    ],
)
def test_flow_stream_takes_2l_channels(name: str, kwargs: dict, size: int) -> None:
    model = create_stacnn(name, NUM_CLASSES, modality="flow", num_segments=2, **kwargs)
    assert model.first_conv().in_channels == 10 and model.spatial is None and model.aux is None
    out = model(_flow(2, 2, size), target=torch.tensor([1, 2]))
    out.loss.backward()
    assert out.spatial_attention is None and torch.equal(out.loss, out.loss_cls)
    assert torch.isfinite(model.first_conv().weight.grad).all()


def test_tsn_baseline_is_the_average_of_per_segment_backbone_logits() -> None:
    """Reference by hand: timm's own classifier on each segment's frame, averaged over T."""
    torch.manual_seed(0)
    timm_model = timm.create_model("test_resnet", num_classes=NUM_CLASSES).eval()
    tsn = create_stacnn(
        copy.deepcopy(timm_model),
        NUM_CLASSES,
        num_segments=3,
        temporal_attention=False,
        spatial_attention=False,
    ).eval()
    with torch.no_grad():
        tsn.fc.weight.copy_(timm_model.get_classifier().weight)
        tsn.fc.bias.copy_(timm_model.get_classifier().bias)
    x = _videos(2, 3, 3, 64)
    per_segment = torch.stack([timm_model(x[:, t]) for t in range(3)], dim=1)
    out = tsn(x)
    torch.testing.assert_close(out.segment_logits, per_segment)
    torch.testing.assert_close(
        out.logits, (per_segment[:, 0] + per_segment[:, 1] + per_segment[:, 2]) / 3
    )
    assert torch.equal(out.temporal_weights, torch.full((2, 3), 1 / 3))
    assert out.spatial_attention is None and out.learned_map is None
    assert isinstance(tsn.consensus, AverageConsensus) and tsn.aux is None


def test_full_model_values_follow_the_method() -> None:
    """S-attended GAP -> fc per segment; at init the temporal weights are exactly 1/T."""
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=4).eval()
    x, flow, target = _videos(2, 4, 3, 64), _flow(2, 4, 64), torch.tensor([3, 1])
    out = model(x, motion=flow, target=target)
    fmap, s, m, a = out.feature_map, out.spatial_attention, out.motion_map, out.learned_map
    torch.testing.assert_close(s, m + a - m * a)
    pooled = (fmap * (1 + s)).mean(dim=(-2, -1))
    torch.testing.assert_close(out.segment_logits, pooled @ model.fc.weight.T + model.fc.bias)
    assert torch.equal(out.temporal_weights, torch.full((2, 4), 0.25))
    torch.testing.assert_close(out.logits, out.segment_logits.mean(dim=1))
    torch.testing.assert_close(out.loss_cls, F.cross_entropy(out.logits, target))
    aux = model.aux(fmap, target, region=a * (1 - m)).loss
    torch.testing.assert_close(out.loss_aux, aux)
    torch.testing.assert_close(out.loss, out.loss_cls + aux)
    assert model.aux.weight == 0.5


def test_temporal_attention_moves_away_from_the_average_and_pools_logits() -> None:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=3, spatial_attention=False)
    _perturb_temporal_scorer(model)
    out = model.eval()(_videos(2, 3, 3, 64))
    assert not torch.allclose(out.temporal_weights, torch.full((2, 3), 1 / 3))
    torch.testing.assert_close(out.temporal_weights.sum(dim=1), torch.ones(2))
    by_hand = (out.temporal_weights[..., None] * out.segment_logits).sum(dim=1)
    torch.testing.assert_close(out.logits, by_hand)


def test_aux_weight_zero_drops_the_aux_loss() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2, aux_weight=0).eval()
    out = model(_videos(2, 2, 3, 64), motion=_flow(2, 2, 64), target=torch.tensor([0, 1]))
    assert model.aux is None and float(out.loss_aux) == 0.0
    assert torch.equal(out.loss, out.loss_cls)


def test_motion_is_optional_and_guides_only_when_given() -> None:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2).eval()
    x = _videos(1, 2, 3, 64)
    plain = model(x)
    assert plain.motion_map is None
    torch.testing.assert_close(plain.spatial_attention, plain.learned_map)
    guided = model(x, motion=_flow(1, 2, 64))
    assert not torch.allclose(guided.logits, plain.logits)
    # only the moving corner is salient: top-left motion map > bottom-right
    assert (guided.motion_map[..., 0, 0] > guided.motion_map[..., -1, -1]).all()


def test_evaluation_takes_any_number_of_segments() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=3)
    model(_videos(1, 3, 3, 64), motion=_flow(1, 3, 64))  # training with T = 3
    out = model.eval()(_videos(2, 7, 3, 64), motion=_flow(2, 7, 64))
    assert out.temporal_weights.shape == (2, 7)


def test_output_is_a_dataclass_readable_by_key() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2).eval()
    out = model(_videos(1, 2, 3, 64), target=torch.tensor([2]))
    assert isinstance(out, STACNNOutput)
    for key in ("logits", "segment_logits", "temporal_weights", "spatial_attention",
                "motion_map", "learned_map", "loss", "loss_cls", "loss_aux"):  # fmt: skip
        assert key in out and out[key] is getattr(out, key)
    with pytest.raises(KeyError, match="no field 'logit'"):
        out["logit"]
    assert model(_videos(1, 2, 3, 64)).loss is None


def test_defaults_dropout_fc_init_and_data_config() -> None:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", 100, modality="two_stream", num_segments=2)
    assert model.rgb.drop.p == 0.8 and model.flow.drop.p == 0.7
    custom = create_stacnn("test_resnet", 100, dropout=0.5, num_segments=2)
    assert custom.drop.p == 0.5
    for stream in (model.rgb, model.flow):
        weight = stream.fc.weight.detach()
        assert torch.equal(stream.fc.bias, torch.zeros(100))
        assert 0.0008 < weight.std().item() < 0.0012 and weight.mean().abs().item() < 1e-4
    timm_cfg = timm.create_model("test_resnet").pretrained_cfg
    config = model.data_config
    assert config["mean"] == timm_cfg["mean"] and config["std"] == timm_cfg["std"]
    assert config["input_size"] == timm_cfg["input_size"]
    flow_config = model.flow.data_config
    assert flow_config["input_size"] == (10, *timm_cfg["input_size"][1:])
    assert flow_config["mean"] == (0.0,) * 10 and flow_config["std"] == (1.0,) * 10


# -- two streams ---------------------------------------------------------------------------


def test_two_stream_fuses_rgb_plus_1_5_flow_and_guides_rgb_with_the_flow() -> None:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, modality="two_stream", num_segments=2)
    model.eval()
    assert isinstance(model, TwoStreamSTACNN)
    rgb, flow, target = _videos(2, 2, 3, 64), _flow(2, 2, 64), torch.tensor([1, 0])
    out = model(rgb, flow, target=target)
    assert isinstance(out, TwoStreamOutput) and out["rgb"] is out.rgb
    torch.testing.assert_close(out.logits, out.rgb.logits + 1.5 * out.flow.logits)
    alone_rgb = model.rgb(rgb, motion=flow, target=target)
    alone_flow = model.flow(flow, target=target)
    torch.testing.assert_close(out.rgb.logits, alone_rgb.logits)
    torch.testing.assert_close(out.rgb.motion_map, alone_rgb.motion_map)
    torch.testing.assert_close(out.loss, alone_rgb.loss + alone_flow.loss)


def test_feature_guidance_uses_the_detached_flow_map() -> None:
    torch.manual_seed(0)
    model = create_stacnn(
        "test_resnet", NUM_CLASSES, modality="two_stream", guidance="features", num_segments=2
    )
    rgb, flow, target = _videos(2, 2, 3, 64), _flow(2, 2, 64), torch.tensor([1, 0])
    out = model.eval()(rgb, flow, target=target)
    expected = model.rgb(rgb, motion=out.flow.feature_map, target=target)
    torch.testing.assert_close(out.rgb.logits, expected.logits)
    out.rgb.loss.backward()  # the RGB loss must not reach the flow stream
    assert all(p.grad is None for p in model.flow.parameters())
    assert model.rgb.spatial.conv.weight.grad is not None


def test_streams_trained_alone_combine_with_custom_weights() -> None:
    torch.manual_seed(0)
    rgb_model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2).eval()
    flow_model = create_stacnn("test_resnet", NUM_CLASSES, modality="flow", num_segments=2).eval()
    both = TwoStreamSTACNN.from_streams(rgb_model, flow_model, fusion_weights=(1.0, 2.0))
    rgb, flow = _videos(2, 2, 3, 64), _flow(2, 2, 64)
    out = both(rgb, flow)
    expected = rgb_model(rgb, motion=flow).logits + 2.0 * flow_model(flow).logits
    torch.testing.assert_close(out.logits, expected)
    with pytest.raises(ValueError, match=r"rgb: expected a STACNN with modality='rgb'"):
        TwoStreamSTACNN.from_streams(flow_model, rgb_model)
    other = create_stacnn("test_resnet", 3, modality="flow", num_segments=2)
    with pytest.raises(ValueError, match="same num_classes"):
        TwoStreamSTACNN.from_streams(rgb_model, other)
    with pytest.raises(ValueError, match="built for guidance='flow'"):
        TwoStreamSTACNN.from_streams(rgb_model, flow_model, guidance="features")


def test_built_module_backbone_is_copied_for_the_flow_stream() -> None:
    module = timm.create_model("test_resnet")
    model = create_stacnn(module, NUM_CLASSES, modality="two_stream", num_segments=2)
    assert model.rgb.backbone.model is module and model.rgb.first_conv().in_channels == 3
    assert model.flow.first_conv().in_channels == 10


# -- chunked evaluation -------------------------------------------------------------------

STREAM_FIELDS = ("logits", "segment_logits", "temporal_weights", "feature_map",
                 "spatial_attention", "motion_map", "learned_map")  # fmt: skip
CHUNKED = [
    pytest.param(modality, temporal, guidance, id=f"{modality}-{'ta' if temporal else 'avg'}"
                 + ("-features" if guidance == "features" else ""))
    for modality, guidance in (("rgb", "flow"), ("flow", "flow"), ("two_stream", "flow"),
                               ("two_stream", "features"))
    for temporal in (True, False)
]  # fmt: skip


def _streams(model: STACNN | TwoStreamSTACNN) -> list[STACNN]:
    return [model.rgb, model.flow] if isinstance(model, TwoStreamSTACNN) else [model]


def _stream_outputs(out: STACNNOutput | TwoStreamOutput) -> list[STACNNOutput]:
    return [out.rgb, out.flow] if isinstance(out, TwoStreamOutput) else [out]


@pytest.mark.parametrize(("modality", "temporal", "guidance"), CHUNKED)
def test_chunked_evaluation_gives_the_logits_of_one_pass(
    modality: str, temporal: bool, guidance: str
) -> None:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=3, modality=modality,
                          temporal_attention=temporal, guidance=guidance).eval()  # fmt: skip
    batch_sizes: list[int] = []
    for stream in _streams(model):
        _perturb_temporal_scorer(stream)  # weights that differ from 1 / T
        stream.backbone.register_forward_pre_hook(lambda _, a: batch_sizes.append(len(a[0])))
    # 2 videos x 2 crops folded into B, T = 5 test segments: 20 frames; chunks of 3 and 7
    # cut through videos, 20 and 64 are one pass
    b, t = 4, 5
    rgb, flow, target = _videos(b, t, 3, 64), _flow(b, t, 64), torch.tensor([0, 1, 2, 3])
    if modality == "rgb":
        inputs = {"x": rgb, "motion": flow}
    elif modality == "flow":
        inputs = {"x": flow}
    else:
        inputs = {"rgb": rgb, "flow": flow}
    with torch.inference_mode():
        whole = model(**inputs, target=target)
        for chunk in (1, 3, 7, 20, 64):
            batch_sizes.clear()
            got = model(**inputs, target=target, chunk_frames=chunk)
            assert batch_sizes and max(batch_sizes) == min(chunk, b * t)
            assert sum(batch_sizes) == b * t * len(_streams(model))
            torch.testing.assert_close(got.logits, whole.logits)
            torch.testing.assert_close(got.loss, whole.loss)
            for out, ref in zip(_stream_outputs(got), _stream_outputs(whole), strict=True):
                for field in STREAM_FIELDS:
                    if ref[field] is None:
                        assert out[field] is None, field
                    else:
                        torch.testing.assert_close(out[field], ref[field], msg=field)
    if temporal:  # weights other than 1 / T: a wrong segment order would show
        for out in _stream_outputs(whole):
            assert not torch.allclose(out.temporal_weights, torch.full((b, t), 1 / t))


def test_chunked_evaluation_rejects_bad_chunks_and_training_mode() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2)
    x = _x()
    with pytest.raises(ValueError, match=r"chunk_frames: expected None in training mode"):
        model.train()(x, chunk_frames=2)
    model.eval()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"chunk_frames: expected a positive int"):
            model(x, chunk_frames=bad)


# -- partial BN and parameter groups ------------------------------------------------------


def test_partial_bn_freezes_every_backbone_bn_but_the_first() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2, partial_bn=True).train()
    bns = batch_norms(model.backbone)
    assert len(bns) > 2
    first, rest = bns[0], bns[1:]
    assert first.training and first.weight.requires_grad
    assert all(not bn.training and not bn.weight.requires_grad for bn in rest)
    assert model.spatial.norm.training  # the new attention layer's BN still trains
    before = [bn.running_mean.clone() for bn in bns]
    model.eval().train()  # train() must keep honouring partial BN
    model(_videos(2, 2, 3, 64) * 3 + 1, motion=_flow(2, 2, 64))
    assert not torch.equal(first.running_mean, before[0])
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(rest, before[1:], strict=True))
    trainable = {id(p) for g in model.param_groups(0.1, 1e-4) for p in g["params"]}
    assert all(id(bn.weight) not in trainable for bn in rest)
    assert id(first.weight) in trainable


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_param_groups_split_decay_and_scale_the_first_conv(modality: str) -> None:
    model = create_stacnn("test_vit", NUM_CLASSES, modality=modality, num_segments=2)
    groups = model.param_groups(lr=0.01, weight_decay=5e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(ids) == sorted(id(p) for p in trainable)  # each exactly once
    by_name = {g["name"]: g for g in groups}
    mult = 5.0 if modality == "flow" else 1.0
    first = model.first_conv()
    assert by_name["first_conv"]["params"] == [first.weight]
    assert by_name["first_conv"]["lr"] == pytest.approx(0.01 * mult)
    assert by_name["first_conv_no_decay"]["params"] == [first.bias]
    no_decay = {id(p) for p in by_name["no_decay"]["params"]}
    vit = model.backbone.model
    for p in (vit.pos_embed, vit.cls_token, vit.norm.weight, model.fc.bias):
        assert id(p) in no_decay
    assert by_name["no_decay"]["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in by_name["decay"]["params"])
    assert id(model.fc.weight) in {id(p) for p in by_name["decay"]["params"]}
    custom = {g["name"]: g for g in model.param_groups(0.01, 0.0, first_conv_lr_mult=3.0)}
    assert custom["first_conv"]["lr"] == pytest.approx(0.03)
    torch.optim.SGD(groups, lr=0.01, momentum=0.9)  # accepted as they are


def test_two_stream_param_groups_cover_both_streams() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, modality="two_stream", num_segments=2)
    groups = model.param_groups(0.001, 5e-4)
    names = {g["name"]: g for g in groups}
    assert names["flow.first_conv"]["lr"] == pytest.approx(0.005)
    assert names["rgb.first_conv"]["lr"] == pytest.approx(0.001)
    ids = sorted(id(p) for g in groups for p in g["params"])
    assert ids == sorted(id(p) for p in model.parameters() if p.requires_grad)


# -- bad input -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rgb_model() -> STACNN:
    return create_stacnn("test_resnet", NUM_CLASSES, num_segments=2)


def _x(t: int = 2, c: int = 3, size: int = 64, b: int = 2) -> torch.Tensor:
    return _videos(b, t, c, size)


BAD_STREAM_INPUT = {
    "4d": ((_x()[:, 0],), ValueError, r"x: expected a 5D \(B, T, C, H, W\)"),
    "rgb-channels": ((_x(c=10),), ValueError, r"rgb stream takes .* C = 3 .*\(2, 2, 10"),
    "train-T": ((_x(t=3),), ValueError, r"T = num_segments = 2 .*\(2, 3, 3, 64, 64\)"),
    "int": ((_x().long(),), TypeError, r"x: expected a floating-point tensor of shape \(B, T"),
    "motion-B": ((_x(), _flow(1, 2, 64)), ValueError, r"motion: .*\(B, T\) = \(2, 2\)"),
    "motion-T": ((_x(), _flow(2, 3, 64)), ValueError, r"motion: .*got shape \(2, 3"),
    "target-B": ((_x(), None, torch.tensor([0])), ValueError, r"target: expected shape"),
    "target-class": ((_x(), None, torch.tensor([0, 9])), ValueError, r"target: .*\[0, 5\)"),
    "target-float": ((_x(), None, torch.tensor([0.0, 1.0])), TypeError, r"target: .*integer"),
    "motion-empty": ((_x(), _flow(2, 2, 64)[:, :, :0]), ValueError, r"motion: .*non-empty"),
}


def test_int32_target_gives_the_int64_loss() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2).eval()
    x, target = _x(), torch.tensor([1, 3])
    want = model(x, target=target)
    got = model(x, target=target.int())
    torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0)


@pytest.mark.parametrize("case", BAD_STREAM_INPUT)
def test_bad_stream_input_gets_a_clear_error(rgb_model: STACNN, case: str) -> None:
    args, error, match = BAD_STREAM_INPUT[case]
    with pytest.raises(error, match=match):
        rgb_model(*args)


def test_frame_too_small_for_the_backbone_gets_a_clear_error() -> None:
    model = create_stacnn("test_convnext", NUM_CLASSES, num_segments=2)
    with pytest.raises(ValueError, match=r"3x3 .* too small for backbone 'test_convnext'"):
        model(_x(size=3))


def test_bad_two_stream_input_gets_a_clear_error() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, modality="two_stream", num_segments=2)
    rgb = _videos(2, 2, 3, 64)
    with pytest.raises(ValueError, match=r"flow: .*\(B, T\) = \(2, 2\) .*got shape \(1, 2"):
        model(rgb, _flow(1, 2, 64))
    with pytest.raises(ValueError, match=r"flow: .*got shape \(2, 3"):
        model(rgb, _flow(2, 3, 64))
    with pytest.raises(ValueError, match=r"flow stream takes .* C = 2L = 2 \* 5 = 10"):
        model(rgb, _videos(2, 2, 3, 64))
    with pytest.raises(ValueError, match=r"rgb stream takes"):
        model(_flow(2, 2, 64), _flow(2, 2, 64))


def test_bad_constructor_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="modality: expected 'rgb', 'flow' or 'two_stream'"):
        create_stacnn("test_resnet", 5, modality="depth")
    with pytest.raises(ValueError, match="guidance: expected one of"):
        create_stacnn("test_resnet", 5, guidance="optical")
    with pytest.raises(ValueError, match="flow_init: expected one of"):
        create_stacnn("test_resnet", 5, modality="flow", flow_init="zeros")
    with pytest.raises(ValueError, match="dropout: expected a probability"):
        create_stacnn("test_resnet", 5, dropout=1.0)
    with pytest.raises(ValueError, match="num_classes: expected a positive int"):
        create_stacnn("test_resnet", 0)
    with pytest.raises(ValueError, match="an RGB stream needs a 3-channel"):
        STACNN(timm.create_model("test_resnet", in_chans=2), 5)


# -- compile / export / offline ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size"), [("test_resnet", 64), ("test_vit", 32)])
def test_compile_fullgraph_and_export_match_eager(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = create_stacnn(name, NUM_CLASSES, num_segments=2)
    _perturb_temporal_scorer(model)
    x, flow, target = _videos(2, 2, 3, size), _flow(2, 2, size), torch.tensor([1, 3])
    model.eval()
    eager = model(x, motion=flow)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")(x, motion=flow)
    torch.testing.assert_close(compiled.logits, eager.logits)
    torch.testing.assert_close(compiled.spatial_attention, eager.spatial_attention)
    exported = torch.export.export(model, (x,), kwargs={"motion": flow}).module()(x, motion=flow)
    assert isinstance(exported, STACNNOutput)
    torch.testing.assert_close(exported.logits, eager.logits)
    torch.testing.assert_close(exported.temporal_weights, eager.temporal_weights)
    # training step, compiled: same loss as eager (dropout off to compare)
    model.train()
    model.drop.p = 0.0
    loss_eager = model(x, motion=flow, target=target).loss
    out = torch.compile(model, fullgraph=True, backend="aot_eager")(x, motion=flow, target=target)
    torch.testing.assert_close(out.loss, loss_eager)
    out.loss.backward()
    assert model.spatial.proj.weight.grad is not None


@pytest.mark.slow
def test_pretrained_offline_fails_with_a_clear_message(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "TORCH_HOME": str(tmp_path / "torch"), "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    code = (
        "from attnvideo.models import create_stacnn\n"
        "try:\n"
        "    create_stacnn('test_resnet', 5, pretrained=True)\n"
        "except RuntimeError as err:\n"
        "    print('MESSAGE', err)\n"
        "else:\n"
        "    print('LOADED')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "MESSAGE" in run.stdout, run.stdout + run.stderr
    assert "'test_resnet'" in run.stdout and "pretrained=False" in run.stdout
    assert "HF_HUB_OFFLINE" in run.stdout


def test_gap_aux_and_layers_are_the_library_layers() -> None:
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2)
    assert isinstance(model.aux, GAPAuxLoss)
    assert isinstance(model.consensus, TemporalSegmentAttention)
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 96


def test_bfloat16_autocast_and_channels_last_frames() -> None:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2)
    model = model.to(memory_format=torch.channels_last)
    frames = _videos(4, 1, 3, 64)[:, 0].contiguous(memory_format=torch.channels_last)
    x = frames.view(2, 2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, motion=_flow(2, 2, 64), target=torch.tensor([0, 1]))
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    out.loss.backward()
    assert torch.isfinite(model.spatial.proj.weight.grad).all()
    model.eval()
    with torch.no_grad():
        plain = model(x.contiguous(), motion=_flow(2, 2, 64)).logits
        cl = model(x, motion=_flow(2, 2, 64)).logits
    torch.testing.assert_close(cl, plain, rtol=1e-4, atol=1e-5)


def test_swin_relative_position_tables_get_no_weight_decay() -> None:
    model = create_stacnn("swin_tiny_patch4_window7_224", NUM_CLASSES, num_segments=2,
                          **SWIN, img_size=32)  # fmt: skip
    no_decay = {id(p) for g in model.param_groups(0.1, 1e-4) if g["weight_decay"] == 0
                for p in g["params"]}  # fmt: skip
    tables = [p for n, p in model.named_parameters() if "relative_position_bias_table" in n]
    assert tables and all(id(p) in no_decay for p in tables)


@pytest.fixture(scope="module")
def small_stacnn() -> STACNN:
    torch.manual_seed(0)
    model = create_stacnn("test_resnet", NUM_CLASSES, num_segments=2)
    _perturb_temporal_scorer(model)
    return model.eval()


@pytest.mark.slow
@settings(max_examples=10)  # each example runs a backbone twice
@given(batch=st.integers(1, 3), segments=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_logits_are_the_weighted_segment_logits_for_any_b_and_t(
    small_stacnn: STACNN, batch: int, segments: int, seed: int
) -> None:
    x = _videos(batch, segments, 3, 32, seed=seed)
    out = small_stacnn(x, motion=_flow(batch, segments, 32, seed=seed + 1))
    weights = out.temporal_weights
    assert weights.shape == (batch, segments) and bool((weights >= 0).all())
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))
    torch.testing.assert_close(out.logits, torch.einsum("bt,btk->bk", weights, out.segment_logits))
    # each video is classified on its own: the first video alone gives the same logits
    alone = small_stacnn(x[:1], motion=_flow(batch, segments, 32, seed=seed + 1)[:1])
    torch.testing.assert_close(alone.logits, out.logits[:1], rtol=1e-4, atol=1e-5)
