"""Self-supervised objectives (Barlow Twins, SimCLR's NT-Xent) and :func:`fit_ssl`, a seeded loop that
trains an encoder + projector on two augmented views of unlabelled images.

# NOTE [the two objectives]
Both see a batch of N images twice, as projections ``z1, z2`` of shape (N, D).

- Barlow Twins (Zbontar et al. 2021): standardise every projection dimension over the batch
  (``(z - mean) / sqrt(var + eps)``, biased variance, as ``BatchNorm1d(affine=False)``), form the
  cross-correlation ``C = z1n^T z2n / N`` (D x D) and penalise
  ``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2``: views agree (invariance) and dimensions are
  decorrelated (redundancy reduction). It is 0 exactly when ``C = I``.
- NT-Xent (SimCLR, Chen et al. 2020): cosine similarities ``s_ab = <u_a, u_b>`` of the 2N unit-normalised
  projections; each of the 2N anchors a is classified against the other 2N - 1 with its twin as the
  positive: ``l_a = -log( exp(s_{a,a+}/t) / sum_{b != a} exp(s_ab/t) )``, averaged over anchors.
  Identical views whose N projections are mutually orthogonal give ``s = 1`` for the positive and 0 for
  the 2N - 2 negatives, so ``l = log(1 + (2N - 2) exp(-1/t))``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netatlas.train._augment import Augmentation

__all__ = ["OBJECTIVES", "SSLHistory", "barlow_twins_loss", "fit_ssl", "nt_xent_loss", "ssl_loss"]

logger = logging.getLogger(__name__)

OBJECTIVES = ("barlow", "simclr")
"""Objective names :func:`fit_ssl` accepts."""

# Added to the batch variance before standardising in Barlow Twins (BatchNorm1d's default).
BARLOW_EPS = 1e-5


def _check_pair(z1, z2, caller):
    for name, z in (("z1", z1), ("z2", z2)):
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{caller}: {name} must be a torch.Tensor of shape (N, D); got {type(z).__name__}")
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"{caller}: z1 and z2 must both have shape (N, D); got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError(f"{caller}: needs a batch of at least 2 examples; got N={z1.shape[0]}")


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, *, lambda_offdiag: float = 5e-3,
                      eps: float = BARLOW_EPS) -> torch.Tensor:
    """Barlow Twins loss ``sum_i (1 - C_ii)^2 + lambda_offdiag * sum_{i != j} C_ij^2``.

    Parameters
    ----------
    z1, z2 : Tensor of shape (N, D)
        Projections of two views of the same N images (row n of each comes from image n).
    lambda_offdiag : float
        Weight of the redundancy-reduction (off-diagonal) term; 5e-3 as in the paper.
    eps : float
        Added to the per-dimension batch variance before standardising.

    Returns
    -------
    Tensor of shape ()
        The loss (sum over the D x D cross-correlation matrix, not a mean).

    Notes
    -----
    ``C = z1n^T z2n / N`` with ``zn = (z - mean_batch) / sqrt(var_batch + eps)`` (biased variance).
    See NOTE [the two objectives].

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    >>> float(barlow_twins_loss(z, z)) > 0                   # random columns are correlated
    True
    >>> barlow_twins_loss(z, z[:3])
    Traceback (most recent call last):
    ...
    ValueError: barlow_twins_loss: z1 and z2 must both have shape (N, D); got (16, 4) and (3, 4)
    """
    _check_pair(z1, z2, "barlow_twins_loss")
    n = z1.shape[0]
    z1n = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    z2n = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    c = z1n.T @ z2n / n
    diagonal = torch.diagonal(c)
    on = (1 - diagonal).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return on + lambda_offdiag * off


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy (NT-Xent), averaged over the 2N anchors.

    Parameters
    ----------
    z1, z2 : Tensor of shape (N, D)
        Projections of two views of the same N images.
    temperature : float
        Softmax temperature t (> 0).

    Returns
    -------
    Tensor of shape ()

    Notes
    -----
    See NOTE [the two objectives]; identical views with orthogonal projections give
    ``log(1 + (2N - 2) exp(-1/t))``.

    Examples
    --------
    >>> import math, torch
    >>> z = torch.eye(4)                                     # 4 orthogonal projections, identical views
    >>> float(nt_xent_loss(z, z, temperature=0.5)), math.log(1 + 6 * math.exp(-2))
    (0.59443..., 0.59443...)
    """
    _check_pair(z1, z2, "nt_xent_loss")
    if not temperature > 0:
        raise ValueError(f"nt_xent_loss: temperature must be > 0; got {temperature!r}")
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2], 0), dim=1)
    logits = u @ u.T / temperature
    # an anchor is never its own negative: remove the diagonal from the softmax
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=u.device), -math.inf)
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(u.device)
    return F.cross_entropy(logits, positive)


