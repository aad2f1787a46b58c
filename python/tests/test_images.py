"""ddpm.read_image, to_pixels and write_png against the committed Pillow/pypng
decodes (scripts/make-image-fixtures), the CLI, and bad files."""

import numpy as np
import pytest

import ddpm
from conftest import REPO

IMAGES = REPO / "tests" / "data" / "images"
PNGS = ["rgb8.png", "grey8.png", "palette8.png", "rgb8_interlaced.png", "rgb16.png", "grey16.png"]
WITH_ALPHA = ["rgba8.png", "grey_alpha8.png", "rgba16.png"]
JPEGS = ["small.jpg", "small_progressive.jpg", "grey.jpg"]


@pytest.mark.parametrize("name", PNGS)
def test_png_equals_pillow_or_pypng_exactly(name):
    x = ddpm.read_image(IMAGES / name)
    expected = np.load(IMAGES / (name + ".npy"))
    assert x.dtype == np.float32 and x.shape == expected.shape
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("name", WITH_ALPHA)
def test_alpha_is_dropped_with_a_warning(name):
    with pytest.warns(ddpm.ImageWarning, match="alpha channel was dropped"):
        x = ddpm.read_image(IMAGES / name)
    np.testing.assert_array_equal(x, np.load(IMAGES / (name + ".npy")))


@pytest.mark.parametrize("name", JPEGS)
def test_jpeg_within_three_levels_of_pillow(name):
    x = ddpm.read_image(IMAGES / name)
    expected = np.load(IMAGES / (name + ".npy"))
    assert x.shape == expected.shape
    assert np.abs(x - expected).max() <= 6 / 255


def test_to_pixels_and_write_png_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.3, 1.3, (3, 11, 7)).astype(np.float32)
    pixels = ddpm.to_pixels(x)
    assert pixels.dtype == np.uint8 and pixels.shape == (11, 7, 3)
    # diffusers' VaeImageProcessor.postprocess + numpy_to_pil, in NumPy.
    expected = np.round(np.clip(x / 2 + 0.5, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(pixels, expected)
    ddpm.write_png(tmp_path / "x.png", x)
    back = ddpm.read_image(tmp_path / "x.png")
    np.testing.assert_array_equal(back[0], (2 * (pixels.transpose(2, 0, 1) / np.float32(255)) - 1).astype(np.float32))
    np.testing.assert_array_equal(ddpm.to_pixels(back[0]), pixels)


def test_batch_to_pixels_is_channel_last():
    x = np.linspace(-1, 1, 2 * 1 * 3 * 4, dtype=np.float32).reshape(2, 1, 3, 4)
    assert ddpm.to_pixels(x).shape == (2, 3, 4, 1)


def test_cli_reads_what_python_reads(cli, tmp_path):
    cli("forward", "--x0", IMAGES / "photo.jpg", "--t", "0", "--noise", IMAGES / "photo.jpg",
        "--beta-start", "0.5", "--beta-end", "0.5", "--steps", "2", "--out", tmp_path / "x.npy")
    # With eps = x0: x_t = (sqrt(ab) + sqrt(1 - ab)) x0, a scaled copy of what read_image gives.
    x0 = ddpm.read_image(IMAGES / "photo.jpg")
    scale = np.sqrt(0.5) + np.sqrt(0.5)
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), scale * x0, rtol=0, atol=4e-7)


def test_bad_files_raise_ddpm_error(tmp_path):
    (tmp_path / "text.png").write_text("no picture")
    with pytest.raises(ddpm.Error, match="not a PNG or JPEG"):
        ddpm.read_image(tmp_path / "text.png")
    data = (IMAGES / "small.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ddpm.Error, match="truncated JPEG"):
        ddpm.read_image(tmp_path / "cut.jpg")
    with pytest.raises(ddpm.Error, match="Is a directory"):
        ddpm.read_image(tmp_path)


def test_pixels_and_nan_refused():
    with pytest.raises(TypeError, match="float array"):
        ddpm.to_pixels(np.zeros((3, 2, 2), dtype=np.uint8))
    with pytest.raises(ddpm.Error, match="non-finite"):
        ddpm.to_pixels(np.full((1, 2, 2), np.nan, dtype=np.float32))
    with pytest.raises(ddpm.Error, match=r"\[C, H, W\] or \[N, C, H, W\]"):
        ddpm.to_pixels(np.zeros((4, 4), dtype=np.float32))
