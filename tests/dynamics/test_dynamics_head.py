"""The dynamics lens reads a classifier head's probabilities (issue 28): confidence, EL2N and margin of a
model with a softmax / log-softmax head equal those from its logits with an explicit float64 softmax, and
the cross-entropy gradients of a model that outputs probabilities are those of ``-log p_y`` (the body's
logits with cross-entropy), not of the probabilities read as logits."""

import numpy as np
import pytest
import torch
from torch import nn

from netatlas.dynamics import per_sample_gradient_norms, score


def _body():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 10), nn.Tanh(), nn.Linear(10, 4)).double().eval()


class _SoftmaxInForward(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return torch.softmax(self.body(x), -1)


def _data():
    rng = np.random.default_rng(2)
    return torch.as_tensor(rng.standard_normal((30, 3)) * 2), torch.as_tensor(rng.integers(0, 4, 30))


@pytest.mark.parametrize("head", [nn.Softmax(dim=1), nn.LogSoftmax(dim=-1)])
def test_probability_scores_use_the_head(head):
    body = _body()
    x, y = _data()
    z = body(x).detach().numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)  # explicit float64 softmax
    rows = np.arange(len(y))
    p_y = p[rows, y.numpy()]
    others = p.copy()
    others[rows, y.numpy()] = 0
    expected = {"confidence": 1 - p_y, "el2n": np.sqrt(((p - np.eye(4)[y.numpy()]) ** 2).sum(1)),
                "margin": others.max(1) - p_y}
    model = nn.Sequential(*body, head).eval()
    for method, want in expected.items():
        np.testing.assert_allclose(score(method, model, x, y), want, rtol=1e-10, atol=1e-13)


def test_cross_entropy_gradients_of_a_head_are_those_of_the_logits():
    body = _body()
    x, y = _data()
    reference = per_sample_gradient_norms(body, x, y)  # cross-entropy of the logits
    for model in (nn.Sequential(*body, nn.Softmax(dim=1)), nn.Sequential(*body, nn.LogSoftmax(dim=1))):
        got = per_sample_gradient_norms(model, x, y)
        np.testing.assert_allclose(got.total, reference.total, rtol=1e-12)
        assert got.layer_names == reference.layer_names
    # a softmax inside forward: score('grand') learns the head from the import and uses -log p_y
    wrapped = _SoftmaxInForward(body)
    np.testing.assert_allclose(score("grand", wrapped, x, y), reference.total, rtol=1e-9)
    # reading the probabilities as logits gives other numbers: the test can fail
    as_logits = per_sample_gradient_norms(nn.Sequential(*body, nn.Softmax(dim=1)), x, y, head=None)
    assert np.abs(as_logits.total - reference.total).max() > 1e-3
