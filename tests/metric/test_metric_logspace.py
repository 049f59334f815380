"""Log-space volumes (netatlas.metric._logvol): saturated nets against closed forms and mpmath references.

Tolerances: log |phi'| is accurate to a few ulps of |log phi'| (<= 1e-13 relative here); a log-volume sums
min(m, d) such terms plus a log-determinant of a well-conditioned weight product, so 1e-9 nats is ~1e4 times
the round-off of these small cases, and far below the 1e-6 decades the issue asks for.
"""

import math
import warnings

import mpmath
import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas import metric as lens
from netatlas.metric._logvol import log_derivative
from netatlas.nets import Activation


def _as_torch(fn):
    """The lens returns NumPy arrays (as every lens does); the references in this file are float64 torch
    tensors, so its results are compared as tensors."""
    def call(*args, **kwargs):
        out = fn(*args, **kwargs)
        return torch.from_numpy(out) if isinstance(out, np.ndarray) else out

    return call


effective_volume, jacobian, pseudo_volume_element, volume_element, log_abs_derivative = map(_as_torch, (
    lens.effective_volume, lens.jacobian, lens.pseudo_volume_element, lens.volume_element,
    lens.log_abs_derivative))

LN10 = math.log(10)
TOL = 1e-9  # nats, see the module docstring


# -- high-precision references -----------------------------------------------------------------------
def _mp_activation(name, z):
    z = mpmath.mpf(z)
    c = mpmath.sqrt(2 / mpmath.pi)
    match name:
        case "sigmoid":
            return 1 / (1 + mpmath.exp(-z))
        case "tanh":
            return mpmath.tanh(z)
        case "erf":
            return mpmath.erf(z)
        case "softplus":
            return mpmath.log(1 + mpmath.exp(z))
        case "elu":
            return z if z > 0 else mpmath.exp(z) - 1
        case "gelu":
            return z * mpmath.ncdf(z)
        case "gelu_tanh":
            return z / (1 + mpmath.exp(-2 * c * (z + mpmath.mpf("0.044715") * z**3)))
    raise AssertionError(name)


def _mp_derivative(name, z):
    z = mpmath.mpf(z)
    c = mpmath.sqrt(2 / mpmath.pi)
    match name:
        case "sigmoid":
            return mpmath.exp(-z) / (1 + mpmath.exp(-z)) ** 2
        case "tanh":
            return 1 / mpmath.cosh(z) ** 2
        case "erf":
            return 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-z * z)
        case "softplus":
            return 1 / (1 + mpmath.exp(-z))
        case "elu":
            return mpmath.mpf(1) if z > 0 else mpmath.exp(z)
        case "gelu":
            return mpmath.ncdf(z) + z * mpmath.npdf(z)
        case "gelu_tanh":
            u = c * (z + mpmath.mpf("0.044715") * z**3)
            du = c * (1 + 3 * mpmath.mpf("0.044715") * z**2)
            return 1 / (1 + mpmath.exp(-2 * u)) + z / 2 * du / mpmath.cosh(u) ** 2  # (1 + tanh u)/2 = sigmoid(2u)
    raise AssertionError(name)


def _mp_log_volume(model: nn.Sequential, x: np.ndarray, dps: int = 1000) -> float:
    """0.5 log det of the smaller Gram matrix of the Jacobian of a Linear/activation chain, in mpmath.

    The Gram matrix of a saturated net is graded over hundreds of decades, so its determinant needs
    hundreds of digits: dps=1000 (small matrices, cheap)."""
    names = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.GELU: "gelu", nn.Softplus: "softplus", nn.ELU: "elu"}
    with mpmath.workdps(dps):
        h = mpmath.matrix([mpmath.mpf(float(v)) for v in x])
        J = mpmath.eye(len(x))
        for layer in model:
            if isinstance(layer, nn.Linear):
                W = mpmath.matrix(layer.weight.detach().double().tolist())
                b = mpmath.matrix([mpmath.mpf(float(v)) for v in layer.bias.detach().double()])
                h, J = W * h + b, W * J
            else:
                name = names[type(layer)]
                D = mpmath.diag([_mp_derivative(name, a) for a in h])
                h, J = mpmath.matrix([_mp_activation(name, a) for a in h]), D * J
        G = J * J.T if J.rows <= J.cols else J.T * J
        return float(mpmath.log(mpmath.det(G)) / 2)


