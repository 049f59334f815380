"""Crafted and extreme model files (issue 24): float64 kept on every load path, no hang, one line for every
failure, the memory budget before anything is inflated or folded, complex and integer weights refused."""

import io
import json
import re
import time
import zipfile

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import netatlas
from netatlas import MemoryBudgetError, ModelFileError, UnsupportedLayerError
from netatlas.nets import from_onnx, load, save

SPEC = {"mlp": {"widths": [2, 6, 1], "activation": "relu"}}


def _scaled_double_mlp(scale):
    """mlp([2, 6, 1]) in float64 with its first layer (w, b) times ``scale`` and its last weights divided by
    it: by positive homogeneity of ReLU the function equals the unscaled net's (up to round-off)."""
    plain = netatlas.nets.mlp([2, 6, 1], seed=3).double()
    scaled = netatlas.nets.mlp([2, 6, 1], seed=3).double()
    with torch.no_grad():
        scaled[0].weight.mul_(scale)
        scaled[0].bias.mul_(scale)
        scaled[2].weight.div_(scale)
    return plain, scaled


@pytest.mark.parametrize("scale", [1e-150, 1e150])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_float64_state_dict_through_a_spec_stays_float64(tmp_path, scale, suffix):
    # float32 would make 1e-150 weights zeros (a constant net) and 1e150 weights infinite ("non-finite")
    plain, scaled = _scaled_double_mlp(scale)
    save(scaled, tmp_path / f"m{suffix}", input_shape=(2,), spec=SPEC)
    net = load(tmp_path / f"m{suffix}")
    x = torch.randn(20, 2, dtype=torch.float64)
    # each output is a sum of 7 products, each scaled and unscaled once: a few ulps of the output's size
    expected = plain(x).detach()
    assert torch.allclose(net(x), expected, rtol=1e-13, atol=1e-13 * float(expected.abs().max()))


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_float64_pt2_and_onnx_double_initializers_stay_float64(tmp_path, scale):
    plain, scaled = _scaled_double_mlp(scale)
    x = torch.randn(20, 2, dtype=torch.float64)
    save(scaled, tmp_path / "m.pt2", input_shape=(2,))
    expected = plain(x).detach()
    tolerance = 1e-13 * float(expected.abs().max())
    assert torch.allclose(load(tmp_path / "m.pt2")(x), expected, rtol=1e-13, atol=tolerance)
    weights = [numpy_helper.from_array(p.detach().numpy().T.copy() if p.ndim == 2 else p.detach().numpy(), name)
               for name, p in zip(["W0", "b0", "W1", "b1"], scaled.parameters(), strict=True)]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W0"], ["h0"]), helper.make_node("Add", ["h0", "b0"], ["z0"]),
         helper.make_node("Relu", ["z0"], ["a0"]), helper.make_node("MatMul", ["a0", "W1"], ["h1"]),
         helper.make_node("Add", ["h1", "b1"], ["y"])], "double",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["batch", 1])], initializer=weights)
    assert torch.allclose(from_onnx(helper.make_model(graph))(x), expected, rtol=1e-13, atol=tolerance)


