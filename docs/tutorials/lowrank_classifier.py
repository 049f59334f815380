# %% [markdown]
# # The low-rank theory on a classifier
#
# Shisher, Ornee & Sun (2022): when the label depends only weakly on the input — `P(Y|X)` within `ε`
# of `P(Y)` — the best `k` features and the softmax weights on top of them form a rank-`k`
# approximation of one matrix, the **divergence transition matrix** (DTM). The theory's error is
# `O(ε)` relative; we train softmax classifiers on joints at several `ε` and measure it with
# [`netatlas.lowrank`](../api/lowrank.md).

# %%
import matplotlib.pyplot as plt
import numpy as np

import netatlas
from netatlas.experiments.shisher2022 import train_softmax_network  # the networks of the paper's validation

lowrank = netatlas.lowrank
joint = lowrank.local_joint(24, 8, k=2, eps_fraction=0.05, seed=0)   # |X| = 24 inputs, |Y| = 8 labels
svd = lowrank.dtm_svd(joint.p_xy)
print(f"eps = {joint.eps:.4f} (eps_max = {joint.eps_max:.3f}); DTM singular values "
      + ", ".join(f"{s:.2e}" for s in svd.s[:4]))

# %% [markdown]
# The spectrum has a gap after `k = 2`, so a layer with 2 features should match the DTM's top-2 part.
# Train the classifier (features of each input symbol and the softmax layer, by Newton's method) and
# compare it with the theory's optimum:

# %%
trained = train_softmax_network(joint.p_xy, 2, seed=0)
comparison = lowrank.compare_softmax_layer(joint.p_xy, trained.features, trained.weights, trained.bias)
print(f"product error {comparison.product_error:.2e}; feature angles "
      f"{np.round(comparison.feature_angles, 2)} deg; excess loss ratio {comparison.excess_loss_ratio:.4f}")

# %% [markdown]
# Now over `ε`: the product error should fall in proportion to `ε` (a slope of 1 on log axes) — the
# theory is exact in the local limit.

# %%
fractions = np.geomspace(0.003, 0.3, 7)
eps, errors = [], []
for fraction in fractions:
    p = lowrank.local_joint(24, 8, k=2, eps_fraction=fraction, seed=0)
    layer = train_softmax_network(p.p_xy, 2, seed=0)
    errors.append(lowrank.compare_softmax_layer(p.p_xy, layer.features, layer.weights, layer.bias).product_error)
    eps.append(p.eps)
slope = lowrank.fit_slope(eps, errors)
print(f"slope of log(product error) vs log(eps): {slope:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
nonzero = svd.s[svd.s > 1e-9 * svd.s[0]]         # the DTM's last singular value is exactly 0 (centring)
axes[0].plot(np.arange(1, nonzero.size + 1), nonzero, "o-")
axes[0].axvline(2.5, color="gray", ls=":", lw=1)
axes[0].set(xlabel="index", ylabel="singular value", ylim=(0, None), title="DTM spectrum (gap after k = 2)")
axes[1].loglog(eps, errors, "o-", label="trained vs theory")
axes[1].loglog(eps, errors[0] * np.asarray(eps) / eps[0], "k--", lw=1, label="slope 1")
axes[1].set(xlabel="ε", ylabel="relative product error", title="error of the local theory")
axes[1].legend(fontsize=8)
fig.suptitle("A softmax classifier against the low-rank theory")
