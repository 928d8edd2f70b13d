"""Batch augmentation: exact checks of each transform through the one resampling, and argument errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from centaur.core.errors import CentaurError
from centaur.data.augment import (BatchAugment, affine_matrix, aug_transforms, lighting, resample,
                                  sampling_grid, warp_matrix)

# Every geometric transform switched off: what is left is a plain resampling.
STILL = dict(do_flip=False, max_rotate=0.0, min_zoom=1.0, max_zoom=1.0, max_warp=0.0, max_lighting=0.0)


def images(batch=8, height=32, width=32, seed=0):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def smooth(batch=2, size=33):
    """Low-frequency images, where bilinear interpolation is nearly exact."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    one = 0.5 + 0.25 * torch.sin(2 * xs + 1) * torch.cos(3 * ys)
    return one.expand(batch, 3, size, size).contiguous()


def params(batch, flip=False, angle=0.0, zoom=1.0, center=(0.5, 0.5), warp=(0.0, 0.0)):
    return (torch.full((batch,), flip), torch.full((batch,), float(angle)), torch.full((batch,), float(zoom)),
            torch.tensor(center).expand(batch, 2), torch.tensor(warp).expand(batch, 2))


def geometric(x, flip=False, angle=0.0, zoom=1.0, center=(0.5, 0.5), warp=(0.0, 0.0), **kwargs):
    flip, angle, zoom, center, warp = params(x.shape[0], flip, angle, zoom, center, warp)
    matrix = warp_matrix(warp) @ affine_matrix(flip, angle, zoom, center)
    return resample(x, matrix, **kwargs)


def test_eval_mode_is_identity_and_training_keeps_shape_dtype_range():
    x = images()
    aug = BatchAugment(generator=torch.Generator().manual_seed(0))
    assert aug.eval()(x) is x
    out = aug.train()(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x)


def test_eval_with_size_only_resizes():
    x = images()
    out = BatchAugment(size=16).eval()(x)
    assert out.shape == (8, 3, 16, 16)
    expected = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("align_corners", [True, False])
def test_identity_parameters_reproduce_the_input(align_corners):
    x = images()
    torch.testing.assert_close(geometric(x, align_corners=align_corners), x, atol=1e-5, rtol=0)
    # With size given the module must resample; identity parameters still give the input back.
    aug = BatchAugment(**STILL, size=(32, 32), align_corners=align_corners)
    torch.testing.assert_close(aug.train()(x), x, atol=1e-5, rtol=0)
    # With nothing to do it does not touch the batch at all.
    assert torch.equal(BatchAugment(**STILL).train()(x), x)


def test_flip_matrix_equals_torch_flip():
    x = images()
    torch.testing.assert_close(geometric(x, flip=True), torch.flip(x, dims=[3]), atol=1e-5, rtol=0)


def test_module_flips_about_half_the_images_and_nothing_else():
    x = images(batch=32)
    aug = BatchAugment(**{**STILL, "do_flip": True}, p_affine=1.0, generator=torch.Generator().manual_seed(1))
    out = aug.train()(x)
    flipped = torch.flip(x, dims=[3])
    kept = (out - x).flatten(1).abs().amax(1) < 1e-5
    mirrored = (out - flipped).flatten(1).abs().amax(1) < 1e-5
    assert bool((kept | mirrored).all())
    assert 0 < int(mirrored.sum()) < 32


@pytest.mark.parametrize("angle, turns", [(90, 1), (-90, -1), (180, 2)])
def test_quarter_turns_equal_rot90(angle, turns):
    x = images()
    expected = torch.rot90(x, turns, dims=(2, 3))
    torch.testing.assert_close(geometric(x, angle=angle), expected, atol=1e-5, rtol=0)


def test_half_turn_of_a_non_square_image_keeps_its_shape():
    # Rotating in pixel units, not in the normalized square, so no shear on a 16x32 image.
    x = images(height=16, width=32)
    torch.testing.assert_close(geometric(x, angle=180), torch.rot90(x, 2, dims=(2, 3)), atol=1e-5, rtol=0)


def test_zoom_two_crops_the_centre_and_upsamples():
    # On 33 pixels with align_corners the zoomed window is exactly pixels 8..24, so this is exact.
    x = smooth()
    expected = F.interpolate(x[..., 8:25, 8:25], size=(33, 33), mode="bilinear", align_corners=True)
    torch.testing.assert_close(geometric(x, zoom=2), expected, atol=1e-5, rtol=0)
    # zoom_center (0, 0) puts the window in the top-left corner, as fastai's col_pct/row_pct.
    expected = F.interpolate(x[..., :17, :17], size=(33, 33), mode="bilinear", align_corners=True)
    torch.testing.assert_close(geometric(x, zoom=2, center=(0.0, 0.0)), expected, atol=1e-5, rtol=0)


def test_zoom_matches_a_centre_crop_on_an_even_image_loosely():
    x = smooth(size=32)
    expected = F.interpolate(x[..., 8:24, 8:24], size=(32, 32), mode="bilinear", align_corners=True)
    assert (geometric(x, zoom=2) - expected).abs().max() < 0.05


