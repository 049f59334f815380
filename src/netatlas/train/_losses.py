"""The one loss registry: each name means one loss, per sample (:func:`per_sample_loss`, reduction
"none") and averaged over a batch (:func:`mean_loss`, what :func:`~netatlas.train.fit` minimises), so
the per-sample gradients of :mod:`netatlas.dynamics` are of the loss that was trained.

Conventions (``output`` is (B, n_out) or (B,), ``y`` is (B,)):

- ``cross_entropy``: softmax cross-entropy of integer labels. With a single output logit it is binary
  cross-entropy on that logit (a sigmoid output), so one- and two-logit binary nets are handled alike.
- ``bce``: binary cross-entropy on one logit per example, targets in {0, 1}.
- ``mse``: the squared error **averaged over the outputs** (``mean_j (output_j - target_j)^2``, as
  ``torch.nn.functional.mse_loss`` reads it), against one-hot targets for integer labels with several
  outputs, else against ``y`` itself. The batch loss is the mean over examples of the per-sample loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "mean_loss", "per_sample_loss"]

LOSSES = ("cross_entropy", "bce", "mse")
"""Loss names accepted by :func:`fit`, :func:`per_sample_loss` and the dynamics lens (or pass a callable)."""


def _check(loss, where):
    if loss not in LOSSES:
        raise ValueError(f"{where}: unknown loss {loss!r}; choose one of {', '.join(LOSSES)} or pass a callable")


def _single_logit(output):
    return output.squeeze(-1) if output.ndim == 2 and output.shape[1] == 1 else output


def _is_binary(output, loss):
    return loss == "bce" or (loss == "cross_entropy" and _single_logit(output).ndim == 1)


def _mse_pair(output, y):
    """(output, target) of the same shape for mse."""
    if not y.is_floating_point() and output.ndim == 2 and output.shape[1] > 1:
        # one-hot by comparison (F.one_hot is data-dependent and cannot run under vmap)
        return output, (y.long()[..., None] == torch.arange(output.shape[1], device=y.device)).to(output.dtype)
    if y.ndim == 1:
        output = _single_logit(output)
    return output, y.to(output.dtype)


def per_sample_loss(output: torch.Tensor, y: torch.Tensor, loss: str = "cross_entropy") -> torch.Tensor:
    """Per-sample losses, shape (B,), of ``output`` (B, n_out) or (B,) against targets ``y`` (B,).

    ``loss`` is a name of :data:`LOSSES` (conventions in :mod:`netatlas.train._losses`) or a callable
    ``loss(output, y) -> (B,)`` used as given.

    Examples
    --------
    >>> import torch
    >>> per_sample_loss(torch.zeros(2, 1), torch.tensor([0, 1]))  # one logit: binary cross-entropy
    tensor([0.6931, 0.6931])
    >>> per_sample_loss(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([2]), "mse")  # (1 + 0 + 1) / 3
    tensor([0.6667])
    """
    if callable(loss):
        return loss(output, y)
    _check(loss, "per_sample_loss")
    if _is_binary(output, loss):
        logit = _single_logit(output)
        if logit.ndim != 1:
            raise ValueError(f"per_sample_loss: loss='bce' needs one logit per example, got outputs of shape "
                             f"{tuple(output.shape)}; use loss='cross_entropy' for several classes")
        return F.binary_cross_entropy_with_logits(logit, y.to(logit.dtype), reduction="none")
    if loss == "cross_entropy":
        return F.cross_entropy(output, y.long(), reduction="none")
    output, target = _mse_pair(output, y)
    squared = (output - target) ** 2
    return squared.reshape(len(squared), -1).mean(1)


def mean_loss(output: torch.Tensor, y: torch.Tensor, loss: str = "cross_entropy") -> torch.Tensor:
    """The batch loss :func:`fit` minimises: the mean over examples of :func:`per_sample_loss` (computed
    with torch's mean reduction).

    Examples
    --------
    >>> import torch
    >>> out, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    >>> all(torch.allclose(mean_loss(out, y, name), per_sample_loss(out, y, name).mean())
    ...     for name in ("cross_entropy", "mse"))
    True
    """
    _check(loss, "mean_loss")
    if _is_binary(output, loss):
        return F.binary_cross_entropy_with_logits(_single_logit(output), y.to(output.dtype))
    if loss == "cross_entropy":
        return F.cross_entropy(output, y)
    return F.mse_loss(*_mse_pair(output, y))
