# %% [markdown]
# # Which training points carry the gradient
#
# Each sample's contribution to a training step is its per-sample gradient. van den Berg (2016) argues
# that it is large only near the decision boundary and the first layer's transition zones, and that
# the weight scale sets how many samples that is. [`netatlas.dynamics`](../api/dynamics.md) measures
# it, and uses it to choose which training points to keep.

# %%
import matplotlib.pyplot as plt

import netatlas

dynamics = netatlas.dynamics
data = netatlas.data.moons(500, noise=0.15, seed=0)
model = netatlas.nets.mlp([2, 32, 32, 2], seed=0)
history = netatlas.train.fit(model, data, epochs=300, lr=1e-2, seed=0)
print(f"train accuracy {history.final_accuracy:.3f}")

norms = dynamics.per_sample_gradient_norms(model, data.x, data.y)       # one batched backward pass
share = dynamics.gradient_concentration(norms.total, 0.9)
print(f"{100 * share:.1f}% of the training points carry 90% of the total gradient norm")
layer_share = (norms.per_layer ** 2).sum(0) / (norms.total ** 2).sum()
print("share of the squared norm by layer:",
      ", ".join(f"{name}: {value:.3f}" for name, value in zip(norms.layer_names, layer_share, strict=True)))

# %% [markdown]
# Where are they? Point size is the gradient norm, drawn over the network's exact linear regions and
# decision boundary ([`regions.partition`](../api/regions.md)):

# %%
plane = netatlas.Plane(origin=[0.0, 0.0], d1=[1.0, 0.0], d2=[0.0, 1.0], bounds=(-1.8, 1.8, -1.2, 1.2))
part = netatlas.regions.partition(model, plane)
fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
part.plot(ax=ax, color_by="class", anchors=False, title=f"{part.num_regions} regions; size: gradient norm")
ax.scatter(*data.x.T, s=2 + 60 * norms.total / norms.total.max(), c=data.y, cmap="coolwarm",
           edgecolors="k", linewidths=0.3)

# %% [markdown]
# Scaling every weight by `c` leaves the decision boundary where it is but narrows the transition
# zones, so fewer and fewer samples carry the gradient:

# %%
scales = [0.25, 0.5, 1, 2, 4, 8]
shares = [dynamics.gradient_concentration(
    dynamics.per_sample_gradient_norms(dynamics.scale_model(model, c), data.x, data.y).total, 0.9) for c in scales]
for c, s in zip(scales, shares, strict=True):
    print(f"c = {c:<5} share carrying 90%: {s:.3f}")
fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
ax.semilogx(scales, shares, "o-", base=2)
ax.set(xlabel="weight scale c", ylabel="share of samples carrying 90%", ylim=(0, 1),
            title="gradient concentration vs weight scale")

# %% [markdown]
# Subsampling: keep the 30% of training points closest to the exact decision boundary
# (`score("boundary")`), class-balanced, and retrain on them.

# %%
scores = dynamics.score("boundary", model, data.x, data.y)
kept = dynamics.subsample(scores, 0.3, labels=data.y, seed=0)
small = netatlas.nets.mlp([2, 32, 32, 2], seed=1)
netatlas.train.fit(small, (data.x[kept], data.y[kept]), epochs=300, lr=1e-2, seed=0)
accuracy = float((small(data.x_test).argmax(1) == data.y_test).float().mean())
print(f"kept {kept.size} of {len(data.x)} points; test accuracy after retraining on them: {accuracy:.3f}")

fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
part.plot(ax=ax, color_by="class", anchors=False, edges=False, title="kept by the boundary score")
ax.scatter(*data.x.T, s=3, c="lightgray")
ax.scatter(*data.x[kept].T, s=8, c=data.y[kept], cmap="coolwarm", edgecolors="k", linewidths=0.3)