def test_warp_moves_the_four_corners():
    matrix = warp_matrix(torch.tensor([[0.2, 0.1]]))[0]
    corners = torch.tensor([[-1.0, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]])
    moved = corners @ matrix.T
    moved = moved[:, :2] / moved[:, 2:]
    expected = torch.tensor([[-1.2, -1.1], [1.2, -0.9], [0.8, 0.9], [-0.8, 1.1]])
    torch.testing.assert_close(moved, expected, atol=1e-6, rtol=0)
    # A projective map keeps lines straight: the centre goes to where the moved diagonals cross,
    # (-1.2, -1.1) + 1.3 * (1, 1) = (1.2, -0.9) + 1.1 * (-1, 1) = (0.1, 0.2).
    grid = sampling_grid(warp_matrix(torch.tensor([[0.2, 0.1]])), (33, 33))
    torch.testing.assert_close(grid[0, 16, 16], torch.tensor([0.1, 0.2]), atol=1e-6, rtol=0)


def test_reflection_padding_leaves_no_black_corners():
    ones = torch.ones(4, 3, 32, 32)
    settings = dict(STILL, max_rotate=45.0, p_affine=1.0)
    reflected = BatchAugment(**settings, generator=torch.Generator().manual_seed(0)).train()(ones)
    assert reflected.min() > 0.999
    zeros = BatchAugment(**settings, pad_mode="zeros", generator=torch.Generator().manual_seed(0)).train()(ones)
    assert zeros.min() < 0.5


@pytest.mark.parametrize("flip_vert", [False, True])
def test_one_grid_sample_per_forward(monkeypatch, flip_vert):
    calls = []
    original = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", counting)
    aug = BatchAugment(flip_vert=flip_vert, min_zoom=0.9, p_affine=1.0, p_lighting=1.0, size=24)
    out = aug.train()(images())
    assert out.shape == (8, 3, 24, 24)
    assert len(calls) == 1


def test_lighting_stays_in_range_and_moves_the_mean_as_asked():
    x = images()
    x[:, :, 0, 0], x[:, :, 0, 1] = 0.0, 1.0  # pure black and white must stay finite
    aug = BatchAugment(**{**STILL, "max_lighting": 0.9}, p_lighting=1.0, generator=torch.Generator().manual_seed(0))
    out = aug.train()(x)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    batch = x.shape[0]
    neutral = lighting(x, torch.full((batch,), 0.5), torch.ones(batch))
    torch.testing.assert_close(neutral, x, atol=1e-5, rtol=0)
    brighter = lighting(x, torch.full((batch,), 0.6), torch.ones(batch))
    darker = lighting(x, torch.full((batch,), 0.4), torch.ones(batch))
    assert brighter.mean() > x.mean() + 0.02 and darker.mean() < x.mean() - 0.02
    sharper = lighting(x, torch.full((batch,), 0.5), torch.full((batch,), 1.25))
    assert sharper.std() > x.std()


def test_lighting_draws_follow_fastai_ranges():
    aug = BatchAugment(max_lighting=0.2, p_lighting=1.0, generator=torch.Generator().manual_seed(0))
    drawn = aug.sample_params(10_000)
    assert 0.4 <= drawn["brightness"].min() and drawn["brightness"].max() <= 0.6
    assert 0.8 - 1e-6 <= drawn["contrast"].min() and drawn["contrast"].max() <= 1.25 + 1e-6
    # log-uniform contrast: as many draws below 1 as above
    assert abs(float((drawn["contrast"] < 1).float().mean()) - 0.5) < 0.03


def test_seeded_runs_repeat():
    x = images()
    first = BatchAugment(generator=torch.Generator().manual_seed(3)).train()(x)
    again = BatchAugment(generator=torch.Generator().manual_seed(3)).train()(x)
    assert torch.equal(first, again)
    torch.manual_seed(5)
    first = BatchAugment().train()(x)
    torch.manual_seed(5)
    assert torch.equal(BatchAugment().train()(x), first)


def test_aug_transforms_defaults_and_mult():
    aug = aug_transforms()
    assert (aug.max_rotate, aug.max_zoom, aug.max_warp, aug.max_lighting, aug.pad_mode) == (
        10.0, 1.1, 0.2, 0.2, "reflection")
    doubled = aug_transforms(mult=2.0, max_rotate=5.0)
    assert doubled.max_rotate == 10.0 and math.isclose(doubled.max_warp, 0.4)


@pytest.mark.parametrize("kwargs, text", [
    (dict(pad_mode="reflect"), "Did you mean: 'reflection'"),
    (dict(mode="bilinar"), "Did you mean: 'bilinear'"),
    (dict(min_zoom=1.2, max_zoom=1.1), "max_zoom must be a number >= min_zoom"),
    (dict(min_zoom=0), "min_zoom must be a number > 0"),
    (dict(max_rotate=-5), "max_rotate must be"),
    (dict(max_warp=1.0), "max_warp must be in [0, 1)"),
    (dict(max_lighting=1.0), "max_lighting must be in [0, 1)"),
    (dict(p_affine=1.5), "p_affine must be a probability"),
    (dict(p_lighting="high"), "p_lighting must be a probability"),
    (dict(size=0), "size must be None, a positive int"),
    (dict(size=(32, 32, 3)), "size must be None"),
    (dict(generator=0), "generator must be a torch.Generator"),
])
def test_bad_arguments_say_what_to_fix(kwargs, text):
    with pytest.raises(CentaurError) as error:
        BatchAugment(**kwargs)
    assert isinstance(error.value, ValueError)
    assert text in str(error.value)


def test_bad_inputs_and_unknown_names():
    with pytest.raises(CentaurError, match=r"expects a float batch \(B, C, H, W\).*\(3, 32, 32\)"):
        BatchAugment().train()(torch.rand(3, 32, 32))
    with pytest.raises(CentaurError, match="torch.uint8"):
        BatchAugment().train()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(CentaurError, match="Did you mean: 'max_rotate'"):
        aug_transforms(max_rotation=5)
