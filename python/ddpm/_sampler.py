"""ddpm.Sampler: the C++ engine with arrays of the caller's framework."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence, Union

from . import _ddpm
from ._arrays import Frame
from ._predictors import CallableBridge, takes_labels
from ._progress import make_progress


# Any array the module takes: NumPy, PyTorch, CuPy, DLPack or buffer-protocol objects.
Array = Any
Predictor = Union[_ddpm.NoisePredictor, Callable[..., Array]]


def _config_text(config):
    """JSON text of a scheduler config given as a dict, JSON text or a path."""
    if isinstance(config, dict):
        return json.dumps(config)
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return config
    if isinstance(config, (str, os.PathLike)):
        with open(config, encoding="utf-8") as f:
            return f.read()
    raise TypeError(f"config must be a dict, JSON text or a path, got {type(config).__name__}")


class Sampler:
    """Forward noising and the reverse loop of a diffusion model, on the CPU or CUDA.

    Sampler(schedule=None, **options): `schedule` is a ddpm.Schedule (default:
    linear, T = 1000, beta 1e-4 -> 0.02). Options (the CLI's names, with
    diffusers' config names as aliases in parentheses):

    - sampler: 'ddpm' (ancestral, DDPMScheduler) or 'ddim' (DDIMScheduler)
    - prediction_type: 'epsilon', 'sample' (x0) or 'v_prediction'
    - inference_steps (num_inference_steps): sample with this many of the T
      steps, picked by timestep_spacing: 'leading', 'trailing' or 'linspace'
      (plus steps_offset for 'leading'); or timesteps=[...] explicitly
    - eta: DDIM's noise weight, 0 (deterministic) .. 1
    - set_alpha_to_one: DDIM's alpha_bar after the last step
    - variance: 'beta' (fixed_large) or 'posterior' (fixed_small), for DDPM
    - clip_x0=(lo, hi): clip the predicted x0
    - thresholding=True | ratio | (ratio, max) (dynamic_thresholding_ratio,
      sample_max_value): dynamic thresholding of x0
    - rescale_zero_snr (rescale_betas_zero_snr): rescale the betas to zero terminal SNR
    - backend: 'auto' (CUDA when a device is usable), 'cpu' or 'cuda'; threads: CPU threads (0 = all)

    An unknown option raises TypeError naming it. Sampler.from_config takes a
    diffusers scheduler_config.json; Sampler.for_model a model's recommended sampler.

    Same options and seed, same numbers: the results equal the ddpm CLI's and
    the C++ API's bit for bit.
    """

    def __init__(self, schedule: _ddpm.Schedule | None = None, **options: Any) -> None:
        self._engine = _ddpm.Sampler(schedule, options)

    @classmethod
    def _wrap(cls, engine):
        sampler = cls.__new__(cls)
        sampler._engine = engine
        return sampler

    @classmethod
    def from_config(cls, config: dict | str | os.PathLike, **overrides: Any) -> Sampler:
        """The sampler of a diffusers scheduler config (a dict, JSON text or a
        path to scheduler_config.json), with keyword overrides. Keys the file
        lacks take the defaults of its _class_name (DDPMScheduler, DDIMScheduler)."""
        return cls._wrap(_ddpm.Sampler.from_config(_config_text(config), overrides))

    @classmethod
    def for_model(cls, predictor: _ddpm.MlpPredictor, **overrides: Any) -> Sampler:
        """The sampler a model's card recommends (its training schedule and
        prediction type, its sampler, steps, spacing and eta), with overrides."""
        return cls._wrap(_ddpm.Sampler.for_model(predictor, overrides))

    @property
    def backend(self) -> str:
        """The backend in use: 'cpu' or 'cuda'."""
        return self._engine.backend

    @property
    def schedule(self) -> _ddpm.Schedule:
        """The schedule (rescaled when rescale_zero_snr)."""
        return self._engine.schedule

    @property
    def options(self) -> dict:
        """The options, under the names Sampler() takes."""
        return self._engine.options

    @property
    def timesteps(self) -> list[int]:
        """The timesteps the loop runs, in order (decreasing)."""
        return self._engine.timesteps

    @property
    def plan(self) -> list[_ddpm.PlannedStep]:
        """One ddpm.PlannedStep per timestep: the coefficients of each update."""
        return self._engine.plan

    def __repr__(self):
        o = self.options
        return (
            f"ddpm.Sampler(sampler={o['sampler']!r}, prediction_type={o['prediction_type']!r}, "
            f"steps={len(self.timesteps)} of T={self.schedule.steps}, backend={self.backend!r})"
        )

    def forward(self, x0: Array, t: int | Array, seed: int = 0, noise: Array | None = None,
                first_sample: int = 0, *, out: Array | None = None, eps_out: Array | None = None,
                velocity: bool = False, velocity_out: Array | None = None) -> tuple:
        """q(x_t | x0): x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps.

        x0: a batch, first axis the batch. t: one step for the batch (an int)
        or one per sample (an integer array of batch entries). eps is `noise`
        when given, else drawn from (seed, first_sample + row, element).
        Returns (x_t, eps), or (x_t, eps, v) with velocity=True, where
        v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (the v-prediction target).
        out, eps_out, velocity_out: arrays to write into instead of new ones.
        """
        frame = Frame.of(x0, "x0")
        x0 = frame.floats(x0, "x0")
        step, steps = frame.timestep(t)
        if noise is not None:
            noise = frame.floats(noise, "noise")
        x_t = frame.output(out, "out", x0.shape)
        eps = frame.output(eps_out, "eps_out", x0.shape) if noise is None or eps_out is not None else None
        v = frame.output(velocity_out, "velocity_out", x0.shape) if velocity or velocity_out is not None else None
        self._engine.forward(x0, step, steps, noise, seed, first_sample, x_t, eps, v, frame.stream)
        result = (x_t, eps if eps is not None else noise)
        return result + (v,) if v is not None else result

    def step(self, x_t: Array, model_output: Array, t: int, seed: int = 0, noise: Array | None = None,
             first_sample: int = 0, *, out: Array | None = None, return_x0: bool = False,
             x0_out: Array | None = None) -> Array | tuple:
        """One reverse update x_t -> x_prev of the sampler's rule at timestep t
        (one of self.timesteps), from the model's output (eps, x0 or v as
        prediction_type says). noise: the z to add (diffusers' variance_noise);
        by default drawn from (seed, first_sample + row, t). out may be x_t
        (in place). Returns x_prev, or (x_prev, x0_hat) with return_x0=True
        (x0_hat after clipping or thresholding: diffusers' pred_original_sample).
        """
        frame = Frame.of(x_t, "x_t")
        x_t = frame.floats(x_t, "x_t")
        model_output = frame.floats(model_output, "model_output")
        step, steps = frame.timestep(t)
        if steps is not None:
            raise TypeError("step() takes one timestep t for the batch (an int)")
        if noise is not None:
            noise = frame.floats(noise, "noise")
        x_prev = frame.output(out, "out", x_t.shape)
        x0 = frame.output(x0_out, "x0_out", x_t.shape) if return_x0 or x0_out is not None else None
        self._engine.step(x_t, model_output, step, seed, first_sample, noise, x_prev, x0, frame.stream)
        return (x_prev, x0) if x0 is not None else x_prev

    def sample(self, shape: int | Sequence[int] | None = None, predictor: Predictor | None = None,
               seed: int = 0, initial: Array | None = None, first_sample: int = 0,
               start_step: int | None = None, end_step: int | None = None,
               progress: bool | Callable[[int, int], None] = False, *,
               class_labels: Array | Sequence[int] | None = None, out: Array | None = None,
               like: Array | None = None) -> Array:
        """The reverse loop: x_T (drawn, or `initial`) down to the sample.

        shape: the batch's shape, first axis the batch (optional when initial
        or out is given). predictor: a built-in predictor, or any callable
        f(x_t, t) -> model_output (f(x_t, t, labels) receives the class
        labels) called once per step with views of the engine's buffers (no
        copies; valid only during the call) in the framework and on the
        device of the result. start_step / end_step: run only the timesteps
        from start_step down to end_step (a loop run in pieces equals the whole
        loop bit for bit). class_labels: one integer per row, for
        class-conditional models. progress: True for a bar (tqdm when
        installed), or a callable(done, total).

        The result is `out` when given (sampling in place: out may be
        `initial`), else a new array in the framework and on the device of
        `initial` or `like` (NumPy on the CPU when neither is given). On a
        CUDA device the loop is queued on the current stream. Ctrl-C stops a
        run between steps with KeyboardInterrupt (on a CUDA device with a
        built-in predictor, only with progress, since the whole loop is queued
        at once); `out` is then unspecified and the sampler stays usable.
        """
        if predictor is None:
            raise TypeError("sample() needs a predictor: a ddpm predictor or a callable f(x_t, t)")
        principal = next((a for a in (out, initial, like) if a is not None), None)
        frame = Frame.of(principal, "out") if principal is not None else Frame()
        if initial is not None:
            initial = frame.floats(initial, "initial")
        if shape is None:
            if principal is None:
                raise TypeError("sample() needs a shape (or initial=, out= or like=)")
            shape = tuple(principal.shape)
        shape = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
        x = frame.output(out, "out", shape)
        if out is not None and tuple(out.shape) != shape:
            raise ValueError(f"shape mismatch: out has shape {tuple(out.shape)} but shape is {shape}")
        if initial is not None:
            frame.copy_into(x, initial, "initial")
        labels = frame.ints(class_labels, "class_labels") if class_labels is not None else None

        if not isinstance(predictor, _ddpm.NoisePredictor):
            if not callable(predictor):
                raise TypeError(
                    "predictor must be a ddpm predictor or a callable f(x_t, t) -> model_output, "
                    f"got {type(predictor).__name__}"
                )
            with_labels = labels is not None
            if with_labels and not takes_labels(predictor):
                raise TypeError("class_labels were given but the predictor takes only (x_t, t); "
                                "give it a third parameter, labels")
            predictor = CallableBridge(predictor, frame.framework, with_labels)
        bar = make_progress(progress)
        # Between steps the engine polls for Ctrl-C; a run queued whole on a
        # device is not waited for unless progress is shown.
        poll_signals = not frame.on_device or bar is not None
        try:
            self._engine.sample(
                x, initial is not None, -1 if start_step is None else start_step,
                -1 if end_step is None else end_step, seed, first_sample, predictor,
                frame.framework, labels, bar, poll_signals, frame.stream)
        finally:
            if bar is not None:
                bar.close()
        return out if out is not None else x

    def synchronize(self) -> None:
        """Waits for the work queued on the current CUDA stream (no-op on the CPU)."""
        self._engine.synchronize(0)