# -- ONNX: control flow, budgets, crafted constants ---------------------------------------------------------
def _relu_graph(extra_nodes=(), initializers=(), input_dims=("batch", 2), x_type=TensorProto.FLOAT):
    """x -> Relu -> y, plus ``extra_nodes`` computing constants (dangling or used)."""
    graph = helper.make_graph([*extra_nodes, helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", x_type, list(input_dims))],
                              [helper.make_tensor_value_info("y", x_type, list(input_dims))],
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _int64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _loop(trip_count):
    body = helper.make_graph(
        [helper.make_node("Add", ["v_in", "one"], ["v_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.INT64, [1])],
        initializer=[_int64("one", [1])])
    node = helper.make_node("Loop", ["trips", "", "start"], ["counted"], body=body)
    return node, [_int64("trips", trip_count), _int64("start", [0])]


def _if():
    branch = helper.make_graph([helper.make_node("Constant", [], ["c"], value=_int64("c", [1]))], "branch", [],
                               [helper.make_tensor_value_info("c", TensorProto.INT64, [1])])
    node = helper.make_node("If", ["flag"], ["chosen"], then_branch=branch, else_branch=branch)
    return node, [numpy_helper.from_array(np.array(True), "flag")]


def _scan():
    body = helper.make_graph([helper.make_node("Add", ["s_in", "e"], ["s_out"])], "body",
                             [helper.make_tensor_value_info("s_in", TensorProto.INT64, [1]),
                              helper.make_tensor_value_info("e", TensorProto.INT64, [1])],
                             [helper.make_tensor_value_info("s_out", TensorProto.INT64, [1])])
    node = helper.make_node("Scan", ["s0", "seq"], ["total"], body=body, num_scan_inputs=1)
    return node, [_int64("s0", [0]), _int64("seq", [[1], [2]])]


@pytest.mark.parametrize("make, op", [(lambda: _loop(3), "Loop"), (_if, "If"), (_scan, "Scan")])
def test_onnx_control_flow_is_refused_by_name(make, op):
    node, initializers = make()
    with pytest.raises(UnsupportedLayerError, match=f"control flow {op}"):
        from_onnx(_relu_graph([node], initializers))


def test_onnx_loop_of_1e15_trips_is_refused_at_once():
    node, initializers = _loop(10**15)  # folding it would run for ever
    start = time.perf_counter()
    with pytest.raises(UnsupportedLayerError, match="Loop"):
        from_onnx(_relu_graph([node], initializers))
    assert time.perf_counter() - start < 20  # the bound for a crafted file; a hang never ends


@pytest.mark.parametrize("nodes, initializers", [
    ([helper.make_node("ConstantOfShape", ["shape"], ["c"])], [_int64("shape", [2000, 2000])]),
    ([helper.make_node("Expand", ["one", "shape"], ["c"])], [_int64("one", [1]), _int64("shape", [2000, 2000])]),
    ([helper.make_node("Tile", ["one", "reps"], ["c"])], [_int64("one", [1]), _int64("reps", [4_000_000])]),
    ([helper.make_node("Range", ["a", "b", "d"], ["c"])],
     [_int64("a", 0), _int64("b", 4_000_000), _int64("d", 1)]),
], ids=["ConstantOfShape", "Expand", "Tile", "Range"])
def test_onnx_constants_are_sized_against_the_budget_before_they_exist(monkeypatch, nodes, initializers):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "10MB")  # each constant has 4e6 values: 32 MB in float64
    with pytest.raises(MemoryBudgetError, match=f"{nodes[0].op_type} node .*4,000,000 values"):
        from_onnx(_relu_graph(nodes, initializers))


def test_onnx_large_declared_input_is_refused_without_allocating(monkeypatch, tmp_path):
    # a pooled 1x8000x8000 input: the AvgPool shape probe alone would hold 512 MB
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "100MB")
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8000, 8000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4000, 4000])])
    path = tmp_path / "big.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(MemoryBudgetError, match=r"big\.onnx.*input 'x' of per-sample shape \(1, 8000, 8000\)"):
        load(path)
    monkeypatch.delenv("NETATLAS_MEMORY_BUDGET")
    graph.input[0].type.tensor_type.shape.dim[2].dim_value = 200_000  # 320 GB per sample in float64
    graph.input[0].type.tensor_type.shape.dim[3].dim_value = 200_000
    with pytest.raises(MemoryBudgetError, match="over the memory budget"):
        from_onnx(helper.make_model(graph))


def test_onnx_constant_gather_out_of_range_is_one_line(tmp_path):
    nodes = [helper.make_node("Gather", ["table", "index"], ["c"])]
    path = tmp_path / "gather.onnx"
    path.write_bytes(_relu_graph(nodes, [_int64("table", [1, 2, 3]), _int64("index", [7])]).SerializeToString())
    with pytest.raises(ModelFileError, match=r"gather\.onnx: .*Gather node 'c' cannot be evaluated \(IndexError"):
        load(path)