def ssl_loss(objective: Literal["barlow", "simclr"], z1, z2, *, temperature: float = 0.5,
             lambda_offdiag: float = 5e-3) -> torch.Tensor:
    """Dispatch to :func:`barlow_twins_loss` or :func:`nt_xent_loss` by name.

    >>> import torch
    >>> ssl_loss("simclr", torch.eye(2), torch.eye(2)).shape
    torch.Size([])
    """
    if objective == "barlow":
        return barlow_twins_loss(z1, z2, lambda_offdiag=lambda_offdiag)
    if objective == "simclr":
        return nt_xent_loss(z1, z2, temperature=temperature)
    raise ValueError(f"ssl_loss: unknown objective {objective!r}; choose one of {OBJECTIVES}")


@dataclass(frozen=True)
class SSLHistory:
    """What :func:`fit_ssl` did.

    Attributes
    ----------
    loss : ndarray of shape (n_epochs,)
        Mean loss over each epoch's batches (computed before each update).
    step_loss : ndarray of shape (n_steps,)
        Loss of every update.
    objective : str
        ``"barlow"`` or ``"simclr"``.
    n_steps : int
    wall_time : float
        Seconds.
    settings : dict
        Every argument that shaped the run (seed, lr, batch size, augmentation, ...).
    """

    loss: np.ndarray
    step_loss: np.ndarray
    objective: str
    n_steps: int
    wall_time: float
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"loss": self.loss.tolist(), "objective": self.objective, "n_steps": self.n_steps,
                "n_epochs": len(self.loss), "final_loss": float(self.loss[-1]) if len(self.loss) else None,
                "wall_time": self.wall_time, "settings": dict(self.settings)}


def _images_of(images):
    if hasattr(images, "x") and hasattr(images, "n_classes"):  # a netatlas Dataset: labels unused
        images = images.x
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"fit_ssl: images must be a tensor of shape (N, C, H, W) or a netatlas Dataset; got "
                        f"{type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"fit_ssl: images must have shape (N, C, H, W); got {tuple(images.shape)} "
                         "(grey images of shape (N, H, W): pass images[:, None])")
    return images


