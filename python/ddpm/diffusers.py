"""ddpm's samplers as diffusers schedulers, for diffusers' own pipelines.

    import ddpm.diffusers
    pipe.scheduler = ddpm.diffusers.DDIMScheduler.from_config(pipe.scheduler.config)

Each class carries the name of the diffusers scheduler it replaces and takes
its config keys with its defaults: DDPMScheduler (ddpm), DDIMScheduler (ddim),
EulerDiscreteScheduler (euler), EulerAncestralDiscreteScheduler
(euler_ancestral), HeunDiscreteScheduler (heun), DPMSolverMultistepScheduler
(dpmpp_2m, dpmpp_3m with solver_order 3, or dpmpp_2m_sde with algorithm_type
'sde-dpmsolver++') and UniPCMultistepScheduler (unipc). Every step() is one
ddpm.Sampler.step of the C++ engine (for Heun, each of its two model calls per
step); this module only keeps diffusers' bookkeeping (step_index, the
sigma-space state of the Euler and Heun schedulers) and hands the engine's loop
history (ddpm.Sampler.history_size) from one step() to the next.

The multistep rules whose steps combine earlier outputs beyond the previous
one (DPM-Solver++ at solver_order 3, UniPC) cannot start part way through
their timesteps (an img2img loop that starts at step k > 0): diffusers
restarts its solver orders there, while ddpm's plan is the whole loop's, so
such a step() is refused by name. DPM-Solver++(2M) and Heun start anywhere.

With diffusers installed the classes are diffusers schedulers (SchedulerMixin,
ConfigMixin: from_config, save_config, from_pretrained, compatibles); without
it they keep a plain config dict and work on NumPy arrays. Importing ddpm never
imports this module, nor diffusers or torch.

Noise of stochastic steps (ddpm, ddim with eta > 0, euler_ancestral,
dpmpp_2m_sde): step()'s variance_noise when given; else drawn from step()'s
torch generator exactly as diffusers draws it (same calls, shapes and dtypes,
so that diffusers' own tests and pipelines give the same numbers); else
ddpm's keyed noise, a function of (scheduler.seed, global row, step) with row
= scheduler.first_sample + the row in the batch. Keyed noise does not depend
on the batch: a batch of 8 gives the first 8 rows of a batch of 64, which
torch's generator (one stream for the whole batch) cannot.

Inputs keep their framework, device and dtype: the engine computes in float32
(coefficients in double), and float16, bfloat16 or float64 inputs come back in
their own dtype.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
from typing import Any

import numpy as np

from . import _configs, _ddpm
from ._sampler import Sampler, _reads_history

try:  # diffusers is optional; it brings torch
    import torch
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.schedulers import (
        DDIMScheduler as _DiffusersDDIM,
        DDPMScheduler as _DiffusersDDPM,
        DPMSolverMultistepScheduler as _DiffusersDPM,
        EulerAncestralDiscreteScheduler as _DiffusersEulerAncestral,
        EulerDiscreteScheduler as _DiffusersEuler,
        HeunDiscreteScheduler as _DiffusersHeun,
        UniPCMultistepScheduler as _DiffusersUniPC,
    )
    from diffusers.schedulers.scheduling_utils import SchedulerMixin
    from diffusers.utils import BaseOutput
    from diffusers.utils.torch_utils import randn_tensor

    HAVE_DIFFUSERS = True
except ImportError:
    HAVE_DIFFUSERS = False
    try:
        import torch
    except ImportError:
        torch = None

__all__ = [
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler",
    "HAVE_DIFFUSERS",
    "HeunDiscreteScheduler",
    "SchedulerOutput",
    "UniPCMultistepScheduler",
]


if HAVE_DIFFUSERS:

    @dataclasses.dataclass
    class SchedulerOutput(BaseOutput):
        """step()'s result: prev_sample, and pred_original_sample (x0_hat after clipping or thresholding)."""

        prev_sample: Any
        pred_original_sample: Any = None

    _Base = (SchedulerMixin, ConfigMixin)