@pytest.mark.parametrize("op", ["Gemm", "MatMul", "Conv"])
def test_onnx_integer_weights_are_refused_by_name(op):
    if op == "Conv":
        w = numpy_helper.from_array(np.ones((2, 1, 1, 1), dtype=np.int64), "W")
        dims, out = ["batch", 1, 3, 3], ["batch", 2, 3, 3]
    else:
        w = numpy_helper.from_array(np.ones((2, 3), dtype=np.int64), "W")
        dims, out = ["batch", 2], ["batch", 3]
    graph = helper.make_graph([helper.make_node(op, ["x", "W"], ["y"])], "int",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], initializer=[w])
    with pytest.raises(UnsupportedLayerError, match=f"ONNX {op} with int64 weights 'W'"):
        from_onnx(helper.make_model(graph))


# -- .pt2 archives --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    d = tmp_path_factory.mktemp("archives")
    program = torch.export.export(netatlas.nets.mlp([2, 4, 1], seed=0).eval(), (torch.zeros(3, 2),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, d / "dynamic.pt2")
    return d


def _rewrite(src, dst, edit, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(src) as zf:
        root = zf.namelist()[0].split("/", 1)[0]
        records = {name.split("/", 1)[1]: zf.read(name) for name in zf.namelist()}
    edit(records)
    with zipfile.ZipFile(dst, "w", compression) as zf:
        for record, data in records.items():
            zf.writestr(f"{root}/{record}", data)
    return dst


def _with_formula(formula):
    def edit(records):
        text = records["models/model.json"].decode()
        symbol = re.search(r"Symbol\('[a-z]+[0-9]+', positive=True, integer=True\)", text).group(0)
        records["models/model.json"] = text.replace(json.dumps(symbol), json.dumps(formula(symbol))).encode()
    return edit


@pytest.mark.parametrize("text", ["9**9**9", "Pow(9, Pow(9, 9))", "Pow(Pow(9, 64), 64)", "LShift(1, 10**9)",
                                  "Mul(Symbol('s0', integer=True), Integer(9)**Integer(10**9))",
                                  "Float('1e999999999')", "Pow(9, Float('1e9'))",
                                  "Pow(9, Rational(10**9, 1))", "(" * 500 + "s0" + ")" * 500])
def test_shape_formulas_with_unbounded_integers_are_refused(text):
    from netatlas.nets._archive import _safe_expression

    assert _safe_expression(text) is False


@pytest.mark.parametrize("text", ["Pow(Symbol('s0', integer=True), 2)", "s0**2 + 3*s0 - 1",
                                  "Mul(Integer(2)**Integer(64), Symbol('s1', integer=True))",
                                  "FloatPow(ToFloat(s0), Float('0.5', precision=53))", "Pow(s0, Rational(-1, 2))"])
def test_bounded_shape_formulas_are_kept(text):
    from netatlas.nets._archive import _safe_expression

    assert _safe_expression(text) is True


def test_pt2_with_an_exploding_shape_formula_is_refused_at_once(archives, tmp_path):
    path = _rewrite(archives / "dynamic.pt2", tmp_path / "power.pt2",
                    _with_formula(lambda symbol: f"Mul({symbol}, 9**9**9)"))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"power\.pt2: refusing member 'models/model\.json': symbolic "
                                             r"expression .*9\*\*9\*\*9"):
        load(path)
    assert time.perf_counter() - start < 20  # the bound for a crafted file; a hang never ends


def test_deeply_nested_json_is_one_line(archives, tmp_path):
    nested = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError on this

    def edit(records):
        records["models/model.json"] = nested
    path = _rewrite(archives / "dynamic.pt2", tmp_path / "nested.pt2", edit)
    with pytest.raises(ModelFileError, match=r"nested\.pt2: refusing member 'models/model\.json': JSON nested"):
        load(path)
    model = netatlas.nets.mlp([2, 6, 1], seed=0)
    save(model, tmp_path / "m.pt", input_shape=(2,), spec=SPEC)
    (tmp_path / "m.json").write_bytes(b'{"mlp": ' + nested + b"}")
    with pytest.raises(ModelFileError, match=r"m\.json: cannot read the architecture spec \(RecursionError"):
        load(tmp_path / "m.pt")


def test_compressed_pt2_members_are_checked_by_declared_size(archives, tmp_path, monkeypatch):
    # 400 kB of zeros deflate to under 1 kB; loading holds the members, the copy torch reads and its tensors
    def edit(records):
        records["extra/padding.bin"] = bytes(400_000)
    path = _rewrite(archives / "dynamic.pt2", tmp_path / "inflating.pt2", edit, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1MB")
    with pytest.raises(MemoryBudgetError, match=r"inflating\.pt2: the archive unpacks to 0\.4 MiB.*3 copies"):
        load(path)
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "2MB")
    assert load(path).n_hidden_units == 4


# -- state dicts ---------------------------------------------------------------------------------------------
def test_compressed_state_dict_is_checked_by_declared_size(tmp_path, monkeypatch):
    spec = {"mlp": {"widths": [2, 512, 512, 1]}}
    model = netatlas.nets.mlp([2, 512, 512, 1], seed=0).double()
    buffer = io.BytesIO()
    torch.save({k: torch.zeros_like(v) for k, v in model.state_dict().items()}, buffer)
    path = tmp_path / "zeros.pt"
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    from netatlas.nets._files import spec_parameters

    n_parameters = spec_parameters(spec)
    assert path.stat().st_size < n_parameters  # < 1 byte per float64 parameter on disk
    # the spec's own estimate (12 B per parameter) fits; the inflated float64 members (16 B per parameter) do not
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", str(14 * n_parameters))
    with pytest.raises(MemoryBudgetError, match=r"zeros\.pt: the weights file \(2\.1 MB inflated"):
        load(path, spec=spec)
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", str(40 * n_parameters))
    assert load(path, spec=spec).n_hidden_units == 1024


def test_meta_and_complex_state_dicts_are_refused(tmp_path):
    model = netatlas.nets.mlp([2, 6, 1], seed=0)
    torch.save({k: torch.empty_like(v, device="meta") for k, v in model.state_dict().items()}, tmp_path / "meta.pt")
    with pytest.raises(ModelFileError, match=r"meta\.pt: tensor '0\.weight' is a meta tensor"):
        load(tmp_path / "meta.pt", spec=SPEC)
    state = {k: v.to(torch.complex64) * (1 + 1j) for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "complex.pt")
    with pytest.raises(ModelFileError, match=r"complex\.pt: tensor '0\.weight' is complex \(torch\.complex64\)"):
        load(tmp_path / "complex.pt", spec=SPEC)


def test_complex_weights_in_a_pt2_are_refused_by_name(tmp_path):
    class ComplexWeight(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(2, 3, dtype=torch.complex64))

        def forward(self, x):
            return torch.relu(x @ self.w.real)

    torch.export.save(torch.export.export(ComplexWeight().eval(), (torch.zeros(2, 2),)), tmp_path / "c.pt2")
    with pytest.raises(ModelFileError, match=r"c\.pt2: tensor 'w' is complex \(torch\.complex64\)"):
        load(tmp_path / "c.pt2")


def test_onnx_complex_input_and_a_gather_that_grows_are_refused(monkeypatch):
    with pytest.raises(UnsupportedLayerError, match="the input 'x' is complex"):
        from_onnx(_relu_graph(x_type=TensorProto.COMPLEX64))
    # Gather of a (1000, 1000) table by (1000, 1000) indices makes 1e9 values from 2e6
    initializers = [numpy_helper.from_array(np.zeros((1000, 1000), dtype=np.float32), "table"),
                    numpy_helper.from_array(np.zeros((1000, 1000), dtype=np.int64), "index")]
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "100MB")
    with pytest.raises(MemoryBudgetError, match="Gather node 'c' .*1,000,000,000 values"):
        from_onnx(_relu_graph([helper.make_node("Gather", ["table", "index"], ["c"])], initializers))


