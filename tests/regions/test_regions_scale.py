"""Scale control: the region-count estimate, max_regions and the memory budget (before and during a
run), and argument validation."""

import numpy as np
import pytest

import netatlas
from netatlas import Plane
from netatlas._memory import parse_bytes
from netatlas.nets import from_torch, mlp
from netatlas.regions import RegionLimitError, estimate_regions, partition


@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_is_the_right_order_of_magnitude(seed):
    net = from_torch(mlp([2, 32, 32, 1], seed=seed))
    plane = Plane.square(1.0)
    actual = partition(net, plane).num_regions
    assert 0.25 < estimate_regions(net, plane) / actual < 4


def test_max_regions_stops_before_the_run_with_the_estimate_and_the_options():
    net = from_torch(mlp([2, 32, 32, 1], seed=0))
    pattern = r"about [\d,]+ regions estimated.*max_regions=10.*smaller window.*tiles"
    with pytest.raises(RegionLimitError, match=pattern):
        partition(net, Plane.square(1.0), max_regions=10)
    with pytest.raises(RegionLimitError, match="memory budget"):
        partition(net, Plane.square(1.0), memory_budget=1000)


def test_the_run_stops_once_it_passes_max_regions():
    net = from_torch(mlp([2, 32, 32, 1], seed=0))
    plane = Plane.square(1.0)
    actual = partition(net, plane).num_regions
    estimate = estimate_regions(net, plane)
    cap = int(min(estimate * 1.5, actual - 1))
    if estimate > cap:  # the estimate itself refuses (also a correct outcome); shrink the gap
        cap = int(estimate) + 1
    if cap >= actual:
        pytest.skip("estimate above the actual count for this net")
    with pytest.raises(RegionLimitError, match=r"passed [\d,]+ regions with [\d.]+% of the slice done"):
        partition(net, plane, max_regions=cap)
    assert partition(net, plane, max_regions=actual).num_regions == actual


def test_limits_do_not_change_the_partition():
    net = from_torch(mlp([2, 16, 16, 3], seed=2))
    a = partition(net, Plane.square(1.0), memory_budget=None)
    b = partition(net, Plane.square(1.0), max_regions=10**6, memory_budget="1GB", progress=False)
    assert a.num_regions == b.num_regions and np.array_equal(a.patterns, b.patterns)


def test_bad_limits_are_refused():
    net = netatlas.nets.mlp([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="max_regions"):
        partition(net, max_regions=0)
    with pytest.raises(ValueError, match="memory_budget"):
        partition(net, memory_budget="lots")
    # one meaning with NETATLAS_MEMORY_BUDGET (netatlas._memory): GB = 10^9 bytes, GiB = 2^30
    assert parse_bytes("512 MiB") == 512 * 2**20 and parse_bytes("2GB") == 2 * 10**9
    assert partition(net, memory_budget=None).num_regions == partition(net).num_regions  # None: no limit


def test_estimate_counts_wide_nets_in_sub_segments_with_the_same_result(monkeypatch):
    # on a wide net the estimate walks each line in sub-segments (bounded memory per along_line call);
    # the breakpoints it counts are the ones along_line finds on the whole line
    import torch
    from torch import nn

    from netatlas.regions import _scale
    from netatlas.regions._lines import along_line

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 8),
                          nn.ReLU(), nn.Linear(8, 2)).eval()
    net = from_torch(model, (1, 8, 8))
    plane = Plane.through(*np.random.default_rng(0).standard_normal((3, 1, 8, 8)))
    a, b = np.array([plane.bounds[0], plane.bounds[2]]), np.array([plane.bounds[1], plane.bounds[3]])
    ends = plane.to_input(np.array([a, b]))
    whole = along_line(net, ends[0], ends[1]).num_pieces - 1
    assert whole > 20
    monkeypatch.setattr(_scale, "ESTIMATE_BYTES", 72 * 256 * 3)  # about 3 pieces per call
    calls = []
    counting = lambda *args: calls.append(1) or along_line(*args)
    assert _scale._breakpoints_along(net, plane, a, b, counting) == whole
    assert len(calls) > 5


def test_region_limit_error_keeps_its_old_homes():
    from netatlas.regions import _scale

    assert netatlas.RegionLimitError is RegionLimitError is _scale.RegionLimitError
    assert issubclass(RegionLimitError, netatlas.NetatlasError)



def test_sampled_estimate_is_exact_for_one_layer():
    # NOTE [sampled estimate]: the first layer's kinks are lines on the whole slice, and an arrangement of
    # m lines in general position crossing a convex window has 1 + m + I cells (I: pairs meeting inside)
    net = from_torch(mlp([2, 24, 1], seed=3))
    for size in (0.5, 1.0, 3.0):
        plane = Plane.square(size)
        assert estimate_regions(net, plane, method="samples") == partition(net, plane).num_regions


@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_estimate_is_the_right_order_of_magnitude(seed):
    import torch
    from torch import nn

    net = from_torch(mlp([2, 32, 32, 1], seed=seed))
    for plane in (Plane.square(1.0), Plane.square(0.3)):
        assert 0.25 < estimate_regions(net, plane, method="samples") / partition(net, plane).num_regions < 4
    torch.manual_seed(seed)  # max pooling: the arg-max's tie lines
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 8),
                          nn.ReLU(), nn.Linear(8, 2)).eval()
    cnn = from_torch(model, (1, 8, 8))
    plane = Plane.through(*np.random.default_rng(seed).standard_normal((3, 1, 8, 8)))
    for zoomed in (plane, plane.zoom(0.1)):
        assert 0.25 < estimate_regions(cnn, zoomed, method="samples") / partition(cnn, zoomed).num_regions < 4


def test_estimate_samples_on_wide_nets_only():
    import torch
    from torch import nn

    from netatlas.regions import _scale

    torch.manual_seed(0)
    # a 1 x 256 x 256 input: SAMPLED_WIDTH units, where a line's pieces would each hold ~4.7 MB of maps
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256 * 256, 2)).eval()
    wide = from_torch(model, (1, 256, 256))
    assert max(node.size for node in wide.nodes) == _scale.SAMPLED_WIDTH
    plane = Plane.through(*np.random.default_rng(0).standard_normal((3, 1, 256, 256)))
    plane = plane.zoom(1e-3)
    assert estimate_regions(wide, plane) == estimate_regions(wide, plane, method="samples")
    net, square = from_torch(mlp([2, 32, 32, 1], seed=0)), Plane.square(1.0)
    assert estimate_regions(net, square) == estimate_regions(net, square, method="lines")
    with pytest.raises(ValueError, match="method must be 'auto', 'lines' or 'samples'"):
        estimate_regions(net, square, method="grid")