else:

    @dataclasses.dataclass
    class SchedulerOutput:
        """step()'s result: prev_sample, and pred_original_sample (x0_hat after clipping or thresholding)."""

        prev_sample: Any
        pred_original_sample: Any = None

        def __getitem__(self, i):
            return (self.prev_sample, self.pred_original_sample)[i]

    class _ConfigOnly:
        """The part of diffusers' ConfigMixin a scheduler needs, over a plain dict."""

        config_name = _configs.CONFIG_NAME

        @property
        def config(self):
            return dict(self._config)

        @classmethod
        def from_config(cls, config=None, **kwargs):
            config = _configs.config_dict(config if config is not None else {})
            config.update(kwargs)
            config.pop("_class_name", None)
            return cls(**{k: v for k, v in config.items() if not k.startswith("_")})

        @classmethod
        def from_pretrained(cls, path, subfolder=None, **kwargs):
            folder = os.path.join(os.fspath(path), subfolder) if subfolder else path
            return cls.from_config(_configs.config_dict(folder), **kwargs)

        def save_config(self, save_directory, **kwargs):
            os.makedirs(save_directory, exist_ok=True)
            with open(os.path.join(save_directory, self.config_name), "w") as f:
                json.dump({"_class_name": type(self).__name__, **self._config}, f, indent=2, sort_keys=True)

    _Base = (_ConfigOnly,)


# diffusers' classes by name: each of ours takes its config keys and defaults.
_DIFFUSERS_CLASSES = {cls.__name__: cls for cls in (
    _DiffusersDDPM, _DiffusersDDIM, _DiffusersEuler, _DiffusersEulerAncestral, _DiffusersHeun, _DiffusersDPM,
    _DiffusersUniPC)} if HAVE_DIFFUSERS else {}


def _with_signature_of(diffusers_name):
    """An __init__ taking the config keys (and defaults) of diffusers' class of that name."""

    if HAVE_DIFFUSERS:
        signature = inspect.signature(_DIFFUSERS_CLASSES[diffusers_name].__init__)

        def bound(self, *args, **kwargs):
            arguments = signature.bind(self, *args, **kwargs)
            arguments.apply_defaults()
            values = dict(arguments.arguments)
            values.pop("self")
            self._setup(values)

        bound.__signature__ = signature
        bound.__name__ = bound.__qualname__ = "__init__"
        return register_to_config(bound)

    def plain(self, **config):
        self._config = dict(config)
        self._setup(config)

    return plain




# Arrays: torch tensors or NumPy arrays, whatever the caller gives.
def _is_torch(x):
    return torch is not None and isinstance(x, torch.Tensor)


def _float32(x):
    if _is_torch(x):
        return x.detach().to(torch.float32).contiguous()
    return np.ascontiguousarray(x, dtype=np.float32)


def _cast_like(y, like):
    if _is_torch(like):
        return y.to(like.dtype)
    return y.astype(np.asarray(like).dtype, copy=False)


def _scalar(t):
    """A timestep as a Python number (from an int, a float or a 0-d tensor or array)."""
    if hasattr(t, "item"):
        if getattr(t, "ndim", 0) != 0 and getattr(t, "numel", lambda: np.size(t))() != 1:
            raise ValueError("step() takes one timestep for the batch")
        t = t.item()
    return t


def _per_row(values, like):
    """values (one per row, or one for all) shaped to broadcast over `like`."""
    shape = (-1,) + (1,) * (len(like.shape) - 1)
    if _is_torch(like):
        return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(shape)
    return np.asarray(values, dtype=np.asarray(like).dtype).reshape(shape)


