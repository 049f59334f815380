"""The DTM, its SVD, the H-score and the theory's optima, on held-out random joints."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas.lowrank as lr


def random_joint(n_x, n_y, seed, concentration=1.0):
    return lr.dirichlet_joint(n_x, n_y, concentration=concentration, seed=seed)


joints = st.builds(random_joint, st.integers(2, 9), st.integers(2, 7), st.integers(0, 10_000),
                   st.sampled_from([0.3, 1.0, 5.0]))


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    ([[0.5, -0.1], [0.3, 0.3]], r"negative entries, e.g. p_xy\[0, 1\] = -0.1"),
    ([[0.5, 0.5], [0.5, 0.5]], r"sums to 2, not 1"),
    ([0.5, 0.5], r"must be 2-D \(\|X\|, \|Y\|\), got shape \(2,\)"),
    ([[1.0, 0.0]], r"at least 2 symbols"),
    ([[0.5, 0.0], [0.5, 0.0]], r"columns \(Y symbols\) with zero probability: \[1\]"),
    ([[np.nan, 0.5], [0.25, 0.25]], r"non-finite"),
])
def test_check_joint_messages(bad, match):
    with pytest.raises(ValueError, match=match):
        lr.dtm(bad)


def test_check_joint_wrong_type():
    with pytest.raises(TypeError, match="must be a 2-D array of probabilities"):
        lr.dtm({"a": 1})


@pytest.mark.parametrize("k", [0, 3, 10])
def test_k_range(k):
    p = random_joint(4, 3, 0)
    with pytest.raises(ValueError, match=rf"k = {k} is out of range; accepted 1 <= k <= 2"):
        lr.optimal_softmax_layer(p, k)


def test_k_type():
    with pytest.raises(TypeError, match="k must be an int"):
        lr.optimal_softmax_layer(random_joint(4, 3, 0), 1.5)


# -- DTM properties -----------------------------------------------------------------------------
def test_independent_joint_has_zero_dtm():
    p = np.outer([0.2, 0.3, 0.5], [0.6, 0.4])
    np.testing.assert_allclose(lr.dtm(p), 0, atol=1e-15)
    assert lr.h_score_max(p, 1) == pytest.approx(0, abs=1e-30)


@settings(max_examples=40, deadline=None)
@given(joints)
def test_dtm_orthogonal_to_sqrt_marginals(p):
    p_x, p_y = lr.marginals(p)
    b = lr.dtm(p)
    np.testing.assert_allclose(b @ np.sqrt(p_y), 0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt(p_x) @ b, 0, atol=1e-12)
    # a float64 reference cell by cell
    i, j = p.shape[0] - 1, 0
    assert b[i, j] == pytest.approx((p[i, j] - p_x[i] * p_y[j]) / np.sqrt(p_x[i] * p_y[j]), abs=1e-14)


@settings(max_examples=40, deadline=None)
@given(joints)
def test_top_singular_value_below_one_and_trivial_pair(p):
    p_x, p_y = lr.marginals(p)
    s = lr.dtm_svd(p).s
    assert s[0] < 1
    raw = np.linalg.svd(lr.dtm(p, centered=False))
    # the uncentred matrix: one extra singular value 1 with vectors sqrt(P_X), sqrt(P_Y); the rest: the DTM's
    assert raw[1][0] == pytest.approx(1.0, abs=1e-10)
    assert abs(raw[0][:, 0] @ np.sqrt(p_x)) == pytest.approx(1.0, abs=1e-8)
    assert abs(raw[2][0] @ np.sqrt(p_y)) == pytest.approx(1.0, abs=1e-8)
    np.testing.assert_allclose(raw[1][1:], s[: raw[1].size - 1], atol=1e-10)


def test_deterministic_joint_has_unit_singular_values():
    p = np.diag([0.2, 0.3, 0.5])
    np.testing.assert_allclose(lr.dtm_svd(p).s, [1, 1, 0], atol=1e-12)


def test_svd_helpers_eckart_young():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(7, 5))
    svd = lr.truncated_svd(a)
    for k in (1, 2, 4):
        err = np.linalg.norm(a - lr.low_rank(a, k)) ** 2
        assert err == pytest.approx(np.sum(svd.s[k:] ** 2))
        assert np.linalg.matrix_rank(lr.low_rank(a, k)) == k
    assert svd.gap(5) == 1.0
    assert 0 < svd.gap(2) < 1


# -- H-score ------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(joints, st.integers(1, 3), st.integers(0, 1000))
def test_h_score_max_and_invariance(p, k, seed):
    k = min(k, min(p.shape) - 1)
    opt = lr.optimal_softmax_layer(p, k)
    s = lr.dtm_svd(p).s
    h_max = 0.5 * np.sum(s[:k] ** 2)
    assert lr.h_score_max(p, k) == pytest.approx(h_max)
    assert opt.h_score == pytest.approx(h_max)
    # the theory's features attain the maximum, one-sided and with their weights
    assert lr.h_score_population(p, opt.features) == pytest.approx(h_max, rel=1e-9, abs=1e-14)
    assert lr.h_score_population(p, opt.features, opt.weights) == pytest.approx(h_max, rel=1e-9, abs=1e-14)
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(p.shape[0], k))
    assert lr.h_score_population(p, f) <= h_max + 1e-12
    # invariance under invertible k x k maps (and under shifts of f)
    a = rng.normal(size=(k, k)) + 3 * np.eye(k)
    assert lr.h_score_population(p, f @ a + 1.7) == pytest.approx(lr.h_score_population(p, f), rel=1e-8,
                                                                   abs=1e-14)
    g = rng.normal(size=(p.shape[1], k))
    assert lr.h_score_population(p, f @ a, g @ np.linalg.inv(a).T) == pytest.approx(
        lr.h_score_population(p, f, g), rel=1e-8, abs=1e-12)


def test_h_score_samples_match_population():
    p = random_joint(6, 4, 1)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(6, 2))
    g = rng.normal(size=(4, 2))
    xs, ys = np.meshgrid(np.arange(6), np.arange(4), indexing="ij")
    xs, ys = xs.ravel(), ys.ravel()
    weight = p[xs, ys]
    assert lr.h_score(f[xs], ys, sample_weight=weight) == pytest.approx(lr.h_score_population(p, f),
                                                                        rel=1e-10)
    assert lr.h_score(f[xs], g[ys], sample_weight=weight) == pytest.approx(lr.h_score_population(p, f, g),
                                                                           rel=1e-10)


def test_h_score_errors():
    with pytest.raises(ValueError, match="features have 3 samples but labels_or_g has 2"):
        lr.h_score(np.zeros((3, 1)), np.array([0, 1]))
    with pytest.raises(TypeError, match="must hold integer labels"):
        lr.h_score(np.zeros((3, 1)), np.array([0.5, 1.0, 2.0]))


# -- the softmax optimum ------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(joints, st.integers(1, 3))
def test_softmax_optimum_structure(p, k):
    k = min(k, min(p.shape) - 1)
    opt = lr.optimal_softmax_layer(p, k)
    p_x, p_y = lr.marginals(p)
    b = lr.dtm(p)
    s = np.linalg.svd(b, compute_uv=False)
    # the second-order loss at the optimum equals the closed form 1/2 sum_{i>k} sigma_i^2
    phi = np.sqrt(p_x)[:, None] * (opt.features - p_x @ opt.features)
    psi = np.sqrt(p_y)[:, None] * (opt.weights - p_y @ opt.weights)
    assert 0.5 * np.sum((b - phi @ psi.T) ** 2) == pytest.approx(0.5 * np.sum(s[k:] ** 2), abs=1e-13)
    assert opt.excess_loss == pytest.approx(0.5 * np.sum(s[k:] ** 2))
    np.testing.assert_allclose(phi @ psi.T, opt.product, atol=1e-12)
    np.testing.assert_allclose(p_x @ opt.features, 0, atol=1e-12)
    np.testing.assert_allclose(opt.bias, np.log(p_y))


@pytest.mark.parametrize("seed", [11, 12])
def test_softmax_optimum_loss_matches_closed_form_to_order_eps(seed):
    # exact excess loss of the theory's layer vs 1/2 sum_{i>k} sigma_i^2: the relative gap is O(eps)
    gaps = []
    for frac in (1e-3, 1e-2):
        j = lr.local_joint(12, 6, k=2, eps_fraction=frac, seed=seed)
        opt = lr.optimal_softmax_layer(j.p_xy, 2)
        exact = lr.softmax_excess_loss(j.p_xy, opt.logits())
        gaps.append(abs(exact / opt.excess_loss - 1))
    assert gaps[0] < 5e-3
    assert 3 < gaps[1] / gaps[0] < 30  # ~ linear in eps


def test_invariance_of_comparison_under_invertible_maps():
    j = lr.local_joint(10, 6, k=3, eps_fraction=0.05, seed=5)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(10, 3))
    w = rng.normal(size=(6, 3)) * 0.05
    b = rng.normal(size=6) * 0.01
    a = rng.normal(size=(3, 3)) + 2 * np.eye(3)
    c1 = lr.compare_softmax_layer(j.p_xy, f, w, b)
    shift = np.full(3, 0.3)
    w2 = w @ np.linalg.inv(a).T
    # f -> f A + t, W -> W A^{-T}, b -> b - W A^{-T} t leaves the logits unchanged
    c2 = lr.compare_softmax_layer(j.p_xy, f @ a + shift, w2, b - w2 @ shift)
    # without the bias correction only the bias part changes, not the product
    c3 = lr.compare_softmax_layer(j.p_xy, f @ a + shift, w2, b)
    assert c3.product_error == pytest.approx(c1.product_error, rel=1e-9)
    assert c2.product_error == pytest.approx(c1.product_error, rel=1e-9)
    # Two 3-dim subspaces of the 5-dim space orthogonal to sqrt(P_Y) share a direction, so one weight angle
    # is exactly 0; computed, a zero angle comes out anywhere in [0, ~sqrt(eps)] rad (a square root of
    # round-off, as arccos near 1 gives), so the tolerance is 10 sqrt(eps) rad, in degrees (~8.5e-6).
    atol = np.degrees(10 * np.sqrt(np.finfo(float).eps))
    np.testing.assert_allclose(c2.feature_angles, c1.feature_angles, atol=atol)
    np.testing.assert_allclose(c2.weight_angles, c1.weight_angles, atol=atol)
    assert c2.excess_loss == pytest.approx(c1.excess_loss, rel=1e-9)
    assert c2.h_score == pytest.approx(c1.h_score, rel=1e-9)
    assert c2.bias_error == pytest.approx(c1.bias_error, rel=1e-8)


def test_comparison_of_the_optimum_itself_is_perfect():
    j = lr.local_joint(10, 6, k=2, eps_fraction=0.2, seed=2)
    opt = lr.optimal_softmax_layer(j.p_xy, 2)
    c = lr.compare_softmax_layer(j.p_xy, opt.features, opt.weights, opt.bias)
    assert c.product_error < 1e-12 and c.bias_error < 1e-12
    assert c.max_feature_angle < 1e-5 and c.max_weight_angle < 1e-5
    assert c.h_score_ratio == pytest.approx(1.0)
    assert c.eps == pytest.approx(j.eps)
    assert c.chi2_radius == pytest.approx(j.max_chi2_radius)


def test_pmi_target_agrees_with_dtm_to_first_order():
    j = lr.local_joint(10, 6, k=2, eps_fraction=1e-3, seed=4)
    assert lr.relative_error(lr.pmi_matrix(j.p_xy), lr.dtm(j.p_xy)) < 5e-3
    with pytest.raises(ValueError, match="zero cells"):
        lr.pmi_matrix(np.diag([0.5, 0.5]))


# -- MMSE -----------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(joints, st.integers(1, 3), st.integers(0, 100))
def test_mmse_optimum_is_exact(p, k, seed):
    k = min(k, p.shape[0] - 1, p.shape[1])
    opt = lr.optimal_mmse_layer(p, k)
    exact = lr.mmse_excess_loss(p, opt.logits())
    assert exact == pytest.approx(opt.excess_loss, rel=1e-9, abs=1e-15)
    # with one-hot Y, C = DTM diag(sqrt(P_Y))
    p_y = p.sum(0)
    np.testing.assert_allclose(opt.matrix, lr.dtm(p) * np.sqrt(p_y), atol=1e-13)
    # no other rank-k layer does better: perturbations and random layers
    rng = np.random.default_rng(seed)
    for _ in range(3):
        f = opt.features + 0.1 * rng.normal(size=opt.features.shape)
        w = opt.weights + 0.1 * rng.normal(size=opt.weights.shape)
        # for fixed f, the best (W, b) is least squares on [f, 1]: still no better than the optimum
        p_x = p.sum(1)
        target = (p / p_x[:, None])
        design = np.column_stack([f, np.ones(len(f))]) * np.sqrt(p_x)[:, None]
        coef = np.linalg.lstsq(design, target * np.sqrt(p_x)[:, None], rcond=None)[0]
        pred = np.column_stack([f, np.ones(len(f))]) @ coef
        assert lr.mmse_excess_loss(p, pred) >= opt.excess_loss - 1e-13
        assert lr.mmse_excess_loss(p, f @ w.T + opt.bias) >= opt.excess_loss - 1e-13


def test_mmse_vector_values():
    p = random_joint(5, 4, 3)
    values = np.array([[0.0], [1.0], [2.0], [5.0]])
    opt = lr.optimal_mmse_layer(p, 1, y_values=values)
    assert opt.excess_loss == pytest.approx(0.0, abs=1e-15)  # d = 1: rank 1 is exact
    assert lr.mmse_excess_loss(p, opt.logits(), values) == pytest.approx(0.0, abs=1e-15)


# -- hidden layer ---------------------------------------------------------------------------------
def test_hidden_formula_is_least_squares_and_needs_the_transpose():
    j = lr.local_joint(12, 6, k=2, eps_fraction=0.01, seed=9)
    rng = np.random.default_rng(1)
    f1, v = rng.normal(size=(12, 5)), rng.normal(size=(6, 3))
    opt = lr.optimal_hidden_layer(j.p_xy, f1, v, activation="sigmoid")
    p_x, p_y = j.p_x, j.p_y
    phi1 = np.sqrt(p_x)[:, None] * (f1 - p_x @ f1)
    psi = np.sqrt(p_y)[:, None] * (v - p_y @ v)
    b = lr.dtm(j.p_xy)
    jinv = np.diag(1 / opt.jacobian)
    # the closed form with B~^T (docs/papers/shisher2022.md: Psi^T B~ alone does not even have matching shapes)
    w_formula = jinv @ np.linalg.inv(psi.T @ psi) @ psi.T @ b.T @ phi1 @ np.linalg.inv(phi1.T @ phi1)
    np.testing.assert_allclose(opt.weights, w_formula, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError):
        psi.T @ b  # (3, 6) @ (12, 6)
    # stationarity of the linearised loss: Phi1^T (B - Phi1 W^T J Psi^T) Psi = 0
    resid = b - phi1 @ opt.weights.T @ np.diag(opt.jacobian) @ psi.T
    np.testing.assert_allclose(phi1.T @ resid @ psi, 0, atol=1e-13)
    assert opt.identifiable


def test_hidden_vanishing_gradient_is_rejected():
    j = lr.local_joint(6, 4, k=1, eps_fraction=0.01, seed=0)
    with pytest.raises(ValueError, match="non-vanishing gradient"):
        lr.optimal_hidden_layer(j.p_xy, np.eye(6)[:, :3], np.ones((4, 2)), activation="relu", center=-1.0)
    with pytest.warns(UserWarning, match="kink"):
        lr.optimal_hidden_layer(j.p_xy, np.eye(6)[:, :3], np.ones((4, 2)), activation="relu", center=0.0)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "identity", "softplus", "relu"])
def test_activation_value_is_the_activation_in_float64(name):
    import torch

    c = np.linspace(-40, 40, 801)
    t = torch.as_tensor(c, dtype=torch.float64)
    # softplus without a linear tail: log(1 + e^c) exactly, as the linearisation's bias needs
    torch_phi = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda u: u, "relu": torch.relu,
                 "softplus": lambda u: torch.logaddexp(torch.zeros_like(u), u)}[name]
    np.testing.assert_allclose(lr.activation_value(name, c), torch_phi(t).numpy(), rtol=1e-14, atol=0)  # a few ulp
    with pytest.raises(ValueError, match="activation_value: activation 'gelu'; choose one of"):
        lr.activation_value("gelu", c)
