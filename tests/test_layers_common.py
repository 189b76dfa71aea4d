"""Contracts shared by the three layers: compile, export, state_dict, determinism, dtypes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from attnvideo.layers import FlowGuidedSpatialAttention, GAPAuxLoss, TemporalSegmentAttention


def _temporal(seed: int = 0) -> TemporalSegmentAttention:
    torch.manual_seed(seed)
    attn = TemporalSegmentAttention(8)
    nn.init.normal_(attn.fc2.weight)  # move away from the uniform init so weights vary
    return attn


def _spatial(seed: int = 0, **kwargs) -> FlowGuidedSpatialAttention:
    torch.manual_seed(seed)
    return FlowGuidedSpatialAttention(8, hidden_channels=4, **kwargs)


def _gap(seed: int = 0) -> GAPAuxLoss:
    torch.manual_seed(seed)
    return GAPAuxLoss(8, 5, dropout=0.2)


def _inputs(name: str, dtype: torch.dtype = torch.float32) -> tuple:
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g).to(dtype)  # noqa: E731
    if name == "temporal":
        return r(2, 5, 8), r(2, 5, 6), torch.tensor([[True] * 5, [True, False, True, True, False]])
    if name == "spatial_flow_5d":
        return r(2, 3, 8, 5, 5), r(2, 3, 4, 20, 20) * 4
    if name == "spatial_comp_4d":
        return r(6, 8, 5, 5), r(6, 2, 9, 9) + 3
    if name == "spatial_features":
        return r(6, 8, 5, 5), r(6, 16, 10, 10)
    if name == "spatial_none":
        return (r(6, 8, 5, 5),)
    if name == "gap":
        region = torch.rand(2, 3, 1, 5, 5, generator=g).to(dtype)
        return r(2, 3, 8, 5, 5), torch.tensor([1, 4]), None, region
    raise AssertionError(name)


FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    "temporal": _temporal,
    "spatial_flow_5d": _spatial,
    "spatial_comp_4d": lambda seed=0: _spatial(seed, camera_compensation=True),
    "spatial_features": lambda seed=0: _spatial(seed, motion="features"),
    "spatial_none": _spatial,
    "gap": _gap,
}
NAMES = list(FACTORIES)


def _tensors(out) -> list[torch.Tensor]:
    return [t for t in out if t is not None]


def _loss(out) -> torch.Tensor:
    return sum((t.float() * (i + 1)).sum() for i, t in enumerate(_tensors(out)))


def _float_leaves(args: tuple, name: str = "") -> tuple:
    """Fresh leaves requiring grad; raw flow (data, never differentiated) stays a constant."""
    no_grad = {1} if name in ("spatial_flow_5d", "spatial_comp_4d") else set()
    return tuple(
        a.detach().clone().requires_grad_(i not in no_grad)
        if torch.is_tensor(a) and a.is_floating_point()
        else a
        for i, a in enumerate(args)
    )


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    module = FACTORIES[name]().train()
    args = _float_leaves(_inputs(name), name)
    _loss(module(*args)).backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
        assert torch.isfinite(p.grad).all(), pname
    for a in args:
        if torch.is_tensor(a) and a.requires_grad:
            assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_state_dict_round_trips(name):
    module, twin = FACTORIES[name](0).eval(), FACTORIES[name](1).eval()
    args = _inputs(name)
    first, second = module(*args), module(*args)
    for a, b in zip(_tensors(first), _tensors(second), strict=True):
        assert torch.equal(a, b)
    before = _tensors(twin(*args))
    assert any(not torch.equal(a, b) for a, b in zip(before, _tensors(first), strict=True))
    twin.load_state_dict(module.state_dict())
    for a, b in zip(_tensors(twin(*args)), _tensors(first), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_compile_fullgraph_matches_eager(name):
    torch._dynamo.reset()
    module = FACTORIES[name]().eval()
    args = _inputs(name)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    for a, b in zip(_tensors(compiled(*args)), _tensors(module(*args)), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["temporal", "spatial_flow_5d", "gap"])
def test_compile_fullgraph_backward_matches_eager(name):
    torch._dynamo.reset()
    module = FACTORIES[name]().train()
    if name == "gap":
        module.drop = nn.Identity()  # dropout masks differ between eager and compiled
    args = _float_leaves(_inputs(name))
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    grads_c = torch.autograd.grad(_loss(compiled(*args)), list(module.parameters()))
    grads_e = torch.autograd.grad(_loss(module(*args)), list(module.parameters()))
    for a, b in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_inductor_compile_of_the_full_attention_path():
    """One real inductor build (C++ codegen on CPU): spatial attention + aux loss + TA."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    spatial, aux, temporal = _spatial(), _gap(), _temporal()
    aux.drop = nn.Identity()

    def step(x, flow, target):
        out = spatial(x, flow)
        region = out.learned_map * (1 - out.motion_map)
        loss = aux(x, target, region=region).loss
        pooled = temporal(out.features.mean(dim=(-2, -1))).pooled
        return loss + pooled.square().mean(), out.attention

    x, flow = _inputs("spatial_flow_5d")
    target = torch.tensor([0, 3])
    params = [*spatial.parameters(), *aux.parameters(), *temporal.parameters()]
    compiled = torch.compile(step, fullgraph=True)
    loss_c, att_c = compiled(x, flow, target)
    loss_e, att_e = step(x, flow, target)
    torch.testing.assert_close(loss_c, loss_e)
    torch.testing.assert_close(att_c, att_e)
    grads_c = torch.autograd.grad(loss_c, params)
    grads_e = torch.autograd.grad(loss_e, params)
    for a, b in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_torch_export(name):
    module = FACTORIES[name]().eval()
    args = _inputs(name)
    program = torch.export.export(module, args)
    for a, b in zip(_tensors(program.module()(*args)), _tensors(module(*args)), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "temporal"])
