# %% [markdown]
# # Local complexity through training
#
# How many linear regions lie near a data point, and how does that change while a network trains?
# Humayun, Balestriero & Baraniuk (2024) estimate it by counting neurons whose pre-activation changes
# sign over the corners of a small cross-polytope around each point.
# [`netatlas.regions.local_complexity`](../api/regions.md) counts it **exactly**: the linear regions
# meeting a disc of radius r around the point, in a plane through it (`method="sampled"` is their
# estimator, on the same points and planes).

# %%
import matplotlib.pyplot as plt
import numpy as np

import netatlas
from netatlas.dynamics import ComplexityTracker
from netatlas.train import fit

data = netatlas.data.moons(400, noise=0.1, seed=0)
model = netatlas.nets.mlp([2, 32, 32, 2], seed=0)
points = data.x[:40]
exact = netatlas.regions.local_complexity(model, points, 0.25)          # (40 points, 1 plane)
sampled = netatlas.regions.local_complexity(model, points, 0.25, method="sampled")
print(f"at initialisation: exact {exact.mean():.1f} regions per disc, sampled {sampled.mean():.1f} neurons")

# %% [markdown]
# One disc, drawn: the exact regions of the 2-D input space, the disc, and the regions it meets.

# %%
part = netatlas.regions.partition(model, netatlas.Plane.square(1.6))
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
part.plot(ax=ax, color_by="pattern", anchors=False, title=f"{int(exact[0, 0])} regions meet the disc")
p = np.asarray(points[0])
ax.add_patch(plt.Circle(p, 0.25, fill=False, lw=2, color="k"))
ax.set(xlim=(p[0] - 0.6, p[0] + 0.6), ylim=(p[1] - 0.6, p[1] + 0.6))

# %% [markdown]
# Through training: a `fit` callback records exact and sampled local complexity at chosen steps, at
# training points and at random points.

# %%
rng = np.random.default_rng(0)
x = data.x.numpy()
random_points = rng.uniform(x.min(0), x.max(0), size=(40, 2))
tracker = ComplexityTracker({"train": points, "random": random_points}, 0.25,
                            steps=[0, 10, 30, 100, 300, 1000], train=(data.x, data.y))
tracker.record(model, 0)
fit(model, data, epochs=1000, lr=0.02, seed=0, callbacks=[tracker])
trace = tracker.result()
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
for name, colour in (("train", "C0"), ("random", "C1")):
    ax.plot(np.maximum(trace.steps, 0.5), trace.exact[name].mean(axis=(1, 2)), "o-", color=colour,
            label=f"{name}: exact regions")
    ax.plot(np.maximum(trace.steps, 0.5), trace.sampled[name].mean(axis=(1, 2)), "s--", color=colour,
            label=f"{name}: sampled neurons")
ax.set(xscale="log", xlabel="step", ylabel="per disc (r = 0.25)", title="local complexity through training")
ax.legend(fontsize=8)
print("train accuracy by step:", np.round(trace.train_accuracy, 3).tolist())
