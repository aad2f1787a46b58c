#!/usr/bin/env python3
"""Writes the image test files and what Pillow, NumPy and pypng read from them.

Run it through scripts/make-image-fixtures, which builds a throwaway venv with
Pillow, NumPy and pypng. Not run in CI; its outputs are committed under
tests/data/images/ (see the README there).

The test photograph is rendered here (a landscape: sky, sun, hills, a lake
and a field, with texture), so that the project may license it with the rest
of its code; nothing is downloaded. Each image X gets X.npy: float32
[1, C, H, W] in [-1, 1], computed as diffusers' VaeImageProcessor does,
2 * (p / max) - 1 in float32, from the pixels p that Pillow (8-bit) or pypng
(16-bit, Pillow keeps only 8 of them for RGB) decode; alpha is dropped. The
photograph gets photo.jpg.window.npy, a 64 x 96 window of its decode.

  --photo-size WxH --photo-out FILE   also render a larger photograph (not
                                      committed; the README's timings use
                                      1200x1600)
"""

import argparse
import io
import os
import sys

import numpy as np
import png  # pypng
from PIL import Image

PHOTO_ROWS = slice(300, 364)  # tests/test_image_io.cpp reads the same window
PHOTO_COLUMNS = slice(252, 348)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "images")


def render_photo(width, height, seed=20261207):
    """A landscape with smooth gradients, edges and fine texture (noise),
    what a photograph puts in front of a decoder and a diffusion model."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    img = np.zeros((height, width, 3))
    # Sky: deep blue at the top to pale near the horizon.
    sky_top, sky_low = np.array([40, 90, 170]), np.array([200, 220, 235])
    t = np.clip(v / 0.55, 0, 1)[..., None]
    img[:] = sky_top * (1 - t) + sky_low * t
    # Sun with a soft halo.
    d = np.hypot(u - 0.72, (v - 0.18) * height / width)
    halo = np.exp(-((d / 0.12) ** 2))[..., None]
    img = img * (1 - 0.6 * halo) + np.array([255, 240, 200]) * 0.6 * halo
    img[d < 0.05] = [255, 250, 225]
    # Two ranges of hills, each edge a sum of sines.
    for base, amp, color, phase in ((0.50, 0.06, [70, 110, 80], 0.3), (0.58, 0.05, [45, 90, 50], 1.7)):
        edge = base + amp * (np.sin(6 * u + phase) + 0.5 * np.sin(17 * u + 2 * phase))
        shade = (1 - 0.35 * (v - edge).clip(0, 1) / 0.4)[..., None]
        mask = (v > edge)[..., None]
        img = np.where(mask, np.array(color) * shade, img)
    # A lake reflecting the sky, with ripples.
    lake = (v > 0.68) & (v < 0.78) & (np.abs(u - 0.35) < 0.25 + 0.03 * np.sin(30 * v))
    ripple = 0.85 + 0.15 * np.sin(200 * v + 8 * np.sin(20 * u))
    img[lake] = (np.array([90, 140, 190]) * ripple[lake][:, None])
    # A field of grass: strokes of green and yellow.
    field = v > 0.78
    grass = rng.normal(0, 1, (height, width))
    stripes = 0.5 + 0.5 * np.sin(90 * u + 3 * grass)
    img[field] = (np.array([60, 120, 40]) * (1 - stripes[field])[:, None]
                  + np.array([150, 160, 60]) * stripes[field][:, None])
    # A red house with a dark roof and a window.
    house = (np.abs(u - 0.78) < 0.07) & (v > 0.62) & (v < 0.74)
    img[house] = [170, 50, 40]
    roof = (v > 0.56) & (v <= 0.62) & (np.abs(u - 0.78) < 0.09 * (v - 0.56) / 0.06)
    img[roof] = [60, 40, 40]
    window = (np.abs(u - 0.78) < 0.015) & (np.abs(v - 0.67) < 0.015)
    img[window] = [250, 220, 120]
    # Sensor noise, then 8-bit.
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def model_space(pixels, max_value, channels):
    """[H, W] or [H, W, K] integer pixels -> float32 [1, C, H, W] in [-1, 1]."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[..., None]
    a = a[..., :channels]
    unit = a.astype(np.float32) / np.float32(max_value)
    x = np.float32(2.0) * unit - np.float32(1.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def pillow_bytes(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def pillow_expected(name, channels):
    """Pillow's decode of a committed file, alpha and palette resolved."""
    with Image.open(os.path.join(OUT, name)) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        return model_space(np.array(im), 255, channels)


def pypng_expected(name, channels):
    reader = png.Reader(filename=os.path.join(OUT, name))
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    a = np.vstack([np.asarray(r, dtype=np.uint32) for r in rows]).reshape(height, width, planes)
    return model_space(a, (1 << info["bitdepth"]) - 1, channels)


def pypng_write(name, pixels, bitdepth, greyscale, alpha=False, interlace=False):
    h, w = pixels.shape[:2]
    planes = pixels.shape[2] if pixels.ndim == 3 else 1
    writer = png.Writer(w, h, greyscale=greyscale, alpha=alpha, bitdepth=bitdepth, interlace=interlace)
    buf = io.BytesIO()
    writer.write(buf, pixels.reshape(h, w * planes).tolist())
    save(name, buf.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo-size", help="WxH of an extra photograph to render")
    parser.add_argument("--photo-out", help="where to write it (JPEG)")
    args = parser.parse_args()
    if args.photo_size:
        w, h = (int(s) for s in args.photo_size.split("x"))
        Image.fromarray(render_photo(w, h)).save(args.photo_out, "JPEG", quality=90)
        print(f"wrote {args.photo_out}: {w}x{h}")
        return

    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    photo = render_photo(384, 512)
    save("photo.jpg", pillow_bytes(Image.fromarray(photo), "JPEG", quality=90))

    # Odd sizes catch stride and channel-order mistakes.
    rgb = rng.integers(0, 256, (7, 13, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (9, 5, 4), dtype=np.uint8)
    grey = rng.integers(0, 256, (11, 6), dtype=np.uint8)
    grey_alpha = rng.integers(0, 256, (5, 8, 2), dtype=np.uint8)
    save("rgb8.png", pillow_bytes(Image.fromarray(rgb, "RGB"), "PNG"))
    save("rgba8.png", pillow_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    save("grey8.png", pillow_bytes(Image.fromarray(grey, "L"), "PNG"))
    save("grey_alpha8.png", pillow_bytes(Image.fromarray(grey_alpha, "LA"), "PNG"))
    palette = Image.fromarray(rgb, "RGB").quantize(colors=16)
    save("palette8.png", pillow_bytes(palette, "PNG"))
    pypng_write("rgb8_interlaced.png", rgb, 8, greyscale=False, interlace=True)
    rgb16 = rng.integers(0, 65536, (6, 10, 3), dtype=np.uint32)
    grey16 = rng.integers(0, 65536, (5, 7), dtype=np.uint32)
    rgba16 = rng.integers(0, 65536, (4, 3, 4), dtype=np.uint32)
    pypng_write("rgb16.png", rgb16, 16, greyscale=False)
    pypng_write("grey16.png", grey16, 16, greyscale=True)
    pypng_write("rgba16.png", rgba16, 16, greyscale=False, alpha=True)
    small = render_photo(40, 30)
    save("small.jpg", pillow_bytes(Image.fromarray(small), "JPEG", quality=95))
    save("small_progressive.jpg",
         pillow_bytes(Image.fromarray(small), "JPEG", quality=95, progressive=True))
    save("grey.jpg", pillow_bytes(Image.fromarray(small).convert("L"), "JPEG", quality=95))

    # The photograph's whole decode would be 2.4 MB: a window over the house
    # (edges, saturated colour) is kept, rows PHOTO_ROWS and columns PHOTO_COLUMNS.
    photo_window = pillow_expected("photo.jpg", 3)[:, :, PHOTO_ROWS, PHOTO_COLUMNS]
    np.save(os.path.join(OUT, "photo.jpg.window.npy"), np.ascontiguousarray(photo_window))
    expected = {
        "rgb8.png": pillow_expected("rgb8.png", 3),
        "rgba8.png": pillow_expected("rgba8.png", 3),
        "grey8.png": pillow_expected("grey8.png", 1),
        "grey_alpha8.png": pillow_expected("grey_alpha8.png", 1),
        "palette8.png": pillow_expected("palette8.png", 3),
        "rgb8_interlaced.png": pillow_expected("rgb8_interlaced.png", 3),
        "rgb16.png": pypng_expected("rgb16.png", 3),
        "grey16.png": pypng_expected("grey16.png", 1),
        "rgba16.png": pypng_expected("rgba16.png", 3),
        "small.jpg": pillow_expected("small.jpg", 3),
        "small_progressive.jpg": pillow_expected("small_progressive.jpg", 3),
        "grey.jpg": pillow_expected("grey.jpg", 1),
    }
    # The 8-bit PNGs must decode to what was encoded (Pillow's own check).
    assert np.array_equal(expected["rgb8.png"], model_space(rgb, 255, 3))
    assert np.array_equal(expected["rgb8_interlaced.png"], model_space(rgb, 255, 3))
    assert np.array_equal(expected["rgb16.png"], model_space(rgb16, 65535, 3))
    for name, x in expected.items():
        np.save(os.path.join(OUT, name + ".npy"), x)
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes, expected {x.shape}")
    import PIL
    print(f"Pillow {PIL.__version__}, NumPy {np.__version__}, pypng {png.__version__}, "
          f"Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
