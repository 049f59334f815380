"""One API vocabulary (issue 25.6): the network is ``net``, points are ``points``; old keyword spellings and
moved names still work for one release, with a DeprecationWarning."""

import importlib
import inspect
import warnings

import pytest
import torch

LENSES = ("regions", "metric", "splines", "lowrank", "dynamics")
OLD_NETWORK_NAMES = {"model", "feature_fn", "model_or_params", "model_or_spline", "module"}


def _public_functions():
    for lens in LENSES:
        package = importlib.import_module(f"netatlas.{lens}")
        for name in package.__all__:
            value = getattr(package, name)
            if inspect.isfunction(value):
                yield f"{lens}.{name}", value


def test_no_lens_function_calls_its_network_by_another_name():
    offenders = [(name, next(iter(inspect.signature(f).parameters), None)) for name, f in _public_functions()
                 if next(iter(inspect.signature(f).parameters), None) in OLD_NETWORK_NAMES]
    assert not offenders, offenders


def _net():
    from netatlas.nets import mlp

    return mlp([2, 3, 1], "sigmoid", seed=0)


@pytest.mark.parametrize("name", ["hyperplane_distances", "unit_distances", "zone_membership", "boundary_distance"])
def test_old_keywords_warn_and_give_the_same_result(name):
    import numpy as np

    import netatlas.dynamics as dynamics

    function = getattr(dynamics, name)
    points = torch.linspace(-1, 1, 10, dtype=torch.float64).reshape(5, 2)
    expected = function(_net(), points)
    with pytest.warns(DeprecationWarning, match=f"{name}: the argument 'model' is now called 'net'"):
        got = function(model=_net(), x=points)
    expected, got = (getattr(v, "distance", v) for v in (expected, got))
    np.testing.assert_array_equal(got, expected)


def test_old_and_new_keyword_together_is_an_error():
    from netatlas.dynamics import hyperplane_distances

    with pytest.raises(TypeError, match="got both 'model' .* and 'net'"):
        hyperplane_distances(model=_net(), net=_net(), points=torch.zeros(1, 2))


def test_splines_old_keyword_warns():
    from netatlas.splines import ShallowParams, to_spline

    params = ShallowParams([1.0, -1.0], [0.5, 0.5], [1.0, 2.0], 0.0)
    with pytest.warns(DeprecationWarning, match="'model_or_params' is now called 'net'"):
        old = to_spline(model_or_params=params)
    new = to_spline(params)
    assert old.breakpoints.tolist() == new.breakpoints.tolist()
    assert old.delta_slopes.tolist() == new.delta_slopes.tolist()


def test_torch_threads_left_the_dynamics_exports_but_still_works_with_a_warning():
    import netatlas.dynamics as dynamics
    from netatlas._threads import torch_threads

    assert "torch_threads" not in dynamics.__all__ and "torch_threads" not in dir(dynamics)
    with pytest.warns(DeprecationWarning, match="netatlas.dynamics.torch_threads is deprecated"):
        assert dynamics.torch_threads is torch_threads
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import netatlas.dynamics  # noqa: F401  (importing the package itself does not warn)


def test_infinite_width_names_are_distinct_from_the_lens_and_the_old_ones_warn():
    from netatlas.metric import infinite_width

    assert not {"metric", "volume_element", "scalar_curvature"} & set(infinite_width.__all__)
    for old in ("metric", "volume_element", "scalar_curvature"):
        with pytest.warns(DeprecationWarning, match=f"infinite_width.{old} is deprecated.*limit_{old}"):
            assert getattr(infinite_width, old) is getattr(infinite_width, f"limit_{old}")


def test_a_renamed_functions_own_warning_still_points_at_the_callers_line():
    import netatlas.metric as metric
    from netatlas.nets import mlp

    with pytest.warns(UserWarning, match="m=1 < d=2") as caught:
        metric.volume_element(mlp([2, 4, 1], "sigmoid", seed=0), torch.zeros(2, 2))
    assert caught[0].filename == __file__


LOWRANK_TO_SHISHER2022 = ("TrainedLayer", "exact_softmax_optimum", "hidden_network", "hidden_setup",
                          "softmax_network", "train_hidden_networks", "train_mmse_networks", "train_softmax_network",
                          "train_softmax_network_lbfgs", "train_softmax_networks")


@pytest.mark.parametrize("name", LOWRANK_TO_SHISHER2022)
def test_lowrank_training_helpers_moved_to_their_paper_and_the_old_names_warn(name):
    import netatlas.experiments.shisher2022 as shisher
    import netatlas.lowrank as lowrank
    from netatlas.experiments.shisher2022 import _training

    assert name in shisher.__all__ and getattr(shisher, name) is getattr(_training, name)
    assert name not in lowrank.__all__ and name not in dir(lowrank)
    with pytest.warns(DeprecationWarning, match=f"netatlas.lowrank.{name} is deprecated .*"
                                                f"use netatlas.experiments.shisher2022.{name}$"):
        assert getattr(lowrank, name) is getattr(shisher, name)


@pytest.mark.parametrize("name", ["ComplexityStudy", "complexity_study", "phase_table", "run_complexity"])
def test_the_complexity_study_moved_to_its_paper_and_the_old_names_warn(name):
    import netatlas.dynamics as dynamics
    import netatlas.experiments.humayun2024 as humayun
    from netatlas.experiments.humayun2024 import _complexity

    assert name in humayun.__all__ and getattr(humayun, name) is getattr(_complexity, name)
    assert name not in dynamics.__all__ and name not in dir(dynamics)
    with pytest.warns(DeprecationWarning, match=f"netatlas.dynamics.{name} is deprecated .*"
                                                f"use netatlas.experiments.humayun2024.{name}$"):
        assert getattr(dynamics, name) is getattr(humayun, name)
    # the recorder is a lens tool and stays
    assert {"ComplexityTracker", "ComplexityTrace"} <= set(dynamics.__all__)
