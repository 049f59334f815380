"""Augmentations: exact shifts against a slow reference, identity/symmetry cases, seeding."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netatlas.train._augment import Augmentation, gaussian_noise, random_affine, random_shift


@given(seed=st.integers(0, 1000), shift=st.integers(0, 3), b=st.integers(1, 4), c=st.integers(1, 2))
@settings(max_examples=20, deadline=None)
def test_random_shift_matches_slow_pad_and_crop(seed, shift, b, c):
    images = torch.rand(b, c, 5, 6, generator=torch.Generator().manual_seed(seed))
    out = random_shift(images, shift, generator=torch.Generator().manual_seed(seed))
    if shift == 0:
        assert torch.equal(out, images)
        return
    offsets = torch.randint(0, 2 * shift + 1, (b, 2), generator=torch.Generator().manual_seed(seed))
    padded = torch.nn.functional.pad(images, (shift,) * 4)
    for i in range(b):
        oy, ox = int(offsets[i, 0]), int(offsets[i, 1])
        assert torch.equal(out[i], padded[i, :, oy:oy + 5, ox:ox + 6])


def test_random_affine_identity_and_symmetric_image():
    images = torch.rand(3, 2, 9, 9, generator=torch.Generator().manual_seed(0))
    same = random_affine(images, max_rotation=0.0, scale=(1.0, 1.0), generator=torch.Generator())
    assert torch.allclose(same, images, atol=1e-6)
    # a centred radially symmetric blob is (nearly) unchanged by any rotation about the centre
    r = torch.linspace(-1, 1, 21)
    blob = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 0.1)[None, None].repeat(8, 1, 1, 1)
    rotated = random_affine(blob, max_rotation=45.0, generator=torch.Generator().manual_seed(1))
    assert (rotated - blob).abs().max() < 0.05
    # zooming in on a constant image keeps its interior constant
    const = torch.full((4, 1, 10, 10), 0.7)
    zoomed = random_affine(const, max_rotation=0.0, scale=(1.2, 1.5), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(zoomed, const, atol=1e-6)
    # zooming out brings in zero padding at the border
    small = random_affine(const, max_rotation=0.0, scale=(0.5, 0.5), generator=torch.Generator())
    assert float(small[:, :, 0, 0].max()) == 0.0 and float(small[:, :, 5, 5].min()) == pytest.approx(0.7)


def test_gaussian_noise_statistics_and_seeding():
    zeros = torch.zeros(2, 1, 64, 64, dtype=torch.float64)
    a = gaussian_noise(zeros, 0.2, generator=torch.Generator().manual_seed(0))
    b = gaussian_noise(zeros, 0.2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == torch.float64
    assert float(a.std()) == pytest.approx(0.2, rel=0.05) and abs(float(a.mean())) < 0.01


def test_augmentation_is_seeded_clamped_and_varies():
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    aug = Augmentation.for_image_size(8)
    assert aug.max_shift == 1
    a = aug(images, generator=torch.Generator().manual_seed(5))
    b = aug(images, generator=torch.Generator().manual_seed(5))
    c = aug(images, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == images.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert Augmentation.for_image_size(28).max_shift == 3
    assert Augmentation().to_dict()["scale"] == [0.9, 1.1]


def test_augment_errors():
    g = torch.Generator()
    with pytest.raises(ValueError, match=r"shape \(B, C, H, W\); got dtype torch.float32 and shape \(8, 8\)"):
        random_shift(torch.zeros(8, 8), 1, generator=g)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        gaussian_noise(torch.zeros(1, 1, 2, 2), 0.1, generator=0)
    with pytest.raises(ValueError, match="max_shift must be a non-negative int; got -1"):
        Augmentation(max_shift=-1)
    with pytest.raises(ValueError, match="scale must be"):
        random_affine(torch.zeros(1, 1, 2, 2), scale=(2.0, 1.0), generator=g)