class _Scheduler(*_Base):
    """What every ddpm scheduler shares; a subclass sets the rule's specifics."""

    order = 1
    _diffusers_name = ""
    _sigma_space = False  # Euler: the loop's state is x0 + sigma eps, not variance-preserving
    _fractional_timesteps = False
    _stateful = True  # diffusers' step_index bookkeeping (False: the step is found from t)
    _returns_x0 = True  # step(return_dict=False) gives (prev_sample, pred_original_sample)

    def _adjust_config(self, config):
        """What diffusers' own __init__ rewrites in its config (DPM-Solver: DEIS's names)."""

    def _setup(self, config):
        config = dict(config)
        self._adjust_config(config)
        self._config_values = config
        self.seed = 0  # keys ddpm's noise when neither variance_noise nor a generator is given
        self.first_sample = 0  # the global index of the batch's first row, for that noise
        self._samplers = {}
        self._custom_timesteps = None
        self.num_inference_steps = None
        self._device = None
        self._adopt(self._sampler())

    # --- the engine ---------------------------------------------------------
    def _sampler(self, eta=0.0):
        """The engine sampler of this config and the steps set, one per DDIM eta."""
        key = float(eta)
        if key not in self._samplers:
            config = {k: v for k, v in self._config_values.items() if not k.startswith("_")}
            config["_class_name"] = self._diffusers_name
            steps = {}
            if self._custom_timesteps is not None:
                steps["timesteps"] = list(self._custom_timesteps)
            elif self.num_inference_steps is not None:
                steps["inference_steps"] = self.num_inference_steps
            if key != 0.0:
                steps["eta"] = key
            self._samplers[key] = Sampler.from_config(config, **steps)
        return self._samplers[key]

    def _adopt(self, sampler):
        """Tables in diffusers' terms from the engine's plan."""
        self._plan = sampler.plan
        times = sampler.model_timesteps
        # sigma of each step's state (the plan's alpha_bar is 1 / (1 + sigma^2)), then 0.
        sigmas = [math.sqrt(max(1.0 / s.alpha_bar - 1.0, 0.0)) if s.alpha_bar > 0 else math.inf for s in self._plan]
        # after the last step: 0, or DPM-Solver's final_sigmas_type "sigma_min"
        last = self._plan[-1].alpha_bar_prev
        sigmas.append(math.sqrt(max(1.0 / last - 1.0, 0.0)))
        self._sigma_values = [float(np.float32(s)) for s in sigmas]
        self._times = [float(t) for t in times]
        first = self._sigma_values[0]
        vp_to_state = math.sqrt(1.0 + first * first) if self._sigma_space else 1.0
        init_noise_sigma = float(sampler.initial_noise_scale * vp_to_state)
        # diffusers' Euler schedulers give a float32 0-d tensor (from their float32 sigmas), the others 1.0
        self.init_noise_sigma = (self._array(init_noise_sigma, "float32").cpu()
                                 if self._sigma_space and torch is not None else init_noise_sigma)
        fractional = self._fractional_timesteps or any(t != int(t) for t in self._times)
        self.timesteps = self._array(self._times, "float32" if fractional else "int64")
        self.sigmas = self._array(self._sigma_values, "float32")
        self._step_index = None
        self._begin_index = None
        self._history = None  # the engine's loop history (Sampler.history_size), made at the first step
        self._history_next = None  # the step whose earlier steps it holds

    def _array(self, values, dtype):
        if torch is not None:
            return torch.tensor(values, dtype=getattr(torch, dtype), device=self._device)
        return np.asarray(values, dtype=dtype)

    # --- diffusers' scheduler API -------------------------------------------
    def __len__(self):
        return int(self._config_values.get("num_train_timesteps", 1000))

    @property
    def step_index(self):
        """The index of the next step (None until the first step or scale_model_input)."""
        return self._step_index

    @property
    def begin_index(self):
        """The index of the first step, when a pipeline set it (set_begin_index)."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0):
        self._begin_index = begin_index

    def set_timesteps(self, num_inference_steps: int | None = None, device=None, timesteps=None, sigmas=None):
        """Runs num_inference_steps steps, or the given timesteps (decreasing);
        timesteps and sigmas are placed on `device`. sigmas= is refused: ddpm
        builds its sigmas from the timesteps."""
        if sigmas is not None:
            raise _ddpm.Error("set_timesteps(sigmas=...) is not supported by ddpm; give num_inference_steps or timesteps")
        if num_inference_steps is not None and timesteps is not None:
            raise ValueError("Can only pass one of `num_inference_steps` or `timesteps`.")
        if num_inference_steps is None and timesteps is None:
            raise ValueError("set_timesteps needs num_inference_steps or timesteps")
        self._device = device
        if timesteps is not None:
            listed = [_scalar(t) for t in timesteps]
            if any(t != int(t) for t in listed):
                raise _ddpm.Error("set_timesteps(timesteps=...) takes whole timesteps")
            self._custom_timesteps = [int(t) for t in listed]
            self.num_inference_steps = len(listed)
        else:
            self._custom_timesteps = None
            self.num_inference_steps = int(num_inference_steps)
        self._samplers = {}
        self._adopt(self._sampler())

    def index_for_timestep(self, timestep, schedule_timesteps=None):
        """The step of a timestep: diffusers' rule (the second of two equal ones)."""
        t = float(_scalar(timestep))
        times = self._times if schedule_timesteps is None else [float(_scalar(s)) for s in schedule_timesteps]
        matches = [i for i, s in enumerate(times) if s == t]
        if not matches:
            raise ValueError(f"timestep {t:g} is not one of the scheduler's timesteps")
        return matches[1] if len(matches) > 1 else matches[0]

    def _init_step_index(self, timestep):
        self._step_index = self.index_for_timestep(timestep) if self._begin_index is None else self._begin_index

    def _index_of(self, timestep):
        if not self._stateful:
            t = float(_scalar(timestep))
            matches = [i for i, s in enumerate(self._times) if s == t]
            if len(matches) != 1:
                raise ValueError(f"timestep {t:g} is not one of the scheduler's timesteps"
                                 if not matches else f"timestep {t:g} occurs twice among the scheduler's timesteps")
            return matches[0]
        if self._step_index is None:
            self._init_step_index(timestep)
        return self._step_index

    def _state_scale(self, index):
        """The loop's state over the variance-preserving x: sqrt(1 + sigma^2) in sigma space."""
        if not self._sigma_space:
            return 1.0
        sigma = self._sigma_values[index]
        return math.sqrt(1.0 + sigma * sigma)

    def scale_model_input(self, sample, timestep=None):
        """The model's input: the sample itself, or sample / sqrt(sigma^2 + 1) in sigma space."""
        if not self._sigma_space:
            return sample
        if self._step_index is None:
            self._init_step_index(timestep)
        return sample / self._state_scale(self._step_index)

    def previous_timestep(self, timestep):
        """The timestep after `timestep` in the loop (-1 after the last)."""
        index = self.index_for_timestep(timestep)
        prev = self._plan[index].prev_timestep
        return self._array([prev], "int64")[0]

    def _draws_noise(self, timestep, eta):
        """Whether diffusers' step draws from the generator here (so that the generator's state stays its)."""
        raise NotImplementedError

    def _noise_dtype(self, model_output):
        return model_output.dtype

    def step(self, model_output, timestep, sample, eta: float = 0.0, use_clipped_model_output: bool = False,
             generator=None, variance_noise=None, return_dict: bool = True, s_churn: float = 0.0,
             s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0):
        """One step from the model's output: x_t -> x_prev (prev_sample), with
        x0_hat (pred_original_sample). Keywords as diffusers' pipelines pass
        them: eta (DDIM's), use_clipped_model_output, generator and
        variance_noise (the step's noise); s_churn and s_noise must keep their
        defaults (ddpm has no churn)."""
        if s_churn != 0.0 or s_noise != 1.0:
            raise _ddpm.Error("s_churn and s_noise are not supported by ddpm (it runs s_churn=0, s_noise=1)")
        if variance_noise is not None and generator is not None:
            raise ValueError("Cannot pass both generator and variance_noise. Please make sure that either "
                             "`generator` or `variance_noise` stays `None`.")
        eta = float(eta)
        if use_clipped_model_output:
            self._refuse_clipped_model_output(eta)
        index = self._index_of(timestep)
        if index >= len(self._plan):
            raise ValueError(f"step {index} is past the last of the {len(self._plan)} steps; call set_timesteps again")
        sampler = self._sampler(eta)
        noise = variance_noise
        if noise is None and generator is not None and self._draws_noise(_scalar(timestep), eta):
            noise = randn_tensor(model_output.shape, generator=generator, device=model_output.device,
                                 dtype=self._noise_dtype(model_output))
        x = _float32(sample)
        scale = self._state_scale(index)
        if scale != 1.0:
            x = x / scale
        history, history_given = self._history_for(sampler, x, index)
        prev, x0 = sampler.step(x, _float32(model_output), step_index=index, seed=self.seed,
                                first_sample=self.first_sample,
                                noise=_float32(noise) if noise is not None else None,
                                history=history, history_given=history_given, return_x0=True)
        self._history_next = index + 1 if history is not None else None
        next_scale = self._state_scale(index + 1)
        if next_scale != 1.0:
            prev = prev * next_scale
        self._step_index = index + 1
        prev, x0 = _cast_like(prev, model_output), _cast_like(x0, model_output)
        if not return_dict:
            return (prev, x0) if self._returns_x0 else (prev,)
        return SchedulerOutput(prev_sample=prev, pred_original_sample=x0)

    def _history_for(self, sampler, x, index):
        """(the engine's loop history for a batch like x, whether it holds the
        steps before `index`), or (None, False) for rules that keep none."""
        size = sampler.history_size(tuple(x.shape))
        if not size:
            return None, False
        place = (tuple(x.shape), str(x.device) if _is_torch(x) else "numpy")
        if self._history is None or self._history_place != place:
            self._history = (torch.empty(size, dtype=torch.float32, device=x.device) if _is_torch(x)
                             else np.empty(size, np.float32))
            self._history_place = place
            self._history_next = None
        given = self._history_next == index
        if not given and size > int(np.prod(x.shape)) and _reads_history(self._plan[index]):
            # (dpmpp_2m's one slot has a fallback: a first-order step, as diffusers takes.)
            raise _ddpm.Error(
                f"{type(self).__name__} cannot take step {index} of {len(self._plan)} without the steps before it: "
                "ddpm's plan combines it with earlier steps' outputs, where diffusers would restart its "
                "solver orders; start the loop at the first timestep (or use DPM-Solver++(2M))")
        return self._history, given

    def _refuse_clipped_model_output(self, eta):
        pass  # diffusers ignores it outside DDIM

    def add_noise(self, original_samples, noise, timesteps):
        """x at the timesteps (one for the batch, or one per row), from x0 and eps."""
        values = [float(_scalar(t)) for t in (timesteps.reshape(-1) if hasattr(timesteps, "reshape")
                                                else np.atleast_1d(timesteps))]
        alpha, sigma = [], []
        for t in values:
            a, s = self._noise_coefficients(t)
            alpha.append(a)
            sigma.append(s)
        return original_samples * _per_row(alpha, original_samples) + noise * _per_row(sigma, original_samples)

    def _noise_coefficients(self, t):
        """(a, s) with x_t = a x0 + s eps: the schedule's at an integer timestep."""
        if t != int(t) or not 0 <= t < len(self):
            raise ValueError(f"add_noise: timestep {t:g} is not a training timestep in [0, {len(self)})")
        alpha_bar = float(self._sampler().schedule.alpha_bar[int(t)])
        return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)

    def _step_noise_index(self, t):
        """The step add_noise uses for a timestep of the loop (diffusers' rule for sigma schedulers)."""
        if self._begin_index is None:
            return self.index_for_timestep(t)
        if self._step_index is not None:
            return self._step_index
        return self._begin_index