def fit_ssl(
    encoder: nn.Module,
    projector: nn.Module,
    images,
    objective: Literal["barlow", "simclr"] = "barlow",
    *,
    augmentation: Augmentation | None = None,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    temperature: float = 0.5,
    lambda_offdiag: float = 5e-3,
    seed: int = 0,
    progress: bool = False,
) -> SSLHistory:
    """Train ``encoder`` and ``projector`` in place with a self-supervised objective (no labels).

    Each step draws two augmented views of a batch, computes ``z = projector(encoder(view))`` for both and
    takes an Adam step on :func:`barlow_twins_loss` or :func:`nt_xent_loss`.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps images (B, C, H, W) to representations (B, m); this is what the metric lens analyses.
    projector : torch.nn.Module
        Maps representations (B, m) to projections (B, D) the loss sees (may contain BatchNorm).
    images : Tensor of shape (N, C, H, W) or netatlas Dataset
        Unlabelled training images (a Dataset's ``x``; its labels are ignored).
    objective : {"barlow", "simclr"}
    augmentation : Augmentation, optional
        The view generator; default ``Augmentation.for_image_size(W)`` (shift ~W/10 px, +-15 degrees,
        zoom 0.9-1.1, noise 0.05, clamp to [0, 1]).
    epochs : int
        Passes over the images (>= 1).
    batch_size : int
        Images per step (>= 2; the last incomplete batch of an epoch is dropped when N > batch_size).
    lr, weight_decay : float
        Adam's learning rate and L2 penalty.
    temperature : float
        NT-Xent temperature (simclr).
    lambda_offdiag : float
        Barlow Twins off-diagonal weight (barlow).
    seed : int
        Seeds the one private generator that draws the shuffles and the augmentations (the global RNG is
        neither seeded nor read; initialisation is the caller's).
    progress : bool
        Show a tqdm bar on stderr (default off).

    Returns
    -------
    SSLHistory

    Notes
    -----
    Deterministic on CPU: same initial parameters, images and arguments give bit-identical parameters.
    Both modules are in train mode while training and are left in the mode they were in.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.GELU())
    >>> projector = nn.Linear(16, 8)
    >>> images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> history = fit_ssl(encoder, projector, images, "simclr", epochs=3, batch_size=32, seed=0)
    >>> history.loss.shape, history.n_steps
    ((3,), 6)
    >>> fit_ssl(encoder, projector, images, "byol")
    Traceback (most recent call last):
    ...
    ValueError: fit_ssl: unknown objective 'byol'; choose one of ('barlow', 'simclr')
    """
    started = time.perf_counter()
    for name, module in (("encoder", encoder), ("projector", projector)):
        if not isinstance(module, nn.Module):
            raise TypeError(f"fit_ssl: {name} must be a torch.nn.Module; got {type(module).__name__}")
    if objective not in OBJECTIVES:
        raise ValueError(f"fit_ssl: unknown objective {objective!r}; choose one of {OBJECTIVES}")
    images = _images_of(images)
    for name, value, minimum in (("epochs", epochs, 1), ("batch_size", batch_size, 2), ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"fit_ssl: {name} must be an int >= {minimum}; got {value!r}")
    for name, value in (("lr", lr), ("temperature", temperature)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"fit_ssl: {name} must be a finite number > 0; got {value!r}")
    if augmentation is None:
        augmentation = Augmentation.for_image_size(images.shape[-1])
    elif not isinstance(augmentation, Augmentation) and not callable(augmentation):
        raise TypeError(f"fit_ssl: augmentation must be an Augmentation or a callable (images, *, generator) -> "
                        f"images; got {type(augmentation).__name__}")
    n = images.shape[0]
    if n < 2:
        raise ValueError(f"fit_ssl: needs at least 2 images; got {n}")
    batch_size = min(int(batch_size), n)
    n_batches = n // batch_size  # drop the last incomplete batch: tiny batches make C and the softmax noisy

    parameters = [p for p in list(encoder.parameters()) + list(projector.parameters()) if p.requires_grad]
    if not parameters:
        raise ValueError("fit_ssl: encoder and projector have no trainable parameters")
    dtype = parameters[0].dtype
    images = images.to(dtype)
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(int(seed))
    modes = (encoder.training, projector.training)
    encoder.train()
    projector.train()
    epoch_loss, step_loss = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"fit_ssl ({objective})", unit="epoch", file=sys.stderr, leave=False)
    try:
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for i in range(n_batches):
                batch = images[order[i * batch_size:(i + 1) * batch_size]]
                view1 = augmentation(batch, generator=generator)
                view2 = augmentation(batch, generator=generator)
                z1, z2 = projector(encoder(view1)), projector(encoder(view2))
                loss = ssl_loss(objective, z1, z2, temperature=temperature, lambda_offdiag=lambda_offdiag)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                step_loss.append(value)
                total += value
            epoch_loss.append(total / n_batches)
            logger.debug("fit_ssl: epoch %d loss %.6g", epoch, epoch_loss[-1])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{epoch_loss[-1]:.4g}")
    finally:
        if bar is not None:
            bar.close()
        encoder.train(modes[0])
        projector.train(modes[1])
    settings = dict(objective=objective, epochs=int(epochs), batch_size=batch_size, lr=float(lr),
                    weight_decay=float(weight_decay), temperature=float(temperature),
                    lambda_offdiag=float(lambda_offdiag), seed=int(seed), n_images=n,
                    augmentation=augmentation.to_dict() if hasattr(augmentation, "to_dict") else repr(augmentation))
    history = SSLHistory(np.asarray(epoch_loss), np.asarray(step_loss), objective, len(step_loss),
                         time.perf_counter() - started, settings)
    logger.info("fit_ssl: %s, %d steps, final loss %.4g", objective, history.n_steps, epoch_loss[-1])
    return history
