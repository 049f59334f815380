"""The max-pooling kernels of the graph path against the NumPy expressions they replaced, bit for bit:
``along_line``'s arg-max crossings and first maxima (``line_max_crossings``, ``line_first_max``), the
face split's early answer for windows one entry wins (``_sole_winner``: whenever it answers, ``_winners``
gives that entry alone), and ``small_units`` (the snapping rule's candidates)."""

import numpy as np
import pytest
import torch
from torch import nn

from netatlas.nets import from_torch
from netatlas.regions import along_line
from netatlas.regions._graphmaps import small_units
from netatlas.regions._maxkernels import _sole_winner, _winners, line_first_max, line_max_crossings


def _numpy_split_max(edges, a, c, index, tolerance, chunk=64):
    """The NumPy form ``_lines._split_max`` had before its kernels (crossings t, choices per new piece)."""
    from netatlas.regions._lines import _refine

    present = index >= 0
    idx = np.where(present, index, 0)
    both = present[None, :, :, None] & present[None, :, None, :]
    t_parts = []
    for s in range(0, len(edges) - 1, chunk):
        A, C = a[s:s + chunk][:, idx], c[s:s + chunk][:, idx]
        dA = A[:, :, :, None] - A[:, :, None, :]
        dC = C[:, :, :, None] - C[:, :, None, :]
        e = min(s + chunk, len(edges) - 1)
        lo, hi = edges[s:e, None, None, None], edges[s + 1:e + 1, None, None, None]
        da, db = dA * lo + dC, dA * hi + dC
        tol = tolerance * np.abs(dA)
        cross = both & (((da > tol) & (db < -tol)) | ((da < -tol) & (db > tol)))
        t_parts.append(-dC[cross] / dA[cross])
    t_new = np.concatenate(t_parts) if t_parts else np.zeros(0)
    t_all, parent, mids = _refine(edges, t_new, tolerance)
    choice = np.concatenate([
        _numpy_first_max(a[parent[s:s + chunk]][:, idx] * mids[s:s + chunk, None, None]
                         + c[parent[s:s + chunk]][:, idx], a[parent[s:s + chunk]][:, idx], present, tolerance)
        for s in range(0, len(parent), chunk)])
    return t_new, parent, mids, choice


def _numpy_first_max(z, slope, present, tolerance):
    z = np.where(present[None], z, -np.inf)
    best = z.max(axis=2, keepdims=True)
    at_best = np.take_along_axis(slope, z.argmax(axis=2)[..., None], axis=2)
    band = tolerance * np.abs(slope - at_best) + 8 * np.finfo(float).eps * (np.abs(best) + np.abs(z))
    return np.argmax((z >= best - band) & present[None], axis=2)


def _case(seed, ties):
    rng = np.random.default_rng(seed)
    n_in, P = 24, 9
    edges = np.concatenate([[0.0], np.sort(rng.random(P - 1)), [1.0]])
    a, c = rng.normal(size=(P, n_in)), rng.normal(size=(P, n_in)) * 0.3
    if ties:  # equal entries (a flat image's max-pool windows), entries meeting at an edge, zero maps
        a[:, 1], c[:, 1] = a[:, 0], c[:, 0]
        a[:, 5], c[:, 5] = 0.0, 0.0
        a[:, 6], c[:, 6] = 0.0, 0.0
        c[:, 9] = c[:, 8] + (a[:, 8] - a[:, 9]) * edges[1:, None][:, 0]  # z_8 = z_9 at each piece's right end
        a[:, 12] = a[:, 13] * (1 + 1e-13)  # nearly parallel
        c[:, 12] = c[:, 13]
    index = np.arange(n_in).reshape(6, 4).copy()
    index[2, 3] = -1  # a padded window
    index[4, 1:] = -1
    return edges, a, c, index


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("tolerance", [0.0, 1e-12, 1e-3])
def test_line_kernels_are_the_numpy_form_bit_for_bit(seed, ties, tolerance):
    edges, a, c, index = _case(seed, ties)
    t_ref, parent, mids, choice_ref = _numpy_split_max(edges, a, c, index, tolerance)
    t = line_max_crossings(edges, a, c, index, tolerance)
    assert np.array_equal(np.sort(t), np.sort(t_ref))  # the same numbers (the order is _refine's to fix)
    choice = line_first_max(a, c, parent.astype(np.int64), mids, index, tolerance)
    assert np.array_equal(choice, choice_ref)
    assert len(t) > 0 and len(np.unique(choice_ref)) > 1  # the cases cross and choose


