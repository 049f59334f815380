# %% [markdown]
# # Magnification of a trained net
#
# A layer's features `f(x)` pull back a metric `g = JᵀJ` onto input space; its volume element
# `sqrt(det g)` says how much a small patch around `x` is stretched. Zavatone-Veth et al. (2023) found
# that training magnifies areas near the decision boundary. We check it on their first task — points in
# `[-1, 1]^2` split by a sinusoid — with [`netatlas.metric.volume_element`](../api/metric.md).

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import spearmanr

import netatlas

data = netatlas.data.sinusoid(400, seed=0)
model = netatlas.nets.mlp([2, 250, 2], "sigmoid", seed=0)   # Linear "0", Sigmoid "1", Linear "2"
initial = copy.deepcopy(model)
history = netatlas.train.fit(model, data, epochs=2000, lr=1e-2, seed=0)
print(f"train accuracy {history.final_accuracy:.3f}, test accuracy {history.test_accuracy[-1]:.3f}")

# %% [markdown]
# The feature map is the hidden layer `"1"` (scaled by `1/sqrt(width)`, the paper's convention). We
# evaluate its log volume element on a grid, before and after training:

# %%
plane = netatlas.Plane.square(1.0)
u, v = plane.grid(120)
points = torch.as_tensor(np.stack([u.ravel(), v.ravel()], 1), dtype=torch.float32)
log_before = netatlas.metric.volume_element((initial, "1"), points, log=True)
log_after = netatlas.metric.volume_element((model, "1"), points, log=True)

with torch.no_grad():
    logits = model(points).numpy()
decision = (logits[:, 1] - logits[:, 0]).reshape(u.shape)    # > 0: class 1
distance = netatlas.metric.grid_boundary_distance(decision, u, v, points.numpy())
print(f"Spearman(log volume, distance to boundary): before {spearmanr(log_before, distance)[0]:+.2f}, "
      f"after {spearmanr(log_after, distance)[0]:+.2f}")
print(f"Spearman(change of log volume, distance): {spearmanr(log_after - log_before, distance)[0]:+.2f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
extent = plane.bounds
for ax, values, title in ((axes[0], log_before, "log volume element at init"),
                          (axes[1], log_after, "after training")):
    image = ax.imshow(values.reshape(u.shape), origin="lower", extent=extent, cmap="magma")
    ax.contour(u, v, decision, levels=[0.0], colors="white", linewidths=1)
    ax.scatter(*data.x.T, c=data.y, s=4, cmap="coolwarm", alpha=0.6)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8)
axes[2].scatter(distance, log_after - log_before, s=2, alpha=0.3)
axes[2].set(xlabel="distance to the decision boundary", ylabel="change of log volume element",
            title="magnified near the boundary")
fig.suptitle("Magnification by the hidden layer of a 2-250-2 sigmoid net (sinusoid task)")

# %% [markdown]
# The correlation with distance is already negative at initialisation: a random sigmoid layer
# magnifies the centre of the square most, and the boundary runs through the centre. So the telling
# number is the *change* since initialisation, which falls with distance to the boundary: training
# stretches input space where the class changes. `netatlas magnify toy` runs this for the paper's
# configurations and several seeds (see [Zavatone-Veth et al. 2023](../papers/zavatoneveth2023.md)).
