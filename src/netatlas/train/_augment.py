"""Image augmentations for self-supervised training, written with torch ops (no download, no PIL).

Every function takes a batch ``images`` of shape (B, C, H, W) and an explicit ``torch.Generator``; the
same generator state gives the same output (no global RNG is read). :class:`Augmentation` composes them
into the two-view pipeline :func:`netatlas.train.fit_ssl` uses: random shift (zero padding + crop), a
small random rotation and zoom (one ``affine_grid``/``grid_sample``), additive Gaussian noise, and a clamp
back to the data range.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> images = torch.rand(4, 1, 8, 8, generator=g)
>>> Augmentation()(images, generator=g).shape
torch.Size([4, 1, 8, 8])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augmentation", "gaussian_noise", "random_affine", "random_shift"]


def _check_images(images, caller: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{caller}: images must be a torch.Tensor of shape (B, C, H, W); got "
                        f"{type(images).__name__}")
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"{caller}: images must be a float tensor of shape (B, C, H, W); got dtype "
                         f"{images.dtype} and shape {tuple(images.shape)} (add a channel axis with x[:, None])")
    return images


def _check_generator(generator, caller: str) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{caller}: generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)); "
                        f"got {type(generator).__name__}")
    return generator


def random_shift(images: torch.Tensor, max_shift: int, *, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by a random integer offset in ``[-max_shift, max_shift]^2`` (pad with 0 + crop).

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
    max_shift : int
        Largest shift in pixels along each axis (0 returns a copy).
    generator : torch.Generator
        Source of the offsets.

    Returns
    -------
    Tensor of shape (B, C, H, W)
        ``out[b, :, i, j] = images[b, :, i - dy_b, j - dx_b]`` where that pixel exists, else 0.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 1, 1] = 1.0
    >>> out = random_shift(x, 1, generator=torch.Generator().manual_seed(1))
    >>> float(out.sum()), out.shape                        # the pixel moved, nothing was lost
    (1.0, torch.Size([1, 1, 3, 3]))
    """
    images = _check_images(images, "random_shift")
    generator = _check_generator(generator, "random_shift")
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be a non-negative int; got {max_shift!r}")
    if max_shift == 0:
        return images.clone()
    b, c, h, w = images.shape
    p = max_shift
    padded = F.pad(images, (p, p, p, p))
    offsets = torch.randint(0, 2 * p + 1, (b, 2), generator=generator)
    rows = offsets[:, :1] + torch.arange(h)  # (B, H): which padded rows each output row reads
    cols = offsets[:, 1:] + torch.arange(w)  # (B, W)
    batch = torch.arange(b)[:, None, None]
    # advanced indexing on dims 0, 2, 3 (the channel slice moves to the end): (B, H, W, C)
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def random_affine(images: torch.Tensor, *, max_rotation: float = 15.0, scale: tuple[float, float] = (1.0, 1.0),
                  generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by a random angle in ``[-max_rotation, max_rotation]`` degrees and zoom it by a
    random factor in ``scale`` (> 1 zooms in: a random-resized-crop-like view), about the image centre.

    Uses ``affine_grid`` + bilinear ``grid_sample`` (zeros outside the image, ``align_corners=False``).

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
    max_rotation : float
        Largest rotation in degrees (>= 0).
    scale : (float, float)
        Range of the zoom factor, ``0 < low <= high``.
    generator : torch.Generator

    Returns
    -------
    Tensor of shape (B, C, H, W)

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 6, 6)
    >>> out = random_affine(x, max_rotation=0.0, generator=torch.Generator())   # identity transform
    >>> bool(torch.allclose(out, x, atol=1e-6))
    True
    """
    images = _check_images(images, "random_affine")
    generator = _check_generator(generator, "random_affine")
    if not (isinstance(max_rotation, (int, float)) and math.isfinite(max_rotation) and max_rotation >= 0):
        raise ValueError(f"random_affine: max_rotation must be a finite number of degrees >= 0; got {max_rotation!r}")
    low, high = (float(s) for s in scale)
    if not 0 < low <= high:
        raise ValueError(f"random_affine: scale must be (low, high) with 0 < low <= high; got {scale!r}")
    b = images.shape[0]
    angle = (torch.rand(b, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_rotation)
    zoom = low + (high - low) * torch.rand(b, generator=generator, dtype=torch.float64)
    # affine_grid maps output coordinates to input coordinates: rotate by -angle and shrink by 1/zoom.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def gaussian_noise(images: torch.Tensor, std: float, *, generator: torch.Generator) -> torch.Tensor:
    """Add i.i.d. Gaussian noise of standard deviation ``std`` to every pixel.

    Examples
    --------
    >>> import torch
    >>> out = gaussian_noise(torch.zeros(1, 1, 100, 100), 0.1, generator=torch.Generator().manual_seed(0))
    >>> round(float(out.std()), 1)
    0.1
    """
    images = _check_images(images, "gaussian_noise")
    generator = _check_generator(generator, "gaussian_noise")
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std >= 0):
        raise ValueError(f"gaussian_noise: std must be a finite number >= 0; got {std!r}")
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return images + std * noise


@dataclass(frozen=True)
class Augmentation:
    """The two-view augmentation pipeline: shift, rotate + zoom, add noise, clamp.

    Attributes
    ----------
    max_shift : int
        Random shift in pixels (see :func:`random_shift`); default 2 (for 8x8 digits use 1).
    max_rotation : float
        Random rotation in degrees (see :func:`random_affine`).
    scale : (float, float)
        Random zoom range (see :func:`random_affine`).
    noise_std : float
        Standard deviation of additive Gaussian pixel noise.
    clamp : (float, float) or None
        Range the result is clipped to (the data range; None keeps it unclipped).

    Examples
    --------
    >>> import torch
    >>> aug = Augmentation(max_shift=1, max_rotation=10.0, noise_std=0.05)
    >>> x = torch.rand(3, 1, 8, 8)
    >>> a = aug(x, generator=torch.Generator().manual_seed(0))
    >>> b = aug(x, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a, b)), float(a.min()) >= 0.0
    (True, True)
    """

    max_shift: int = 2
    max_rotation: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    noise_std: float = 0.05
    clamp: tuple[float, float] | None = (0.0, 1.0)

    def __post_init__(self):
        if not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise ValueError(f"Augmentation: max_shift must be a non-negative int; got {self.max_shift!r}")
        for name in ("max_rotation", "noise_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Augmentation: {name} must be a finite number >= 0; got {value!r}")
        low, high = (float(s) for s in self.scale)
        if not 0 < low <= high:
            raise ValueError(f"Augmentation: scale must be (low, high) with 0 < low <= high; got {self.scale!r}")
        object.__setattr__(self, "scale", (low, high))
        if self.clamp is not None:
            lo, hi = (float(c) for c in self.clamp)
            if not lo < hi:
                raise ValueError(f"Augmentation: clamp must be (low, high) with low < high, or None; got "
                                 f"{self.clamp!r}")
            object.__setattr__(self, "clamp", (lo, hi))

    @classmethod
    def for_image_size(cls, size: int, **overrides) -> Augmentation:
        """Defaults scaled to the image side: shift ~ size / 10 pixels (1 for 8x8, 3 for 28x28)."""
        return cls(**{"max_shift": max(1, round(size / 10)), **overrides})

    def __call__(self, images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """One random view of every image: (B, C, H, W) -> (B, C, H, W)."""
        images = _check_images(images, "Augmentation")
        generator = _check_generator(generator, "Augmentation")
        out = random_shift(images, self.max_shift, generator=generator) if self.max_shift else images
        if self.max_rotation > 0 or self.scale != (1.0, 1.0):
            out = random_affine(out, max_rotation=self.max_rotation, scale=self.scale, generator=generator)
        if self.noise_std > 0:
            out = gaussian_noise(out, self.noise_std, generator=generator)
        if self.clamp is not None:
            out = out.clamp(*self.clamp)
        return out

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
