"""CuPy arrays in and out, on a CUDA device; skip without CuPy or a GPU."""

import numpy as np
import pytest

import ddpm

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")


def test_cupy_arrays_stay_on_the_device():
    if not ddpm.cuda_available():
        pytest.skip(f"ddpm's CUDA backend is not usable: {ddpm.cuda_unavailable_reason()}")
    gpu = ddpm.Sampler(sampler="ddim", inference_steps=10, backend="cuda")
    x0 = cupy.linspace(-1, 1, 60, dtype=cupy.float32).reshape(6, 10)
    x_t, eps = gpu.forward(x0, 500, seed=3)
    assert isinstance(x_t, cupy.ndarray) and isinstance(eps, cupy.ndarray)
    seen = []

    def predictor(x, t):
        seen.append(x.data.ptr)
        return cupy.zeros_like(x)

    out = cupy.empty((6, 10), cupy.float32)
    gpu.sample(predictor=predictor, seed=1, out=out)
    cupy.cuda.get_current_stream().synchronize()
    assert seen == [out.data.ptr] * 10
    ref = ddpm.Sampler(backend="cpu").forward(cupy.asnumpy(x0), 500, seed=3)[0]
    np.testing.assert_allclose(cupy.asnumpy(x_t), ref, atol=1e-5)
