"""ddpm.Sampler: the C++ engine with arrays of the caller's framework."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any, Callable, Sequence, Union

import numpy as np

from . import _configs, _ddpm
from ._arrays import Frame
from ._predictors import CallableBridge, takes_labels
from ._progress import make_progress


# Any array the module takes: NumPy, PyTorch, CuPy, DLPack or buffer-protocol objects.
Array = Any
PredictorLike = Union[_ddpm.NoisePredictor, Callable[..., Array]]


def _require_float_array(array, name):
    """A TypeError for what copy_into would convert silently: integers, bools, 0-d."""
    dtype, shape = getattr(array, "dtype", None), getattr(array, "shape", None)
    if dtype is None or shape is None:
        return  # a DLPack capsule: the engine checks what it describes
    if len(shape) == 0:
        raise TypeError(f"{name} must be an array of the batch's shape, got a 0-d {dtype}")
    floating = getattr(dtype, "is_floating_point", None)  # torch
    if floating is None:
        try:
            floating = np.dtype(dtype).kind == "f"
        except TypeError:
            return
    if not floating:
        raise TypeError(f"{name} must be a floating-point array, got {dtype}")


class Sampler:
    """Forward noising and the reverse loop of a diffusion model, on the CPU or CUDA.

    Sampler(schedule=None, **options): `schedule` is a ddpm.Schedule (default:
    linear, T = 1000, beta 1e-4 -> 0.02). Options (the CLI's names, with
    diffusers' config names as aliases in parentheses):

    - sampler: 'ddpm' (ancestral, DDPMScheduler), 'ddim' (DDIMScheduler),
      'euler' (EulerDiscreteScheduler), 'euler_ancestral'
      (EulerAncestralDiscreteScheduler), 'heun' (HeunDiscreteScheduler: two
      model calls per step, one plan position each), 'dpmpp_2m'
      (DPMSolverMultistepScheduler, DPM-Solver++ 2M), 'dpmpp_2m_sde' (its SDE
      variant), 'dpmpp_3m' (DPM-Solver++ 3M: solver_order 3) or 'unipc'
      (UniPCMultistepScheduler, its corrector on).
    - prediction_type: 'epsilon', 'sample' (x0) or 'v_prediction'
    - inference_steps (num_inference_steps): sample with this many of the T
      steps, picked by timestep_spacing: 'leading', 'trailing' or 'linspace'
      (default: the sampler's, ddpm.default_timestep_spacing(sampler): leading
      for ddpm and ddim, linspace for the solvers; plus steps_offset for
      'leading'); or timesteps=[...] explicitly
    - use_karras_sigmas (karras_sigmas): Karras et al.'s sigma spacing (rho = 7)
      for the solvers
    - the multistep solvers (dpmpp_*, unipc), diffusers' names and defaults:
      solver_order (1, 2 or 3; 2), final_sigmas_type ('zero' or 'sigma_min'),
      lower_order_final (True); DPM-Solver++'s euler_at_final (False),
      use_lu_lambdas (False), lambda_min_clipped (-inf); UniPC's solver_type
      ('bh2' or 'bh1') and disable_corrector (a list of step indices)
    - eta: DDIM's noise weight, 0 (deterministic) .. 1
    - set_alpha_to_one: DDIM's alpha_bar after the last step
    - variance: 'beta' (fixed_large) or 'posterior' (fixed_small), for DDPM
    - clip_x0=(lo, hi): clip the predicted x0 (diffusers' clip_sample and
      clip_sample_range, for ddpm, ddim and heun)
    - thresholding=True | ratio | (ratio, max) (dynamic_thresholding_ratio,
      sample_max_value): dynamic thresholding of x0
    - rescale_zero_snr (rescale_betas_zero_snr): rescale the betas to zero terminal SNR
    - backend: 'auto' (CUDA when a device is usable), 'cpu' or 'cuda'; threads: CPU threads (0 = all)

    An unknown option raises TypeError naming it, a combination the sampler
    does not define (use_karras_sigmas with ddim, eta != 0 with anything but
    ddim, solver_type with dpmpp_2m, ...) ddpm.Error, with the message of the
    engine's step rule. Sampler.from_config takes a diffusers scheduler_config.json;
    Sampler.for_model a model's recommended sampler.

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
        """The sampler of a diffusers scheduler config, with keyword overrides.

        config: a dict (a scheduler's .config FrozenDict included), JSON text
        (Infinity, -Infinity and NaN as Python's json writes them), a path to
        scheduler_config.json, or a folder holding it (a save_config folder,
        or a pipeline's, under scheduler/). Keys the config lacks take the
        defaults of its _class_name: DDPMScheduler, DDIMScheduler,
        EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
        HeunDiscreteScheduler, UniPCMultistepScheduler or
        DPMSolverMultistepScheduler (algorithm_type 'dpmsolver++' -> dpmpp_2m,
        or dpmpp_3m with solver_order 3; 'sde-dpmsolver++' -> dpmpp_2m_sde). A
        config without _class_name takes the class of sampler= (its diffusers
        defaults); Sampler.from_scheduler takes it from the scheduler object.
        Keys diffusers would ignore are ignored; a value ddpm does not
        implement (use_exponential_sigmas, UniPC's solver_p, ...) is refused
        by name."""
        text = _configs.engine_config(_configs.config_dict(config), overrides.get("sampler"))
        return cls._wrap(_ddpm.Sampler.from_config(text, overrides))

    @classmethod
    def from_scheduler(cls, scheduler: Any, **overrides: Any) -> Sampler:
        """The sampler of a diffusers scheduler object (a diffusers scheduler or
        one of ddpm.diffusers'): its .config, with the class its _class_name or
        else the object's own class names, and its num_inference_steps once
        set_timesteps has set them (unless overrides name the steps)."""
        config = getattr(scheduler, "config", None)
        if not isinstance(config, Mapping):
            raise TypeError(f"from_scheduler needs a diffusers scheduler (with a .config), got {type(scheduler).__name__}")
        config = dict(config)
        if not config.get("_class_name"):
            config["_class_name"] = type(scheduler).__name__
        steps = getattr(scheduler, "num_inference_steps", None)
        if steps and not {"inference_steps", "num_inference_steps", "timesteps"} & overrides.keys():
            overrides["inference_steps"] = int(steps)
        return cls.from_config(config, **overrides)

    @classmethod
    def for_model(cls, predictor: _ddpm.NetworkPredictor, **overrides: Any) -> Sampler:
        """The sampler a model's card recommends (its training schedule and
        prediction type, its sampler, steps, spacing and eta), with overrides.
        The card's guidance scale is the model's (predictor.guidance_scale):
        sample() applies it when class_labels are given."""
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
    def model_timesteps(self) -> list:
        """The time the model is given at each step, in loop order (Heun: at
        each of its two model calls per step): what a Python predictor
        receives as t. Floats for euler, euler_ancestral and heun (like
        diffusers' float32 Euler and Heun timesteps: interpolated, so
        fractional in general) and wherever a time is fractional (Karras
        sigmas on a cosine schedule); otherwise ints, the timesteps
        (diffusers' int64 ones)."""
        return self._engine.model_timesteps

    @property
    def initial_noise_scale(self) -> float:
        """A drawn x_T is this times N(0, I) (diffusers' init_noise_sigma in the
        loop's variance-preserving terms: below 1 for Euler's linspace spacing)."""
        return self._engine.initial_noise_scale

    @property
    def plan(self) -> list[_ddpm.PlannedStep]:
        """One ddpm.PlannedStep per position of the loop (per model call: Heun
        has two per step, stage 1 and 2): the coefficients of each update."""
        return self._engine.plan

    def history_size(self, shape: int | Sequence[int]) -> int:
        """The float32 values of the loop's history for a batch of `shape`
        (batch first): what sample()'s and step()'s history= array holds.
        Slots of the batch's size: 1 for dpmpp_2m and dpmpp_2m_sde (the
        previous x0_hat), the x0_hats of the last steps plus the previous
        sample for dpmpp_3m, unipc and heun; 0 for the rules that keep none.

            history = np.empty(sampler.history_size(x.shape), np.float32)
        """
        shape = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(n) for n in shape)
        return self._engine.history_size(list(shape))

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

    def step(self, x_t: Array, model_output: Array, t: int | float | None = None, seed: int = 0,
             noise: Array | None = None, first_sample: int = 0, *, step_index: int | None = None,
             previous_x0: Array | None = None, history: Array | None = None, history_given: bool | None = None,
             out: Array | None = None, return_x0: bool = False, x0_out: Array | None = None) -> Array | tuple:
        """One reverse update x_t -> x_prev of the sampler's rule, from the
        model's output (eps, x0 or v as prediction_type says).

        The step: t, one of self.timesteps (an int) or of self.model_timesteps
        (a float from there is looked up); or step_index, its position in the
        loop (diffusers' step_index), which names a step whose timestep occurs
        twice (Karras timesteps near 0 can). noise: the z to add (diffusers'
        variance_noise); by default drawn from (seed, first_sample + row, step)
        as sample() draws it. out may be x_t (in place). Returns x_prev, or
        (x_prev, x0_hat) with return_x0=True (x0_hat after clipping or
        thresholding: diffusers' pred_original_sample).

        history: the loop's history, an array of history_size(x_t.shape)
        float32 values where x_t lives (any shape; you own it), read where the
        step combines earlier steps' outputs and written by every step: hand
        the same array to each step of a loop. The steps of dpmpp_3m, unipc
        and heun (the second model call of each Heun step) need it; for
        dpmpp_2m and dpmpp_2m_sde it holds the previous step's x0_hat.
        history_given=False (default True) says it holds nothing yet: a
        dpmpp_2m step then runs at first order, as at the start of a fresh
        loop, and a step of the deeper rules that needs it is refused. A loop
        by hand equals sample(predictor=model, initial=x_T, seed=seed) bit for
        bit:

            history = np.empty(sampler.history_size(x_T.shape), np.float32)
            x = x_T
            for i, t in enumerate(sampler.model_timesteps):
                x = sampler.step(x, model(x, t), step_index=i, history=history, seed=seed)

        (For ddpm, ddim and the Euler samplers leave return_x0 off for that:
        with it the engine computes x0_hat first and x_prev from it, which can
        differ from the loop's folded update in the last bit.)

        previous_x0: the older form of dpmpp_2m's history, the x0_hat the
        previous step returned (return_x0=True); without it (or a history) a
        second-order step runs at first order.
        """
        frame = Frame.of(x_t, "x_t")
        x_t = frame.floats(x_t, "x_t")
        model_output = frame.floats(model_output, "model_output")
        step, step_index = self._step_of(frame, t, step_index)
        if noise is not None:
            noise = frame.floats(noise, "noise")
        if previous_x0 is not None:
            previous_x0 = frame.floats(previous_x0, "previous_x0")
        x_prev = frame.output(out, "out", x_t.shape)
        x0 = frame.output(x0_out, "x0_out", x_t.shape) if return_x0 or x0_out is not None else None
        deep_history, last_x0 = None, None
        if history is not None:
            if previous_x0 is not None:
                raise TypeError("give previous_x0 or history, not both")
            history = frame.output(history, "history", None)
            position = self._position(step, step_index)
            given = True if history_given is None else bool(history_given)
            reads = position is not None and _reads_history(self._planned()[position])
            size = self.history_size(x_t.shape)
            if size > _size(x_t.shape):
                # The deeper rules: the engine reads and updates it in place. A
                # step that needs it, told that it holds nothing, goes to the
                # engine without it, which refuses it.
                deep_history = history if given or not reads else None
            elif size:
                # One slot, the previous x0_hat (dpmpp_2m): the engine's previous_x0.
                last_x0 = _view_as(history, x_t.shape)
                previous_x0 = last_x0 if given and reads else None
                if x0 is None:
                    x0 = frame.empty(x_t.shape)
        self._engine.step(x_t, model_output, step, step_index, seed, first_sample, noise, previous_x0, deep_history,
                          x_prev, x0, frame.stream)
        if last_x0 is not None:
            frame.copy_into(last_x0, x0, "history")
        if not return_x0 and x0_out is None:
            return x_prev
        return (x_prev, x0)

    def _planned(self):
        """The plan, kept (it never changes)."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self.__dict__["_plan"] = self._engine.plan
        return plan

    def _position(self, step, step_index):
        """The plan position of a step (by index, or its timestep when unique), or None."""
        if step_index >= 0:
            return step_index if step_index < len(self._planned()) else None
        timesteps = [s.timestep for s in self._planned()]
        return timesteps.index(step) if timesteps.count(step) == 1 else None

    def _step_of(self, frame, t, step_index):
        """(timestep, step index) for the engine: one of them -1."""
        if step_index is not None:
            if isinstance(step_index, (bool, np.bool_)) or not isinstance(step_index, numbers.Integral):
                raise TypeError(f"step_index must be an int, got {type(step_index).__name__}")
            step_index = int(step_index)
            if t is not None and 0 <= step_index < len(self.timesteps):
                if t not in (self.timesteps[step_index], self.model_timesteps[step_index]):
                    raise _ddpm.Error(f"t={t!r} is not the timestep of step_index {step_index} "
                                f"({self.model_timesteps[step_index]!r}); give one of them")
            return -1, step_index
        if t is None:
            raise TypeError("step() needs the step: t (a timestep) or step_index")
        if isinstance(t, numbers.Real) and not isinstance(t, (numbers.Integral, bool, np.bool_)):
            matches = [i for i, m in enumerate(self.model_timesteps) if m == t]
            if len(matches) != 1:
                raise _ddpm.Error(f"t={t!r} is not one of the sampler's model timesteps" if not matches else
                            f"t={t!r} occurs {len(matches)} times among the model timesteps: "
                            "name the step with step_index")
            return -1, matches[0]
        step, steps = frame.timestep(t)
        if steps is not None:
            raise TypeError("step() takes one timestep t for the batch (an int)")
        return step, -1

    def sample(self, shape: int | Sequence[int] | None = None, predictor: PredictorLike | None = None,
               seed: int = 0, initial: Array | None = None, first_sample: int = 0,
               start_step: int | None = None, end_step: int | None = None,
               progress: bool | Callable[[int, int], None] = False, *,
               class_labels: Array | Sequence[int] | None = None, guidance_scale: float | None = None,
               guidance_rescale: float = 0.0, history: Array | None = None, history_given: bool | None = None,
               start_index: int | None = None, end_index: int | None = None, out: Array | None = None,
               like: Array | None = None) -> Array:
        """The reverse loop: x_T (drawn, or `initial`) down to the sample.

        shape: the batch's shape, first axis the batch (optional when initial
        or out is given). predictor: a built-in predictor, or any callable
        f(x_t, t) -> model_output (f(x_t, t, labels) receives the class
        labels; see ddpm.Predictor) called once per step with views of the
        engine's buffers (no copies; valid only during the call) in the
        framework and on the device of the result, and t the step's model time
        (self.model_timesteps) as diffusers' pipelines give it: a 0-d array of
        that framework and device, int64, float32 for the Euler samplers. A
        diffusers UNet2DModel (any model whose output has .sample) is a
        predictor as it is.
        class_labels: one integer per row, for class-conditional models.
        progress: True for a bar (tqdm when installed), or a callable(done, total).

        Classifier-free guidance: guidance_scale=w (w != 1) makes the model
        output u + w (c - u), c the predictor's output for the rows' labels and
        u for its unconditional label, from one call of 2 x batch rows per step
        (conditional rows first); guidance_rescale (>= 0, 0.7 in Lin et al.)
        is diffusers' rescale towards the conditional output's std. The
        predictor needs an unconditional model: MlpPredictor's null label, a
        GaussianPredictor or GmmPredictor built with unconditional=, or a
        callable taking labels with an unconditional_label attribute. None
        (the default): the predictor's recommended scale (MlpPredictor: the
        model card's; a callable's guidance_scale attribute) when class_labels
        are given, else 1 (no guidance).

        Pieces: start_step / end_step (timesteps) or start_index / end_index
        (positions in the loop, which also name a timestep that occurs twice)
        run part of the loop; each piece's output given as the next one's
        `initial`, starting after the previous end, equals the whole loop bit
        for bit. The multistep solvers also hand on earlier steps' outputs:
        pass the same `history` array (float32, history_size(shape) values of
        any shape, e.g. np.empty(sampler.history_size(shape), np.float32),
        where the call runs; you own it, like out=) to every piece. For
        dpmpp_2m and dpmpp_2m_sde it is one slot of the batch's size (the
        previous step's x0 prediction); dpmpp_3m, unipc and heun keep more.
        A piece writes it at its end and reads it when history_given, which
        by default is True for a piece that starts after the loop's first
        step. Without history a dpmpp_2m piece takes its first step at first
        order (as a fresh diffusers scheduler would) and so differs from the
        whole loop; dpmpp_3m, unipc and heun have no such fallback: a piece
        that starts where a step combines earlier outputs is refused without
        it. ddpm, ddim and the Euler samplers keep no history.

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
            _require_float_array(initial, "initial")
        if shape is None:
            if principal is None:
                raise TypeError("sample() needs a shape (or initial=, out= or like=)")
            shape = tuple(principal.shape)
        shape = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
        if isinstance(predictor, _ddpm.UNet2DPredictor) and len(shape) == 4 and \
                list(shape[1:]) != list(predictor.sample_shape):
            predictor.set_sample_size(shape[2], shape[3])  # a U-Net takes any size its levels halve
        x = frame.output(out, "out", shape)
        if out is not None and tuple(out.shape) != shape:
            raise ValueError(f"shape mismatch: out has shape {tuple(out.shape)} but shape is {shape}")
        if initial is not None:
            frame.copy_into(x, initial, "initial")
        labels = frame.ints(class_labels, "class_labels") if class_labels is not None else None
        if history is not None:
            history = frame.output(history, "history", shape)
        if history_given is None:
            history_given = history is not None and self._starts_after_first_step(start_step, start_index)

        if guidance_scale is None:
            guidance_scale = getattr(predictor, "guidance_scale", 1.0) if labels is not None else 1.0
        guidance_scale = _number(guidance_scale, "guidance_scale")
        guidance_rescale = _number(guidance_rescale, "guidance_rescale")
        unconditional_label = None
        if not isinstance(predictor, _ddpm.NoisePredictor):
            if not callable(predictor):
                raise TypeError(
                    "predictor must be a ddpm predictor or a callable f(x_t, t) -> model_output, "
                    f"got {type(predictor).__name__}"
                )
            unconditional_label = _unconditional_label(predictor)
            guided = guidance_scale != 1.0
            with_labels = labels is not None or guided
            if with_labels and not takes_labels(predictor):
                raise TypeError(
                    "guidance_scale={guidance_scale:g} calls the predictor with class labels (each row's, then "
                    "its unconditional_label) but it takes only (x_t, t); give it a third parameter, labels"
                    .format(guidance_scale=guidance_scale) if guided else
                    "class_labels were given but the predictor takes only (x_t, t); "
                    "give it a third parameter, labels")
            if guided and unconditional_label is None:
                raise _ddpm.Error(
                    f"classifier-free guidance (guidance_scale={guidance_scale:g}) needs an unconditional model: "
                    "give the predictor an unconditional_label attribute, its null class label "
                    "(see ddpm.Predictor)")
            predictor = CallableBridge(predictor, frame.framework, with_labels)
        bar = make_progress(progress)
        # Between steps the engine polls for Ctrl-C; a run queued whole on a
        # device is not waited for unless progress is shown.
        poll_signals = not frame.on_device or bar is not None
        try:
            self._engine.sample(
                x, initial is not None, _position(start_step), _position(end_step), _position(start_index),
                _position(end_index), seed, first_sample, predictor, frame.framework, labels, guidance_scale,
                guidance_rescale, unconditional_label, history, bool(history_given), bar, poll_signals,
                frame.stream)
        finally:
            if bar is not None:
                bar.close()
        return out if out is not None else x

    def _starts_after_first_step(self, start_step, start_index):
        if start_index is not None:
            return start_index != 0
        if start_step is not None:
            return start_step != self.timesteps[0]
        return False

    def synchronize(self) -> None:
        """Waits for the work queued on the current CUDA stream (no-op on the CPU)."""
        self._engine.synchronize(0)


