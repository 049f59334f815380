"""One way to name a layer: `Net.layer` resolves a torch module path, a node index or '#index', and every
lens that takes a layer uses it."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

import netatlas


def _named():
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(2, 5), act=nn.Tanh(), fc2=nn.Linear(5, 3)))
    return model, netatlas.nets.from_torch(model)


def test_three_spellings_name_the_same_node():
    _, net = _named()
    for index, node in enumerate(net.nodes[1:], start=1):
        assert net.layer(node.name) == index
        assert net.layer(index) == net.layer(f"#{index}") == index
    assert net.layer_names() == ["fc1", "act", "fc2"]


def test_export_style_names_match_their_module_path():
    _, net = _named()
    renamed = netatlas.nets.Net([net.nodes[0]] + [
        netatlas.nets.Node(n.op, n.inputs, n.shape, f"{n.name} ({type(n.op).__name__})") for n in net.nodes[1:]])
    assert renamed.layer("act") == 2 and renamed.layer("act (Activation)") == 2


@pytest.mark.parametrize("bad", ["fc9", 0, 4, -1, "#0", "#9", True, 2.0])
def test_one_error_lists_the_valid_names(bad):
    _, net = _named()
    with pytest.raises(ValueError, match=r"no layer named .*; layers: \['fc1', 'act', 'fc2'\].*node indices 1\.\.3"):
        net.layer(bad)


def test_metric_feature_maps_accept_every_spelling():
    model, net = _named()
    x = torch.rand(4, 2, dtype=torch.float64)
    reference = netatlas.metric.metric((net, 2), x)
    for layer in ("act", "#2", 2):
        torch.testing.assert_close(netatlas.metric.metric((net, layer), x), reference)
        torch.testing.assert_close(netatlas.metric.metric((model, layer), x), reference)
    with pytest.raises(ValueError, match="metric: no layer named 'hidden'; layers: "):
        netatlas.metric.metric((net, "hidden"), x)


def test_summary_shows_the_names_users_type():
    _, net = _named()
    text = net.summary()
    assert "layer" in text.splitlines()[0]
    for name in net.layer_names():
        assert f" {name}\n" in text
