"""A small, seeded, deterministic training loop: :func:`fit`."""

from __future__ import annotations

import functools
import logging
import math
import numbers
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import torch
from torch import nn

from netatlas.train._history import History, StepInfo
from netatlas.train._losses import LOSSES, mean_loss

__all__ = ["fit", "LOSSES", "OPTIMIZERS"]

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
"""Optimizer names :func:`fit` accepts (or pass a ``torch.optim.Optimizer`` class or a factory)."""

# Evaluation (test metrics, final loss) runs in chunks of this many examples to bound memory.
_EVAL_CHUNK = 8192


def fit(
    model: nn.Module,
    data,
    *,
    loss: Literal["cross_entropy", "bce", "mse"] | Callable = "cross_entropy",
    optimizer: Literal["adam", "adamw", "sgd"] | type | Callable = "adam",
    lr: float = 1e-2,
    epochs: int = 100,
    batch_size: int | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    shuffle: bool = True,
    seed: int = 0,
    callbacks: Iterable[Callable[[StepInfo], bool | None]] | Callable = (),
    snapshot_steps: Iterable[int] | Literal["epoch"] | None = None,
    progress: bool | None = None,
    x_test=None,
    y_test=None,
    eval_every: int = 1,
) -> History:
    """Train ``model`` in place on ``data`` and return the :class:`History` of the run.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place, in its own dtype and device (inputs are cast to them). It is put in train mode
        while training and left in the mode it was in.
    data : Dataset or (x, y)
        A :class:`netatlas.data.Dataset` (its test split is used for test metrics unless ``x_test`` is
        given) or a pair ``x`` of shape (N, *input_shape), ``y`` of shape (N,) (tensors or arrays).
        Integer ``y`` means classification (accuracy is reported); float ``y`` regression.
    loss : {"cross_entropy", "bce", "mse"} or callable
        The names of :data:`netatlas.train.LOSSES`, one meaning each (see :func:`per_sample_loss`; the
        batch loss is the mean of the per-sample ones): ``cross_entropy``: outputs (B, C) are logits,
        ``y`` int labels; with one logit per example it is binary cross-entropy. ``bce``: one logit per
        example, output (B,) or (B, 1), ``y`` in {0, 1}. ``mse``: squared error averaged over outputs and
        examples; integer labels with a (B, C) output, C > 1, are one-hot encoded. A callable gets
        ``(output, y)`` and returns a scalar mean loss.
    optimizer : {"adam", "adamw", "sgd"}, torch.optim.Optimizer subclass, or callable
        A name, a class (called as ``cls(params, lr=lr, weight_decay=weight_decay)``), or a factory
        ``params -> Optimizer`` (then ``lr``, ``momentum`` and ``weight_decay`` are the factory's job).
    lr : float
        Learning rate (> 0).
    epochs : int
        Passes over the training data (>= 0).
    batch_size : int, optional
        Mini-batch size; ``None`` (default) is full batch.
    momentum : float
        Momentum for ``"sgd"``.
    weight_decay : float
        L2 penalty passed to the optimizer (decoupled for ``"adamw"``).
    shuffle : bool
        Reshuffle the training set every epoch (mini-batch only), with a private generator seeded by
        ``seed``.
    seed : int
        Seeds the private shuffling generator. The global torch RNG is neither seeded nor read, so
        dropout draws from it (seed it yourself if you use dropout). Model initialisation is the
        caller's (e.g. ``netatlas.nets.mlp(..., seed=...)``).
    callbacks : callable or sequence of callables
        Each is called as ``callback(info)`` with a :class:`StepInfo` at the end of every epoch;
        returning True stops training after that epoch.
    snapshot_steps : iterable of int, "epoch", or None
        Steps (numbers of updates done; 0 = before training) at which to store a detached copy of the
        model's ``state_dict()``; ``"epoch"`` means step 0 and the end of every epoch.
    progress : bool, optional
        Show a tqdm bar on stderr; ``None`` (default) shows it only when stderr is a terminal.
    x_test, y_test : tensors or arrays, optional
        Test data evaluated every ``eval_every`` epochs (overrides the Dataset's test split).
    eval_every : int
        Evaluate the test data every this many epochs (and at the last); other entries are NaN.

    Returns
    -------
    History
        Per-epoch loss/accuracy, test metrics, final training loss/accuracy, snapshots, wall time.

    Raises
    ------
    TypeError
        ``model`` is not a module with parameters, or ``data`` is not a Dataset or (x, y) pair.
    ValueError
        Unknown loss/optimizer name (the message lists the choices), bad numbers, mismatched shapes.

    Notes
    -----
    Deterministic on CPU: two runs from the same initial parameters with the same arguments give
    bit-identical parameters (full batch uses the data in order; mini-batches use
    ``torch.randperm(N, generator=torch.Generator().manual_seed(seed))`` each epoch).
    The epoch loss is the mean over the epoch's batches of the loss computed *before* each update;
    ``final_loss`` is the loss after the last update.

    Examples
    --------
    >>> import netatlas
    >>> data = netatlas.data.moons(n=64, seed=0)
    >>> model = netatlas.nets.mlp([2, 16, 2], seed=0)
    >>> history = fit(model, data, epochs=50, lr=0.05, snapshot_steps=[0, 50])
    >>> bool(history.final_loss < history.loss[0]), history.snapshot_steps
    (True, [0, 50])
    >>> fit(model, data, loss="hinge")
    Traceback (most recent call last):
    ...
    ValueError: fit: unknown loss 'hinge'; choose one of 'cross_entropy', 'bce', 'mse', or pass a callable.
    """
    started = time.perf_counter()
    # ---- validate everything before any work -------------------------------------------------------
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit: model must be a torch.nn.Module, got {type(model).__name__}.")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("fit: the model has no trainable parameters (none with requires_grad=True).")
    reference = next((p for p in parameters if p.is_floating_point()), parameters[0])
    dtype, device = reference.dtype, reference.device

    x, y, test_from_data = _unpack(data)
    x, y = _prepare(x, y, dtype, device, "data")
    if x_test is not None or y_test is not None:
        if x_test is None or y_test is None:
            raise ValueError("fit: give both x_test and y_test, or neither.")
        test = _prepare(x_test, y_test, dtype, device, "x_test/y_test")
    elif test_from_data is not None and len(test_from_data[0]) > 0:
        test = _prepare(*test_from_data, dtype, device, "data's test split")
    else:
        test = None
    if test is not None and test[0].shape[1:] != x.shape[1:]:
        raise ValueError(f"fit: test inputs have shape {tuple(test[0].shape[1:])} per example but training "
                         f"inputs {tuple(x.shape[1:])}.")

    loss_name, loss_fn = _resolve_loss(loss)
    lr = _check_number("lr", lr, minimum=0.0, strict=True)
    momentum = _check_number("momentum", momentum, minimum=0.0)
    weight_decay = _check_number("weight_decay", weight_decay, minimum=0.0)
    epochs = _check_int("epochs", epochs, minimum=0)
    eval_every = _check_int("eval_every", eval_every, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    n = len(x)
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, minimum=1)
    full_batch = batch_size is None or batch_size >= n
    batches_per_epoch = 1 if full_batch else math.ceil(n / batch_size)
    total_steps = epochs * batches_per_epoch
    wanted_steps, every_epoch = _resolve_snapshots(snapshot_steps, total_steps)
    callbacks = _resolve_callbacks(callbacks)
    opt, optimizer_name = _make_optimizer(optimizer, parameters, lr, momentum, weight_decay)
    classification = not y.is_floating_point() or loss_name == "bce"
    _probe(model, x, y, loss_name, loss_fn)
    show = progress if progress is not None else _stderr_is_terminal()

    # ---- train ----------------------------------------------------------------------------------------
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    snapshots: list[tuple[int, dict]] = []
    epoch_loss, epoch_accuracy, step_losses = [], [], []
    test_losses, test_accuracies = [], []
    step, stopped_early, n_epochs_run = 0, False, 0

    def take_snapshot():
        snapshots.append((step, {k: v.detach().clone() for k, v in model.state_dict().items()}))

    if 0 in wanted_steps or every_epoch:
        take_snapshot()
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="fit", unit="epoch", file=sys.stderr, leave=False)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            order = None if full_batch or not shuffle else torch.randperm(n, generator=generator)
            sum_loss, n_correct = 0.0, 0
            for start in range(0, n, n if full_batch else batch_size):
                index = slice(start, start + (n if full_batch else batch_size))
                xb, yb = (x[index], y[index]) if order is None else (x[order[index]], y[order[index]])
                output = model(xb)
                value = loss_fn(output, yb)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                step += 1
                batch_loss = float(value.detach())
                step_losses.append(batch_loss)
                sum_loss += batch_loss * len(xb)
                if classification:
                    n_correct += int(_correct(output.detach(), yb, loss_name).sum())
                if step in wanted_steps:
                    take_snapshot()
            n_epochs_run = epoch
            if every_epoch and (not snapshots or snapshots[-1][0] != step):
                take_snapshot()
            epoch_loss.append(sum_loss / n)
            epoch_accuracy.append(n_correct / n if classification else math.nan)
            test_loss = test_accuracy = None
            if test is not None and (epoch % eval_every == 0 or epoch == epochs):
                test_loss, test_accuracy = _evaluate(model, *test, loss_fn, loss_name, classification)
            test_losses.append(math.nan if test_loss is None else test_loss)
            test_accuracies.append(math.nan if test_accuracy is None else test_accuracy)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{epoch_loss[-1]:.4g}")
            logger.debug("fit: epoch %d step %d loss %.6g", epoch, step, epoch_loss[-1])
            info = StepInfo(epoch=epoch, step=step, loss=epoch_loss[-1],
                            accuracy=epoch_accuracy[-1] if classification else None,
                            test_loss=test_loss, test_accuracy=test_accuracy, model=model)
            if any([bool(callback(info)) for callback in callbacks]):
                stopped_early = epoch < epochs
                break
        if not math.isfinite(epoch_loss[-1] if epoch_loss else 0.0):
            warnings.warn(f"fit: the training loss is {epoch_loss[-1]} after {n_epochs_run} epochs; "
                          "try a smaller lr.", RuntimeWarning, stacklevel=2)
        final_loss, final_accuracy = _evaluate(model, x, y, loss_fn, loss_name, classification)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)

    if stopped_early and test is not None and test_losses and math.isnan(test_losses[-1]):
        test_losses[-1], test_accuracies[-1] = _evaluate(model, *test, loss_fn, loss_name, classification)
        model.train(was_training)
    settings = dict(loss=loss_name, optimizer=optimizer_name, lr=lr, epochs=epochs, batch_size=batch_size,
                    momentum=momentum, weight_decay=weight_decay, shuffle=bool(shuffle), seed=seed,
                    eval_every=eval_every, n_train=n, n_test=0 if test is None else len(test[0]),
                    dtype=str(dtype).removeprefix("torch."))
    history = History(
        loss=np.asarray(epoch_loss, dtype=np.float64),
        accuracy=np.asarray(epoch_accuracy, dtype=np.float64) if classification else None,
        step_loss=np.asarray(step_losses, dtype=np.float64),
        test_loss=None if test is None else np.asarray(test_losses, dtype=np.float64),
        test_accuracy=None if test is None or not classification else np.asarray(test_accuracies),
        final_loss=final_loss,
        final_accuracy=final_accuracy,
        snapshots=tuple(snapshots),
        n_epochs=n_epochs_run,
        n_steps=step,
        stopped_early=stopped_early,
        wall_time=time.perf_counter() - started,
        settings=settings,
    )
    logger.info("fit: %s", history)
    return history