def _define(name, rule_doc, **attributes):
    attributes["__init__"] = _with_signature_of(name)
    attributes["_diffusers_name"] = name
    attributes["__doc__"] = rule_doc
    attributes["__module__"] = __name__
    if HAVE_DIFFUSERS:
        attributes["_compatibles"] = list(_DIFFUSERS_CLASSES[name]._compatibles)
    return type(name, (_Scheduler,), attributes)


def _ddpm_draws(self, timestep, eta):
    return timestep > 0  # diffusers' DDPM draws for t > 0


def _ddim_draws(self, timestep, eta):
    return eta > 0


def _never_draws(self, timestep, eta):
    return False  # diffusers' Euler draws only for its churn, which ddpm has not (s_churn = 0)


def _always_draws(self, timestep, eta):
    return True  # diffusers' Euler ancestral draws every step


def _dpm_draws(self, timestep, eta):
    return self._config_values.get("algorithm_type", "dpmsolver++") in ("sde-dpmsolver", "sde-dpmsolver++")


def _ddim_refuse_clipped(self, eta):
    if self._config_values.get("clip_sample", True) or self._config_values.get("thresholding", False):
        raise _ddpm.Error("use_clipped_model_output=True with clip_sample or thresholding is not supported by ddpm")


def _sigma_coefficients(self, t):
    """Euler: x = x0 + sigma eps at the step of t (fractional timesteps too)."""
    return 1.0, self._sigma_values[self._step_noise_index(t)]


