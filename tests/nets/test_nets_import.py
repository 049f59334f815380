"""The IR agrees with torch to 1e-10 relative on every supported layer type, and refuses the rest."""

import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas.nets import from_torch

RTOL = 1e-10


def randomize_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters, then eval()."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return module.eval()


def assert_agrees(module, input_shape, *, seed=0, n=7):
    module = randomize_batchnorm(module, seed)
    net = from_torch(module, input_shape)
    x = torch.randn(n, *input_shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    reference = _float64_copy(module)(x).reshape(n, -1)
    got = net(x)
    scale = reference.abs().max().clamp_min(1e-300)
    assert got.dtype == torch.float64
    assert ((got - reference).abs().max() / scale).item() < RTOL
    return net


def _float64_copy(module):
    import copy

    return copy.deepcopy(module).double().eval()


class Residual(nn.Module):
    def __init__(self, channels, activation):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.act = activation
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return self.act(x + self.conv2(self.act(self.bn(self.conv1(x)))))


class SmallResNet(nn.Module):
    def __init__(self, activation=None):
        super().__init__()
        act = activation or nn.ReLU()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), act)
        self.block = Residual(4, act)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        h = self.pool(self.block(self.stem(x)))
        return self.head(torch.flatten(h, 1))


SEQUENTIAL_CASES = {
    "linear": (lambda: nn.Sequential(nn.Linear(5, 3)), (5,)),
    "relu-mlp": (lambda: nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                                       nn.Linear(16, 4)), (2,)),
    "leaky": (lambda: nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2), nn.Linear(8, 2)), (3,)),
    "smooth": (lambda: nn.Sequential(nn.Linear(3, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8),
                                     nn.GELU(), nn.Linear(8, 8), nn.Softplus(), nn.Linear(8, 8), nn.ELU(),
                                     nn.Linear(8, 8), nn.GELU(approximate="tanh"), nn.Linear(8, 1)), (3,)),
    "identity-dropout": (lambda: nn.Sequential(nn.Linear(4, 6), nn.Identity(), nn.Dropout(0.3), nn.ReLU(),
                                               nn.Linear(6, 2)), (4,)),
    "batchnorm1d": (lambda: nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)), (4,)),
    "nested": (lambda: nn.Sequential(nn.Sequential(nn.Linear(2, 5), nn.ReLU()), nn.Sequential(nn.Sequential(
        nn.Linear(5, 5), nn.ReLU())), nn.Linear(5, 2)), (2,)),
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, padding=2), nn.BatchNorm1d(3), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(3 * 6, 2)), (2, 9)),
    "conv2d": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                     nn.Conv2d(3, 2, 2, dilation=2, padding="same" if False else 1), nn.ReLU(),
                                     nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)), (1, 8, 8)),
    "conv-grouped-valid": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, groups=2, padding="valid"), nn.ReLU(),
                                                 nn.Flatten(), nn.Linear(4 * 4 * 4, 2)), (2, 6, 6)),
    "unflatten": (lambda: nn.Sequential(nn.Linear(4, 18), nn.Unflatten(1, (2, 3, 3)), nn.Conv2d(2, 1, 2),
                                        nn.Flatten(), nn.Linear(4, 1)), (4,)),
}


@pytest.mark.parametrize("case", sorted(SEQUENTIAL_CASES))
def test_sequential_agrees_with_torch(case):
    build, shape = SEQUENTIAL_CASES[case]
    assert_agrees(build(), shape)


def test_batchnorm_is_folded_into_the_layer_before():
    net = assert_agrees(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)), (4,))
    assert [type(n.op).__name__ for n in net.nodes] == ["Input", "Linear", "Activation", "Linear"]


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.LeakyReLU(0.1), nn.Tanh()])
def test_exported_residual_conv_batchnorm_stack(activation):
    net = assert_agrees(SmallResNet(activation), (1, 8, 8))
    assert any(type(n.op).__name__ == "Add" for n in net.nodes)
    assert net.piecewise_linear == (not isinstance(activation, nn.Tanh))


class FunctionalOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 6)
        self.b = nn.Linear(6, 6)

    def forward(self, x):
        h = torch.erf(self.a(x)) * 0.5
        h = h - torch.nn.functional.leaky_relu(self.b(h), 0.3) / 2.0 + 1.0
        return torch.relu(h).reshape(-1, 2, 3).flatten(1)