# ------------------------------------------------------------------------------------------------------
# Helpers (trust their inputs: fit validated them).


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _unpack(data):
    if hasattr(data, "x") and hasattr(data, "y"):
        test = (data.x_test, data.y_test) if getattr(data, "x_test", None) is not None else None
        return data.x, data.y, test
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1], None
    raise TypeError(f"fit: data must be a netatlas.data.Dataset or an (x, y) pair, got {type(data).__name__}.")


def _prepare(x, y, dtype, device, what):
    try:
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"fit: {what} must be tensors or arrays ({exc}).") from None
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"fit: {what} has no examples (x of shape {tuple(x.shape)}).")
    if len(y) != len(x):
        raise ValueError(f"fit: {what} has {len(x)} inputs but {len(y)} targets.")
    if y.dtype == torch.bool:
        y = y.long()
    x = x.to(device=device, dtype=dtype)
    y = y.to(device=device, dtype=dtype) if y.is_floating_point() else y.to(device=device, dtype=torch.long)
    return x, y


def _resolve_loss(loss):
    if callable(loss) and not isinstance(loss, str):
        return getattr(loss, "__name__", type(loss).__name__), loss
    if loss in LOSSES:
        return loss, functools.partial(_named_loss, loss=loss)
    raise ValueError(f"fit: unknown loss {loss!r}; choose one of 'cross_entropy', 'bce', 'mse', "
                     "or pass a callable.")