def test_onnx_spec_that_is_not_an_object_is_one_line(tmp_path):
    (tmp_path / "m.onnx").write_bytes(_relu_graph().SerializeToString())
    (tmp_path / "m.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match=r"m\.onnx: the spec of an ONNX file must be a JSON object"):
        load(tmp_path / "m.onnx")


def test_onnx_constant_contractions_past_the_step_limit_are_refused_at_once():
    # two 3000 x 3000 constants made from 8 bytes of file: their product is 2.7e10 multiply-adds
    # (the count in the message comes from the size check before folding; no wall-clock bound, which would
    # depend on the machine's load)
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["a"]), helper.make_node("MatMul", ["a", "a"], ["c"])]
    with pytest.raises(UnsupportedLayerError, match=r"ONNX MatMul on constants .*27,000,000,000 multiply-adds"):
        from_onnx(_relu_graph(nodes, [_int64("shape", [3000, 3000])]))


@pytest.mark.parametrize("nodes, initializers, values", [
    ([helper.make_node("Resize", ["small", "", "scales"], ["c"])],
     [numpy_helper.from_array(np.ones((1, 1, 2, 2), dtype=np.float32), "small"),
      numpy_helper.from_array(np.array([1, 1, 1000, 1000], dtype=np.float32), "scales")], "4,000,000"),
    ([helper.make_node("Einsum", ["u", "u"], ["c"], equation="i,j->ij")],
     [numpy_helper.from_array(np.ones(2000, dtype=np.float32), "u")], "4,000,000"),
], ids=["Resize", "Einsum"])
def test_onnx_resize_and_outer_einsum_are_sized_before_folding(monkeypatch, nodes, initializers, values):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "10MB")
    with pytest.raises(MemoryBudgetError, match=f"{nodes[0].op_type} node 'c' \\({values} values"):
        from_onnx(_relu_graph(nodes, initializers))


