"""Images in and out: a PNG or JPEG as a float32 NumPy array in [-1, 1],
channel first ([1, C, H, W], a batch of one, as diffusers' pipelines and
UNets take it), and model-space arrays back to 8-bit pixels or a PNG.

    x0 = ddpm.read_image("photo.jpg")          # (1, 3, H, W) float32 in [-1, 1]
    pixels = ddpm.to_pixels(x0[0])             # (H, W, 3) uint8, for PIL or matplotlib
    ddpm.write_png("out.png", x_t)             # a batch as a grid

The mapping is diffusers' VaeImageProcessor's: x = 2 * (p / 255) - 1 in,
p = round(clip((x + 1) / 2, 0, 1) * 255) out, so a PNG that write_png wrote
reads back exactly. 16-bit PNGs keep their 16 bits; an alpha channel is
dropped with a warning (ddpm.ImageWarning).
"""

import warnings

import numpy as np

from . import _ddpm


class ImageWarning(UserWarning):
    """Something in an image file was not read (an alpha channel)."""


def read_image(path):
    """A PNG or JPEG (told by content, not name) as float32 [1, C, H, W] in [-1, 1];
    C is 1 (grey) or 3 (RGB). Bad files raise ddpm.Error."""
    array, warning = _ddpm.read_image(str(path))
    if warning:
        warnings.warn(warning, ImageWarning, stacklevel=2)
    return array


def _model_space(x):
    """A float array-like as C-contiguous float32; integer arrays are refused (they
    are pixels already, not model space)."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"expected a float array in model space [-1, 1], got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def to_pixels(x):
    """[C, H, W] or [N, C, H, W] (C = 1 or 3) in [-1, 1] to uint8 pixels, channel last:
    [H, W, C] or [N, H, W, C]; values outside [-1, 1] are clipped, NaN refused."""
    return _ddpm.to_pixels(_model_space(x))


def write_png(path, x):
    """Writes [C, H, W] or [N, C, H, W] in [-1, 1] as a PNG (a batch as a grid),
    replacing `path` atomically."""
    _ddpm.write_png(str(path), _model_space(x))
