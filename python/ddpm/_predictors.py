"""Python callables as predictors: f(x_t, t) -> model_output, or f(x_t, t, labels).

The engine (src/python/predictors.cpp) calls a CallableBridge once per step with
the GIL held: x_t and out are views of the engine's own buffers (no copies) in
the call's framework and memory, t the step's model time (Sampler.model_timesteps)
handed to f as diffusers' pipelines hand it to a UNet: a 0-d array of the
call's framework and device, int64 (float32 for the Euler samplers and
wherever the time is fractional), or one int32 entry per row. The bridge calls
f and copies its answer (or its .sample, as a diffusers UNet2DModel returns)
into out, after checking it: the same shape as x_t, floating-point values, the
same device. An exception raised by f propagates out of Sampler.sample unchanged.
"""

import inspect

import numpy as np

from ._arrays import framework_of


class Predictor:
    """The protocol of Python predictors, as a base class (optional: any callable
    f(x_t, t) or f(x_t, t, labels) works, a torch.nn.Module included).

    ``__call__(x_t, t, labels=None) -> model_output``: x_t a batch in the
    sampler's framework and memory (first axis the batch), t the model time
    of the step as a 0-d array of that framework and device, as diffusers'
    pipelines give it: int64, or float32 for the Euler samplers, whose
    timesteps are fractional (see Sampler.model_timesteps); labels one int32
    class label per row, or None when sample() was given no class_labels.
    Return eps, x0 or v (the sampler's prediction_type), shaped like x_t, or
    an object whose .sample is that (a diffusers UNet2DModel's output: the
    model itself is a predictor).

    Attributes sample() reads (also from any callable that has them):

    - ``unconditional_label``: the class label that asks for the unconditional
      output (the model's "null" class), or None. Classifier-free guidance
      (sample(guidance_scale=w), w != 1) needs it: the predictor is then called
      once per step with 2 x batch rows, the conditional rows with their labels
      and then the same x_t with unconditional_label.
    - ``guidance_scale``: the scale sample() uses when class_labels are given
      and guidance_scale is not (1.0: no guidance), as diffusers' pipelines
      default theirs.
    """

    unconditional_label = None
    guidance_scale = 1.0

    def __call__(self, x_t, t, labels=None):
        raise NotImplementedError("a ddpm.Predictor subclass implements __call__(x_t, t, labels=None)")


def takes_labels(fn):
    """Whether fn accepts a third positional argument (the class labels)."""
    target = fn
    if hasattr(fn, "forward") and framework_of(fn) == "torch":
        target = fn.forward  # a torch.nn.Module: its __call__ takes *args
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = 0
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 3


def _shape_error(result_shape, x_shape):
    return ValueError(f"the predictor returned shape {tuple(result_shape)} but x_t has shape {tuple(x_shape)}")


def _dtype_error(dtype):
    return TypeError(f"the predictor returned {dtype} values; it must return floating-point values like x_t")


class CallableBridge:
    """Runs fn for the engine and copies its answer into the engine's buffer."""

    __slots__ = ("fn", "framework", "with_labels", "_no_grad")

    def __init__(self, fn, framework, with_labels):
        if framework not in ("numpy", "torch", "cupy"):
            raise TypeError(
                "a Python predictor on CUDA memory needs PyTorch or CuPy arrays; "
                "these arrays come from another framework"
            )
        self.fn = fn
        self.framework = framework
        self.with_labels = with_labels
        self._no_grad = None
        if framework == "torch":
            import torch

            self._no_grad = torch.no_grad  # sampling never needs gradients

    def __call__(self, x_t, t, out, labels):
        t = self._time(t, out)
        args = (x_t, t, labels) if self.with_labels else (x_t, t)
        if self._no_grad is not None:
            with self._no_grad():
                self._copy(self.fn(*args), out)
        else:
            self._copy(self.fn(*args), out)

    def _time(self, t, out):
        """The step's time as a 0-d array where the call runs (per-row times are arrays already)."""
        if not isinstance(t, (int, float)):
            return t
        fractional = isinstance(t, float)
        if self.framework == "torch":
            import torch

            return torch.tensor(t, dtype=torch.float32 if fractional else torch.int64, device=out.device)
        if self.framework == "cupy":
            import cupy

            with out.device:
                return cupy.asarray(t, dtype=cupy.float32 if fractional else cupy.int64)
        return np.asarray(t, dtype=np.float32 if fractional else np.int64)

    def _copy(self, result, out):
        if framework_of(result) is None and hasattr(result, "sample"):
            result = result.sample  # a diffusers model output (UNet2DOutput)
        if self.framework == "numpy":
            answer = np.asarray(result)
            if answer.shape != out.shape:
                raise _shape_error(answer.shape, out.shape)
            if answer.dtype.kind != "f":
                raise _dtype_error(answer.dtype)
            np.copyto(out, answer)
        elif self.framework == "torch":
            import torch

            if not isinstance(result, torch.Tensor):
                raise TypeError(f"the predictor returned {type(result).__name__}; it must return a torch.Tensor")
            if result.device != out.device:
                raise ValueError(f"the predictor returned a tensor on {result.device} but x_t is on {out.device}")
            if result.shape != out.shape:
                raise _shape_error(result.shape, out.shape)
            if not result.is_floating_point():
                raise _dtype_error(result.dtype)
            out.copy_(result)
        else:
            import cupy

            if not isinstance(result, cupy.ndarray):
                raise TypeError(f"the predictor returned {type(result).__name__}; it must return a cupy.ndarray")
            if result.device.id != out.device.id:
                raise ValueError(f"the predictor returned an array on cuda:{result.device.id} but x_t is on cuda:{out.device.id}")
            if result.shape != out.shape:
                raise _shape_error(result.shape, out.shape)
            if result.dtype.kind != "f":
                raise _dtype_error(result.dtype)
            cupy.copyto(out, result)
