"""Where the gradient comes from during training on a 2-D task: snapshots of per-sample gradient norms,
transition zones and weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from netatlas.dynamics import gradient_concentration, per_sample_gradient_norms

__all__ = ["ZoneSnapshots", "zone_snapshots"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZoneSnapshots:
    """Snapshots of one training run.

    Attributes
    ----------
    epochs : ndarray of shape (n_snapshots,)
    grad_norms : ndarray of shape (n_snapshots, n_samples)
        Per-sample gradient norm (all parameters, cross-entropy).
    concentration : ndarray of shape (n_snapshots,)
        Fraction of samples carrying 90% of the gradient.
    accuracy : ndarray of shape (n_snapshots,)
        Training accuracy.
    first_layer_w_norm : ndarray of shape (n_snapshots,)
        Mean first-layer ``||w||``.
    states : tuple of dict
        The model's ``state_dict`` at each snapshot (rebuild with ``model()``).
    x : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,)
    sizes : tuple of int
        Layer sizes of the MLP.
    activation : str
    config : dict
    """

    epochs: np.ndarray
    grad_norms: np.ndarray
    concentration: np.ndarray
    accuracy: np.ndarray
    first_layer_w_norm: np.ndarray
    states: tuple
    x: np.ndarray
    y: np.ndarray
    sizes: tuple[int, ...]
    activation: str
    config: dict

    def model(self, k: int) -> torch.nn.Module:
        """The network at snapshot ``k``."""
        from netatlas.nets import mlp

        net = mlp(list(self.sizes), self.activation)
        net.load_state_dict(self.states[k])
        return net

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "concentration": self.concentration, "accuracy": self.accuracy,
                "first_layer_w_norm": self.first_layer_w_norm, "sizes": list(self.sizes),
                "activation": self.activation, "config": self.config,
                "grad_norm_quantiles": np.quantile(self.grad_norms, [0.1, 0.5, 0.9], axis=1).T}


def zone_snapshots(data, *, activation: str = "sigmoid", widths=(8,), epochs: int = 300, n_snapshots: int = 4,
                   lr: float = 0.02, weight_decay: float = 0.0, seed: int = 0) -> ZoneSnapshots:
    """Train an MLP on a 2-D data set and snapshot where the gradient comes from.

    Parameters
    ----------
    data : Dataset
        A data set with 2-D inputs.
    activation : str
        Hidden activation.
    widths : sequence of int
    epochs : int
        Full-batch Adam epochs.
    n_snapshots : int
        Snapshots at epochs ``epochs x (k/(n_snapshots - 1))^2``, k = 0..n_snapshots-1 (denser early,
        where training changes fastest).

    Returns
    -------
    ZoneSnapshots

    Examples
    --------
    >>> import netatlas
    >>> snaps = zone_snapshots(netatlas.data.moons(n=40, seed=0), epochs=4, n_snapshots=3)
    >>> snaps.epochs.tolist(), snaps.grad_norms.shape
    ([0, 1, 4], (3, 40))
    """
    from netatlas.nets import mlp
    from netatlas.train import fit

    if tuple(data.x.shape[1:]) != (2,):
        raise ValueError(f"zone_snapshots: needs a data set with 2-D inputs, got inputs of shape "
                         f"{tuple(data.x.shape[1:])}; pick one of moons, circles, xor, spirals, sinusoid, blobs")
    if n_snapshots < 2:
        raise ValueError(f"zone_snapshots: n_snapshots must be >= 2, got {n_snapshots}")
    sizes = (2, *[int(w) for w in widths], int(data.n_classes))
    model = mlp(list(sizes), activation, seed=seed)
    # quadratic spacing: early training changes fastest
    wanted = np.unique(np.round(epochs * np.linspace(0, 1, n_snapshots) ** 2).astype(int))
    history = fit(model, data, lr=lr, epochs=epochs, weight_decay=weight_decay, seed=seed,
                  snapshot_steps=wanted.tolist(), progress=False)
    steps = np.array([s for s, _ in history.snapshots])
    states = tuple(state for _, state in history.snapshots)
    grads, conc, acc, wn = [], [], [], []
    for state in states:
        net = mlp(list(sizes), activation)
        net.load_state_dict(state)
        g = per_sample_gradient_norms(net, data.x, data.y).total
        grads.append(g)
        conc.append(gradient_concentration(g))
        with torch.no_grad():
            acc.append(float((net(data.x).argmax(1) == data.y).float().mean()))
        wn.append(float(torch.linalg.vector_norm(net[0].weight.detach().double(), dim=1).mean()))
    config = dict(dataset=getattr(data, "name", "?"), activation=activation, widths=list(widths), epochs=epochs,
                  lr=lr, weight_decay=weight_decay, seed=seed, optimizer="adam", batch="full")
    logger.info("zone_snapshots: %d snapshots at epochs %s", len(steps), steps.tolist())
    return ZoneSnapshots(steps, np.stack(grads), np.array(conc), np.array(acc), np.array(wn), states,
                         data.x.double().numpy(), data.y.numpy(), sizes, activation, config)
