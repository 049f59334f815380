"""No code from model files: every place a torch.export archive can hide code is refused before torch
reads it, with one line naming the member.

Each crafted archive carries a payload that creates a marker file when it runs. Where torch itself
would run it, ``test_the_payload_is_live`` shows it does (so the refusal tests can fail); the other
tests show that netatlas refuses the file, names the member and never creates the marker.
"""

import io
import json
import pickle
import re
import zipfile

import pytest
import torch

import netatlas
from cli_runner import run_cli as _run
from netatlas.nets import load, load_module


class _Payload:
    """Unpickling this opens (creates) the marker file: code from the model file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torch_bytes(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _rewrite(src, dst, edit):
    """Copy the archive ``src`` to ``dst``; ``edit(records)`` changes the {record: bytes} map in place."""
    with zipfile.ZipFile(src) as zf:
        root = zf.namelist()[0].split("/", 1)[0]
        records = {name.split("/", 1)[1]: zf.read(name) for name in zf.namelist()}
    edit(records)
    with zipfile.ZipFile(dst, "w") as zf:
        for record, data in records.items():
            zf.writestr(f"{root}/{record}", data)
    return dst


def _edit_json(records, record, change):
    obj = json.loads(records[record])
    change(obj)
    records[record] = json.dumps(obj).encode()


def _tensor_entry(path_name, use_pickle, shape):
    return {"path_name": path_name, "is_param": False, "use_pickle": use_pickle,
            "tensor_meta": {"dtype": 7, "sizes": [{"as_int": n} for n in shape], "requires_grad": False,
                            "device": {"type": "cpu", "index": None}, "strides": [{"as_int": 1}],
                            "storage_offset": {"as_int": 0}, "layout": 7}}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A clean archive (static shapes) and one exported with a dynamic batch size (symbolic shapes)."""
    d = tmp_path_factory.mktemp("base")
    netatlas.nets.save(netatlas.nets.mlp([2, 4, 1], seed=0), d / "m.pt2", input_shape=(2,))
    program = torch.export.export(netatlas.nets.mlp([2, 4, 1], seed=0).eval(), (torch.zeros(3, 2),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, d / "dynamic.pt2")
    return d


def _sample_inputs(records, marker):
    records["data/sample_inputs/model.pt"] = _torch_bytes(((_Payload(marker),), {}))


def _pickled_weight(records, marker):
    _edit_json(records, "data/weights/model_weights_config.json",
               lambda c: c["config"]["0.weight"].update(use_pickle=True))
    name = json.loads(records["data/weights/model_weights_config.json"])["config"]["0.weight"]["path_name"]
    records[f"data/weights/{name}"] = _torch_bytes(_Payload(marker))


def _pickled_constant(records, marker):
    _edit_json(records, "data/constants/model_constants_config.json",
               lambda c: c["config"].update(c=_tensor_entry("tensor_0", True, [1])))
    records["data/constants/tensor_0"] = _torch_bytes(_Payload(marker))


def _opaque_constant(records, marker):
    _edit_json(records, "data/constants/model_constants_config.json",
               lambda c: c["config"].update(c=_tensor_entry("opaque_obj_0", True, [1])))
    records["data/constants/opaque_obj_0"] = pickle.dumps(_Payload(marker))


def _custom_constant(records, marker):
    _edit_json(records, "data/constants/model_constants_config.json",
               lambda c: c["config"].update(c=_tensor_entry("custom_obj_0", True, [1])))
    records["data/constants/custom_obj_0"] = pickle.dumps(_Payload(marker))


def _legacy_weights(records, marker):
    records["data/weights/model.pt"] = _torch_bytes({"0.weight": _Payload(marker)})


def _legacy_constants(records, marker):
    records["data/constants/model.pt"] = _torch_bytes({"c": _Payload(marker)})


def _shared_library(records, marker):
    records["data/aotinductor/model/model.so"] = b"\x7fELF not really"


def _stray_pickle(records, marker):
    records["data/extra_payload.pt"] = _torch_bytes(_Payload(marker))


def _guards(records, marker):
    code = f"__import__('builtins').open({str(marker)!r}, 'w') is not None"
    _edit_json(records, "models/model.json", lambda p: p.update(guards_code=[code]))


def _operator_target(records, marker):
    def change(program):
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    _edit_json(records, "models/model.json", change)


def _symbolic_expression(records, marker):
    text = records["models/model.json"].decode()
    symbol = re.search(r"Symbol\('[a-z]+[0-9]+', positive=True, integer=True\)", text).group(0)
    payload = f"__import__('builtins').open({str(marker)!r}, 'w') and {symbol}"
    records["models/model.json"] = text.replace(json.dumps(symbol), json.dumps(payload)).encode()


# (craft, base archive, member named in the refusal, does torch.export.load run it?)
CASES = {
    "sample_inputs": (_sample_inputs, "m", "data/sample_inputs/model.pt", "load"),
    "pickled_weight": (_pickled_weight, "m", "data/weights/weight_0", "load"),
    "pickled_constant": (_pickled_constant, "m", "data/constants/tensor_0", "load"),
    "opaque_constant": (_opaque_constant, "m", "data/constants/opaque_obj_0", "load"),
    "custom_constant": (_custom_constant, "m", "data/constants/custom_obj_0", None),
    "legacy_weights": (_legacy_weights, "m", "data/weights/model.pt", "load"),
    "legacy_constants": (_legacy_constants, "m", "data/constants/model.pt", "load"),
    "shared_library": (_shared_library, "m", "data/aotinductor/model/model.so", None),
    "stray_pickle": (_stray_pickle, "m", "data/extra_payload.pt", None),
    "guards": (_guards, "m", None, "module"),
    "operator_target": (_operator_target, "m", "models/model.json", None),
    "symbolic_expression": (_symbolic_expression, "dynamic", "models/model.json", "load"),
}


def _craft(base, tmp_path, case):
    craft, source, member, _ = CASES[case]
    marker = tmp_path / "MARKER"
    path = _rewrite(base / f"{source}.pt2", tmp_path / f"{case}.pt2", lambda r: craft(r, marker))
    return path, marker, member


@pytest.mark.parametrize("case", [c for c, v in CASES.items() if v[3]])
def test_the_payload_is_live(base, tmp_path, case):
    # Without netatlas's checks, torch runs the payload: this is what the refusals below prevent.
    path, marker, _ = _craft(base, tmp_path, case)
    try:
        program = torch.export.load(str(path))
        if CASES[case][3] == "module":
            program.module()(torch.zeros(2, 2))
    except Exception:
        pass
    assert marker.exists()


@pytest.mark.parametrize("case", list(CASES))
def test_archives_that_would_run_code_are_refused_naming_the_member(base, tmp_path, case):
    path, marker, member = _craft(base, tmp_path, case)
    if member is None:  # the guards are dropped: the program loads and runs without them
        program, _ = load_module(path)
        program.module()(torch.zeros(2, 2))
        assert load(path).n_hidden_units == 4
    else:
        with pytest.raises(netatlas.ModelFileError) as info:
            load(path)
        message = str(info.value)
        assert f"refusing member {member!r}" in message and str(path) in message and "\n" not in message
    assert not marker.exists()


def test_old_top_level_archive_format_is_refused(base, tmp_path):
    # torch.export.load falls back to the pre-2.8 layout (pickles at the top level of the zip).
    marker = tmp_path / "MARKER"
    with zipfile.ZipFile(base / "m.pt2") as zf:
        program_json = zf.read(next(n for n in zf.namelist() if n.endswith("/models/model.json")))
    with zipfile.ZipFile(tmp_path / "old.pt2", "w") as zf:
        zf.writestr("version", "8.0")
        zf.writestr("serialized_exported_program.json", program_json)
        zf.writestr("serialized_state_dict.pt", _torch_bytes({"0.weight": _Payload(marker)}))
        zf.writestr("serialized_constants.pt", _torch_bytes({}))
        zf.writestr("serialized_example_inputs.pt", _torch_bytes(((torch.zeros(2, 2),), {})))
    with pytest.raises(netatlas.ModelFileError, match=r"refusing member 'version'"):
        load(tmp_path / "old.pt2")
    assert not marker.exists()


def test_duplicate_members_are_refused(base, tmp_path):
    # zipfile and torch's reader may pick different copies of a name: refuse rather than guess.
    marker = tmp_path / "MARKER"
    path = tmp_path / "dup.pt2"
    with zipfile.ZipFile(base / "m.pt2") as src, zipfile.ZipFile(path, "w") as dst:
        root = src.namelist()[0].split("/")[0]
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        with pytest.warns(UserWarning, match="Duplicate name"):
            dst.writestr(f"{root}/data/sample_inputs/model.pt", _torch_bytes(((_Payload(marker),), {})))
    member = re.escape(f"'{root}/data/sample_inputs/model.pt': it appears twice")
    with pytest.raises(netatlas.ModelFileError, match=member):
        load(path)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["sample_inputs", "pickled_weight", "legacy_weights", "symbolic_expression"])
