"""Model files load safely; every kind of bad file gives one line naming the file and the problem."""

import json

import pytest
import torch

import netatlas
from netatlas.nets import load, save


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


SPEC = {"mlp": {"widths": [2, 5, 3], "activation": "relu"}}


@pytest.fixture
def model():
    return netatlas.nets.mlp([2, 5, 3], "relu", seed=1)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_state_dict_with_spec_beside_it(tmp_path, model, suffix):
    save(model, tmp_path / f"m{suffix}", input_shape=(2,), spec=SPEC)
    net = load(tmp_path / f"m{suffix}")
    x = torch.randn(6, 2, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-12, atol=0)


def test_layers_spec_and_explicit_spec_file(tmp_path):
    spec = {"layers": [{"type": "conv2d", "in": 1, "out": 2, "kernel": 3}, {"type": "relu"}, {"type": "flatten"},
                       {"type": "linear", "in": 2 * 4 * 4, "out": 2}], "input_shape": [1, 6, 6]}
    module = netatlas.nets.module_from_spec(spec)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    (tmp_path / "arch.json").write_text(json.dumps(spec))
    net = load(tmp_path / "w.pt", spec=tmp_path / "arch.json")
    assert net.input_shape == (1, 6, 6) and net.n_outputs == 2


def test_missing_file(tmp_path):
    with pytest.raises(netatlas.ModelFileError, match=r"nope.pt2: no such file"):
        load(tmp_path / "nope.pt2")


def test_truncated_state_dict(tmp_path, model):
    save(model, tmp_path / "m.pt", input_shape=(2,), spec=SPEC)
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(netatlas.ModelFileError, match=r"m.pt: cannot read weights"):
        load(tmp_path / "m.pt")


def test_corrupt_pt2_and_safetensors(tmp_path):
    (tmp_path / "m.pt2").write_bytes(b"\x00not a zip")
    with pytest.raises(netatlas.ModelFileError, match=r"m.pt2: not a readable torch.export archive"):
        load(tmp_path / "m.pt2")
    (tmp_path / "s.safetensors").write_bytes(b"garbage")
    with pytest.raises(netatlas.ModelFileError, match=r"s.safetensors: cannot read weights"):
        load(tmp_path / "s.safetensors", spec=SPEC)


def test_wrong_shape_weights(tmp_path, model):
    save(model, tmp_path / "m.pt", input_shape=(2,), spec=SPEC)
    with pytest.raises(netatlas.ModelFileError, match=r"m.pt: weights do not fit the architecture spec.*size mismatch"):
        load(tmp_path / "m.pt", spec={"mlp": {"widths": [2, 6, 3]}})


def test_pickled_objects_are_refused(tmp_path):
    # A pickle that would call a function on load: weights_only=True must refuse it.
    torch.save({"0.weight": torch.zeros(1), "obj": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(netatlas.ModelFileError, match=r"evil.pt: cannot read weights"):
        load(tmp_path / "evil.pt", spec=SPEC)


def test_state_dict_without_spec(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "m.pt")
    with pytest.raises(netatlas.ModelFileError, match=r"needs an architecture spec"):
        load(tmp_path / "m.pt")


def test_unknown_suffix_and_bad_spec(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"")
    with pytest.raises(netatlas.ModelFileError, match=r"unknown model file type '.h5'; use .pt2 .*, .onnx"):
        load(tmp_path / "m.h5")
    with pytest.raises(ValueError, match=r"unknown type 'conv3d'"):
        netatlas.nets.module_from_spec({"layers": [{"type": "conv3d"}]})


def test_saved_pt2_runs_on_any_batch_size(tmp_path):
    # the playground's and netatlas.nets.save's .pt2 must not be fixed to the example batch of 2
    import torch

    from netatlas.nets import save

    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    save(model, tmp_path / "m.pt2", input_shape=(2,))
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    for batch in (1, 5, 33):
        x = torch.randn(batch, 2)
        torch.testing.assert_close(program(x), model(x))