def test_channels_last_input(name):
    module = FACTORIES[name]().eval()
    args = _inputs(name)
    x = args[0]
    fmt = torch.channels_last if x.ndim == 4 else torch.channels_last_3d
    x_cl = x.contiguous(memory_format=fmt)
    assert not x_cl.is_contiguous()
    out_cl, out = module(x_cl, *args[1:]), module(*args)
    for a, b in zip(_tensors(out_cl), _tensors(out), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_cpu_bfloat16_autocast_forward_backward(name):
    module = FACTORIES[name]().train()
    if name == "gap":
        module.drop = nn.Identity()
    args = _float_leaves(_inputs(name))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(*args)
    reference = module(*_inputs(name))
    for a, b in zip(_tensors(out), _tensors(reference), strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a.float(), b, rtol=0.1, atol=0.1)
    if name.startswith("spatial"):
        for m in _tensors(out)[1:]:
            assert ((m >= 0) & (m <= 1)).all()
    _loss(out).backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_parameters_and_inputs(name):
    module = FACTORIES[name]().eval()
    out32 = module(*_inputs(name))
    out16 = module.to(torch.bfloat16)(*_inputs(name, torch.bfloat16))
    for a, b in zip(_tensors(out16), _tensors(out32), strict=True):
        torch.testing.assert_close(a.float(), b, rtol=0.1, atol=0.1)


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from 2 threads, and on a busy machine OpenMP's spin-waits
    make gradcheck's thousands of small forward passes up to 40x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "name", ["temporal", "spatial_flow_5d", "spatial_comp_4d", "spatial_features", "gap"]
)
def test_module_gradcheck_float64(name, one_thread):
    module = FACTORIES[name]().double().eval()
    if name == "gap":
        module.drop = nn.Identity()
    args = _inputs(name, torch.float64)
    if name == "temporal":
        args = (args[0][:1, :3], args[1][:1, :3, :2], None)
    elif name == "gap":
        args = (args[0][:1, :2, :, :2, :2], args[1][:1], None, args[3][:1, :2, :, :2, :2])
    else:
        x, motion = (a[:1, :2] if a.ndim == 5 else a[:2] for a in args)  # 2 snippets
        motion = motion[..., :4, :4, :4] if name == "spatial_features" else motion[..., :6, :6]
        args = (x[..., :3, :3], motion)
    leaves = _float_leaves(args, name)
    positions = [i for i, a in enumerate(leaves) if torch.is_tensor(a) and a.requires_grad]

    def fn(*tensors):
        full = list(leaves)
        for i, t in zip(positions, tensors, strict=True):
            full[i] = t
        return tuple(_tensors(module(*full)))

    assert torch.autograd.gradcheck(fn, [leaves[i] for i in positions], eps=1e-6, atol=1e-5)
