"""Shared fixtures: small nets used across lenses."""

import pytest


@pytest.fixture
def small_relu_mlp():
    import netatlas

    return netatlas.nets.mlp([2, 8, 8, 3], "relu", seed=0)