def _reads_history(step):
    """Whether a plan step combines earlier steps' outputs (reads the loop's history)."""
    return bool(step.prev_from_x0_prev or step.prev_from_x0_prev2 or step.prev_from_last_sample or step.corrects)


def _size(shape):
    n = 1
    for e in shape:
        n *= int(e)
    return n


def _view_as(array, shape):
    """`array` (float32, C-contiguous, of shape's size) viewed in `shape`, no copy."""
    dtype = str(getattr(array, "dtype", ""))
    if dtype not in ("float32", "torch.float32"):
        raise TypeError(f"history must be a float32 array, got {dtype or type(array).__name__}")
    if _size(array.shape) != _size(shape):
        raise _ddpm.Error(f"history has {_size(array.shape)} values but the sampler's history for a batch of "
                          f"shape {tuple(shape)} has {_size(shape)} (Sampler.history_size())")
    if hasattr(array, "is_contiguous"):  # torch
        if not array.is_contiguous():
            raise TypeError("history must be C-contiguous")
        return array.view(tuple(shape))
    if not array.flags.c_contiguous:
        raise TypeError("history must be C-contiguous")
    return array.reshape(tuple(shape))


def _position(value):
    """A step or index for the engine: -1 for None."""
    return -1 if value is None else value


def _number(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _unconditional_label(predictor):
    """A Python predictor's null label (its unconditional_label attribute), or None."""
    label = getattr(predictor, "unconditional_label", None)
    if label is None:
        return None
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, numbers.Integral):
        raise TypeError(f"the predictor's unconditional_label must be an int or None, got {type(label).__name__}")
    return int(label)
