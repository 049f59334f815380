"""How many of the public ONNX test models ``netatlas.nets.from_onnx`` imports correctly.

The installed ``onnx`` package ships models with stored inputs and outputs in
``onnx/backend/test/data/{light,pytorch-converted,pytorch-operator,simple,real}`` (``real`` holds only
download links, so it is listed and skipped). Each model is imported, evaluated on its stored input in
float64 and compared with its stored output; it is then

- ``correct``: every output entry within the float32 round-off bound of the stored one, and of
  onnxruntime's on a second, random input (where onnxruntime runs the model); softmax outputs are compared
  as log-probabilities. A model whose references are one constant everywhere (the ``light`` models' weights
  make every logit equal) is marked "weak check";
- ``refused``: ``from_onnx`` (or the net on that input) raised a netatlas error naming what it does not
  support (the reasons are tabulated);
- ``MIS-IMPORTED``: it imported but its numbers are wrong (or its output has the wrong size) -- must be 0;
- ``crashed``: any other exception (a bug: refusals must be by name) -- should be 0.

Run::

    python benchmarks/onnx_coverage.py                       # every set
    python benchmarks/onnx_coverage.py --sets simple light   # some sets
    python benchmarks/onnx_coverage.py --verbose             # one line per model

The round-off bound: the stored outputs are float32 runs of the model (PyTorch or onnx's reference
evaluator), netatlas computes in float64 from the same float32 weights and input. A float32 dot product of
length n rounds by at most ``gamma_n |w|.|x| ~ n eps32 |w|.|x|`` (Higham, Accuracy and Stability of
Numerical Algorithms, 3.1), so a few layers of dot products of length <= ~1000 stay below
``1024 eps32 (1 + max |y|)`` (``ROUNDOFF_ULPS``); a wrong op, padding or weight layout moves outputs by
O(max |y|), far above it.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np

ROUNDOFF_ULPS = 1024  # float32 roundings allowed per unit of output magnitude (see the module docstring)
EPS32 = float(np.finfo(np.float32).eps)
SETS = ("light", "pytorch-converted", "pytorch-operator", "simple", "real")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One model's verdict: ``status`` in correct / refused / MIS-IMPORTED / crashed / skipped."""

    name: str
    status: str
    reason: str = ""
    error: float | None = None  # max |netatlas - stored|
    bound: float | None = None


def data_root() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data"


def cases(sets=SETS) -> list[tuple[str, Path]]:
    """(set/name, model directory or light model file), sorted."""
    root, out = data_root(), []
    for name in sets:
        folder = root / name
        if name == "light":
            out += [(f"light/{p.stem}", p) for p in sorted(folder.glob("light_*.onnx"))]
        else:
            out += [(f"{name}/{p.name}", p) for p in sorted(folder.iterdir()) if p.is_dir()]
    return out


def _tensor(path):
    import onnx
    from onnx import numpy_helper

    return numpy_helper.to_array(onnx.load_tensor(str(path)))


def _light_input(model):
    """The input onnx's backend runner feeds a light model: arange(n) / n in the declared shape."""
    inits = {i.name for i in model.graph.initializer}
    (x,) = [i for i in model.graph.input if i.name not in inits] or [None]
    if x is None:
        return None
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def _data(path: Path):
    """(model, inputs, outputs) of one case; None when the set stores no model (``real``)."""
    import onnx

    if path.suffix == ".onnx":
        model = onnx.load(str(path))
        outputs = [_tensor(p) for p in sorted(path.parent.glob(f"{path.stem}_output_*.pb"))]
        return model, [_light_input(model)], outputs
    if not (path / "model.onnx").is_file():
        return None
    model = onnx.load(str(path / "model.onnx"))
    first = path / "test_data_set_0"
    inputs = [_tensor(p) for p in sorted(glob.glob(str(first / "input_*.pb")))]
    outputs = [_tensor(p) for p in sorted(glob.glob(str(first / "output_*.pb")))]
    return model, inputs, outputs


def reason_of(exc: BaseException) -> str:
    """The refusal without node names, shapes or the list of supported ops: one row of the table."""
    text = str(exc).split("; supported:")[0].split("\n")[0]
    text = re.sub(r"\((node|the node computing) [^)]*\)", "", text)
    text = re.sub(r"'[^']*'", "'...'", text)
    text = re.sub(r"\((-?\d+, ?)+-?\d*\)|\[(-?\d+, ?)*-?\d*\]", "(...)", text)  # shapes and kernels
    text = re.sub(r"-?\d+\.\d+(e-?\d+)?", "x", text)  # measured values
    return re.sub(r"\s+", " ", text).strip()[:110]