# -- log |phi'| -------------------------------------------------------------------------------------
SMOOTH = ["sigmoid", "tanh", "erf", "softplus", "elu", "gelu", "gelu_tanh"]
EXTREME = [-800.0, -60.0, -37.5, -12.0, -3.0, -1.2, -0.3, 0.0, 0.4, 2.5, 15.0, 47.0, 300.0]


@pytest.mark.parametrize("name", SMOOTH)
def test_log_abs_derivative_matches_mpmath_far_into_saturation(name):
    z = torch.tensor(EXTREME, dtype=torch.float64)
    if name in ("erf", "gelu", "gelu_tanh"):
        z = z[z.abs() < 100]  # exp(-z^2) is below mpmath's default exponent range far out; nothing new there
    got = log_abs_derivative(Activation(name), z)
    with mpmath.workdps(40):
        ref = torch.tensor([float(mpmath.log(abs(_mp_derivative(name, v)))) for v in z.tolist()], dtype=torch.float64)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", SMOOTH + ["relu", "leaky_relu", "identity"])
def test_log_derivative_sign_and_value_match_the_derivative_where_it_is_accurate(name):
    act = Activation(name, {"negative_slope": -0.2} if name == "leaky_relu" else {})
    z = torch.linspace(-4, 4, 801, dtype=torch.float64)
    log_abs, sign = log_derivative(act, z)
    ref = act.derivative(z)
    torch.testing.assert_close(sign * torch.exp(log_abs), ref, rtol=1e-12, atol=1e-15)


def test_relu_log_derivative_is_exactly_minus_inf_when_off():
    z = torch.tensor([-1.0, 0.0, 1e-300, 2.0], dtype=torch.float64)
    assert log_abs_derivative(Activation("relu"), z).tolist() == [-math.inf, -math.inf, 0.0, 0.0]


