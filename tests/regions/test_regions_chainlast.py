"""The chain path's last hidden level in one compiled call (``_chainlast.last_level``, NOTE [last hidden level])
against the separate kernels it replaces (``_chain.LAST_LEVEL_KERNEL = False``): every Partition field bit for
bit, on random, trained, degenerate, integer and leaky nets, with batches and chunks small enough that a face's
chain of maps and its regions' chains cross their boundaries; the output maps against a float64 forward pass.
And ``split_faces``'s packed scan of every unit against ``np.packbits``."""

import numpy as np
import pytest
import torch
from torch import nn

from chain_nets import degenerate_chain, trained_chain
from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import _chain, _chainlast, _untiled, partition
from netatlas.regions import _kernels as K


def _integer(seed):
    """Small integer weights: many lines through one point, equal lines, units vanishing on whole faces."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(),
                          nn.Linear(40, 3))
    with torch.no_grad():
        for lin in model[::2]:
            lin.weight.copy_(torch.randint(-2, 3, lin.weight.shape))
            lin.bias.copy_(torch.randint(-1, 2, lin.bias.shape))
    return model.eval()


def _random(widths, act=nn.ReLU):
    def make(seed):
        torch.manual_seed(seed)
        mods = []
        for a, b in zip(widths[:-1], widths[1:], strict=False):
            mods += [nn.Linear(a, b), act()]
        return nn.Sequential(*mods[:-1]).eval()
    return make


NETS = {
    "random-2-64-64-64-10": _random([2, 64, 64, 64, 10]),
    "random-2-96-96-10": _random([2, 96, 96, 10]),
    "trained-2-40-40-2": trained_chain,
    "degenerate-2-48-48-3": degenerate_chain,
    "integer-2-40-40-40-3": _integer,
    "leaky-2-48-48-3": _random([2, 48, 48, 3], lambda: nn.LeakyReLU(0.1)),
}


def _fields(part):
    return {"xy": part.xy, "offsets": part.offsets, "labels": part.labels, "maps": part.maps,
            **{f"pattern_bits[{k}]": bits for k, bits in enumerate(part.pattern_bits)}}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sizes", ["default", "small"])
def test_last_level_kernel_equals_separate_kernels_bit_for_bit(name, seed, sizes, monkeypatch):
    model = NETS[name](seed)
    net = from_torch(model, (2,))
    plane = Plane.square(1.0)
    monkeypatch.setattr(_untiled, "small_chain", lambda *a: None)  # the general chain path, also for small nets
    if sizes == "small":  # a face's maps chain across batches; regions' chains break at 256-region chunks
        monkeypatch.setattr(_chain, "LAST_LEVEL_BATCH", 3)
        monkeypatch.setattr(_chain, "CHUNK_BYTES", 1)
    monkeypatch.setattr(_chain, "LAST_LEVEL_KERNEL", False)
    old = partition(net, plane)
    monkeypatch.setattr(_chain, "LAST_LEVEL_KERNEL", True)
    calls = []
    last_level = _chainlast.last_level
    monkeypatch.setattr(_chainlast, "last_level", lambda *a: calls.append(1) or last_level(*a))
    new = partition(net, plane)
    assert calls and new.method == old.method == "chain"
    want, got = _fields(old), _fields(new)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape, key
        assert np.array_equal(got[key].view(np.uint8), want[key].view(np.uint8)), key  # bits: -0.0 and NaN too
    # the output maps are the net's: a float64 forward pass at each region's centroid
    points = new.centroids()
    with torch.no_grad():
        forward = model.double()(torch.as_tensor(plane.to_input(points), dtype=torch.float64)).numpy()
    scale = np.abs(forward).max() + 1.0
    assert np.allclose(new.outputs(points, np.arange(new.num_regions)), forward, rtol=0, atol=1e-9 * scale)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 131])
@pytest.mark.parametrize("seed", [0, 1])
def test_split_faces_packed_bits_equal_packbits(n, seed):
    """One face that few lines cut: each child's bits are 1 where the unit is positive inside it (its value at
    the child's vertex mean: no line but the cutting ones crosses a child), packed as ``np.packbits``."""
    rng = np.random.default_rng(seed)
    xy = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    maps = rng.standard_normal((1, 3, n))
    maps[0, 2] += 3.0 * np.sign(maps[0, 2])  # most lines miss the square
    maps[0, :, 0] = [1.0, 0.3, 0.1]  # one line crosses it
    cxy, coff, clab, cparent, cbits, cut_off, cut_units = K.split_faces(
        xy, np.array([0, 4]), np.array([-1, -2, -3, -4]), maps, 0, 1e-12, 2 * np.sqrt(2))
    assert len(cparent) >= 2 and 0 in cut_units
    for c in range(len(cparent)):
        mean = cxy[coff[c]:coff[c + 1]].mean(axis=0)
        z = maps[0, 0] * mean[0] + maps[0, 1] * mean[1] + maps[0, 2]
        assert np.array_equal(cbits[c], np.packbits(z > 0))
    crossing = [j for j in range(n) if np.ptp(np.sign(xy @ maps[0, :2, j] + maps[0, 2, j])) > 0]
    assert np.array_equal(cut_units, crossing)
