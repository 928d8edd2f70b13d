"""Batch augmentation as fastai does it: flip, rotate, zoom and warp in one resampling, then lighting."""
import inspect
import math

import torch
import torch.nn.functional as F

from ..core.errors import CentaurError, check_choice

PAD_MODES = ("zeros", "border", "reflection")
MODES = ("bilinear", "nearest", "bicubic")


def _matrix(a, b, c, d, e, f):
    """Stack six (B,) tensors into (B, 3, 3) matrices [[a, b, c], [d, e, f], [0, 0, 1]]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], dim=-1).view(-1, 3, 3)


def affine_matrix(flip, angle, zoom, zoom_center=None, aspect=1.0):
    """Per-image (B, 3, 3) matrices mapping output to input coordinates in grid_sample's [-1, 1] frame.

    flip (B,) bool mirrors left-right; angle (B,) is in degrees, counter-clockwise on screen;
    zoom (B,) above 1 shows a smaller area; zoom_center (B, 2) in [0, 1] says where that window
    sits (fastai's col_pct, row_pct; default 0.5, the centre); aspect is the image's width over
    height so that a rotation turns the picture instead of shearing it.

    >>> affine_matrix(torch.tensor([True]), torch.tensor([0.0]), torch.tensor([1.0]))[0, 0, 0].item()
    -1.0
    """
    angle, zoom = torch.as_tensor(angle, dtype=torch.float32), torch.as_tensor(zoom, dtype=torch.float32)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    if zoom_center is None:
        zoom_center = torch.full((angle.shape[0], 2), 0.5, device=angle.device)
    # Zoom: a window 1/zoom wide, shifted within the image (fastai's zoom_mat).
    scale = 1 / zoom
    shift = (1 - scale)[:, None] * (2 * zoom_center - 1)  # (B, 2)
    zoom_m = _matrix(scale, zero, shift[:, 0], zero, scale, shift[:, 1])
    # Rotation in pixel units: fastai rotates the normalized square, which shears a non-square
    # image; scaling the off-diagonal terms by the aspect ratio keeps right angles right.
    theta = angle * (math.pi / 180)
    cos, sin = theta.cos(), theta.sin()
    rotate_m = _matrix(cos, -sin / aspect, zero, sin * aspect, cos, zero)
    sign = torch.where(torch.as_tensor(flip, device=angle.device), -one, one)
    flip_m = _matrix(sign, zero, zero, zero, one, zero)
    # Same order as fastai (flip @ rotate @ zoom): the window is chosen, turned, then mirrored.
    return flip_m @ rotate_m @ zoom_m  # (B, 3, 3)


def warp_matrix(warp):
    """Per-image (B, 3, 3) homographies that move the four corners of [-1, 1]^2 (fastai's _WarpCoord).

    warp (B, 2) holds the magnitudes on x and y: corners on one diagonal move by -warp and
    those on the other by +warp, so one edge widens while the opposite narrows, as if the
    picture were tilted away from the camera.

    >>> warp_matrix(torch.zeros(1, 2))[0].diag().tolist()
    [1.0, 1.0, 1.0]
    """
    wx, wy = warp.unbind(-1)  # each (B,)
    # Target corners: top-left, top-right, bottom-right, bottom-left, as (x, y).
    x0, y0, x1, y1 = -1 - wx, -1 - wy, 1 + wx, -1 + wy
    x2, y2, x3, y3 = 1 - wx, 1 - wy, -1 + wx, 1 + wy
    # Closed-form unit square -> quadrilateral mapping (Heckbert 1989, "Fundamentals of Texture
    # Mapping and Image Warping", sec. 2.2.3): no 8x8 solve, so it batches and runs in float32.
    dx1, dx2, sx = x1 - x2, x3 - x2, x0 - x1 + x2 - x3
    dy1, dy2, sy = y1 - y2, y3 - y2, y0 - y1 + y2 - y3
    den = dx1 * dy2 - dx2 * dy1
    g, h = (sx * dy2 - dx2 * sy) / den, (dx1 * sy - sx * dy1) / den
    square_to_quad = _matrix(x1 - x0 + g * x1, x3 - x0 + h * x3, x0, y1 - y0 + g * y1, y3 - y0 + h * y3, y0)
    square_to_quad[:, 2, 0], square_to_quad[:, 2, 1] = g, h
    half = torch.full_like(wx, 0.5)
    to_unit = _matrix(half, torch.zeros_like(wx), half, torch.zeros_like(wx), half, half)  # [-1, 1] -> [0, 1]
    return square_to_quad @ to_unit  # (B, 3, 3)


def _axis(n, align_corners, device):
    """Pixel centres along one axis in grid_sample's frame, exactly as F.affine_grid places them."""
    if n == 1:
        return torch.zeros(1, device=device)
    pos = torch.linspace(-1, 1, n, device=device)
    return pos if align_corners else pos * (n - 1) / n


def sampling_grid(matrix, size, align_corners=True):
    """Where each output pixel reads the input: (B, H, W, 2) from (B, 3, 3) projective matrices.

    >>> sampling_grid(torch.eye(3)[None], (2, 2))[0, 0, 1].tolist()
    [1.0, -1.0]
    """
    height, width = size
    ys = _axis(height, align_corners, matrix.device)[:, None].expand(height, width)
    xs = _axis(width, align_corners, matrix.device)[None, :].expand(height, width)
    base = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(-1, 3)  # (H*W, 3)
    points = base @ matrix.transpose(1, 2)  # (B, H*W, 3)
    grid = points[..., :2] / points[..., 2:]  # (B, H*W, 2), the homogeneous divide of the warp
    return grid.view(-1, height, width, 2)


def resample(x, matrix, size=None, mode="bilinear", pad_mode="reflection", align_corners=True):
    """Resample a batch (B, C, H, W) once through per-image (B, 3, 3) matrices, to `size` if given.

    >>> resample(torch.rand(2, 3, 8, 8), torch.eye(3).expand(2, 3, 3), size=4).shape
    torch.Size([2, 3, 4, 4])
    """
    size = tuple(x.shape[-2:]) if size is None else _pair(size)
    grid = sampling_grid(matrix.to(x.device, torch.float32), size, align_corners).to(x.dtype)
    return F.grid_sample(x, grid, mode=mode, padding_mode=pad_mode, align_corners=align_corners)


def lighting(x, brightness, contrast):
    """Change brightness and contrast in logit space, as fastai does, so values stay in [0, 1].

    brightness (B,) is 0.5 for no change (it is added as logit(brightness)); contrast (B,) is 1
    for no change (it multiplies the logits, stretching away from grey 0.5).

    >>> lighting(torch.full((1, 1, 2, 2), 0.5), torch.tensor([0.6]), torch.tensor([1.0])).mean().item() > 0.5
    True
    """
    logits = torch.logit(x, eps=1e-7)  # (B, C, H, W); eps keeps pure black and white finite
    # In place on the fresh logits tensor: one allocation for the whole lighting step.
    logits.add_(torch.logit(brightness)[:, None, None, None]).mul_(contrast[:, None, None, None])
    return logits.sigmoid_().clamp_(0, 1)


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def _check_number(name, value, low, high, expected):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low(value) or not high(value):
        raise CentaurError(f"{name} must be {expected}, got {value!r}.")


class BatchAugment(torch.nn.Module):
    """fastai's aug_transforms as one module: random flip, rotate, zoom and warp in one resampling, then lighting.

    Active only in training mode; in eval mode it returns the batch as is (resized if `size`).

    >>> aug = BatchAugment(generator=torch.Generator().manual_seed(0))
    >>> aug(torch.rand(8, 3, 32, 32)).shape
    torch.Size([8, 3, 32, 32])
    """

    def __init__(self, do_flip=True, flip_vert=False, max_rotate=10.0, min_zoom=1.0, max_zoom=1.1,
                 max_warp=0.2, p_affine=0.75, max_lighting=0.2, p_lighting=0.75, pad_mode="reflection",
                 size=None, mode="bilinear", align_corners=True, generator=None):
        super().__init__()
        self.do_flip, self.flip_vert, self.max_rotate = do_flip, flip_vert, max_rotate
        self.min_zoom, self.max_zoom, self.max_warp, self.p_affine = min_zoom, max_zoom, max_warp, p_affine
        self.max_lighting, self.p_lighting, self.pad_mode = max_lighting, p_lighting, pad_mode
        self.size, self.mode, self.align_corners, self.generator = size, mode, align_corners, generator
        # A transform written wrong should fail where it is written, not at the first batch.
        self._check()

    def _check(self):
        check_choice("pad_mode", self.pad_mode, PAD_MODES)
        check_choice("mode", self.mode, MODES)
        _check_number("max_rotate", self.max_rotate, lambda v: v >= 0, lambda v: True, "a number of degrees >= 0")
        _check_number("min_zoom", self.min_zoom, lambda v: v > 0, lambda v: True, "a number > 0 (1 means no zoom)")
        _check_number("max_zoom", self.max_zoom, lambda v: v >= self.min_zoom, lambda v: True,
                      f"a number >= min_zoom ({self.min_zoom!r})")
        # A warp of 1 or more folds two corners onto each other and the homography breaks down.
        _check_number("max_warp", self.max_warp, lambda v: v >= 0, lambda v: v < 1, "in [0, 1) (fastai uses 0.2)")
        # Contrast is drawn from [1 - max_lighting, 1 / (1 - max_lighting)], so it must stay below 1.
        _check_number("max_lighting", self.max_lighting, lambda v: v >= 0, lambda v: v < 1,
                      "in [0, 1) (fastai uses 0.2)")
        for name in ("p_affine", "p_lighting"):
            _check_number(name, getattr(self, name), lambda v: v >= 0, lambda v: v <= 1, "a probability in [0, 1]")
        size = self.size
        pair = (size,) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
        good = len(pair) in (1, 2) and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair)
        if size is not None and not good:
            raise CentaurError(f"size must be None, a positive int or (height, width), got {size!r}.")
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise CentaurError(f"generator must be a torch.Generator or None, got {type(self.generator).__name__}.")

    def sample_params(self, batch_size, device=None):
        """Draw one set of random parameters per image: a dict of (B,) or (B, 2) tensors.

        >>> sorted(BatchAugment().sample_params(4))[:3]
        ['angle', 'brightness', 'contrast']
        """
        gen = self.generator
        # Draw where the generator lives (a CPU generator cannot fill a CUDA tensor), then move.
        where = gen.device if gen is not None else (device or "cpu")

        def uniform(low, high, *shape):
            return torch.rand(batch_size, *shape, generator=gen, device=where) * (high - low) + low

        def chance(p):
            return torch.rand(batch_size, generator=gen, device=where) < p

        # Each transform has its own coin, as in fastai (flip and dihedral always use p=0.5).
        flip = chance(0.5) & self.do_flip
        angle = uniform(-self.max_rotate, self.max_rotate) * chance(self.p_affine)
        if self.do_flip and self.flip_vert:
            # The 8 dihedral symmetries are a mirror followed by a quarter-turn (fastai's Dihedral).
            dihedral = chance(0.5)
            flip = flip & dihedral
            angle = angle + 90.0 * torch.randint(0, 4, (batch_size,), generator=gen, device=where) * dihedral
        zoom = torch.where(chance(self.p_affine), uniform(self.min_zoom, self.max_zoom), 1.0)
        zoom_center = uniform(0, 1, 2)
        warp = uniform(-self.max_warp, self.max_warp, 2) * chance(self.p_affine)[:, None]
        low = 0.5 * (1 - self.max_lighting)
        brightness = torch.where(chance(self.p_lighting), uniform(low, 1 - low), 0.5)
        log_c = math.log(1 - self.max_lighting)  # contrast is log-uniform in [1 - m, 1 / (1 - m)]
        contrast = torch.where(chance(self.p_lighting), uniform(log_c, -log_c).exp(), 1.0)
        params = dict(flip=flip, angle=angle, zoom=zoom, zoom_center=zoom_center, warp=warp,
                      brightness=brightness, contrast=contrast)
        return {k: v.to(device) for k, v in params.items()} if device is not None else params

    def transform(self, x, params):
        """Apply parameters from `sample_params` to a batch (B, C, H, W): one grid_sample, then lighting."""
        out = x
        zooms = self.min_zoom != 1 or self.max_zoom != 1
        geometric = self.do_flip or self.max_rotate > 0 or self.max_warp > 0 or zooms
        if self.size is not None or geometric:
            # Half-extents in pixels: with align_corners the frame spans pixel centres, n - 1 steps.
            height, width = (n - 1 if self.align_corners else n for n in x.shape[-2:])
            aspect = max(width, 1) / max(height, 1)
            affine = affine_matrix(params["flip"], params["angle"], params["zoom"], params["zoom_center"], aspect)
            # Fold warp and affine into one matrix, so each image is interpolated only once.
            matrix = warp_matrix(params["warp"]) @ affine  # (B, 3, 3)
            out = resample(x, matrix, self.size, self.mode, self.pad_mode, self.align_corners)
        if self.max_lighting > 0 and self.p_lighting > 0:
            out = lighting(out, params["brightness"], params["contrast"])
        return out

    def forward(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise CentaurError(f"BatchAugment expects a float batch (B, C, H, W) in [0, 1], got {got}.")
        if not self.training:
            if self.size is None:
                return x
            identity = torch.eye(3, device=x.device).expand(x.shape[0], 3, 3)
            return resample(x, identity, self.size, self.mode, self.pad_mode, self.align_corners)
        return self.transform(x, self.sample_params(x.shape[0], x.device))

    def extra_repr(self):
        names = list(inspect.signature(type(self).__init__).parameters)[1:-1]
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in names)


def aug_transforms(mult=1.0, **kwargs):
    """fastai's default augmentation as a BatchAugment; `mult` scales rotation, lighting and warp.

    >>> aug_transforms(max_rotate=20).max_rotate
    20.0
    """
    _check_number("mult", mult, lambda v: v >= 0, lambda v: True, "a number >= 0 (1 keeps fastai's strengths)")
    allowed = list(inspect.signature(BatchAugment.__init__).parameters)[1:]
    for name in kwargs:
        check_choice("argument to aug_transforms", name, allowed)
    for name, default in (("max_rotate", 10.0), ("max_lighting", 0.2), ("max_warp", 0.2)):
        kwargs[name] = kwargs.get(name, default) * mult
    return BatchAugment(**kwargs)