@pytest.mark.parametrize("command", ["info", "regions"])
def test_cli_refuses_the_archive_in_one_line(base, tmp_path, capsys, case, command):
    path, marker, member = _craft(base, tmp_path, case)
    argv = ["info", str(path)] if command == "info" else ["regions", str(path), "--out", str(tmp_path / "run")]
    code, _, err = _run(argv, capsys)
    assert code == 1 and not marker.exists()
    assert err.startswith("ModelFileError: ") and f"refusing member {member!r}" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_state_dict_pickles_are_never_fully_unpickled(tmp_path, capsys, suffix):
    marker = tmp_path / "MARKER"
    path = tmp_path / f"evil{suffix}"
    torch.save({"0.weight": _Payload(marker), "0.bias": torch.zeros(4)}, path)
    spec = {"mlp": {"widths": [2, 4, 1]}}
    with pytest.raises(netatlas.ModelFileError, match="cannot read weights"):
        load(path, spec=spec)
    path.with_suffix(".json").write_text(json.dumps(spec))
    code, _, err = _run(["info", str(path)], capsys)
    assert code == 1 and err.startswith("ModelFileError: ") and not marker.exists()


def test_clean_archives_still_load(base):
    for name in ("m", "dynamic"):
        net = load(base / f"{name}.pt2")
        x = torch.randn(5, 2, dtype=torch.float64)
        expected = netatlas.nets.mlp([2, 4, 1], seed=0).double()(x)
        assert torch.allclose(net(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text, safe", [
    ("Symbol('s77', positive=True, integer=True)", True),
    ("Mul(Integer(2), Symbol('s74', positive=True, integer=True))", True),
    ("FloorDiv(Symbol('s0', integer=True), Integer(2))", True),
    ("Float('1.5', precision=53)", True),
    ("__import__('os').system('true')", False),
    ("eval(chr(49))", False),  # builtins are in sympify's namespace: no quotes needed to run code
    ("Symbol('s0').__class__", False),
    ("Symbol('__builtins__')", False),
    ("(lambda: 1)()", False),
    ("[Symbol('s0')][0]", False),
    ("Symbol('s0', positive=exec)", False),
])
def test_symbolic_expressions_are_checked_before_sympify(text, safe):
    from netatlas.nets._archive import _safe_expression

    assert _safe_expression(text) is safe


@pytest.mark.parametrize("target, safe", [
    ("torch.ops.aten.linear.default", True), ("_operator.getitem", True), ("math.sqrt", True),
    ("torch.os.system", False), ("torch.ops.load_library", False), ("torch.load", False),
    ("_operator.attrgetter", False), ("torch.ops.aten.add.__call__", False), ("#custom", False),
    ("some_string", True),  # not resolved by torch: stays a string (and the importer refuses it)
])
def test_operator_targets_must_be_torch_ops(target, safe):
    from netatlas.nets._archive import _safe_target

    assert _safe_target(target) is safe
