"""Partition.predicted_class / region_classes (issue 26.6): exact, not the class at the centroid. At many
sampled points torch's arg-max is among the classes the point's region reports, and a region the decision
boundary does not cut reports exactly torch's class; a cut region reports CUT_BY_BOUNDARY."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import netatlas
from netatlas.regions import CUT_BY_BOUNDARY


def _torch_classes(model, plane, uv):
    x = torch.as_tensor(plane.to_input(uv).reshape(len(uv), -1), dtype=torch.float64)
    with torch.no_grad():
        out = model.double()(x).numpy()
    # a point within round-off of a tie has no well-defined arg-max: left out (float64 sums of a few terms)
    top = np.sort(out, axis=1) if out.shape[1] > 1 else np.abs(out)
    margin = (top[:, -1] - top[:, -2]) if out.shape[1] > 1 else top[:, 0]
    cls = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else out.argmax(1)
    return cls, margin > 1e-9 * (1 + np.abs(out).max())


@pytest.mark.parametrize(("widths", "seed"), [([2, 8, 8, 3], 4), ([2, 12, 1], 0), ([2, 6, 6, 5], 4),
                                               ([2, 16, 16, 4], 3)])
def test_every_sampled_points_class_is_among_its_regions_classes(widths, seed):
    model = netatlas.nets.mlp(widths, seed=seed)
    plane = netatlas.Plane.square(3.0)
    part = netatlas.regions.partition(netatlas.nets.from_torch(model), plane)
    present = part.region_classes()
    predicted = part.predicted_class()
    assert present.shape == (part.num_regions, max(widths[-1], 2))
    assert present.any(1).all()  # every region has a class
    cut = present.sum(1) > 1
    assert np.array_equal(predicted < 0, cut) and (predicted[cut] == CUT_BY_BOUNDARY).all()
    assert cut.any() and (~cut).any()  # the test sees both kinds of region
    uv = np.random.default_rng(seed).uniform(-3.0, 3.0, size=(20_000, 2))
    regions = part.locate(uv)
    cls, clear = _torch_classes(model, plane, uv)
    assert clear.mean() > 0.99
    regions, cls = regions[clear], cls[clear]
    assert present[regions, cls].all()  # torch's class is always among the reported ones
    whole = predicted[regions] >= 0
    assert whole.any()
    assert np.array_equal(predicted[regions][whole], cls[whole])  # a whole region's one class is torch's


def test_centroid_class_is_not_the_answer_for_a_cut_region():
    """A cut region holds a point of a class other than its centroid's: the old answer was wrong there."""
    model = netatlas.nets.mlp([2, 16, 16, 4], seed=1)
    plane = netatlas.Plane.square(3.0)
    part = netatlas.regions.partition(netatlas.nets.from_torch(model), plane)
    uv = np.random.default_rng(0).uniform(-3.0, 3.0, size=(20_000, 2))
    regions = part.locate(uv)
    cls, clear = _torch_classes(model, plane, uv)
    centroid_class = part.outputs(part.centroids(), np.arange(part.num_regions)).argmax(1)
    disagree = clear & (centroid_class[regions] != cls)
    assert disagree.any()  # the centroid's class is wrong somewhere ...
    assert (part.predicted_class()[regions[disagree]] == CUT_BY_BOUNDARY).all()  # ... only in cut regions


def test_whole_regions_colour_by_their_class_and_cut_ones_grey():
    from netatlas.regions._plot import region_colors

    part = netatlas.regions.partition(netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 3], seed=4)),
                                        netatlas.Plane.square(3.0))
    rgba = region_colors(part, "class")
    cut = part.predicted_class() < 0
    assert np.allclose(rgba[cut], (0.8, 0.8, 0.8, 1.0))
    assert not np.allclose(rgba[~cut][:, :3], 0.8)