# -- single saturated layer: the closed form ----------------------------------------------------------
def _saturated_layer(act, m, d, gain, seed=0):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(d, m).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(m, d, generator=g, dtype=torch.float64) * gain / math.sqrt(d))
        layer.bias.copy_(torch.randn(m, generator=g, dtype=torch.float64))
    return nn.Sequential(layer, {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "gelu": nn.GELU()}[act])


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "gelu"])
def test_single_saturated_layer_matches_closed_form(act):
    m, d = 12, 40
    model = _saturated_layer(act, m, d, gain=40.0)
    x = torch.randn(25, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = model[0](x).detach()
    assert a.abs().max() > 30  # saturated: the Gram route loses these
    W = model[0].weight.detach()
    half_logdet = 0.5 * float(torch.linalg.slogdet(W @ W.T)[1])
    with mpmath.workdps(40):
        log_d = [[float(mpmath.log(abs(_mp_derivative(act, v)))) for v in row] for row in a.tolist()]
    closed = torch.tensor(log_d, dtype=torch.float64).sum(1) + half_logdet  # unscaled, natural log
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = effective_volume((model, "1"), x, scale_by_width=False) * LN10
        scaled = effective_volume((model, "1"), x)  # J / sqrt(m): m/2 log(m) less
        pseudo = pseudo_volume_element((model, "1"), x, scale_by_width=False)
        rank = effective_volume((model, "1"), x, k="rank", scale_by_width=False) * LN10
    torch.testing.assert_close(got, closed, rtol=0, atol=TOL)
    torch.testing.assert_close(scaled * LN10, closed - 0.5 * m * math.log(m), rtol=0, atol=TOL)
    torch.testing.assert_close(pseudo, closed, rtol=0, atol=TOL)
    torch.testing.assert_close(rank, closed, rtol=0, atol=TOL)


def test_single_saturated_wide_layer_volume_element_matches_mpmath():
    # m > d: volume_element runs forward (k = d) through graded rows
    model = _saturated_layer("sigmoid", 9, 4, gain=60.0, seed=3)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got = volume_element((model, "1"), x, scale_by_width=False)
    ref = torch.tensor([_mp_log_volume(model, p.numpy()) for p in x], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=0, atol=TOL)


# -- deep saturated nets against mpmath ---------------------------------------------------------------
def _deep(widths, act, gain, seed):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        lin = nn.Linear(a, b).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g, dtype=torch.float64) * gain / math.sqrt(a))
            lin.bias.copy_(torch.randn(b, generator=g, dtype=torch.float64))
        layers += [lin, {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "gelu": nn.GELU()}[act]]
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    ("widths", "act", "gain"),
    [([7, 9, 8, 4], "sigmoid", 25.0), ([7, 9, 8, 4], "tanh", 25.0), ([7, 9, 8, 4], "gelu", 2.0),
     ([3, 8, 8, 5], "sigmoid", 25.0), ([5, 6, 6, 6, 3], "tanh", 25.0)],
)
def test_deep_saturated_net_matches_mpmath(widths, act, gain):
    # GELU' decays like exp(-z^2 / 2): a smaller gain keeps the reference's digits (dps) affordable
    model = _deep(widths, act, gain=gain, seed=len(widths))
    x = torch.randn(5, widths[0], generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2
    ref = torch.tensor([_mp_log_volume(model, p.numpy()) for p in x], dtype=torch.float64)
    assert torch.isfinite(ref).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = effective_volume(model, x, scale_by_width=False) * LN10
    torch.testing.assert_close(got, ref, rtol=0, atol=TOL)
    # the autodiff Jacobian of the same features (a plain callable) underflows here: the test can fail
    plain = effective_volume(lambda t: model(t), x, scale_by_width=False) * LN10
    assert not torch.allclose(plain, ref, rtol=0, atol=1e-3)


def test_deep_net_jacobian_is_accurate_where_autodiff_rounds_to_zero():
    model = _deep([3, 5, 4], "sigmoid", gain=30.0, seed=1)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    J = jacobian(model, x)
    with mpmath.workdps(50):
        for p, Jp in zip(x, J, strict=True):
            h, Jm = mpmath.matrix(p.tolist()), mpmath.eye(3)
            for layer in model:
                if isinstance(layer, nn.Linear):
                    W = mpmath.matrix(layer.weight.detach().tolist())
                    h, Jm = W * h + mpmath.matrix(layer.bias.detach().tolist()), W * Jm
                else:
                    Jm = mpmath.diag([_mp_derivative("sigmoid", a) for a in h]) * Jm
                    h = mpmath.matrix([_mp_activation("sigmoid", a) for a in h])
            ref = torch.tensor([[float(Jm[i, j]) for j in range(3)] for i in range(4)], dtype=torch.float64)
            # row i of J carries sigmoid'(a_i) (as small as 1e-20 here): relative accuracy per row, up to the
            # cancellation in its sums (weights of size ~30, so ~1e-13 of the row's largest entry)
            row = ref.abs().amax(1, keepdim=True)
            assert (row > 0).all() and ((Jp - ref).abs() <= 1e-12 * row).all()


# -- exact zeros, warnings, ranks -----------------------------------------------------------------------
def test_dead_relu_output_units_give_minus_inf_and_live_ones_match_svd():
    model = netatlas.nets.mlp([10, 16, 3], "relu", seed=2)
    model = nn.Sequential(*list(model), nn.ReLU()).double()  # after a ReLU: dead units are zero rows
    with torch.no_grad():
        model[2].bias.add_(0.5)  # some points with every output unit on, some with one off
    x = torch.randn(40, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    got = effective_volume(model, x, scale_by_width=False) * LN10
    J = torch.func.vmap(torch.func.jacrev(lambda p: model(p[None])[0]))(x)
    dead = (model[:-1](x) <= 0).any(1)
    assert dead.any() and (~dead).any()
    assert torch.isneginf(got[dead]).all()
    ref = torch.log(torch.linalg.svdvals(J[~dead])).sum(-1)
    torch.testing.assert_close(got[~dead], ref, rtol=0, atol=1e-10)
    # k="rank": the active units' count is the rank; the sum over the non-zero singular values
    rank = effective_volume(model, x, k="rank", scale_by_width=False) * LN10
    sv = torch.linalg.svdvals(J)
    live = (model(x) > 0).sum(1)
    expected = torch.stack([torch.log(s[:r]).sum() for s, r in zip(sv, live, strict=True)])
    torch.testing.assert_close(rank, expected, rtol=0, atol=1e-10)


def test_underflowing_derivatives_warn_with_the_count():
    layer = nn.Linear(2, 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        layer.bias.zero_()
    model = nn.Sequential(layer, nn.Sigmoid())
    x = torch.tensor([[0.0, 0.0], [0.0, 800.0], [1.0, -1.0]], dtype=torch.float64)  # point 1: e^-800 vs 1/4
    with pytest.warns(UserWarning, match=r"precision may be lost at 1 of 3 points"):
        volume_element(model, x)


def test_top_k_matches_svd_and_warns_when_the_kth_is_lost():
    model = _deep([6, 7, 5], "tanh", gain=2.0, seed=0)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    J = torch.func.vmap(torch.func.jacrev(lambda p: model(p[None])[0]))(x) / math.sqrt(5)
    sv = torch.linalg.svdvals(J)
    torch.testing.assert_close(effective_volume(model, x, k=2), torch.log10(sv[:, :2]).sum(-1), rtol=0, atol=1e-12)
    saturated = _deep([6, 7, 5], "tanh", gain=60.0, seed=0)
    with pytest.warns(UserWarning, match="precision may be lost"):
        effective_volume(saturated, x * 3, k=4)


def test_residual_net_matches_svd_reference():
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.f, self.out = nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 3)

        def forward(self, x):
            h = torch.tanh(self.inp(x))
            h = h + torch.tanh(self.f(h))
            return self.out(h)

    block = Block().double().eval()
    net = netatlas.nets.from_torch(block, input_shape=(5,))
    assert any(type(n.op).__name__ == "Add" for n in net.nodes)
    x = torch.randn(7, 5, dtype=torch.float64)
    J = torch.func.vmap(torch.func.jacrev(lambda p: block(p[None])[0]))(x)
    ref = torch.log(torch.linalg.svdvals(J)).sum(-1)
    torch.testing.assert_close(effective_volume(net, x, scale_by_width=False) * LN10, ref, rtol=0, atol=1e-10)


def test_conv_chain_matches_svd_reference():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(12, 5), nn.Sigmoid()).double().eval()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    J = torch.func.vmap(torch.func.jacrev(lambda p: model(p[None])[0]))(x).reshape(4, 5, 64)
    ref = torch.log(torch.linalg.svdvals(J)).sum(-1)
    torch.testing.assert_close(effective_volume(model, x, scale_by_width=False) * LN10, ref, rtol=0, atol=1e-10)


# -- a realistic saturated net: 784-30-10 sigmoid MLP on MNIST ------------------------------------------
def _saturated_mnist_mlp():
    """Train briefly (full batch, large lr), then scale the first layer so the median over images of
    max |a| is ~47, as in the trained net of issue 17."""
    data = netatlas.data.mnist_sample(800, seed=0, flatten=True)
    x, y = data.x.double(), data.y
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.05)
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    accuracy = float((model(data.x_test.double()).argmax(1) == data.y_test).double().mean())
    with torch.no_grad():
        factor = 47.0 / float(model[0](x).abs().amax(1).median())
        model[0].weight.mul_(factor)
        model[0].bias.mul_(factor)
    return model, data.x_test.double(), accuracy


