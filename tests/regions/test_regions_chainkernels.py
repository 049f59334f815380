"""The chain path's wide-relu kernels (``_chainkernels``) against the general ones they replace: the fused
child maps bit for bit against ``_kernels.child_maps`` (the vanishing-unit rule included), the on-units
product against a float64 product within its round-off bound, and whole partitions with and without them
(``_chain.FUSED_KERNELS``) on random, trained and degenerate nets: same regions, patterns, labels, and
vertices/maps/areas equal up to the round-off of one reordered sum per layer."""

import numpy as np
import pytest
import torch
from torch import nn

from chain_nets import degenerate_chain, trained_chain
from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import _chain, partition
from netatlas.regions import _chainkernels as CK
from netatlas.regions import _kernels as K

EPS = np.finfo(np.float64).eps


def _bits(rng, F, n, p_on=0.5):
    return np.packbits(rng.random((F, n)) < p_on, axis=1)


@pytest.mark.parametrize("n_next", [10, 33, 256])
@pytest.mark.parametrize("seed", [0, 1])
def test_relu_next_maps_within_roundoff_of_float64_product(n_next, seed):
    rng = np.random.default_rng(seed)
    F, n = 37, 131  # odd sizes: remainders of the four-column passes and of the packed bytes
    M = rng.standard_normal((F, 3, n))
    bits = _bits(rng, F, n)
    W, b = rng.standard_normal((n_next, n)), rng.standard_normal(n_next)
    out = CK.relu_next_maps(M, bits, 0.5, np.ascontiguousarray(W.T), b, np.empty((F, 3, n_next)))
    s = 0.5 * np.unpackbits(bits, axis=1)[:, :n]
    X = M * s[:, None, :]
    ref = np.einsum("fri,ki->frk", X, W)
    ref[:, 2] += b
    # |computed - exact| <= gamma_(n+1) * sum |w s m| (+ |b|), Higham ch. 3; 2x slack for the reference's own
    mag = np.einsum("fri,ki->frk", np.abs(X), np.abs(W))
    mag[:, 2] += np.abs(b)
    assert np.all(np.abs(out - ref) <= 2 * (n + 2) * EPS * mag)


@pytest.mark.parametrize("n_next", [1, 3, 10, 32])
@pytest.mark.parametrize("slopes", [(1.0, 0.0), (0.5, 0.01)])
def test_narrow_next_maps_within_roundoff_of_float64_product(n_next, slopes):
    rng = np.random.default_rng(n_next)
    F, n = 23, 131
    M = rng.standard_normal((F, 3, n))
    bits = _bits(rng, F, n)
    W, b = rng.standard_normal((n_next, n)), rng.standard_normal(n_next)
    out = CK.narrow_next_maps(M, bits, *slopes, W, b)
    s = np.where(np.unpackbits(bits, axis=1)[:, :n] == 1, *slopes)
    X = M * s[:, None, :]
    ref = np.einsum("fri,ki->frk", X, W)
    ref[:, 2] += b
    mag = np.einsum("fri,ki->frk", np.abs(X), np.abs(W))  # Higham ch. 3, as above
    mag[:, 2] += np.abs(b)
    assert np.all(np.abs(out - ref) <= 2 * (n + 2) * EPS * mag)
    assert np.all(np.abs(out - K.gated_product(M, bits, *slopes, W, b)) <= 4 * (n + 2) * EPS * mag)


