"""A batched, damped, saddle-free Newton optimiser for many small networks at once.

The validation trains dozens of tiny networks (tens of parameters each) to a precision well below eps,
where first-order methods crawl: the features/weights/bias of a softmax layer live on scales sqrt(eps),
sqrt(eps) and eps, so the loss is badly conditioned (condition number ~ 1/eps). Newton's method is
affine-invariant and converges quadratically; the per-network Hessians are formed with
``torch.func.vmap(torch.func.hessian(loss))`` over stacked parameter vectors.

# NOTE [saddle-free Levenberg-Marquardt]
Each step solves (H + lam * max|diag H| I) d = -g by a Cholesky factorisation where that matrix is
positive definite; where it is not (near a saddle) it uses |H|, the Hessian with its eigenvalues
replaced by their absolute values, which escapes saddles instead of being attracted to them (Dauphin
et al. 2014). lam is adapted per network: divided by 5 after a step that lowers the loss, multiplied
by 5 after one that does not (the step is then rejected). Directions with zero curvature (the GL(k)
invariance of factorised layers) get no step because the gradient has no component along them.

# NOTE [threads]
The tensors here are tiny (tens of parameters per network); PyTorch's intra-op thread pool only adds
overhead, and on a loaded machine batched LAPACK calls (eigh, cholesky_solve) and einsums became 100x
slower with 2 threads than with 1. newton_minimize therefore runs with ``torch.set_num_threads(1)`` and
restores the previous setting on exit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch.func import grad, hessian, vmap

from netatlas._threads import torch_threads

__all__ = ["newton_minimize"]

logger = logging.getLogger(__name__)

#: Converged when the predicted decrease -g.d falls below this times max(loss, 1) (loss normalised),
#: or when a step is rejected although it predicted less than ROUNDING_LIMIT (float64 rounding of the loss).
NEWTON_TOLERANCE = 1e-18
ROUNDING_LIMIT = 1e-11


def newton_minimize(loss: Callable, theta0: torch.Tensor, data: tuple, *, derivatives: Callable | None = None,
                    max_iter: int = 200, tolerance: float = NEWTON_TOLERANCE, damping: float = 1e-2):
    """Minimise ``loss(theta_b, *data_b)`` independently for every row b of ``theta0``.

    Parameters
    ----------
    loss : callable
        Without ``derivatives``: ``loss(theta, *data) -> scalar tensor`` for one problem, theta of
        shape (n_params,); gradients and Hessians come from ``torch.func`` (vmap of grad / hessian).
        With ``derivatives``: the batched loss, ``loss(theta (B, P), *data) -> (B,)``.
    theta0 : Tensor of shape (n_problems, n_params), float64
    data : tuple of Tensors
        Each of shape (n_problems, ...): the per-problem data (vmapped along dim 0).
    derivatives : callable, optional
        ``derivatives(theta (B, P), *data) -> (gradient (B, P), hessian (B, P, P))``, a closed form.
    max_iter : int
    tolerance : float
        See ``NEWTON_TOLERANCE``.
    damping : float
        Initial relative damping lam.

    Returns
    -------
    theta : Tensor of shape (n_problems, n_params)
    losses : Tensor of shape (n_problems,)
    n_iter : Tensor of shape (n_problems,) of int
        Iterations until each problem converged (max_iter if it did not).
    converged : Tensor of shape (n_problems,) of bool

    Examples
    --------
    Three problems min_t ||t - a||^2 + sum t^4, with closed-form derivatives (leave ``derivatives`` out
    to get them from torch.func):

    >>> f = lambda t, a: ((t - a) ** 2).sum(1) + (t ** 4).sum(1)
    >>> df = lambda t, a: (2 * (t - a) + 4 * t ** 3, torch.diag_embed(2 + 12 * t ** 2))
    >>> a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> start = torch.zeros(3, 2, dtype=torch.float64)
    >>> theta, losses, n_iter, ok = newton_minimize(f, start, (a,), derivatives=df)
    >>> bool(ok.all()), theta[0].round(decimals=4)
    (True, tensor([0.5898, 0.0000], dtype=torch.float64))
    """
    if derivatives is None:
        value = vmap(loss)
        gradient, curvature = vmap(grad(loss)), vmap(hessian(loss))

        def derivatives(th, *sub):
            return gradient(th, *sub), curvature(th, *sub)
    else:
        value = loss
    with torch_threads(1):
        return _minimize(value, derivatives, theta0, data, max_iter, tolerance, damping)


def _minimize(value, derivatives, theta0, data, max_iter, tolerance, damping):
    theta = theta0.clone()
    n, n_params = theta.shape
    eye = torch.eye(n_params, dtype=theta.dtype)
    current = value(theta, *data)
    lam = torch.full((n,), float(damping), dtype=theta.dtype)
    done = torch.zeros(n, dtype=torch.bool)
    n_iter = torch.full((n,), max_iter, dtype=torch.int64)
    for it in range(max_iter):
        active = torch.nonzero(~done).flatten()
        if active.numel() == 0:
            break
        th = theta[active]
        sub = tuple(d[active] for d in data)
        g, h = derivatives(th, *sub)
        scale = h.diagonal(dim1=1, dim2=2).abs().amax(1).clamp(min=1e-300)
        damp = (lam[active] * scale)[:, None, None]
        chol, info = torch.linalg.cholesky_ex(h + damp * eye)
        # d = -(L L^T)^{-1} g by two triangular solves (cholesky_solve is slow for small batches)
        half = torch.linalg.solve_triangular(chol, -g.unsqueeze(-1), upper=False)
        step = torch.linalg.solve_triangular(chol.transpose(1, 2), half, upper=True).squeeze(-1)
        indefinite = torch.nonzero(info != 0).flatten()
        if indefinite.numel():
            eigval, eigvec = torch.linalg.eigh(h[indefinite])
            damped = eigval.abs() + damp[indefinite, 0]
            coeff = (eigvec.transpose(1, 2) @ g[indefinite].unsqueeze(-1)).squeeze(-1) / damped
            step[indefinite] = -(eigvec @ coeff.unsqueeze(-1)).squeeze(-1)
        predicted = -(g * step).sum(1)
        trial = value(th + step, *sub)
        accept = trial <= current[active]
        theta[active] = torch.where(accept[:, None], th + step, th)
        current[active] = torch.where(accept, trial, current[active])
        lam[active] = torch.where(accept, lam[active] / 5, lam[active] * 5).clamp(1e-15, 1e10)
        # stop only on nearly undamped (Newton) steps: heavily damped steps predict little anywhere
        size = current[active].abs().clamp(min=1.0)
        newton_like = (lam[active] < 1e-4) & (info == 0)
        small = (predicted <= tolerance * size) | (~accept & (predicted <= ROUNDING_LIMIT * size))
        finished = newton_like & small
        finished |= lam[active] >= 1e10
        n_iter[active[finished]] = it + 1
        done[active[finished]] = True
    converged = done & (lam < 1e10)  # lam at its cap: no step lowers the loss, yet the gradient is not small
    logger.debug("newton: %d/%d problems converged", int(converged.sum()), n)
    return theta, current, n_iter, converged