def test_saturated_mnist_mlp_effective_volume_is_finite_and_matches_the_closed_form():
    model, images, accuracy = _saturated_mnist_mlp()
    assert accuracy > 0.6  # a trained net, not noise
    a = model[0](images).detach()
    assert float(a.abs().amax(1).median()) > 30
    W = model[0].weight.detach()
    with mpmath.workdps(30):
        log_d = torch.tensor([[float(mpmath.log(_mp_derivative("sigmoid", v))) for v in row] for row in a.tolist()],
                             dtype=torch.float64)
    m = 30
    closed = (log_d.sum(1) + 0.5 * float(torch.linalg.slogdet(W @ W.T)[1]) - 0.5 * m * math.log(m)) / LN10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = effective_volume((model, "1"), images)
        rank = effective_volume((model, "1"), images, k="rank")
    assert torch.isfinite(got).all()
    assert float((got - closed).abs().max()) < 1e-6  # decades, as issue 17 asks
    torch.testing.assert_close(got, closed, rtol=0, atol=TOL / LN10)
    torch.testing.assert_close(rank, closed, rtol=0, atol=TOL / LN10)
    assert float(closed.max() - closed.min()) > 50  # spans many decades
    # the autodiff route on the same features loses these values: the test can fail
    plain = effective_volume(lambda t: torch.sigmoid(model[0](t)), images)
    assert (~torch.isfinite(plain) | ((plain - closed).abs() > 1)).any()