@pytest.mark.parametrize("restart", [256, 7])  # the chain restarted every 7th face too
@pytest.mark.parametrize("seed", range(4))
def test_sibling_next_maps_within_roundoff_of_direct_products(seed, restart, monkeypatch):
    """Faces that are children of one face (bits of the layer before differing in a few units from one face to
    the next, as a split's children do) get the next maps of the direct product (``relu_next_maps``) up to the
    round-off of the two sums: the chain of F faces, the product A = W' diag(s*) W (m terms), the corrections."""
    rng = np.random.default_rng(seed)
    F, m, n, n_next = 60, 37, 45, 50  # 3F >= 2m: the size at which the partition takes the sibling path
    M_parent = rng.standard_normal((1, 3, m))
    W, b = rng.standard_normal((n, m)), rng.standard_normal(n)
    Wn, bn = rng.standard_normal((n_next, n)), rng.standard_normal(n_next)
    t = np.empty((F, m), bool)
    t[0] = rng.random(m) < 0.5
    for f in range(1, F):  # a walk through the parent's children: a few bits flip between neighbours
        t[f] = t[f - 1]
        t[f, rng.choice(m, size=rng.integers(0, 4), replace=False)] ^= True
    parent_bits = np.packbits(t, axis=1)
    M = np.einsum("nm,fm,rm->frn", W, t * 1.0, M_parent[0])  # M_f = W diag(t_f) M_P + b, directly
    M[:, 2] += b
    ref = _bits(rng, F, n)
    WT = np.ascontiguousarray(Wn.T)
    monkeypatch.setattr(_chain, "SIBLING_RESTART", restart)
    got = _chain._sibling_next_maps(M, ref, 1.0, W, b, WT, bn, parent_bits, M_parent, 1.0, np.empty((F, 3, n_next)))
    want = CK.relu_next_maps(M, ref, 1.0, WT, bn, np.empty((F, 3, n_next)))
    # magnitude of every term either sum adds: |W'| (|W| |M_P| + |b|) + |b'| over all units (patterns bounded by 1)
    mag = np.abs(M_parent[0]) @ np.abs(W).T @ np.abs(Wn).T
    mag[2] += np.abs(b) @ np.abs(Wn).T + np.abs(bn)
    # roundings along the longest path: the products (n + m + 2), the chain (F steps of up to 4 terms each), the
    # corrections (up to n); gamma_K <= 1.01 K u (Higham ch. 3), 2x slack for the direct sum's own
    K_roundings = n + m + 2 + 4 * F + n
    assert np.all(np.abs(got - want) <= 2 * K_roundings * EPS * mag)
    assert not np.array_equal(got, want)  # a different sum: the test would see a wrong term


def _child_map_inputs(seed, n=70, n_next=45, n_parents=6):
    """Parents' maps, reference maps G under a reference pattern, and children whose bits differ from it in
    a few units (up to 9: several passes of four terms), some runs of siblings; a few units of G made
    vanishing candidates (tiny, or exact zeros) to exercise the recomputation rule."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n_parents, 3, n))
    W, b = rng.standard_normal((n_next, n)), rng.standard_normal(n_next)
    WT = np.ascontiguousarray(W.T)
    ref_bits = _bits(rng, n_parents, n)
    on, off = 1.0, 0.1
    G = K.gated_product(M, ref_bits, on, off, W, b)
    parents, rows = [], []
    for p in range(n_parents):
        for _ in range(rng.integers(1, 6)):
            row = np.unpackbits(ref_bits[p])[:n].copy()
            flip = rng.choice(n, size=rng.integers(0, 10), replace=False)
            row[flip] ^= 1
            parents.append(p)
            rows.append(np.packbits(row))
    cparent, cbits = np.array(parents, np.int64), np.array(rows)
    G[:, :, 3] *= 1e-20  # tiny: a candidate, recomputed
    G[:, :, 5] = 0.0  # exact zeros stay unless a term is added
    mu = np.abs(M).max(axis=0) * 2
    candidate = np.full((3, n_next), 1e-8)
    return G, M, WT, cparent, cbits, ref_bits, on, off, b, mu, candidate, _cut_lists(cparent, cbits, ref_bits, n, rng)


def _cut_lists(cparent, cbits, ref_bits, n, rng):
    """Per parent the units whose bit differs between one of its children and its reference (CSR, each list in
    increasing order, as ``split_faces`` gives the units that cut a face), plus a few units that differ in none
    (a unit can cut a face and leave all its children's bits equal to the reference's)."""
    lists = []
    for p in range(len(ref_bits)):
        differ = np.bitwise_or.reduce(cbits[cparent == p] ^ ref_bits[p], axis=0)
        units = set(np.flatnonzero(np.unpackbits(differ))) | set(rng.choice(n, size=2).tolist())
        lists.append(sorted(units))
    cut_off = np.concatenate([[0], np.cumsum([len(u) for u in lists])]).astype(np.int64)
    return cut_off, np.array([j for u in lists for j in u], np.int64)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("c_start", [0, 3])
def test_fused_child_maps_equal_child_maps_bit_for_bit(seed, c_start):
    G, M, WT, cparent, cbits, ref_bits, on, off, b, mu, candidate, cuts = _child_map_inputs(seed)
    C = len(cparent) - c_start
    groups = np.concatenate([[0], np.flatnonzero(np.diff(cparent[c_start:])) + 1, [C]]).astype(np.int64)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    want = K.child_maps(G, M, WT, *empty, cparent, cbits, ref_bits, on, off, c_start, np.empty((C, 3, WT.shape[1])),
                        groups, b, mu, candidate, 40)
    got = CK.fused_child_maps(G, M, WT, cparent, cbits, ref_bits, on, off, c_start, np.empty((C, 3, WT.shape[1])),
                              groups, b, mu, candidate, 40, *cuts)
    assert np.array_equal(got, want)



def _integer(seed):
    """Small integer weights and biases on three wide layers: many lines through one point, parallel and equal
    lines, units that vanish on whole faces; every map sum is exact in float64, whichever order it is taken in."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(),
                          nn.Linear(40, 3))
    with torch.no_grad():
        for lin in model[::2]:
            lin.weight.copy_(torch.randint(-2, 3, lin.weight.shape))
            lin.bias.copy_(torch.randint(-1, 2, lin.bias.shape))
    return model.eval()


