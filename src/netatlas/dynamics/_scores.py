"""Per-sample importance scores for training-data subsampling (higher = keep first).

==============  ===========================================================================
method          score of sample (x, y)
==============  ===========================================================================
zone            smooth bump-derivative nets (sigmoid, tanh, erf): ``sum_units phi'(z)/max phi'``,
                how many hidden units' transition zones the sample sits in (van den Berg 2016, C6);
                other nets (ReLU, GELU, ...): minus the distance to the nearest hidden unit's
                hyperplane (``netatlas.dynamics.unit_distances``)
boundary        minus the distance to the decision boundary (exact for 2-D ReLU nets)
confidence      output error ``1 - p_y``
el2n            ``||softmax(f(x)) - onehot(y)||_2`` (Paul et al. 2021); one logit: the two-class
                softmax ``(1 - p, p)``, i.e. ``sqrt(2) |p - y|`` with ``p = sigmoid(f)``
grand           ``||grad_theta l(x, y)||_2`` (cross-entropy; Paul et al. 2021)
margin          ``max_{k != y} p_k - p_y`` (one logit: ``1 - 2 p_y``)
forgetting      number of forgetting events (correct -> wrong between consecutive records) in a
                training history; never-learned samples score ``inf`` (Toneva et al. 2019)
random          uniform noise from ``seed``
==============  ===========================================================================

Model-based scores accept a list of models (e.g. several seeds, as Paul et al. do) and average.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netatlas._deprecate import renamed
from netatlas.dynamics._boundary import boundary_distance
from netatlas.dynamics._gradients import per_sample_gradient_norms
from netatlas.dynamics._zones import BELL_SHAPED, _inputs, unit_distances
from netatlas.nets import Net, as_net

__all__ = ["METHODS", "correct", "forgetting_events", "score"]

METHODS = ("zone", "boundary", "confidence", "el2n", "grand", "margin", "forgetting", "random")


def _probabilities(net: Net, x) -> np.ndarray:
    """(n, n_classes) class probabilities: the model's own head (softmax / log-softmax) if it has one;
    otherwise the outputs are logits, and a single logit is read as a sigmoid (two classes)."""
    logits = net(torch.as_tensor(_inputs(net, x)))
    if net.head is not None:
        return net.head.log_probabilities(logits).exp().numpy()
    if logits.shape[1] == 1:
        return torch.stack([torch.sigmoid(-logits[:, 0]), torch.sigmoid(logits[:, 0])], 1).numpy()
    return F.softmax(logits, 1).numpy()


@renamed(model="net", x="points")
def correct(net, points, y) -> np.ndarray:
    """(n_samples,) bool: is each sample classified correctly (one logit: ``logit > 0`` means class 1).

    Examples
    --------
    >>> import torch, netatlas
    >>> correct(netatlas.nets.mlp([2, 1], seed=0), torch.zeros(3, 2), torch.tensor([0, 1, 1])).shape
    (3,)
    """
    if isinstance(net, nn.Module):  # evaluate the module itself: cheap enough to call every epoch
        dtype = next(net.parameters()).dtype
        with torch.no_grad():
            logits = net(torch.as_tensor(points).to(dtype))
        logits = logits.reshape(len(logits), -1)
    else:
        net = as_net(net)
        logits = net(torch.as_tensor(_inputs(net, points)))
    pred = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
    return (pred == torch.as_tensor(y).long()).numpy()


def forgetting_events(history) -> np.ndarray:
    """Forgetting events per sample from a correctness history (Toneva et al. 2019).

    Parameters
    ----------
    history : array_like of bool, shape (n_records, n_samples)
        Whether each sample was classified correctly at each record (e.g. after every epoch).

    Returns
    -------
    ndarray of shape (n_samples,)
        Number of correct -> wrong transitions; ``inf`` for samples never classified correctly.

    Examples
    --------
    >>> forgetting_events([[1, 0, 0], [0, 0, 1], [1, 0, 1]])
    array([ 1., inf,  0.])
    """
    h = np.asarray(history).astype(bool)
    if h.ndim != 2:
        raise ValueError(f"forgetting_events: history must be (n_records, n_samples), got shape {h.shape}")
    events = (h[:-1] & ~h[1:]).sum(0).astype(np.float64)
    events[~h.any(0)] = np.inf
    return events


def _one(method, model, x, y, *, loss, zone, boundary_method):
    net = as_net(model)
    y_np = np.asarray(torch.as_tensor(y).long())
    if method in ("confidence", "el2n", "margin"):
        p = _probabilities(net, x)
        if y_np.size and (y_np.min() < 0 or y_np.max() >= p.shape[1]):
            raise ValueError(f"score: labels must be in 0..{p.shape[1] - 1} for a net with "
                             f"{net.n_outputs} output(s), got {y_np.min()}..{y_np.max()}")
        rows = np.arange(len(y_np))
        p_y = p[rows, y_np]
        others = p.copy()
        others[rows, y_np] = 0.0
        # 1 - p_y summed from the other classes: no cancellation when p_y is within rounding of 1
        error = others.sum(1)
        if method == "confidence":
            return error
        if method == "el2n":
            return np.sqrt(error ** 2 + (others ** 2).sum(1))
        others[rows, y_np] = -np.inf
        return others.max(1) - p_y
    if method == "grand":
        if not isinstance(model, nn.Module):
            raise TypeError("score('grand', ...): needs a torch.nn.Module (parameters to differentiate), "
                            f"got {type(model).__name__}")
        head = "auto" if net.head is None else net.head.name  # the model's probabilities, not logits
        return per_sample_gradient_norms(model, torch.as_tensor(x), torch.as_tensor(y_np), loss=loss,
                                         head=head).total
    if method == "boundary":
        return -boundary_distance(net, x, method=boundary_method)
    # zone
    d = unit_distances(net, x)
    names = d.activations
    use_mass = zone == "mass" or (zone == "auto" and names and all(a in BELL_SHAPED for a in names))
    if use_mass:
        if not all(a in BELL_SHAPED for a in names):
            raise ValueError(f"score('zone', zone='mass'): needs activations in {BELL_SHAPED}, got {names}; "
                             "use zone='distance'")
        acts = [a for _, _, a in net.as_mlp() if a is not None and a.name != "identity"]
        total = np.zeros(len(d.z))
        for i, act in enumerate(acts):
            z = torch.as_tensor(d.z[:, d.layer == i])
            total += (act.derivative(z) / act.max_derivative).sum(1).numpy()
        return total
    return -d.nearest()


@renamed(model="net", x="points")
def score(
    method: Literal["zone", "boundary", "confidence", "el2n", "grand", "margin", "forgetting", "random"],
    net,
    points,
    y,
    *,
    history=None,
    loss: str = "cross_entropy",
    zone: Literal["auto", "mass", "distance"] = "auto",
    boundary_method: Literal["auto", "exact", "linear"] = "auto",
    seed: int = 0,
) -> np.ndarray:
    """Score every training sample; :func:`subsample` then keeps the highest (or lowest).

    Parameters
    ----------
    method : str
        One of ``METHODS``; see the module docstring for each definition.
    net : torch.nn.Module, Net, a list of them, or None
        The (partly) trained classifier, with n_classes logits or one logit (binary, sigmoid). A list
        averages the scores over the models (e.g. seeds). Ignored by "random" and "forgetting".
    points : Tensor of shape (n_samples, *input_shape)
    y : Tensor of shape (n_samples,)
        Integer labels.
    history : array_like of bool, shape (n_records, n_samples)
        Per-sample correctness during training (``"forgetting"`` only); see :func:`correct` and
        :class:`netatlas.dynamics.CorrectnessRecorder`.
    loss : str
        Loss of the ``"grand"`` gradients (cross-entropy by default).
    zone : {"auto", "mass", "distance"}
        ``"zone"`` only: gradient mass (bump-derivative activations) or nearest-hyperplane distance;
        ``auto`` picks mass for sigmoid/tanh/erf nets and distance otherwise.
    boundary_method : {"auto", "exact", "linear"}
        ``"boundary"`` only; see :func:`netatlas.dynamics.boundary_distance`.
    seed : int
        ``"random"`` only.

    Returns
    -------
    ndarray of shape (n_samples,)
        float64; higher means "more informative / harder" (keep first with ``keep="high"``).

    Notes
    -----
    On a binary task with a sigmoid output and cross-entropy, ``dl/dz = p - y`` at the output logit,
    so confidence ``|p - y|``, EL2N ``sqrt(2)|p - y|`` and the gradient norm with respect to the output
    bias all rank samples identically (van den Berg 2016, C6) -- whatever the hidden activations.

    Examples
    --------
    >>> import torch, netatlas
    >>> model = netatlas.nets.mlp([2, 8, 1], "sigmoid", seed=0)
    >>> x, y = torch.randn(6, 2, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1] * 3)
    >>> s = score("el2n", model, x, y)
    >>> s.shape, bool((s.argsort() == score("confidence", model, x, y).argsort()).all())
    ((6,), True)
    >>> score("forgetting", None, x, y, history=[[1, 1, 0, 0, 1, 1], [0, 1, 0, 1, 1, 1]])
    array([ 1.,  0., inf,  0.,  0.,  0.])
    """
    if method not in METHODS:
        raise ValueError(f"score: unknown method {method!r}; choose one of {METHODS}")
    if zone not in ("auto", "mass", "distance"):
        raise ValueError(f"score: unknown zone {zone!r}; choose one of ('auto', 'mass', 'distance')")
    n = len(points)
    if len(y) != n:
        raise ValueError(f"score: x has {n} samples but y has {len(y)}")
    if method == "random":
        return np.random.default_rng(seed).random(n)
    if method == "forgetting":
        if history is None:
            raise ValueError("score('forgetting', ...): pass history=(n_records, n_samples) per-sample "
                             "correctness, e.g. recorded with netatlas.dynamics.CorrectnessRecorder")
        events = forgetting_events(history)
        if len(events) != n:
            raise ValueError(f"score('forgetting', ...): history has {len(events)} samples but x has {n}")
        return events
    models = list(net) if isinstance(net, (list, tuple)) else [net]
    if not models or any(m is None for m in models):
        raise TypeError(f"score({method!r}, ...): needs a model (torch.nn.Module or Net)")
    scores = [_one(method, m, points, y, loss=loss, zone=zone, boundary_method=boundary_method) for m in models]
    return np.mean(np.stack(scores), 0).astype(np.float64)