def classify(name: str, path: Path) -> Outcome:
    from netatlas._errors import NetatlasError
    from netatlas.nets import from_onnx

    data = _data(path)
    if data is None:
        return Outcome(name, "skipped", "no model.onnx stored (download link only)")
    model, inputs, outputs = data
    if len(inputs) != 1 or len(outputs) != 1 or inputs[0] is None:
        return Outcome(name, "refused", f"{len(inputs)} stored inputs and {len(outputs)} outputs (netatlas "
                                        "imports one input and one output)")
    x, y = inputs[0], outputs[0]
    if x.ndim < 1 or not np.issubdtype(x.dtype, np.floating):
        return Outcome(name, "refused", f"an input of dtype {x.dtype} and shape {x.shape} (netatlas needs "
                                        "(batch, ...) real inputs)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                net = from_onnx(model)
            except ValueError as exc:  # symbolic dimensions: the stored input gives the per-sample shape
                if "input_shape" not in str(exc):
                    raise
                net = from_onnx(model, input_shape=x.shape[1:])
    except (NetatlasError, ValueError, TypeError) as exc:
        return Outcome(name, "refused", f"{type(exc).__name__}: {reason_of(exc)}")
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, reported as such
        return Outcome(name, "crashed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}")
    checks = [(x, np.asarray(y, dtype=np.float64))]
    random_input = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    ort_output = _onnxruntime(model, random_input)
    if ort_output is not None:  # a second, random input (stored inputs are often one fixed ramp)
        checks.append((random_input, np.asarray(ort_output, dtype=np.float64)))
    worst, worst_bound = 0.0, 0.0
    for inputs, reference in checks:
        try:
            got = np.asarray(net.head_output(inputs.astype(np.float64)), dtype=np.float64)
        except (NetatlasError, ValueError) as exc:  # a domain check (sqrt of a negative input) on this input
            if inputs is x:
                return Outcome(name, "refused", f"{type(exc).__name__}: {reason_of(exc)}")
            continue
        if got.size != reference.size:
            return Outcome(name, "MIS-IMPORTED", f"output of {got.size} values, stored {reference.size}")
        error, bound = _deviation(got.reshape(reference.shape), reference, net.head)
        if not error <= bound:  # NaN is a mis-import too
            return Outcome(name, "MIS-IMPORTED", f"max |error| {error:.3g} > bound {bound:.3g}", error, bound)
        worst, worst_bound = max(worst, error), max(worst_bound, bound)
    # a reference that is the same number everywhere (the light models' uniform softmax) checks little
    constant = all(reference.size == 0 or np.ptp(reference) <= ROUNDOFF_ULPS * EPS32 * (1 + np.abs(reference).max())
                   for _, reference in checks)
    return Outcome(name, "correct", "weak check: every reference output is one constant" if constant else "",
                   worst, worst_bound)


def _onnxruntime(model, x):
    """onnxruntime's output for ``x``, or None where it cannot run the model (old opsets, ...)."""
    try:
        import onnxruntime

        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception:  # noqa: BLE001 - no second reference, the stored output still checks the model
        return None


def _deviation(got, reference, head):
    """(max error, bound). Softmax outputs are compared as log-probabilities where the stored one is a
    normal float32 (their float32 rounding is relative), elsewhere absolutely."""
    if head is not None and head.name == "softmax":
        tiny = float(np.finfo(np.float32).tiny)
        normal = reference > tiny
        logs = np.log(reference[normal])
        with np.errstate(divide="ignore"):
            error = float(np.abs(np.log(got[normal]) - logs).max(initial=0.0))
        if (got[~normal] > 2 * tiny).any():  # float32 underflowed to (sub)normal zero: so must we, nearly
            error = np.inf
        return error, ROUNDOFF_ULPS * EPS32 * (1.0 + float(np.abs(logs).max(initial=0.0)))
    return (float(np.abs(got - reference).max(initial=0.0)),
            ROUNDOFF_ULPS * EPS32 * (1.0 + float(np.abs(reference).max(initial=0.0))))


def run(sets=SETS, *, verbose=False) -> list[Outcome]:
    outcomes = []
    for name, path in cases(sets):
        start = time.perf_counter()
        outcome = classify(name, path)
        outcomes.append(outcome)
        if verbose:
            detail = outcome.reason if outcome.status != "correct" else \
                f"max |error| {outcome.error:.2g} (bound {outcome.bound:.2g}) {outcome.reason}"
            print(f"{outcome.status:<13} {name:<52} {time.perf_counter() - start:6.2f} s  {detail}", flush=True)
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    counts = collections.Counter(o.status for o in outcomes)
    tried = sum(v for k, v in counts.items() if k != "skipped")
    weak = sum(1 for o in outcomes if o.status == "correct" and o.reason)
    lines = [f"{tried} models tried ({counts['skipped']} skipped: not stored): {counts['correct']} correct "
             f"({weak} of them against constant outputs only), {counts['refused']} refused, "
             f"{counts['MIS-IMPORTED']} MIS-IMPORTED, {counts['crashed']} crashed"]
    reasons = collections.Counter(o.reason for o in outcomes if o.status == "refused")
    if reasons:
        lines += ["", f"{'models':>6}  refusal reason (first refused node)"]
        lines += [f"{n:>6}  {reason}" for reason, n in reasons.most_common()]
    for status in ("MIS-IMPORTED", "crashed"):
        for o in outcomes:
            if o.status == status:
                lines.append(f"{status}: {o.name}: {o.reason}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="which test-data folders")
    parser.add_argument("--verbose", action="store_true", help="one line per model")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(report(run(args.sets, verbose=args.verbose)))


if __name__ == "__main__":
    main()
