"""Arrays: zero copies where arrays already fit, conversions that say so, clear refusals."""

import warnings

import numpy as np
import pytest

import ddpm


@pytest.fixture
def sampler():
    return ddpm.Sampler(sampler="ddim", inference_steps=10, backend="cpu")


def test_sample_runs_in_the_callers_buffer(sampler):
    # A float32 view into a larger array: the predictor sees x_t at the view's
    # own address at every step, so the engine sampled in the caller's memory.
    storage = np.zeros((3, 4, 6), np.float32)
    view = storage[1]
    addresses = []

    def predictor(x_t, t):
        addresses.append(x_t.ctypes.data)
        assert not x_t.flags.writeable  # the engine's x_t is read-only to predictors
        return np.zeros_like(x_t)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no conversion copy
        result = sampler.sample(predictor=predictor, seed=1, out=view)
    assert result is view
    assert addresses == [view.ctypes.data] * len(sampler.timesteps)
    assert not storage[0].any() and not storage[2].any()
    assert np.isfinite(view).all() and view.any()


def test_initial_view_is_sampled_in_place(sampler):
    x = np.random.default_rng(2).standard_normal((2, 5, 3)).astype(np.float32)[0]  # a (5, 3) view
    expected = sampler.sample(predictor=ddpm.GaussianPredictor(), seed=3, initial=x.copy())
    addresses = set()

    def predictor(x_t, t):
        addresses.add(x_t.ctypes.data)
        return np.zeros_like(x_t)

    sampler.sample(predictor=predictor, seed=3, initial=x, out=x, end_step=sampler.timesteps[0])
    assert addresses == {x.ctypes.data}
    y = np.random.default_rng(2).standard_normal((2, 5, 3)).astype(np.float32)[0]
    sampler.sample(predictor=ddpm.GaussianPredictor(), seed=3, initial=y, out=y)
    np.testing.assert_array_equal(y, expected)


