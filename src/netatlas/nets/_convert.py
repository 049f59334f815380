"""One way in: every lens turns what the user passed (a Net, a torch module, an exported program) into a
:class:`Net` with :func:`as_net`, so the accepted types and the error are the same everywhere."""

from __future__ import annotations

from netatlas.nets._ir import Net

__all__ = ["as_net"]

ACCEPTED = "a netatlas Net, a torch.nn.Module or a torch.export.ExportedProgram"


def as_net(obj, *, input_shape=None) -> Net:
    """``obj`` as a :class:`Net`: a Net is returned as is, a torch model is imported with :func:`from_torch`.

    Parameters
    ----------
    obj : Net, torch.nn.Module or torch.export.ExportedProgram
    input_shape : tuple of int, optional
        Per-sample input shape, used when the model's own cannot be inferred (convolutional models);
        a model whose first layer fixes it is imported without it.

    Returns
    -------
    Net

    Raises
    ------
    TypeError
        For any other object (one message naming what is accepted).
    UnsupportedLayerError
        For a torch model with a layer the IR does not support.

    Examples
    --------
    >>> import torch, netatlas
    >>> net = netatlas.nets.as_net(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()))
    >>> net.input_shape, netatlas.nets.as_net(net) is net
    ((2,), True)
    >>> netatlas.nets.as_net("model.pt")
    Traceback (most recent call last):
    ...
    TypeError: expected a netatlas Net, a torch.nn.Module or a torch.export.ExportedProgram; got str
    """
    if isinstance(obj, Net):
        return obj
    import torch

    from netatlas.nets._torch import from_torch

    exported = getattr(torch.export, "ExportedProgram", ())
    if not isinstance(obj, (torch.nn.Module, exported)):
        raise TypeError(f"expected {ACCEPTED}; got {type(obj).__name__}")
    try:
        return from_torch(obj)
    except ValueError:
        if input_shape is None:
            raise
        return from_torch(obj, input_shape=tuple(input_shape))  # convolutional models need the input shape
