"""Settled nodes of local complexity's graph-path discs (NOTE [settled nodes] in regions._settled): the
bounds hold on every face, and a disc's partition is the same bit for bit with and without them."""

import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.nets import from_torch, zoo
from netatlas.regions import _graph
from netatlas.regions._complexity import random_directions
from netatlas.regions._graph import graph_partition
from netatlas.regions._partition import BOUNDARY_TOLERANCE
from netatlas.regions._settled import needed_columns, settled_states


def _disc(net, point, directions, r):
    shape = net.input_shape
    return Plane(point.reshape(shape), directions[0].reshape(shape), directions[1].reshape(shape), (-r, r, -r, r))


def _unsettled(monkeypatch, net, plane, r):
    with monkeypatch.context() as m:
        m.setattr(_graph, "settled_states", lambda net, *args: [None] * len(net.nonlinear))
        return graph_partition(net, plane, BOUNDARY_TOLERANCE, within=r)


def _same(a, b):
    assert a.num_regions == b.num_regions
    for name in ("xy", "offsets", "labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert len(a.pattern_bits) == len(b.pattern_bits)
    assert all(np.array_equal(x, y) for x, y in zip(a.pattern_bits, b.pattern_bits, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(a.choices or (), b.choices or (), strict=True))


def _maxpool_cnn(seed, leaky=False):
    torch.manual_seed(seed)
    act = nn.LeakyReLU(0.1) if leaky else nn.ReLU()
    model = nn.Sequential(nn.Conv2d(1, 4, 3), act, nn.MaxPool2d(2), nn.Conv2d(4, 6, 2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    return from_torch(model.eval(), input_shape=(1, 9, 9))


def _lenet_ties():
    model = zoo.lenet5(seed=2)
    with torch.no_grad():  # channel 1 a copy of channel 0 (exact ties), channel 2 all zero (ties of zeros)
        model[0].weight[1], model[0].bias[1] = model[0].weight[0], model[0].bias[0]
        model[0].weight[2], model[0].bias[2] = 0.0, 0.0
    return from_torch(model.eval(), input_shape=(1, 28, 28))


def _digits(n):
    return netatlas.data.mnist_sample(seed=0).x_test[:n].double().numpy().reshape(n, -1)


CASES = {
    "random cnn": (lambda: _maxpool_cnn(0), lambda: np.random.default_rng(0).random((3, 81)), 0.3),
    "leaky cnn": (lambda: _maxpool_cnn(1, leaky=True), lambda: np.random.default_rng(1).random((3, 81)), 0.3),
    "lenet with tied channels": (_lenet_ties, lambda: _digits(3), 0.05),
    "resnet": (lambda: from_torch(zoo.resnet_tiny(width=2, seed=0), (1, 8, 8)),
               lambda: np.random.default_rng(2).random((2, 64)), 0.2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_disc_partition_is_the_same_with_settled_nodes(case, monkeypatch):
    make, points, r = CASES[case]
    net, P = make(), points()
    D = random_directions(len(P), 1, P.shape[1], seed=3)[:, 0]
    n_free = n_narrowed = 0
    for p, d in zip(P, D, strict=True):
        plane = _disc(net, p, d, r)
        fast = graph_partition(net, plane, BOUNDARY_TOLERANCE, within=r)
        _same(fast, _unsettled(monkeypatch, net, plane, r))
        settled = settled_states(net, p, d[0], d[1], (r, r), BOUNDARY_TOLERANCE, 2 * np.sqrt(2) * r)
        n_free += sum(len(s.free) for s in settled if s)
        need = needed_columns(net, settled)
        n_narrowed += sum(not need[net.nodes[i].inputs[0]].all() for i in net.nonlinear)
        for s, i in zip(settled, net.nonlinear, strict=True):  # every column a free unit cuts by is computed
            if s is not None and not isinstance(net.nodes[i].op, netatlas.nets.Max):
                assert need[net.nodes[i].inputs[0]][s.free].all()
        assert fast.maps.shape[2] == 0  # a disc's partition computes no output maps
    assert n_free > 0  # some units were left to the partition: the restricted splits ran
    if case != "resnet":  # some maps were computed in part of their columns
        assert n_narrowed > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_settled_states_hold_on_every_face(case, monkeypatch):
    make, points, r = CASES[case]
    net, P = make(), points()
    D = random_directions(len(P), 1, P.shape[1], seed=4)[:, 0]
    n_settled = 0
    for p, d in zip(P, D, strict=True):
        part = _unsettled(monkeypatch, net, _disc(net, p, d, r), r)
        settled = settled_states(net, p, d[0], d[1], (r, r), BOUNDARY_TOLERANCE, 2 * np.sqrt(2) * r)
        activations = iter(part.pattern_bits)
        choices = iter(part.choices or ())
        for node, s in zip(net.nonlinear, settled, strict=True):
            is_max = isinstance(net.nodes[node].op, netatlas.nets.Max)
            faces = next(choices) if is_max else next(activations)
            if s is None:
                continue
            if not is_max:  # compare unpacked bits column by column
                n = net.nodes[node].size
                faces = np.unpackbits(faces, axis=1, count=n)
                state = np.unpackbits(s.state, axis=1, count=n)
            else:
                state = s.state
            fixed = np.setdiff1d(np.arange(state.shape[1]), s.free)
            assert np.all(faces[:, fixed] == state[:, fixed]), node
            n_settled += len(fixed)
    assert n_settled > 0


def test_trained_lenet_discs_are_the_same(monkeypatch):
    # briefly trained (one epoch) LeNet-5 with max pooling at MNIST test digits, r = 0.05, as the benchmark
    model, _ = zoo.train_lenet5_mnist(epochs=1, seed=0)
    net = from_torch(model.double().eval(), input_shape=(1, 28, 28))
    P = _digits(2)
    D = random_directions(2, 1, 784, seed=0)[:, 0]
    for p, d in zip(P, D, strict=True):
        plane = _disc(net, p, d, 0.05)
        fast = graph_partition(net, plane, BOUNDARY_TOLERANCE, within=0.05)
        assert fast.num_regions > 100
        _same(fast, _unsettled(monkeypatch, net, plane, 0.05))
