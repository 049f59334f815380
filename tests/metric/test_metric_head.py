"""The metric lens reads a classifier head's probabilities (issue 28): the predicted class and predictive
entropy of a net with a softmax / log-softmax head equal those computed from its logits with an explicit
float64 softmax; the metric itself is of the logits (the same as the net without its head)."""

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.metric import metric_map
from netatlas.nets import Net, from_torch


def _entropy_from_logits(z):
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))  # log softmax, float64
    return -(np.exp(logp) * logp).sum(1)


@pytest.mark.parametrize("head", [nn.Softmax(dim=1), nn.LogSoftmax(dim=1)])
def test_entropy_and_class_come_from_the_head(head):
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 4))
    net = from_torch(nn.Sequential(*body, head).eval(), (2,))
    assert net.head is not None
    points = np.random.default_rng(0).standard_normal((25, 2)) * 3
    plane = Plane.square(2.0)
    result = metric_map(net, points=points, plane=plane, grid=6)
    logits = body.double()(torch.as_tensor(points)).detach().numpy()
    np.testing.assert_allclose(result.point_entropy, _entropy_from_logits(logits), rtol=1e-12, atol=1e-14)
    assert np.array_equal(result.point_predicted, logits.argmax(1))
    grid_logits = body(torch.as_tensor(plane.to_input(np.stack([result.us.ravel(), result.vs.ravel()], 1))))
    np.testing.assert_allclose(result.plane_entropy.ravel(), _entropy_from_logits(grid_logits.detach().numpy()),
                               rtol=1e-12, atol=1e-14)
    # the metric is of the logits: the same as the net without its head, which the note and features say
    bare = metric_map(Net(net.nodes), points=points, plane=plane, grid=6)
    np.testing.assert_array_equal(result.point_values, bare.point_values)
    np.testing.assert_array_equal(result.plane_values, bare.plane_values)
    assert "before its" in result.features and any("arg-max unchanged" in note for note in result.notes)
    assert not any("head" in note for note in bare.notes)