def test_spec_whose_shapes_torch_refuses_is_one_line(tmp_path):
    # a 5x5 kernel on a 2x2 input: torch raises a RuntimeError while the net is imported
    spec = {"layers": [{"type": "conv2d", "in": 1, "out": 2, "kernel": 5}, {"type": "flatten"}],
            "input_shape": [1, 2, 2]}
    torch.save(netatlas.nets.module_from_spec(spec).state_dict(), tmp_path / "m.pt")
    with pytest.raises(ModelFileError, match=r"m\.pt: cannot import the model \(RuntimeError"):
        load(tmp_path / "m.pt", spec=spec)


# -- the CLI: one line, at once -----------------------------------------------------------------------------
def _crafted_files(directory, archives):
    """{name: (path, first words of the one-line error)} for files that hung or printed tracebacks."""
    loop, loop_initializers = _loop(10**15)
    onnx_files = {
        "loop.onnx": (_relu_graph([loop], loop_initializers), "UnsupportedLayerError: ONNX control flow Loop"),
        "constant.onnx": (_relu_graph([helper.make_node("ConstantOfShape", ["shape"], ["c"])],
                                      [_int64("shape", [15000, 15000])]), "MemoryBudgetError: "),
        "input.onnx": (_relu_graph(input_dims=(1, 200_000, 200_000)), "MemoryBudgetError: "),
        "gather.onnx": (_relu_graph([helper.make_node("Gather", ["t", "k"], ["c"])],
                                    [_int64("t", [1, 2, 3]), _int64("k", [9])]), "ModelFileError: "),
    }
    files = {}
    for name, (model, message) in onnx_files.items():
        (directory / name).write_bytes(model.SerializeToString())
        files[name] = (directory / name, message)
    power = _rewrite(archives / "dynamic.pt2", directory / "power.pt2",
                     _with_formula(lambda symbol: f"Mul({symbol}, 9**9**9)"))
    files["power.pt2"] = (power, "ModelFileError: ")
    return files


@pytest.mark.parametrize("name", ["loop.onnx", "constant.onnx", "input.onnx", "gather.onnx", "power.pt2"])
def test_info_on_crafted_files_is_one_line_at_once(archives, tmp_path, capsys, monkeypatch, name):
    from netatlas.cli import main

    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1GB")
    path, message = _crafted_files(tmp_path, archives)[name]
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(["info", str(path)])
    err = capsys.readouterr().err
    assert time.perf_counter() - start < 20  # the bound for a crafted file
    assert exit_info.value.code == 1 and err.startswith(message), err
    assert str(path) in err or name == "loop.onnx"  # an unsupported op is named by its node, not the file
    assert len(err.strip().splitlines()) == 1, err
