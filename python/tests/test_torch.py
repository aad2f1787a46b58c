"""PyTorch tensors in and out: CPU tests run wherever torch is installed, CUDA tests
where a GPU is usable too. scripts/test-diffusers (run by CI) installs torch;
without it these skip."""

import warnings

import numpy as np
import pytest

import ddpm
from conftest import gaussian_eps

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

MEAN, STD = 0.5, 0.3


def _cuda_or_skip():
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    if not ddpm.cuda_available():
        pytest.skip(f"ddpm's CUDA backend is not usable: {ddpm.cuda_unavailable_reason()}")


@pytest.fixture
def sampler():
    return ddpm.Sampler(sampler="ddim", inference_steps=20, backend="cpu")


def test_cpu_tensors_in_cpu_tensors_out_equal_numpy(sampler):
    x0 = torch.linspace(-1, 1, 60, dtype=torch.float32).reshape(6, 10)
    x_t, eps, v = sampler.forward(x0, torch.arange(6) * 100, seed=3, velocity=True)
    assert all(isinstance(a, torch.Tensor) and a.device.type == "cpu" and a.dtype == torch.float32
               for a in (x_t, eps, v))
    ref = sampler.forward(x0.numpy(), np.arange(6) * 100, seed=3, velocity=True)
    for a, b in zip((x_t, eps, v), ref):
        np.testing.assert_array_equal(a.numpy(), b)
    x = sampler.sample(predictor=ddpm.GaussianPredictor(MEAN, STD), seed=1, like=x0)
    assert isinstance(x, torch.Tensor) and x.shape == (6, 10)
    np.testing.assert_array_equal(x.numpy(), sampler.sample((6, 10), ddpm.GaussianPredictor(MEAN, STD), seed=1))


def test_cpu_zero_copy_and_out(sampler):
    storage = torch.zeros(3, 4, 5)
    view = storage[1]
    seen = []

    def predictor(x_t, t):
        seen.append((type(x_t), x_t.data_ptr(), t.ndim == 0 and t.dtype == torch.int64))
        return torch.zeros_like(x_t)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sampler.sample(predictor=predictor, seed=2, out=view)
    assert result is view
    assert seen == [(torch.Tensor, view.data_ptr(), True)] * 20
    out = torch.empty(4, 5)
    x_t, _ = sampler.forward(view, 10, out=out)
    assert x_t is out


def test_nn_module_predictor_equals_builtin(sampler):
    schedule = sampler.schedule

    class Gaussian(torch.nn.Module):
        def forward(self, x_t, t):
            assert not torch.is_grad_enabled()  # the engine calls models under no_grad
            return torch.from_numpy(gaussian_eps(x_t.double().numpy(), t, schedule, MEAN, STD))

    like = torch.empty(8, 12)
    x = sampler.sample(predictor=Gaussian(), seed=4, like=like)
    reference = sampler.sample(predictor=ddpm.GaussianPredictor(MEAN, STD), seed=4, like=like)
    torch.testing.assert_close(x, reference, rtol=0, atol=1e-5)


def test_module_with_labels_and_requires_grad_input(sampler):
    class Conditional(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(0.0))

        def forward(self, x_t, t, labels):
            return x_t * self.scale + labels[:, None].float() * 0

    initial = torch.randn(3, 4, requires_grad=True)
    x = sampler.sample(predictor=Conditional(), initial=initial, class_labels=torch.tensor([1, 2, 3]))
    assert isinstance(x, torch.Tensor) and not x.requires_grad and torch.isfinite(x).all()