def _dpm_coefficients(self, t):
    """DPM-Solver: x = alpha x0 + alpha sigma eps at the step of t, alpha = 1 / sqrt(1 + sigma^2)."""
    sigma = self._sigma_values[self._step_noise_index(t)]
    alpha = 1.0 / math.sqrt(1.0 + sigma * sigma)
    return alpha, alpha * sigma


def _dpm_adjust_config(self, config):
    # diffusers' DPMSolverMultistepScheduler takes a DEIS or UniPC config as dpmsolver++ / midpoint.
    changes = {}
    if config.get("algorithm_type") == "deis":
        changes["algorithm_type"] = "dpmsolver++"
    if config.get("solver_type") in ("logrho", "bh1", "bh2"):
        changes["solver_type"] = "midpoint"
    config.update(changes)
    if changes and HAVE_DIFFUSERS:
        self.register_to_config(**changes)


def _unipc_adjust_config(self, config):
    # diffusers' UniPCMultistepScheduler takes a DPM-Solver or DEIS solver_type as bh2.
    if config.get("solver_type") in ("midpoint", "heun", "logrho"):
        config["solver_type"] = "bh2"
        if HAVE_DIFFUSERS:
            self.register_to_config(solver_type="bh2")


def _heun_first_order(self):
    """Whether the next step() is the first model call of a Heun step (diffusers' state_in_first_order)."""
    index = self._step_index
    return index is None or index >= len(self._plan) or self._plan[index].stage != 2