def test_forward_and_step_write_into_out(sampler):
    x0 = np.ones((4, 6), np.float32)
    out = np.empty((4, 6), np.float32)
    eps_out = np.empty((4, 6), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x_t, eps = sampler.forward(x0[:, :], 500, seed=1, out=out, eps_out=eps_out)
    assert x_t is out and eps is eps_out
    assert out.ctypes.data == x_t.ctypes.data
    fresh_x_t, fresh_eps = sampler.forward(x0, 500, seed=1)
    np.testing.assert_array_equal(out, fresh_x_t)
    np.testing.assert_array_equal(eps_out, fresh_eps)
    # A given noise comes back as the same object (nothing drawn, nothing copied).
    assert sampler.forward(x0, 500, noise=eps_out)[1] is eps_out
    # step() in place: out may be x_t.
    t = sampler.timesteps[3]
    expected = sampler.step(out, eps_out, t, seed=2)
    same = sampler.step(out, eps_out, t, seed=2, out=out)
    assert same is out
    np.testing.assert_array_equal(out, expected)


def test_step_returns_x0_on_request(sampler):
    x_t = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    eps = np.zeros_like(x_t)
    x_prev, x0 = sampler.step(x_t, eps, sampler.timesteps[-1], return_x0=True)
    # eps = 0: x0_hat = x_t / sqrt(alpha_bar_t), and at the last step x_prev = x0_hat.
    ab = sampler.schedule.alpha_bar[sampler.timesteps[-1]]
    np.testing.assert_allclose(x0, x_t / np.sqrt(ab), rtol=1e-6)
    np.testing.assert_allclose(x_prev, x0, rtol=1e-6)


def test_float64_and_strided_inputs_are_converted_with_a_warning(sampler):
    x0 = np.linspace(-1, 1, 24).reshape(4, 6)
    with pytest.warns(ddpm.CopyWarning, match="x0 is float64; it was converted to a float32 C-contiguous copy"):
        x_t, _ = sampler.forward(x0, 10, seed=1)
    np.testing.assert_array_equal(x_t, sampler.forward(x0.astype(np.float32), 10, seed=1)[0])
    strided = np.ones((6, 4), np.float32).T
    with pytest.warns(ddpm.CopyWarning, match="x0 is float32 and not C-contiguous"):
        sampler.forward(strided, 10)
    with pytest.warns(ddpm.CopyWarning, match="x0 is float64"):
        sampler.forward([[0.5, 0.25]], 3)  # a list: read through NumPy


def test_dtype_errors(sampler):
    with pytest.raises(TypeError, match=r"^x0 must be a float32 array, got int64$"):
        sampler.forward(np.ones((2, 3), np.int64), 5)
    with pytest.raises(TypeError, match=r"^x0 must be a float32 array, got bool$"):
        sampler.forward(np.ones((2, 3), bool), 5)
    with pytest.raises(TypeError, match=r"^t must be an int or an integer array, got float64$"):
        sampler.forward(np.ones((2, 3), np.float32), np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^t must be an int or an integer array, got float$"):
        sampler.forward(np.ones((2, 3), np.float32), 1.5)
    with pytest.raises(TypeError, match=r"^t must be an int or an integer array, got bool$"):
        sampler.forward(np.ones((2, 3), np.float32), True)
    with pytest.raises(TypeError, match=r"^out must be a float32 array, got float64$"):
        sampler.forward(np.ones((2, 3), np.float32), 5, out=np.empty((2, 3)))
    with pytest.raises(TypeError, match=r"^out must be C-contiguous$"):
        sampler.forward(np.ones((2, 3), np.float32), 5, out=np.empty((3, 2), np.float32).T)
    with pytest.raises(ValueError, match=r"^out is read-only$"):
        out = np.empty((2, 3), np.float32)
        out.flags.writeable = False
        sampler.forward(np.ones((2, 3), np.float32), 5, out=out)
    with pytest.raises(TypeError, match=r"^class_labels must be an int or an integer array, got float64$"):
        sampler.sample((2, 3), ddpm.GaussianPredictor(), class_labels=np.array([0.0, 1.0]))


def test_shape_errors(sampler):
    x0 = np.ones((2, 3), np.float32)
    with pytest.raises(ddpm.Error, match=r"^shape mismatch: noise has shape \(2, 4\) but x0 has shape \(2, 3\)$"):
        sampler.forward(x0, 5, noise=np.ones((2, 4), np.float32))
    with pytest.raises(ddpm.Error, match=r"^shape mismatch: out has shape \(3, 2\) but x0 has shape \(2, 3\)$"):
        sampler.forward(x0, 5, out=np.empty((3, 2), np.float32))
    with pytest.raises(ddpm.Error, match=r"^t must have one entry per sample: shape \(2,\), got \(3,\)$"):
        sampler.forward(x0, np.array([1, 2, 3]))
    with pytest.raises(ddpm.Error, match=r"^x0 is a scalar; expected a batch of samples"):
        sampler.forward(np.float32(1.0).reshape(()), 5)
    with pytest.raises(ValueError, match=r"^shape mismatch: out has shape \(2, 3\) but shape is \(4, 3\)$"):
        sampler.sample((4, 3), ddpm.GaussianPredictor(), out=np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"^shape mismatch: initial has shape \(2, 4\) but out has shape \(2, 3\)$"):
        sampler.sample(predictor=ddpm.GaussianPredictor(), initial=np.ones((2, 4), np.float32),
                       out=np.empty((2, 3), np.float32))
    with pytest.raises(ddpm.Error, match=r"^class_labels must have one entry per sample: shape \(2,\), got \(1,\)$"):
        sampler.sample((2, 3), ddpm.GaussianPredictor(), class_labels=[1])
    assert issubclass(ddpm.Error, ValueError)


def test_engine_errors_are_ddpm_errors(sampler):
    x0 = np.ones((2, 3), np.float32)
    with pytest.raises(ddpm.Error, match="1000"):
        sampler.forward(x0, 1000)  # t outside [0, T)
    with pytest.raises(ddpm.Error, match="NaN|non-finite"):
        sampler.forward(np.full((2, 3), np.nan, np.float32), 5)
    with pytest.raises(ddpm.Error):
        sampler.step(x0, x0, 7)  # not one of the sampler's timesteps


def test_device_memory_needs_the_cuda_backend():
    if ddpm.cuda_available():
        pytest.skip("a CUDA device is usable here")
    with pytest.raises(ddpm.Error, match="no CUDA device is usable|CUDA"):
        ddpm.Sampler(backend="cuda")