def test_torch_errors(sampler):
    with pytest.raises(TypeError, match=r"^x0 must be a float32 array, got int64$"):
        sampler.forward(torch.ones(2, 3, dtype=torch.int64), 5)
    with pytest.warns(ddpm.CopyWarning, match="x0 is torch.float64; it was converted"):
        sampler.forward(torch.ones(2, 3, dtype=torch.float64), 5)
    with pytest.warns(ddpm.CopyWarning, match="x0 is torch.float32 and not C-contiguous"):
        sampler.forward(torch.ones(3, 2).T, 5)
    with pytest.raises(TypeError, match=r"^t must be an int or an integer array, got torch.float32$"):
        sampler.forward(torch.ones(2, 3), torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^the predictor returned ndarray; it must return a torch.Tensor$"):
        sampler.sample(predictor=lambda x, t: np.zeros((2, 3), np.float32), like=torch.empty(2, 3))
    with pytest.raises(ValueError, match=r"^x0 is on the PyTorch device 'meta'"):
        sampler.forward(torch.empty(2, 3, device="meta"), 5)


def test_cuda_tensors_stay_on_the_device_and_stream():
    _cuda_or_skip()
    gpu = ddpm.Sampler(sampler="ddim", inference_steps=20, backend="cuda")
    cpu = ddpm.Sampler(sampler="ddim", inference_steps=20, backend="cpu")
    x0 = torch.linspace(-1, 1, 600, device="cuda").reshape(6, 100)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x_t, eps = gpu.forward(x0, torch.arange(6, device="cuda") * 100, seed=3)
        x = gpu.sample(predictor=ddpm.GaussianPredictor(MEAN, STD), seed=1, like=x0)
    stream.synchronize()
    assert x_t.device == x0.device and x.device == x0.device and eps.is_cuda
    ref_x_t, ref_eps = cpu.forward(x0.cpu().numpy(), np.arange(6) * 100, seed=3)
    np.testing.assert_allclose(x_t.cpu().numpy(), ref_x_t, atol=1e-5)
    np.testing.assert_allclose(eps.cpu().numpy(), ref_eps, atol=1e-5)
    np.testing.assert_allclose(x.cpu().numpy(), cpu.sample((6, 100), ddpm.GaussianPredictor(MEAN, STD), seed=1),
                               atol=1e-4)


def test_cuda_python_predictor_gets_device_tensors():
    _cuda_or_skip()
    gpu = ddpm.Sampler(sampler="ddim", inference_steps=10, backend="cuda")
    out = torch.empty(4, 8, device="cuda")
    seen = []

    def predictor(x_t, t):
        seen.append((x_t.device.type, x_t.data_ptr()))
        return torch.zeros_like(x_t)

    gpu.sample(predictor=predictor, seed=1, out=out)
    torch.cuda.synchronize()
    assert seen == [("cuda", out.data_ptr())] * 10
    with pytest.raises(ddpm.Error, match=r"^noise is on cpu but x0 is on cuda:0"):
        gpu.forward(out, 5, noise=torch.zeros(4, 8))
    with pytest.raises(ValueError, match=r"^the predictor returned a tensor on cpu but x_t is on cuda:0$"):
        gpu.sample(predictor=lambda x, t: torch.zeros(4, 8), out=out)


def test_torch_module_with_guidance_history_and_float_times():
    # A torch.nn.Module with a null label, guided, run in two pieces of a
    # DPM-Solver++ loop with a history tensor; and Euler's float times.
    class Guided(torch.nn.Module):
        unconditional_label = 9

        def __init__(self, schedule):
            super().__init__()
            self.schedule = schedule
            self.rows = []

        def forward(self, x_t, t, labels):
            self.rows.append(x_t.shape[0])
            x = x_t.numpy()
            c = gaussian_eps(x, t, self.schedule, MEAN, STD)
            u = gaussian_eps(x, t, self.schedule, 0.0, STD)
            return torch.from_numpy(np.where((labels.numpy() == 9)[:, None], u, c))

    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=20, backend="cpu")
    model = Guided(sampler.schedule)
    like = torch.empty(6, 5)
    labels = torch.arange(6)
    whole = sampler.sample(predictor=model, like=like, seed=2, class_labels=labels, guidance_scale=2.0)
    assert set(model.rows) == {12}
    history = torch.empty(6, 5)
    x = sampler.sample(predictor=model, like=like, seed=2, class_labels=labels, guidance_scale=2.0,
                       end_index=9, history=history)
    x = sampler.sample(predictor=model, initial=x, seed=2, class_labels=labels, guidance_scale=2.0,
                       start_index=10, history=history)
    assert torch.equal(x, whole)
    reference = sampler.sample((6, 5), ddpm.GaussianPredictor(MEAN, STD, unconditional=(0.0, STD)), seed=2,
                               guidance_scale=2.0)
    np.testing.assert_allclose(whole.numpy(), reference, atol=1e-5)
    euler = ddpm.Sampler(sampler="euler", inference_steps=12, backend="cpu")
    times = []
    euler.sample(predictor=lambda x_t, t: times.append(t) or torch.zeros_like(x_t), like=like)
    assert [t.item() for t in times] == euler.model_timesteps
    assert all(t.ndim == 0 and t.dtype == torch.float32 for t in times)