def test_first_max_with_infinite_and_nan_values_as_numpy():
    a = np.array([[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]])
    c = np.array([[-np.inf, -np.inf, 2.0, np.nan, 0.0, 0.0]])
    index = np.array([[0, 1], [2, 3], [4, 5]])
    parent, mids = np.zeros(3, np.int64), np.array([0.25, 0.5, 0.75])
    ref = _numpy_first_max(a[parent][:, index] * mids[:, None, None] + c[parent][:, index], a[parent][:, index],
                           index >= 0, 1e-9)
    assert np.array_equal(line_first_max(a, c, parent, mids, index, 1e-9), ref)


def test_along_line_through_ties_matches_the_numpy_split():
    # a max-pool CNN on an image with flat parts (max windows tie) and duplicated channels: along_line's
    # pieces, patterns and arg-maxes equal those of the NumPy split run through the same line
    import netatlas.regions._lines as L

    torch.manual_seed(0)
    conv = nn.Conv2d(1, 3, 3)
    with torch.no_grad():
        conv.weight[1], conv.bias[1] = conv.weight[0], conv.bias[0]
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4), nn.ReLU(),
                          nn.Linear(4, 2)).double().eval()
    net = from_torch(model, input_shape=(1, 8, 8))
    image = np.random.default_rng(0).random((1, 8, 8))
    image[:, :, :4] = 0.0
    x1 = image + np.random.default_rng(1).normal(size=image.shape)
    fast = along_line(net, image, x1)

    def numpy_split(edges, a, c, index, tolerance):
        t_new, parent, mids, choice = _numpy_split_max(edges, a, c, index, tolerance)
        t_all, _, _ = L._refine(edges, t_new, tolerance)
        old = np.isin(t_all[1:-1], edges[1:-1])
        keep = old | np.any(choice[1:] != choice[:-1], axis=1)
        first = np.concatenate([[0], np.flatnonzero(keep) + 1])
        return np.concatenate([[0.0], t_all[1:-1][keep], [1.0]]), parent[first], choice[first].astype(np.int16)

    kernel_split = L._split_max
    L._split_max = numpy_split
    try:
        ref = along_line(net, image, x1)
    finally:
        L._split_max = kernel_split
    assert fast.num_pieces == ref.num_pieces > 3
    assert np.array_equal(fast.breakpoints, ref.breakpoints) and np.array_equal(fast.patterns, ref.patterns)
    assert np.array_equal(fast.argmax, ref.argmax)


def test_small_units_is_the_numpy_test():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(30, 3, 17)) * 1e-3
    reach = np.abs(rng.normal(size=(3, 17))) * 1e-3
    M[4, :, 2] = 0.0  # exactly zero: not a candidate
    M[6, :, 5] = reach[:, 5]  # at the reach exactly: a candidate
    M[7, 1, 6] = np.nan
    ref = (np.abs(M) <= reach).all(axis=1) & (np.abs(M) > 0).any(axis=1)
    out = small_units(M, reach)
    assert np.array_equal(out, ref) and ref.any() and not ref.all()


@pytest.mark.parametrize("seed", range(3))
def test_sole_winner_answers_as_winners(seed):
    rng = np.random.default_rng(seed)
    n_in = 40
    a, b, c = rng.normal(size=(3, n_in)) * 0.1
    a[:8], b[:8], c[:8] = 0.0, 0.0, 0.0  # zero maps (units off): exact ties, the first wins
    c[8:12] = 5.0  # equal constants: ties on flat maps
    index = rng.permutation(n_in).reshape(10, 4).copy()
    index[3, 2:] = -1
    alive = np.empty(4, np.uint8)
    answered = 0
    for _ in range(300):
        xy = rng.normal(size=(4, 2)) * rng.choice([1e-3, 0.1, 3.0])
        xy = xy[np.argsort(np.arctan2(xy[:, 1] - xy[:, 1].mean(), xy[:, 0] - xy[:, 0].mean()))]  # convex enough
        cu, cv = xy.mean(0)
        R = float(np.sqrt(((xy - [cu, cv]) ** 2).sum(1)).max())
        for w in range(len(index)):
            p = _sole_winner(cu, cv, R, a, b, c, index, w, 1e-10)
            if p >= 0:
                answered += 1
                assert _winners(xy, 0, 4, cu, cv, R, a, b, c, index[w], 1e-10, alive) == 1
                assert alive.tolist() == [int(i == p) for i in range(4)]
    assert 0 < answered < 300 * len(index)
