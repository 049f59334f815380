# %% [markdown]
# # A shallow net as a spline, and its Hessian
#
# A network `f(x) = Σ vᵢ relu(wᵢ x + bᵢ) + c` with one input is a continuous piecewise-linear spline:
# neuron `i` puts a breakpoint at `βᵢ = -bᵢ/wᵢ` where the slope jumps by `μᵢ = vᵢ|wᵢ|` (Sahs et al.
# 2020). [`netatlas.splines`](../api/splines.md) converts exactly between the two views and computes
# the loss surface's exact Hessian.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import netatlas

rng = np.random.default_rng(0)
x = np.linspace(-1, 1, 12)                                  # 12 points, as in the paper's example
y = np.sin(3 * x) + 0.3 * rng.standard_normal(12)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 1))
inputs, targets = torch.tensor(x[:, None], dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
history = netatlas.train.fit(model, (inputs, targets), loss="mse", epochs=3000, lr=1e-2, seed=0)
print(f"training loss {history.final_loss:.2e}")

spline = netatlas.splines.to_spline(model)
grid = np.linspace(-1.5, 1.5, 601)
with torch.no_grad():
    network = model(torch.as_tensor(grid, dtype=torch.float32)[:, None])[:, 0].numpy()
print(spline, f"max |spline - network| = {np.abs(spline(grid) - network).max():.1e}")
spline          # in a notebook: the spline, its breakpoints and its roughness

# %%
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
ax.plot(grid, spline(grid), color="k", lw=1.2, label="network = spline")
inside = np.isfinite(spline.breakpoints) & (np.abs(spline.breakpoints) < 1.5)
beta = spline.breakpoints[inside]
ax.scatter(beta, spline(beta), s=200 * np.abs(spline.delta_slopes[inside]) / np.abs(spline.delta_slopes).max(),
           c=np.sign(spline.delta_slopes[inside]), cmap="coolwarm", zorder=3, label="breakpoints (size: |μ|)")
ax.scatter(x, y, marker="x", color="g", zorder=4, label="data")
ax.set(xlim=(-1.5, 1.5), xlabel="x", ylabel="f(x)", title="A 1-40-1 ReLU net as a spline")
ax.legend(fontsize=8)

# %% [markdown]
# Gradient descent only gets close to a critical point of the loss, and
# [`classify_critical_point`](../api/splines.md) says so. An exact one: with breakpoints spread over
# the data (40 drawn uniformly on `[-1.2, 1.2]`, random orientations), the least-norm spline that
# interpolates the data is a global minimum of the squared loss. Its exact Hessian in spline coordinates
# `(β, μ, offset)` has as many non-zero eigenvalues as there are data points, and none negative — the
# structure Sahs et al. predict.

# %%
trained = netatlas.splines.classify_critical_point(spline, x, y)
print(f"trained net: {trained.kind} (|gradient| {trained.grad_norm:.1e})")

beta, orientation = rng.uniform(-1.2, 1.2, 40), rng.choice([-1, 1], 40)
minimum = netatlas.splines.interpolating_minimum(beta, orientation, x, y)
point = netatlas.splines.classify_critical_point(minimum, x, y)
spectrum = point.spectrum
print(f"interpolating spline: {point.kind}, loss {point.loss:.1e}, |gradient| {point.grad_norm:.1e}")
print(f"Hessian {len(spectrum.eigenvalues)} x {len(spectrum.eigenvalues)}: rank {spectrum.rank} "
      f"(predicted {point.predicted_rank}), {spectrum.n_zero} zero, {spectrum.n_negative} negative")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
magnitudes = np.sort(np.abs(spectrum.eigenvalues))[::-1]
ax.semilogy(np.arange(1, magnitudes.size + 1), np.maximum(magnitudes, 1e-300), "o", ms=3)
ax.axhline(spectrum.threshold, color="r", ls="--", lw=1, label="zero threshold (spectral gap)")
ax.set(xlabel="index", ylabel="|eigenvalue|", title="Hessian spectrum at an interpolating minimum")
ax.legend(fontsize=8)
