"""Feature maps for the metric lens: turn what the user passes into one batched float function.

The network a metric function takes (its first argument, ``net``) may be

- a :class:`netatlas.nets.Net` or a torch module: the features are its output (flattened);
- a plain callable ``(B, *input_shape) -> (B, ...)``: used exactly as given (inputs keep their dtype);
- ``(model, layer_name)``: the output of an intermediate layer of a Net or torch module, scaled by
  ``1/sqrt(width)`` as in Zavatone-Veth et al. (2023) unless ``scale_by_width=False``.

Torch modules are evaluated in float64 through ``torch.func.functional_call`` with float64 copies of
their parameters and buffers (the user's model is never modified). Plain ``nn.Sequential`` models of
supported layers are imported into the netatlas IR, which lets the metric use the closed form
``J = diag(phi'(z)) W`` when the features are one layer ``phi(W x + b)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from netatlas._deprecate import renamed
from netatlas._errors import NetatlasError
from netatlas.metric._logvol import supports
from netatlas.nets import Activation, Linear, Net, as_net

__all__ = ["FeatureMap", "as_feature_map"]


class _Stop(Exception):  # noqa: N818 - control flow, never escapes this module
    """Raised by a forward hook to stop a forward pass once the wanted layer has run."""


@dataclass(frozen=True, eq=False)
class FeatureMap:
    """A resolved feature map ``Phi: R^d -> R^m`` on flattened inputs.

    Attributes
    ----------
    fn : callable
        Batched map ``(B, d) -> (B, m)`` on flattened inputs.
    input_shape : tuple of int
        Per-sample input shape; ``d = prod(input_shape)``.
    scale : float
        Factor already applied to the features (``1/sqrt(width)`` or 1).
    dtype : torch.dtype or None
        Dtype the inputs are cast to before ``fn`` (None: keep the caller's).
    shallow : tuple (W, b, Activation) or None
        Set when ``Phi(x) = scale * phi(W x + b)`` exactly: the metric then has the closed form
        ``g = scale^2 W^T diag(phi'(z)^2) W``.
    description : str
        What the features are, for reports.
    n_intermediate : int or None
        Values one sample's forward pass holds (all layers' outputs), to bound the memory of
        vectorised Jacobians; None when unknown (plain callables).
    net : Net or None
        The unscaled features as a Net whose ops the log-space route handles
        (:mod:`netatlas.metric._logvol`); None for other feature maps, which use autodiff.
    graph : Net or None
        The unscaled features as a Net whatever its ops (max pooling included): bounds rank J from
        the structure (:func:`netatlas.metric._logvol.structural_rank`); None for non-Net feature maps.
    """

    fn: Callable
    input_shape: tuple
    scale: float
    dtype: torch.dtype | None
    shallow: tuple | None
    description: str
    n_intermediate: int | None = None
    net: Net | None = None
    graph: Net | None = None

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)


@renamed(feature_fn="net")
def as_feature_map(
    net, input_shape, *, scale_by_width: bool | None = None, caller: str = "metric"
) -> FeatureMap:
    """Resolve ``net`` (see the module docstring) for inputs of per-sample ``input_shape``.

    ``scale_by_width`` defaults to True for ``(model, layer_name)`` and False otherwise.
    """
    if isinstance(net, FeatureMap):
        return net
    input_shape = tuple(int(s) for s in input_shape)
    if isinstance(net, tuple):
        if len(net) != 2 or not isinstance(net[1], (str, int)):
            raise TypeError(
                f"{caller}: a tuple net must be (model, layer_name); got a tuple of "
                f"{[type(v).__name__ for v in net]}"
            )
        model, layer = net
        scale_by_width = True if scale_by_width is None else bool(scale_by_width)
        if isinstance(model, Net):
            return _net_layer(model, layer, scale_by_width, caller)
        if isinstance(model, nn.Module):
            imported = _try_import(model, input_shape)
            if imported is not None:
                try:
                    return _net_layer(imported, layer, scale_by_width, caller)
                except ValueError:
                    pass  # a layer the IR folded away (Dropout, Flatten): use hooks
            return _module_layer(model, str(layer), input_shape, scale_by_width, caller)
        raise TypeError(
            f"{caller}: (model, layer_name) needs a torch module or netatlas Net as model; got "
            f"{type(model).__name__}"
        )
    scale_by_width = bool(scale_by_width)
    if isinstance(net, Net):
        return _from_net(net, scale_by_width, "output of the Net")
    if isinstance(net, nn.Module):
        _check_eval(net, caller)
        imported = _try_import(net, input_shape) if isinstance(net, nn.Sequential) else None
        if imported is not None:
            return _from_net(imported, scale_by_width, f"output of {type(net).__name__}")
        return _module_fn(
            net, input_shape, None, scale_by_width, f"output of {type(net).__name__}"
        )
    if callable(net):

        def fn(x):
            y = net(x.reshape(x.shape[0], *input_shape))
            return y.reshape(y.shape[0], -1)

        scale = 1.0
        if scale_by_width:
            m = _probe_width(fn, input_shape)
            scale = 1 / math.sqrt(m)
            unscaled = fn
            fn = lambda x: unscaled(x) * scale  # noqa: E731
        return FeatureMap(fn, input_shape, scale, None, None, "a plain callable")
    raise TypeError(
        f"{caller}: net must be a torch module, a netatlas Net, a callable or "
        f"(model, layer_name); got {type(net).__name__}"
    )


# -- netatlas IR -----------------------------------------------------------------------------------
def _from_net(net: Net, scale_by_width: bool, description: str) -> FeatureMap:
    width = net.nodes[-1].size
    scale = 1 / math.sqrt(width) if scale_by_width else 1.0

    def fn(x):
        y = net.forward_all(x)[-1]
        return y * scale if scale != 1.0 else y

    return FeatureMap(fn, net.input_shape, scale, torch.float64, _shallow_structure(net), description,
                      sum(node.size for node in net.nodes), net if supports(net) else None, net)


def _shallow_structure(net: Net):
    ops = [node.op for node in net.nodes[1:]]
    if (
        len(ops) == 2
        and isinstance(ops[0], Linear)
        and isinstance(ops[1], Activation)
        and net.nodes[1].inputs == (0,)
        and net.nodes[2].inputs == (1,)
    ):
        return (ops[0].weight, ops[0].bias, ops[1])
    if len(ops) == 1 and isinstance(ops[0], Linear):
        return (ops[0].weight, ops[0].bias, Activation("identity"))
    return None


def _net_layer(net: Net, layer, scale_by_width: bool, caller: str) -> FeatureMap:
    try:
        index = net.layer(layer)  # the one resolver: module path, node index or '#index'
    except ValueError as exc:
        raise ValueError(f"{caller}: {exc}") from None
    sub = Net(net.nodes[: index + 1])
    return _from_net(
        sub,
        scale_by_width,
        f"layer {layer!r} ({net.nodes[index].op.describe()}, width {net.nodes[index].size})",
    )


def _try_import(module: nn.Module, input_shape) -> Net | None:
    if not isinstance(module, nn.Sequential):
        return None
    try:
        return as_net(module, input_shape=input_shape)
    except (NetatlasError, ValueError, TypeError):
        return None


# -- arbitrary torch modules -----------------------------------------------------------------------
def _check_eval(module: nn.Module, caller: str) -> None:
    for path, sub in module.named_modules():
        if sub.training and isinstance(
            sub, (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
        ):
            raise ValueError(
                f"{caller}: {type(sub).__name__} at {path!r} is in training mode, so features "
                "are not a function of one input; call model.eval() first"
            )


def _float64_state(module: nn.Module) -> dict:
    state = {}
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        state[name] = t.detach().to(torch.float64) if t.is_floating_point() else t
    return state


def _module_fn(module, input_shape, layer, scale_by_width, description) -> FeatureMap:
    state = _float64_state(module)
    target = module.get_submodule(layer) if layer is not None else None

    def raw(x):
        x = x.reshape(x.shape[0], *input_shape)
        if target is None:
            y = torch.func.functional_call(module, state, (x,))
        else:
            captured = []

            def hook(_module, _inputs, output):
                captured.append(output)
                raise _Stop

            handle = target.register_forward_hook(hook)
            try:
                torch.func.functional_call(module, state, (x,))
            except _Stop:
                pass
            finally:
                handle.remove()
            if not captured:
                raise NetatlasError(f"metric: layer {layer!r} did not run in the forward pass")
            y = captured[0]
        if not isinstance(y, torch.Tensor):
            raise TypeError(
                f"metric: the features ({description}) are a {type(y).__name__}, not a tensor; "
                "wrap the model in a callable that returns one tensor"
            )
        return y.reshape(y.shape[0], -1)

    scale = 1 / math.sqrt(_probe_width(raw, input_shape)) if scale_by_width else 1.0

    def fn(x):
        y = raw(x)
        return y * scale if scale != 1.0 else y

    return FeatureMap(fn, input_shape, scale, torch.float64, None, description,
                      _probe_intermediate(module, state, input_shape))


def _module_layer(module, layer, input_shape, scale_by_width, caller) -> FeatureMap:
    _check_eval(module, caller)
    try:
        module.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in module.named_modules() if n]
        raise ValueError(
            f"{caller}: {type(module).__name__} has no submodule {layer!r}; its submodules are "
            f"{names[:30]}{' ...' if len(names) > 30 else ''}"
        ) from None
    return _module_fn(module, input_shape, layer, scale_by_width, f"layer {layer!r}")


def _probe_intermediate(module, state, input_shape) -> int | None:
    """Sum of the sizes of every submodule's tensor output for one sample (one forward pass)."""
    total = [math.prod(input_shape)]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output[0].numel()

    handles = [m.register_forward_hook(count) for _, m in module.named_modules() if m is not module]
    try:
        with torch.no_grad():
            torch.func.functional_call(module, state, (torch.zeros(1, *input_shape, dtype=torch.float64),))
    except Exception:  # noqa: BLE001 - only a memory estimate; the real call reports real errors
        return None
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def _probe_width(fn, input_shape) -> int:
    with torch.no_grad():
        try:
            y = fn(torch.zeros(1, math.prod(input_shape), dtype=torch.float64))
        except RuntimeError:
            y = fn(torch.zeros(1, math.prod(input_shape), dtype=torch.float32))
    return int(y.shape[-1])
