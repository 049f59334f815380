"""metric, volume_element, pseudo_volume_element, effective_volume, plane_metric, jacobian."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netatlas
from netatlas import metric as lens


def _as_torch(fn):
    """The lens returns NumPy arrays (as every lens does); the references in this file are float64 torch
    tensors, so its results are compared as tensors."""
    def call(*args, **kwargs):
        out = fn(*args, **kwargs)
        return torch.from_numpy(out) if isinstance(out, np.ndarray) else out

    return call


effective_volume, jacobian, metric, plane_metric, pseudo_volume_element, volume_element = map(_as_torch, (
    lens.effective_volume, lens.jacobian, lens.metric, lens.plane_metric, lens.pseudo_volume_element,
    lens.volume_element))


def _reference_jacobian(fn, x):
    """The per-point autograd.functional.jacobian loop (slow, float64)."""
    return torch.stack([torch.autograd.functional.jacobian(lambda p: fn(p[None])[0], p) for p in x])


def _shallow(width=16, d=2, act="sigmoid", seed=0):
    return netatlas.nets.mlp([d, width, 1], act, seed=seed)


def _features64(model, upto):
    """Float64 copy of model[:upto] as a plain callable."""
    layers = [m for m in model[:upto]]
    sub = nn.Sequential(*layers)
    state = {k: v.detach().double() for k, v in sub.state_dict().items()}

    def fn(x):
        return torch.func.functional_call(sub, state, (x,))

    return fn


def test_all_exported():
    for name in netatlas.metric.__all__:
        assert hasattr(netatlas.metric, name)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "gelu"])
def test_shallow_closed_form_matches_autograd(act):
    model = _shallow(12, 3, act)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fn = _features64(model, 2)
    J_ref = _reference_jacobian(fn, x) / math.sqrt(12)
    J = jacobian((model, "1"), x)
    assert J.dtype == torch.float64
    torch.testing.assert_close(J, J_ref, rtol=1e-10, atol=1e-12)
    g = metric((model, "1"), x)
    torch.testing.assert_close(g, J_ref.mT @ J_ref, rtol=1e-10, atol=1e-12)
    # the autodiff path (plain callable) agrees with the closed form
    g_auto = metric(lambda x: fn(x) / math.sqrt(12), x)
    torch.testing.assert_close(g, g_auto, rtol=1e-10, atol=1e-12)


def test_shallow_large_d_uses_einsum_branch():
    model = _shallow(40, 700, "tanh")
    x = torch.randn(3, 700, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.1
    fn = _features64(model, 2)
    g = metric((model, "1"), x, scale_by_width=False)
    J = torch.func.vmap(torch.func.jacrev(lambda p: fn(p[None])[0]))(x)
    torch.testing.assert_close(g, J.mT @ J, rtol=1e-10, atol=1e-12)


def test_modes_agree_deep_net_and_reference():
    model = netatlas.nets.mlp([3, 8, 8, 8, 5], "tanh", seed=3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = _reference_jacobian(_features64(model, len(model)), x)
    for mode in ("forward", "reverse", "auto"):
        torch.testing.assert_close(jacobian(model, x, mode=mode), ref, rtol=1e-10, atol=1e-12)
    # the whole model as a Net gives the same
    net = netatlas.nets.from_torch(model)
    torch.testing.assert_close(metric(net, x), ref.mT @ ref, rtol=1e-10, atol=1e-12)


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc1 = nn.Linear(2, 10)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(10, 4)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.randn(10, 2, generator=g))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) ** 2


def test_custom_module_and_layer_hooks():
    model = _Custom()
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    W, b = model.fc1.weight.detach().double(), model.fc1.bias.detach().double()

    def hidden(p):
        return torch.tanh(p @ W.T + b)

    ref = _reference_jacobian(hidden, x.double())
    torch.testing.assert_close(jacobian((model, "act"), x), ref / math.sqrt(10), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jacobian((model, "act"), x, scale_by_width=False), ref, rtol=1e-10, atol=1e-12)
    # whole custom module, float64 through functional_call; the model stays float32 and untouched
    full = _reference_jacobian(
        lambda p: (model.fc2.weight.double() @ hidden(p).T).T.add(model.fc2.bias.double()) ** 2, x.double()
    )
    torch.testing.assert_close(jacobian(model, x), full, rtol=1e-9, atol=1e-11)
    assert model.fc1.weight.dtype == torch.float32


def test_net_layer_by_index_and_name():
    model = _shallow(6)
    net = netatlas.nets.from_torch(model)
    x = torch.rand(4, 2, dtype=torch.float64)
    torch.testing.assert_close(metric((net, "1"), x), metric((model, "1"), x))
    torch.testing.assert_close(metric((net, 2), x), metric((model, "1"), x))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        metric((net, "nope"), x)


def test_volume_element_vs_eigvalsh_reference():
    model = _shallow(30, 5, "tanh", seed=4)
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    g = metric((model, "1"), x).numpy()
    ref = np.array([0.5 * np.log(np.linalg.eigvalsh(gi)).sum() for gi in g])
    torch.testing.assert_close(volume_element((model, "1"), x).numpy(), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        volume_element((model, "1"), x, log=False).numpy(), np.exp(ref), rtol=1e-10, atol=0
    )
    # autodiff path (deep net) too
    deep = netatlas.nets.mlp([5, 9, 9, 7], "tanh", seed=1)
    g = metric(deep, x).numpy()
    ref = np.array([0.5 * np.log(np.linalg.eigvalsh(gi)).sum() for gi in g])
    torch.testing.assert_close(volume_element(deep, x).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_volume_element_2d_closed_form_det():
    # features (x, y, x*y): g = [[1 + y^2, x y], [x y, 1 + x^2]], det = 1 + x^2 + y^2
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64)
    vol = volume_element(lambda p: torch.stack([p[:, 0], p[:, 1], p[:, 0] * p[:, 1]], 1), x, log=False)
    torch.testing.assert_close(vol, torch.sqrt(1 + (x**2).sum(1)))


def test_rank_deficient_and_pseudo_determinant():
    model = netatlas.nets.mlp([6, 3, 2], "tanh", seed=0)  # hidden layer m = 3 < d = 6
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.warns(UserWarning, match="m=3 < d=6"):
        vol = volume_element((model, "1"), x)
    assert torch.isneginf(vol).all()
    g = metric((model, "1"), x).numpy()
    ev = [np.linalg.eigvalsh(gi) for gi in g]
    ref = np.array([0.5 * np.log(e[e > 1e-12 * e.max()]).sum() for e in ev])
    assert all((e > 1e-12 * e.max()).sum() == 3 for e in ev)
    pv = pseudo_volume_element((model, "1"), x)
    torch.testing.assert_close(pv.numpy(), ref, rtol=1e-9, atol=1e-9)
    # effective volume with all singular values = log10 of the pseudo volume element (features already scaled)
    ev_all = effective_volume((model, "1"), x)
    torch.testing.assert_close(ev_all, pv / math.log(10), rtol=1e-9, atol=1e-9)
    # top-k against numpy's SVD of J / sqrt(m) with an unscaled feature map
    fn = _features64(model, 2)
    J = _reference_jacobian(fn, x).numpy() / math.sqrt(3)
    sv = np.linalg.svd(J, compute_uv=False)
    for k in (1, 2, 3):
        torch.testing.assert_close(
            effective_volume(fn, x, k=k).numpy(), np.log10(sv[:, :k]).sum(1), rtol=1e-9, atol=1e-9
        )
    with pytest.raises(ValueError, match="k must be a positive integer"):
        effective_volume(fn, x, k=0)


def test_effective_volume_full_rank_case_uses_metric():
    model = _shallow(20, 4, "sigmoid")  # m = 20 > d = 4
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(
        effective_volume((model, "1"), x), volume_element((model, "1"), x) / math.log(10)
    )
    torch.testing.assert_close(pseudo_volume_element((model, "1"), x), volume_element((model, "1"), x))


@pytest.mark.parametrize("upto", [2, 4])
def test_plane_metric_is_restricted_metric(upto):
    model = netatlas.nets.mlp([3, 10, 10, 2], "tanh", seed=2)
    plane = netatlas.Plane([0.1, 0.2, -0.3], [1.0, 0.5, 0.0], [0.0, -1.0, 2.0], (-1, 1, -2, 2))
    feature = (model, str(upto - 1))
    pm = plane_metric(feature, plane, 5)
    assert pm.shape == (5, 5, 2, 2)
    us, vs = plane.grid(5)
    x = torch.from_numpy(plane.to_input(np.stack([us.ravel(), vs.ravel()], 1)))
    U = torch.from_numpy(plane.basis)
    torch.testing.assert_close(pm.reshape(-1, 2, 2), U.T @ metric(feature, x) @ U, rtol=1e-10, atol=1e-12)
    pts = plane_metric(feature, plane, np.array([[0.0, 0.0], [0.5, -1.0]]))
    assert pts.shape == (2, 2, 2)


def test_validation_messages():
    model = _shallow(4)
    with pytest.raises(ValueError, match="mode must be one of"):
        metric(model, torch.zeros(1, 2), mode="sideways")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        metric(model, [[0.0, 0.0]])
    net = netatlas.nets.from_torch(model)
    with pytest.raises(ValueError, match="inputs have shape"):
        metric(net, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="single input"):
        metric(net, torch.zeros(2))
    with pytest.raises(ValueError, match="has no submodule 'bogus'"):
        metric((_Custom(), "bogus"), torch.zeros(1, 2))
    bn = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="training mode"):
        metric(bn, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="net must be a torch module"):
        metric(3.0, torch.zeros(1, 2))
    with pytest.raises(TypeError, match="plane must be a netatlas.Plane"):
        plane_metric(model, "plane")


@settings(max_examples=15, deadline=None)
@given(d=st.integers(1, 5), m=st.integers(1, 6), seed=st.integers(0, 1000))
def test_metric_symmetric_psd_low_rank(d, m, seed):
    model = netatlas.nets.mlp([d, 7, m], "tanh", seed=seed)
    x = torch.randn(4, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g = metric(model, x)
    torch.testing.assert_close(g, g.mT)
    ev = torch.linalg.eigvalsh(g)
    assert (ev > -1e-12 * ev.abs().max().clamp_min(1)).all()
    assert int(torch.linalg.matrix_rank(g, rtol=1e-9).max()) <= min(m, d)


def test_chunking_does_not_change_values():
    model = _Custom().eval()
    x = torch.randn(11, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for feature in ((model, "act"), model, netatlas.nets.mlp([2, 5, 5, 3], "tanh", seed=0)):
        whole = jacobian(feature, x)
        torch.testing.assert_close(jacobian(feature, x, chunk_size=3), whole, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(volume_element(feature, x, chunk_size=4), volume_element(feature, x))


class _SSL(nn.Module):
    """An encoder + projector head whose forward returns (representation, projection), as SSL code does."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 16), nn.GELU(), nn.Linear(16, 8))
        self.projector = nn.Sequential(nn.Linear(8, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 5))

    def forward(self, x):
        h = self.encoder(x)
        return h, self.projector(h)


def test_encoder_with_projector_head():
    model = _SSL()
    bn = model.projector[1]
    with torch.no_grad():  # non-trivial running statistics, then eval mode
        bn.running_mean.copy_(torch.linspace(-1, 1, 12))
        bn.running_var.copy_(torch.linspace(0.5, 2, 12))
    model.eval()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = {k: v.double() for k, v in model.state_dict().items()}

    def projection(p):
        return torch.func.functional_call(model, state, (p,))[1]

    ref = _reference_jacobian(projection, x)
    torch.testing.assert_close(jacobian((model, "projector"), x), ref / math.sqrt(5), rtol=1e-10, atol=1e-12)
    W, b = state["encoder.0.weight"], state["encoder.0.bias"]
    hidden = _reference_jacobian(lambda p: torch.nn.functional.gelu(p @ W.T + b), x)
    torch.testing.assert_close(
        jacobian((model, "encoder.1"), x, scale_by_width=False), hidden, rtol=1e-10, atol=1e-12
    )
    with pytest.raises(TypeError, match="are a tuple, not a tensor"):
        metric(model, x)
    model.train()
    with pytest.raises(ValueError, match="BatchNorm1d at 'projector.1' is in training mode"):
        metric((model, "projector"), x)
