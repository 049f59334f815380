"""The 3-D partition's faster steps against the code they replace (kept here as the reference, swapped in
with monkeypatch): the same complex, bit for bit -- vertices, face cycles and their order, face cells
and labels, patterns, maps, level sides -- on random, trained and degenerate nets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regions_tiles3d import torch_mlp
from test_regions_volume_counts import NETS
from test_regions_volume_kernels import FIELDS, integer_mlp

import netatlas.regions._layercut as layercut_module
import netatlas.regions._volume as volume_module
from netatlas import Volume
from netatlas.regions import partition
from netatlas.regions._volume import MAP_CHUNK, _snap

CUBE = Volume.cube(1.0)


def next_maps_reference(M, origin, bits, slopes, Wn, bn, mu, n_roundings):
    """The next layer's maps with every cell's magnitudes computed (the code ``_next_maps`` replaced)."""
    on_slope, off_slope = slopes
    out = np.empty((len(origin), 4, Wn.shape[0]))
    for c0 in range(0, len(origin), MAP_CHUNK):
        chunk = slice(c0, c0 + MAP_CHUNK)
        slope = np.where(bits[chunk], on_slope, off_slope)
        m = np.einsum("crn,mn->crm", M[origin[chunk]] * slope[:, None, :], Wn)
        m[:, 3] += bn
        if n_roundings is not None:
            magnitude = np.einsum("crn,mn->crm", np.abs(slope)[:, None, :] * mu[None], np.abs(Wn))
            magnitude[:, 3] += np.abs(bn)
            _snap(m, magnitude, n_roundings)
        out[chunk] = m
    return out


REFERENCES = {"_next_maps": next_maps_reference}


def assert_same_as_reference(model, levels, monkeypatch, volume=CUBE, signs_by_cell=False):
    with monkeypatch.context() as patch:
        if signs_by_cell:  # every layer's start signs cell by cell
            patch.setattr(layercut_module, "SIGNS_BY_FACE_BYTES", 0)
        fast = partition(model, volume, levels=levels)
    with monkeypatch.context() as patch:
        for name, reference in REFERENCES.items():
            patch.setattr(volume_module, name, reference)
        slow = partition(model, volume, levels=levels)
    for name in FIELDS:
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    return fast


@pytest.mark.parametrize("model, levels", NETS)
def test_nets_match_the_previous_path_bit_for_bit(model, levels, monkeypatch):
    assert assert_same_as_reference(model, levels, monkeypatch).num_cells > 10
    assert_same_as_reference(model, levels, monkeypatch, signs_by_cell=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_start_signs_by_cell_equal_by_face(seed):
    # on a real complex, values with ties, exact zeros and values at the margin: the same signs
    cx = partition(integer_mlp(seed, 6, 2, 3, False), CUBE, levels=(0.0,))
    rng = np.random.default_rng(seed)
    V, n = len(cx.points), 5
    # planes' values on a half-integer grid: exact zeros and ties; limits at and below those values
    Z = np.round((cx.points @ rng.normal(size=(3, n)) + rng.normal(size=n) * 0.3) * 2) / 2
    L = rng.choice([0.0, 1e-16, 0.5], size=(V, n))
    args = (Z, L, cx.face_vertices, cx.face_offsets, cx.face_cells, cx.num_cells, 4)
    by_face, by_cell = layercut_module._signs_by_face(*args), layercut_module._signs_by_cell(*args)
    assert np.array_equal(by_face, by_cell) and np.any(by_face != 0) and np.any(by_face == 0)


def snapped_entries(model):
    """How many nonzero map entries of the layers after the first the partition snaps to zero."""
    changed = []
    original = volume_module._snap

    def snap(M, magnitude, n_roundings):
        before = M.copy()
        original(M, magnitude, n_roundings)
        if len(M) > 1:  # not the first layer's one cell
            changed.append(int(np.count_nonzero(before != M)))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(volume_module, "_snap", snap)
        partition(model, CUBE, levels=(0.0,))
    return sum(changed)


def cancelling_mlp(extra_seed):
    """A 3-4-3-3-1 ReLU net whose second layer's first unit is ``0.1 a + 0.2 b - 0.3 c`` (no bias) of three copies
    of the first layer's unit ``x + 0.1``: zero up to round-off where they are on (snapped there, NOTE
    [vanishing units]); its other units random."""
    rng = np.random.default_rng(extra_seed)
    W1 = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], rng.normal(size=3)])
    W2 = np.concatenate([[[0.1, 0.2, -0.3, 0.0]], rng.normal(size=(2, 4))])
    Ws = [W1, W2, rng.normal(size=(3, 3)), rng.normal(size=(1, 3))]
    bs = [np.array([0.1, 0.1, 0.1, 0.0]), np.array([0.0, *rng.normal(size=2) * 0.1]), rng.normal(size=3) * 0.1,
          np.zeros(1)]
    return torch_mlp(Ws, bs, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_snapping_nets_match_the_previous_path(seed, monkeypatch):
    model = cancelling_mlp(seed)
    assert snapped_entries(model) > 0
    assert_same_as_reference(model, (0.0,), monkeypatch)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(1, 7), depth=st.integers(1, 3), scale=st.sampled_from([1, 3]),
       leaky=st.booleans())
def test_property_degenerate_nets_match_the_previous_path(seed, width, depth, scale, leaky):
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_same_as_reference(integer_mlp(seed, width, depth, scale, leaky), (0.0,), monkeypatch,
                                 signs_by_cell=bool(seed % 2))