def _named_loss(output, y, loss):
    return mean_loss(output, y, loss)


def _single_logit(output):
    return output.squeeze(-1) if output.ndim == 2 and output.shape[1] == 1 else output


def _correct(output, y, loss_name):
    """Boolean (B,): whether each prediction is right (classification)."""
    if output.ndim == 2 and output.shape[1] > 1:
        return output.argmax(dim=1) == y
    threshold = 0.5 if loss_name == "mse" else 0.0  # mse regresses the label; otherwise a logit
    return (_single_logit(output) > threshold).long() == (y > 0.5).long()


@torch.no_grad()
def _evaluate(model, x, y, loss_fn, loss_name, classification):
    model.eval()
    total_loss, n_correct = 0.0, 0
    for start in range(0, len(x), _EVAL_CHUNK):
        xb, yb = x[start:start + _EVAL_CHUNK], y[start:start + _EVAL_CHUNK]
        output = model(xb)
        total_loss += float(loss_fn(output, yb)) * len(xb)
        if classification:
            n_correct += int(_correct(output, yb, loss_name).sum())
    return total_loss / len(x), (n_correct / len(x) if classification else None)


@torch.no_grad()
def _probe(model, x, y, loss_name, loss_fn):
    """Run two examples through model and loss once, turning shape errors into one clear message."""
    was_training = model.training
    model.eval()
    try:
        try:
            output = model(x[:2])
        except Exception as exc:
            raise ValueError(f"fit: the model fails on inputs of shape {tuple(x.shape[1:])} per example: "
                             f"{type(exc).__name__}: {exc}") from None
        one_logit = _single_logit(output).ndim == 1
        if loss_name == "cross_entropy":
            if y.is_floating_point():
                raise ValueError("fit: loss 'cross_entropy' needs integer class labels y; got float targets "
                                 "(use loss='mse' for regression).")
            if one_logit:  # binary cross-entropy on the one logit (see netatlas.train._losses)
                if not bool(((y == 0) | (y == 1)).all()):
                    raise ValueError("fit: loss 'cross_entropy' with one output logit is binary cross-entropy "
                                     "and needs labels in {0, 1}.")
            elif output.ndim != 2:
                raise ValueError(f"fit: loss 'cross_entropy' needs outputs of shape (B, n_classes) or one logit "
                                 f"per example; the model gives {tuple(output.shape)}.")
            elif int(y.min()) < 0 or int(y.max()) >= output.shape[1]:
                raise ValueError(f"fit: labels must be in 0..{output.shape[1] - 1} for a model with "
                                 f"{output.shape[1]} outputs; got labels in {int(y.min())}..{int(y.max())}.")
        elif loss_name == "bce":
            if _single_logit(output).ndim != 1:
                raise ValueError(f"fit: loss 'bce' needs one logit per example (output (B,) or (B, 1)); "
                                 f"the model gives {tuple(output.shape)} (use 'cross_entropy').")
            if not bool(((y == 0) | (y == 1)).all()):
                raise ValueError("fit: loss 'bce' needs targets in {0, 1}.")
        try:
            value = loss_fn(output, y[:2])
        except Exception as exc:
            raise ValueError(f"fit: loss {loss_name!r} fails on outputs of shape {tuple(output.shape)} and "
                             f"targets of shape {tuple(y[:2].shape)}: {exc}") from None
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"fit: the loss must return a scalar tensor, got {value!r:.80}.")
    finally:
        model.train(was_training)