def _float32_noise(self, model_output):
    return torch.float32  # diffusers' DPM-Solver draws float32 noise


DDPMScheduler = _define(
    "DDPMScheduler", "Ancestral DDPM sampling (ddpm's 'ddpm' rule) as diffusers' DDPMScheduler.",
    _stateful=False, _draws_noise=_ddpm_draws)
DDIMScheduler = _define(
    "DDIMScheduler", "DDIM (ddpm's 'ddim' rule; step(eta=...) as diffusers') as diffusers' DDIMScheduler.",
    _stateful=False, _draws_noise=_ddim_draws, _refuse_clipped_model_output=_ddim_refuse_clipped)
EulerDiscreteScheduler = _define(
    "EulerDiscreteScheduler", "Euler (ddpm's 'euler' rule) as diffusers' EulerDiscreteScheduler: "
    "the state is in sigma space (init_noise_sigma, scale_model_input).",
    _sigma_space=True, _fractional_timesteps=True, _draws_noise=_never_draws,
    _noise_coefficients=_sigma_coefficients)
EulerAncestralDiscreteScheduler = _define(
    "EulerAncestralDiscreteScheduler", "Euler ancestral (ddpm's 'euler_ancestral' rule) as diffusers' "
    "EulerAncestralDiscreteScheduler: the state is in sigma space (init_noise_sigma, scale_model_input).",
    _sigma_space=True, _fractional_timesteps=True, _draws_noise=_always_draws,
    _noise_coefficients=_sigma_coefficients)
HeunDiscreteScheduler = _define(
    "HeunDiscreteScheduler", "Heun's method (ddpm's 'heun' rule) as diffusers' HeunDiscreteScheduler: "
    "two step() calls (two model calls) per step, 2n - 1 timesteps; the state is in sigma space "
    "(init_noise_sigma, scale_model_input).",
    order=2, _sigma_space=True, _fractional_timesteps=True, _draws_noise=_never_draws,
    _noise_coefficients=_sigma_coefficients, state_in_first_order=property(_heun_first_order))
DPMSolverMultistepScheduler = _define(
    "DPMSolverMultistepScheduler", "DPM-Solver++ (ddpm's 'dpmpp_2m' rule, 'dpmpp_3m' with solver_order 3, "
    "or 'dpmpp_2m_sde' with algorithm_type 'sde-dpmsolver++') as diffusers' DPMSolverMultistepScheduler.",
    _draws_noise=_dpm_draws, _noise_dtype=_float32_noise, _noise_coefficients=_dpm_coefficients,
    _adjust_config=_dpm_adjust_config, _returns_x0=False)
UniPCMultistepScheduler = _define(
    "UniPCMultistepScheduler", "UniPC (ddpm's 'unipc' rule: bh2 or bh1, solver_order 1 to 3, its corrector) "
    "as diffusers' UniPCMultistepScheduler.",
    _draws_noise=_never_draws, _noise_coefficients=_dpm_coefficients, _adjust_config=_unipc_adjust_config,
    _returns_x0=False)