def test_exported_functional_ops():
    assert_agrees(FunctionalOps(), (3,))


class GlobalPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_exported_global_mean_pool():
    assert_agrees(GlobalPool(), (1, 6, 6))


def test_exported_program_and_pt2_round_trip(tmp_path):
    model = netatlas.nets.mlp([3, 7, 2], "tanh", seed=3)
    netatlas.nets.save(model, tmp_path / "m.pt2", input_shape=(3,))
    net = netatlas.nets.load(tmp_path / "m.pt2")
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(net(x), _float64_copy(model)(x), rtol=RTOL, atol=0)


@pytest.mark.parametrize("seed", range(5))
def test_held_out_random_mlps(seed):
    g = np.random.default_rng(seed)
    hidden = [int(w) for w in g.integers(1, 20, size=g.integers(1, 4))]
    widths = [int(g.integers(1, 6)), *hidden, int(g.integers(1, 4))]
    activation = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"][seed]
    model = netatlas.nets.mlp(widths, activation, init=["torch", "he", "glorot", "normal", "torch"][seed], seed=seed)
    assert_agrees(model, (widths[0],), seed=seed)


def test_numpy_in_numpy_out_and_unbatched():
    net = from_torch(netatlas.nets.mlp([2, 4, 3], seed=0))
    y = net(np.zeros((5, 2)))
    assert isinstance(y, np.ndarray) and y.shape == (5, 3) and y.dtype == np.float64
    assert net(torch.zeros(2)).shape == (3,)
    with pytest.raises(ValueError, match="does not match the network's input shape"):
        net(np.zeros((5, 3)))
    with pytest.raises(TypeError, match="expected a torch.Tensor or numpy.ndarray"):
        net([[0.0, 0.0]])


def test_model_is_not_modified():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from_torch(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32


# -- refusals ------------------------------------------------------------------------------------
def test_unsupported_layer_in_sequential_names_type_path_and_supported_set():
    model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.ReLU(), nn.Upsample(scale_factor=2)))
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"Upsample at '1\.1' \(position 1\).*supported: Linear"):
        from_torch(model)


class WithUpsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.pool = nn.Upsample(scale_factor=2)
        self.fc = nn.Linear(2 * 8 * 8, 1)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


def test_unsupported_op_in_exported_module_names_module_path():
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"upsample.*pool \(Upsample\)"):
        from_torch(WithUpsample(), (1, 6, 6))


def test_batchnorm_in_training_mode_is_refused():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"BatchNorm1d at '1' is in training mode.*model.eval\(\)"):
        from_torch(model)


def test_conv_models_need_an_input_shape():
    with pytest.raises(ValueError, match="pass input_shape"):
        from_torch(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_wrong_input_shape_is_reported():
    with pytest.raises(ValueError, match="Linear at '0' expects 2 inputs but receives 3"):
        from_torch(nn.Sequential(nn.Linear(2, 2)), input_shape=(3,))


def test_not_a_module():
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        from_torch("model.pt")


def test_mlp_is_seeded_privately():
    state = torch.random.get_rng_state()
    a = netatlas.nets.mlp([2, 5, 1], seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = netatlas.nets.mlp([2, 5, 1], seed=4)
    c = netatlas.nets.mlp([2, 5, 1], seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_importing_a_traced_module_leaves_every_submodule_in_its_own_mode():
    # a model in training mode with a BatchNorm child the user froze in eval mode: importing it (through
    # torch.export) and saving it as .pt2 must hand back exactly these modes, not train() them all
    import tempfile
    from pathlib import Path

    import torch
    from torch import nn

    from netatlas.nets import from_torch
    from netatlas.nets._files import save

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn, self.out = nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)

        def forward(self, x):
            return self.out(torch.relu(self.bn(self.fc(x))))

    model = Block()
    model.bn.eval()
    before = [m.training for m in model.modules()]
    assert before == [True, True, False, True]
    from_torch(model, input_shape=(2,))
    assert [m.training for m in model.modules()] == before
    with tempfile.TemporaryDirectory() as folder:
        save(model, Path(folder) / "m.pt2", input_shape=(2,))
    assert [m.training for m in model.modules()] == before
