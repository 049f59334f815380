# %% [markdown]
# # Regions of a small CNN through three images
#
# A ReLU network is linear on each of finitely many convex regions of its input space. Here we train a
# tiny convolutional network on scikit-learn's 8 x 8 digits, take the plane through three test images,
# and compute the network's exact linear regions on it with
# [`netatlas.regions.partition`](../api/regions.md).

# %%
import copy

import matplotlib.pyplot as plt
import torch

import netatlas

torch.manual_seed(0)
data = netatlas.data.digits(seed=0)                      # x: (n, 1, 8, 8) in [0, 1], 10 classes
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10),
)
history = netatlas.train.fit(model, data, epochs=15, batch_size=256, lr=1e-2, seed=0)
print(f"train accuracy {history.final_accuracy:.3f}, test accuracy {history.test_accuracy[-1]:.3f}")

# %% [markdown]
# netatlas turns the model into its float64 IR (convolutions, ReLUs and the affine head; the
# flatten is free). It agrees with a float64 copy of the torch model to round-off:

# %%
net = netatlas.nets.from_torch(model.eval(), input_shape=(1, 8, 8))
print(net.summary())
x = data.x_test[:5].double()
reference = copy.deepcopy(model).double()(x).detach().numpy()
print(f"max |torch - IR| = {abs(reference - net(x.numpy())).max():.1e}")

# %% [markdown]
# The plane through three test images (a 0, a 1 and a 7) has the images at fixed positions inside
# `[-1, 1]^2`. Every point of the plane is an 8 x 8 image; the partition is exact.

# %%
labels = data.y_test.tolist()
anchors = [data.x_test[labels.index(c)] for c in (0, 1, 7)]
plane = netatlas.Plane.through(*anchors)
part = netatlas.regions.partition(net, plane)
print(f"{part.num_regions} regions; areas sum to {part.areas.sum():.6f} (the plane's area is {plane.area:.6f})")

# %% [markdown]
# In a notebook a partition shows itself: its headline numbers and a small picture.

# %%
part

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
part.plot(ax=axes[0], color_by="pattern", title="activation patterns")
part.plot(ax=axes[1], color_by="class", title="predicted class, exact decision boundary")
fig.suptitle("A small CNN on the plane through three digits")

# %% [markdown]
# Each region has one affine map from the plane to the logits, so the decision boundary is a set of
# exact segments. What images lie along the way? Walk the plane from the 0 to the 7:

# %%
boundary = part.decision_boundary()
print(f"decision boundary: {len(boundary)} segments")
uv = plane.to_plane(torch.stack(anchors).double().numpy())
steps = [uv[0] + t * (uv[2] - uv[0]) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
images = plane.to_input(steps)
fig, axes = plt.subplots(1, 5, figsize=(8, 1.9))
for ax, img, point in zip(axes, images, steps, strict=True):
    region = part.locate(point[None])[0]
    ax.imshow(img.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"class {part.outputs(point[None], [region])[0].argmax()}", fontsize=9)  # exact at the point
    ax.axis("off")
fig.suptitle("From the 0 to the 7 on the plane")