def _resolve_snapshots(snapshot_steps, total_steps):
    if snapshot_steps is None:
        return frozenset(), False
    if isinstance(snapshot_steps, str):
        if snapshot_steps != "epoch":
            raise ValueError(f"fit: snapshot_steps must be an iterable of ints, 'epoch' or None, "
                             f"got {snapshot_steps!r}.")
        return frozenset(), True
    try:
        steps = list(snapshot_steps)
    except TypeError:
        raise TypeError(f"fit: snapshot_steps must be an iterable of ints, 'epoch' or None, "
                        f"got {type(snapshot_steps).__name__}.") from None
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"fit: snapshot_steps must be non-negative ints, got {s!r}.")
    late = sorted(s for s in steps if s > total_steps)
    if late:
        warnings.warn(f"fit: snapshot_steps {late[:5]} are after the last step ({total_steps}); "
                      "no snapshot will be taken there.", stacklevel=3)
    return frozenset(int(s) for s in steps), False


def _resolve_callbacks(callbacks):
    if callable(callbacks):
        return (callbacks,)
    callbacks = tuple(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"fit: every callback must be callable, got {type(callback).__name__}.")
    return callbacks


def _make_optimizer(optimizer, parameters, lr, momentum, weight_decay):
    if isinstance(optimizer, str):
        if optimizer == "adam":
            return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay), optimizer
        if optimizer == "adamw":
            return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay), optimizer
        if optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay), optimizer
        raise ValueError(f"fit: unknown optimizer {optimizer!r}; choose one of 'adam', 'adamw', 'sgd', "
                         "or pass a torch.optim.Optimizer class or a factory params -> Optimizer.")
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(parameters, lr=lr, weight_decay=weight_decay), optimizer.__name__
    if callable(optimizer):
        opt = optimizer(parameters)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"fit: the optimizer factory must return a torch.optim.Optimizer, "
                            f"got {type(opt).__name__}.")
        return opt, type(opt).__name__
    raise TypeError(f"fit: optimizer must be a name ('adam', 'adamw', 'sgd'), an Optimizer class or a "
                    f"factory, got {type(optimizer).__name__}.")


def _check_number(name, value, *, minimum, strict=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"fit: {name} must be a finite number, got {value!r}.")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"fit: {name} must be {'>' if strict else '>='} {minimum}, got {value}.")
    return float(value)


def _check_int(name, value, *, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"fit: {name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"fit: {name} must be >= {minimum}, got {value}.")
    return int(value)