NETS = {
    "random-2-64-64-64-3": lambda s: mlp([2, 64, 64, 64, 3], seed=s),
    "random-2-128-128-10": lambda s: mlp([2, 128, 128, 10], init="torch", seed=s),
    "trained-2-40-40-2": trained_chain,
    "degenerate-2-48-48-3": degenerate_chain,
    "integer-2-40-40-40-3": _integer,
    "leaky-2-48-48-3": lambda s: mlp([2, 48, 48, 3], "leaky_relu", seed=s),  # fused child maps, BLAS product
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("seed", [0, 1])
def test_partitions_equal_with_and_without_chain_kernels(name, seed, monkeypatch):
    net = from_torch(NETS[name](seed), (2,)) if name != "random-2-64-64-64-3" else NETS[name](seed)
    plane = Plane.square(1.0)
    monkeypatch.setattr(_chain, "FUSED_KERNELS", False)
    old = partition(net, plane)
    monkeypatch.setattr(_chain, "FUSED_KERNELS", True)
    sibling_calls = []
    sibling = _chain._sibling_next_maps
    monkeypatch.setattr(_chain, "_sibling_next_maps", lambda *a: sibling_calls.append(1) or sibling(*a))
    new = partition(net, plane)
    if name in ("random-2-64-64-64-3", "integer-2-40-40-40-3"):  # a wide relu layer after the second: sibling path
        assert sibling_calls
    assert new.method == old.method == "chain"
    assert len(new.areas) == len(old.areas)
    assert np.array_equal(new.offsets, old.offsets) and np.array_equal(new.labels, old.labels)
    for a, b in zip(new.pattern_bits, old.pattern_bits, strict=True):
        assert np.array_equal(a, b)
    # one reordered sum of n <= 128 products per layer, a few layers: each map entry moves by a few hundred
    # eps of its magnitude; vertices (well-conditioned crossings of the random lines) and areas alike
    scale = np.abs(old.maps).max()
    assert np.allclose(new.maps, old.maps, rtol=0, atol=1e-10 * scale)
    assert np.allclose(new.xy, old.xy, rtol=0, atol=1e-9)
    assert np.allclose(new.areas, old.areas, rtol=0, atol=1e-9 * plane.area)
