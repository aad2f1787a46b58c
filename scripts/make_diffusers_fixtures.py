#!/usr/bin/env python3
"""Writes the Hugging Face diffusers reference fixtures under tests/data/diffusers/.

Run it through scripts/make-diffusers-fixtures, which builds a throwaway venv with
torch (CPU), diffusers, numpy and scipy. Not run in CI; its outputs are committed.

Files written (see tests/data/diffusers/README.md for the format):
  timesteps.json     DDPM/DDIM set_timesteps() results, prev timesteps, errors
  schedules.json     betas / alphas_cumprod tables of DDPMScheduler
  steps.json         single DDPM/DDIM reverse steps with recorded noise
  trajectories.json  pipeline-style loops of DPM-Solver++, Euler, Euler-a, DDPM, DDIM
  multistep.json     pipeline-style loops of Heun, third-order DPM-Solver++ and UniPC
  laws.json          mean and std of the samples the solvers draw from a Gaussian prior

Everything is deterministic: each case draws from its own seeded torch.Generator,
and the output does not depend on the time of day or the hash seed.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import random
import sys
from collections import Counter

import numpy as np
import torch

import diffusers
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers import (
    scheduling_ddim,
    scheduling_ddpm,
    scheduling_dpmsolver_multistep,
    scheduling_euler_ancestral_discrete,
    scheduling_euler_discrete,
    scheduling_heun_discrete,
    scheduling_unipc_multistep,
)

try:
    import scipy

    SCIPY_VERSION = scipy.__version__
except ImportError:  # only needed by beta sigmas, which are not used here
    SCIPY_VERSION = None

torch.set_num_threads(1)

SCHEDULER_CLASSES = {
    "DDPMScheduler": DDPMScheduler,
    "DDIMScheduler": DDIMScheduler,
    "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler,
    "EulerDiscreteScheduler": EulerDiscreteScheduler,
    "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler,
    "HeunDiscreteScheduler": HeunDiscreteScheduler,
    "UniPCMultistepScheduler": UniPCMultistepScheduler,
}
SCHEDULER_MODULES = {
    "DDPMScheduler": scheduling_ddpm,
    "DDIMScheduler": scheduling_ddim,
    "DPMSolverMultistepScheduler": scheduling_dpmsolver_multistep,
    "EulerDiscreteScheduler": scheduling_euler_discrete,
    "EulerAncestralDiscreteScheduler": scheduling_euler_ancestral_discrete,
    "HeunDiscreteScheduler": scheduling_heun_discrete,
    "UniPCMultistepScheduler": scheduling_unipc_multistep,
}

GENERATOR = {
    "script": "scripts/make_diffusers_fixtures.py",
    "diffusers": diffusers.__version__,
    "torch": torch.__version__,
    "numpy": np.__version__,
    "scipy": SCIPY_VERSION,
    "python": platform.python_version(),
}

# --------------------------------------------------------------------------------------
# JSON output. float32 data are wrapped in F32 so they are written with the shortest
# decimal that, parsed as a double and rounded to float32 (what nlohmann::json + a cast
# does), gives the same float32 back. Plain Python floats are written with repr().
# --------------------------------------------------------------------------------------


class F32:
    """A float32 value or array, written with shortest round-trip decimals."""

    def __init__(self, value):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            assert value.dtype == torch.float32, value.dtype
            value = value.numpy()
        self.array = np.asarray(value, dtype=np.float32)


def f32_text(v):
    v = np.float32(v)
    if not np.isfinite(v):
        raise ValueError(f"non-finite float32 {v!r} cannot be written to JSON")
    candidates = [
        np.format_float_positional(v, unique=True, trim="-"),
        np.format_float_scientific(v, unique=True, trim="-"),
    ]
    candidates = [c for c in candidates if np.float32(float(c)) == v]
    if not candidates:  # double rounding bit us: fall back to the exact double value
        return repr(float(v))
    return min(candidates, key=len)


def float_text(v):
    if not math.isfinite(v):
        raise ValueError(f"non-finite float {v!r} cannot be written to JSON")
    return repr(float(v))


def scalar_text(v):
    if v is None:
        return "null"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return float_text(float(v))
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError(f"cannot serialise {type(v)}")


def to_json(obj, indent=0, inline_depth=1, depth=0):
    """Dicts/lists of containers nest with newlines down to `inline_depth`; deeper
    values, and any list of scalars, are written on one line."""
    pad = "  " * (indent + 1)
    end_pad = "  " * indent
    if isinstance(obj, F32):
        a = obj.array
        if a.ndim == 0:
            return f32_text(a)
        return "[" + ",".join(f32_text(x) for x in a.reshape(-1)) + "]"
    if isinstance(obj, dict):
        items = [(k, v) for k, v in obj.items()]
        if depth >= inline_depth:
            return "{" + ",".join(f'"{k}":' + to_json(v, 0, inline_depth, depth + 1) for k, v in items) + "}"
        return (
            "{\n"
            + ",\n".join(f'{pad}"{k}": ' + to_json(v, indent + 1, inline_depth, depth + 1) for k, v in items)
            + "\n"
            + end_pad
            + "}"
        )
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple, F32)) for x in obj) or depth >= inline_depth:
            return "[" + ",".join(to_json(x, 0, inline_depth, depth + 1) for x in obj) + "]"
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(pad + to_json(x, indent + 1, inline_depth, depth + 1) for x in obj) + "\n" + end_pad + "]"
    return scalar_text(obj)


def write_json(path, obj, inline_depth):
    text = to_json(obj, inline_depth=inline_depth) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return len(text)


def config_dict(scheduler):
    """The scheduler's full config, plain and JSON-friendly. Non-finite floats
    (DPM-Solver's lambda_min_clipped = -inf) become the strings "inf" / "-inf"."""
    out = {"_class_name": type(scheduler).__name__}
    for k, v in scheduler.config.items():
        if k.startswith("_"):
            continue  # _use_default_values: bookkeeping, and a set with no stable order
        if isinstance(v, float) and not math.isfinite(v):
            v = "inf" if v > 0 else "-inf"
        elif isinstance(v, (np.ndarray, torch.Tensor)):
            v = [float(x) for x in np.asarray(v).reshape(-1)]
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def error_text(e):
    return f"{type(e).__name__}: {e}"


# --------------------------------------------------------------------------------------
# Noise capture: every randn_tensor a scheduler module calls is recorded.
# --------------------------------------------------------------------------------------


class NoiseRecorder:
    def __init__(self, module):
        self.module = module
        self.original = module.randn_tensor
        self.calls = []

    def __enter__(self):
        original = self.original

        def recording_randn_tensor(*args, **kwargs):
            t = original(*args, **kwargs)
            self.calls.append(t.detach().clone())
            return t

        self.module.randn_tensor = recording_randn_tensor
        return self

    def __exit__(self, *exc):
        self.module.randn_tensor = self.original
        return False

    def take(self):
        calls, self.calls = self.calls, []
        return calls


# --------------------------------------------------------------------------------------
# 1. timesteps.json
# --------------------------------------------------------------------------------------

TIMESTEP_T = [1000, 999, 1001, 50, 7, 1]
TIMESTEP_N = [1, 2, 3, 7, 10, 20, 25, 49, 50, 100, 333, 999, 1000, 1001]
SPACINGS = ["leading", "trailing", "linspace"]


def make_timesteps():
    cases = []
    notes = Counter()
    for name in ["DDPMScheduler", "DDIMScheduler"]:
        cls = SCHEDULER_CLASSES[name]
        for T in TIMESTEP_T:
            # every listed n <= T, plus n = T + 1 so that each T shows the n > T error
            ns = sorted({n for n in TIMESTEP_N if n <= T} | {T + 1})
            for spacing in SPACINGS:
                for offset in [0, 1]:
                    for n in ns:
                        if offset == 1 and spacing != "leading" and n > 50:
                            continue  # size: offset 1 is ignored there, shown for n <= 50 only
                        sch = cls(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=offset)
                        case = {
                            "scheduler": name,
                            "num_train_timesteps": T,
                            "num_inference_steps": n,
                            "timestep_spacing": spacing,
                            "steps_offset": offset,
                        }
                        try:
                            sch.set_timesteps(n)
                        except Exception as e:  # noqa: BLE001 - diffusers' own refusal is the data
                            case["error"] = error_text(e)
                            cases.append(case)
                            notes["error"] += 1
                            continue
                        ts = [int(t) for t in sch.timesteps]
                        case["timesteps"] = ts
                        if name == "DDIMScheduler":
                            # DDIMScheduler.step(): prev_timestep = timestep - T // num_inference_steps
                            prev = [t - T // sch.num_inference_steps for t in ts]
                        else:
                            prev = [int(sch.previous_timestep(t)) for t in ts]
                        case["prev_timesteps"] = prev
                        if len(ts) != n:
                            notes["len != n"] += 1
                        if any(t < 0 or t >= T for t in ts):
                            notes["timestep outside [0, T)"] += 1
                        if len(set(ts)) != len(ts):
                            notes["duplicate timesteps"] += 1
                        cases.append(case)

    custom = []
    custom_inputs = [
        (1000, [999, 700, 420, 100, 3], None),
        (1000, [999], None),
        (1000, [500, 0], None),
        (1000, [500, -1], None),  # a negative last timestep is not rejected
        (7, [6, 3, 1, 0], None),
        (1000, [999, 700, 700, 100], None),  # not strictly descending
        (1000, [100, 500, 999], None),  # ascending
        (1000, [1000, 500, 0], None),  # first >= T
        (1000, [1500, 500, 0], None),  # first >= T
        (7, [7, 3], None),  # first == T
        (1000, [999, 500], 10),  # both num_inference_steps and timesteps
    ]
    for T, ts_in, n in custom_inputs:
        sch = DDPMScheduler(num_train_timesteps=T)
        case = {
            "scheduler": "DDPMScheduler",
            "num_train_timesteps": T,
            "num_inference_steps": n,
            "custom_timesteps": ts_in,
        }
        try:
            sch.set_timesteps(num_inference_steps=n, timesteps=list(ts_in))
            ts = [int(t) for t in sch.timesteps]
            case["timesteps"] = ts
            case["prev_timesteps"] = [int(sch.previous_timestep(t)) for t in ts]
        except Exception as e:  # noqa: BLE001
            case["error"] = error_text(e)
        custom.append(case)
    # DDIMScheduler has no custom-timesteps API at all.
    sch = DDIMScheduler()
    case = {"scheduler": "DDIMScheduler", "num_train_timesteps": 1000, "num_inference_steps": None,
            "custom_timesteps": [999, 700, 420, 100, 3]}
    try:
        sch.set_timesteps(timesteps=[999, 700, 420, 100, 3])
        case["timesteps"] = [int(t) for t in sch.timesteps]
    except Exception as e:  # noqa: BLE001
        case["error"] = error_text(e)
    custom.append(case)

    return {"generator": GENERATOR, "cases": cases, "custom_timesteps_cases": custom}, notes


# --------------------------------------------------------------------------------------
# 2. schedules.json
# --------------------------------------------------------------------------------------


def make_schedules():
    cases = []
    combos = []
    for schedule in ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]:
        ranges = [(0.0001, 0.02)]
        if schedule == "scaled_linear":
            ranges.append((0.00085, 0.012))
        for T in [1000, 10]:
            for rescale in [False, True]:
                for bs, be in ranges:
                    combos.append(("DDPMScheduler", schedule, T, bs, be, rescale))
    # schedules the other schedulers refuse (the rest of diffusers has no sigmoid)
    for name in ["DDIMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler",
                 "EulerAncestralDiscreteScheduler"]:
        combos.append((name, "sigmoid", 1000, 0.0001, 0.02, False))
    combos.append(("DDPMScheduler", "cosine", 1000, 0.0001, 0.02, False))
    for name, schedule, T, bs, be, rescale in combos:
        case = {
            "scheduler": name,
            "beta_schedule": schedule,
            "num_train_timesteps": T,
            "beta_start": bs,
            "beta_end": be,
            "rescale_betas_zero_snr": rescale,
        }
        try:
            sch = SCHEDULER_CLASSES[name](
                num_train_timesteps=T,
                beta_start=bs,
                beta_end=be,
                beta_schedule=schedule,
                rescale_betas_zero_snr=rescale,
            )
        except Exception as e:  # noqa: BLE001
            case["error"] = error_text(e)
            cases.append(case)
            continue
        assert sch.betas.dtype == torch.float32 and sch.alphas_cumprod.dtype == torch.float32
        case["betas"] = [float(x) for x in sch.betas.double()]
        case["alphas_cumprod"] = [float(x) for x in sch.alphas_cumprod.double()]
        cases.append(case)
    return {"generator": GENERATOR, "cases": cases}


# --------------------------------------------------------------------------------------
# 3. steps.json
# --------------------------------------------------------------------------------------

SHAPE = [2, 19]
# diffusers' _threshold_sample does reshape(batch, channels * np.prod(rest)); for a 2-D
# tensor np.prod([]) is the float 1.0 and torch.reshape raises a TypeError. The tensors
# are therefore handed to diffusers as [2, 1, 19]: same memory, same per-row quantile.
TORCH_SHAPE = [2, 1, 19]

X0_MODES = {
    "none": dict(clip_sample=False, thresholding=False),
    "clip_1.0": dict(clip_sample=True, clip_sample_range=1.0, thresholding=False),
    "clip_0.5": dict(clip_sample=True, clip_sample_range=0.5, thresholding=False),
    "threshold_0.995_1.0": dict(clip_sample=False, thresholding=True, dynamic_thresholding_ratio=0.995,
                                sample_max_value=1.0),
    "threshold_0.9_1.5": dict(clip_sample=False, thresholding=True, dynamic_thresholding_ratio=0.9,
                              sample_max_value=1.5),
    # thresholding wins over clipping in diffusers; the clip range is set so that the
    # result would differ if clipping were applied.
    "threshold_0.9_1.5+clip_0.5": dict(clip_sample=True, clip_sample_range=0.5, thresholding=True,
                                       dynamic_thresholding_ratio=0.9, sample_max_value=1.5),
}
PREDICTIONS = ["epsilon", "sample", "v_prediction"]
BETA_SCHEDULES = {
    "linear": dict(beta_schedule="linear"),
    "scaled_linear": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    "squaredcos_cap_v2": dict(beta_schedule="squaredcos_cap_v2"),
}
# name -> (scheduler config additions, set_timesteps kwargs or None for no call)
SETUPS = {
    "DDPMScheduler": {
        "full": ({}, None),
        "n50_leading_0": (dict(timestep_spacing="leading", steps_offset=0), dict(num_inference_steps=50)),
        "n50_leading_1": (dict(timestep_spacing="leading", steps_offset=1), dict(num_inference_steps=50)),
        "n50_trailing": (dict(timestep_spacing="trailing"), dict(num_inference_steps=50)),
        "n50_linspace": (dict(timestep_spacing="linspace"), dict(num_inference_steps=50)),
        "n7_trailing": (dict(timestep_spacing="trailing"), dict(num_inference_steps=7)),
        "n7_linspace": (dict(timestep_spacing="linspace"), dict(num_inference_steps=7)),
        "custom": ({}, dict(timesteps=[999, 700, 420, 100, 3])),
    },
    "DDIMScheduler": {
        "full": (dict(timestep_spacing="leading", steps_offset=0), dict(num_inference_steps=1000)),
        "n50_leading_0": (dict(timestep_spacing="leading", steps_offset=0), dict(num_inference_steps=50)),
        "n50_leading_1": (dict(timestep_spacing="leading", steps_offset=1), dict(num_inference_steps=50)),
        "n50_trailing": (dict(timestep_spacing="trailing"), dict(num_inference_steps=50)),
        "n50_linspace": (dict(timestep_spacing="linspace"), dict(num_inference_steps=50)),
        "n7_trailing": (dict(timestep_spacing="trailing"), dict(num_inference_steps=7)),
        "n7_linspace": (dict(timestep_spacing="linspace"), dict(num_inference_steps=7)),
    },
}


def balanced(values, count, rng):
    """`count` picks from `values`, each value as often as possible, in shuffled order."""
    out = [values[i % len(values)] for i in range(count)]
    rng.shuffle(out)
    return out


def make_step_inputs(sch, t, prediction, tame_row, tame_scale, wild_scale, seed):
    """sample and model_output, float32, [2, 1, 19].

    The "wild" row is sample ~ N(0, 1.5^2), model_output ~ N(0, 1) (for prediction_type
    "sample": N(0, wild_scale^2), so values beyond +-1.5 occur). The "tame" row is made
    consistent with a clean x0 ~ N(0, tame_scale^2) and eps ~ N(0, 1) at this t, so its x0
    (and hence its |x0| quantile) stays small at every t; this gives threshold cases
    where one row's s clamps to 1 and the other's does not."""
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(TORCH_SHAPE, generator=g, dtype=torch.float32) * 1.5
    if prediction == "sample":
        model_output = torch.randn(TORCH_SHAPE, generator=g, dtype=torch.float32) * wild_scale
    else:
        model_output = torch.randn(TORCH_SHAPE, generator=g, dtype=torch.float32)
    x0 = torch.randn(TORCH_SHAPE[1:], generator=g, dtype=torch.float32) * tame_scale
    eps = torch.randn(TORCH_SHAPE[1:], generator=g, dtype=torch.float32)
    ab = sch.alphas_cumprod[int(t)]
    a, s = ab.sqrt(), (1 - ab).sqrt()
    sample[tame_row] = a * x0 + s * eps
    if prediction == "epsilon":
        model_output[tame_row] = eps
    elif prediction == "sample":
        model_output[tame_row] = x0
    else:
        model_output[tame_row] = a * eps - s * x0
    return sample, model_output, g


def pick_positions(ts):
    """first, a middle one, the second-to-last and the last index (deduplicated)."""
    k = len(ts)
    idx = []
    for i in [0, k // 2, k - 2, k - 1]:
        if 0 <= i < k and i not in idx:
            idx.append(i)
    return idx


def make_steps():
    rng = random.Random(20240611)
    cases = []
    stats = Counter()
    quantile_stats = Counter()
    case_id = 0
    skipped = []
    for name in ["DDPMScheduler", "DDIMScheduler"]:
        cls = SCHEDULER_CLASSES[name]
        setups = list(SETUPS[name].keys())
        # Each (prediction, x0 mode) pair gets 3 timestep setups; slot q = 3 * p + r walks
        # the setups so that, per scheduler, every (x0 mode, setup) pair occurs.
        groups = []
        for m, mode in enumerate(X0_MODES):
            for p, prediction in enumerate(PREDICTIONS):
                for r in range(3):
                    q = 3 * p + r
                    groups.append((prediction, mode, setups[(q + m) % len(setups)]))
        count = len(groups)
        rescales = balanced([False, True], count, rng)
        betas = balanced(list(BETA_SCHEDULES), count, rng)
        if name == "DDPMScheduler":
            variances = balanced(["fixed_small", "fixed_large"], count, rng)
        else:
            etas = balanced([0.0, 0.5, 1.0], count, rng)
            alpha_to_one = balanced([True, False], count, rng)
        for gi, (prediction, mode, setup) in enumerate(groups):
            extra, set_kwargs = SETUPS[name][setup]
            kwargs = dict(prediction_type=prediction, rescale_betas_zero_snr=rescales[gi])
            kwargs.update(BETA_SCHEDULES[betas[gi]])
            kwargs.update(X0_MODES[mode])
            kwargs.update(extra)
            eta = None
            if name == "DDPMScheduler":
                kwargs["variance_type"] = variances[gi]
            else:
                kwargs["set_alpha_to_one"] = alpha_to_one[gi]
                eta = etas[gi]
            sch = cls(**kwargs)
            if set_kwargs is not None:
                sch.set_timesteps(**set_kwargs)
            ts = [int(t) for t in sch.timesteps]
            for pos in pick_positions(ts):
                t = ts[pos]
                ab = float(sch.alphas_cumprod[t])
                if prediction == "epsilon" and ab == 0.0:
                    stats["skipped: epsilon at alpha_bar == 0"] += 1
                    continue
                seed = 1000 + case_id
                tame_row = case_id % 2
                tame_scale = [0.4, 0.8][(case_id // 2) % 2]
                wild_scale = [1.2, 2.0, 3.0][case_id % 3]
                sample, model_output, g = make_step_inputs(
                    sch, t, prediction, tame_row, tame_scale, wild_scale, seed)
                t_arg = sch.timesteps[pos]  # what a pipeline passes: a 0-d int64 tensor
                noise = None
                if name == "DDPMScheduler":
                    prev_t = int(sch.previous_timestep(t_arg))
                    with NoiseRecorder(scheduling_ddpm) as rec:
                        out = sch.step(model_output, t_arg, sample, generator=g)
                    drawn = rec.take()
                    assert len(drawn) == (1 if t > 0 else 0)
                    noise = drawn[0] if drawn else None
                else:
                    prev_t = t - sch.config.num_train_timesteps // sch.num_inference_steps
                    if eta > 0:
                        noise = torch.randn(TORCH_SHAPE, generator=g, dtype=torch.float32)
                    with NoiseRecorder(scheduling_ddim) as rec:
                        out = sch.step(model_output, t_arg, sample, eta=eta, variance_noise=noise)
                    assert not rec.take()
                bad = [label for label, tensor in [("prev_sample", out.prev_sample),
                                                   ("pred_original_sample", out.pred_original_sample)]
                       if not torch.isfinite(tensor).all()]
                if bad:
                    # JSON has no NaN: keep the inputs and say what diffusers produced.
                    reason = f"diffusers returns non-finite {', '.join(bad)}"
                    if name == "DDIMScheduler":
                        ab_prev = sch.alphas_cumprod[prev_t] if prev_t >= 0 else sch.final_alpha_cumprod
                        std = eta * sch._get_variance(t, prev_t) ** 0.5
                        radicand = 1 - ab_prev - std**2
                        reason += (f": 1 - alpha_prod_t_prev - std_dev_t**2 = {float(radicand)!r} in float32, "
                                   f"and its ** 0.5 is NaN")
                    skipped.append({
                        "scheduler": name, "x0_mode": mode, "setup": setup, "config": config_dict(sch),
                        "t": t, "prev_t": prev_t, "eta": eta, "reason": reason,
                        "sample": F32(sample), "model_output": F32(model_output),
                        "variance_noise": None if noise is None else F32(noise),
                    })
                    stats["skipped: non-finite output"] += 1
                    continue
                # per-row |x0| quantile of the unclipped x0 (for the summary printed at the end)
                a, s = sch.alphas_cumprod[t].sqrt(), (1 - sch.alphas_cumprod[t]).sqrt()
                if prediction == "epsilon":
                    x0 = (sample - s * model_output) / a
                elif prediction == "sample":
                    x0 = model_output
                else:
                    x0 = a * sample - s * model_output
                ratio = sch.config.dynamic_thresholding_ratio
                qs = torch.quantile(x0.reshape(2, -1).abs(), ratio, dim=1)
                smax = sch.config.sample_max_value
                kinds = tuple(sorted(
                    "q<1" if q < 1 else ("1<=q<=max" if q <= smax else "q>max") for q in qs.tolist()))
                quantile_stats[(mode, kinds)] += 1
                cases.append({
                    "case_id": case_id,
                    "scheduler": name,
                    "x0_mode": mode,
                    "setup": setup,
                    "config": config_dict(sch),
                    "num_inference_steps": None if set_kwargs is None else set_kwargs.get("num_inference_steps"),
                    "custom_timesteps": None if set_kwargs is None else set_kwargs.get("timesteps"),
                    "timesteps": ts,
                    "t": t,
                    "prev_t": prev_t,
                    "eta": eta,
                    "shape": SHAPE,
                    "sample": F32(sample),
                    "model_output": F32(model_output),
                    "variance_noise": None if noise is None else F32(noise),
                    "prev_sample": F32(out.prev_sample),
                    "pred_original_sample": F32(out.pred_original_sample),
                })
                stats[(name, prediction, mode)] += 1
                case_id += 1
    return {"generator": GENERATOR, "shape": SHAPE, "torch_shape": TORCH_SHAPE, "cases": cases,
            "skipped": skipped}, stats, quantile_stats


# --------------------------------------------------------------------------------------
# 4. trajectories.json
# --------------------------------------------------------------------------------------


def fake_model(x, t):
    """f(x, t) = 0.7 tanh(x) + 0.1 cos(0.01 t + 0.37 j), j = index within a row; float32."""
    j = torch.arange(x.shape[-1], dtype=torch.float32)
    phase = 0.37 * j + 0.01 * float(t)
    return 0.7 * torch.tanh(x) + 0.1 * torch.cos(phase)


def trajectory_configs():
    out = []
    preds = PREDICTIONS
    for algo in ["dpmsolver++", "sde-dpmsolver++"]:
        for karras in [False, True]:
            for pred in preds:
                for n in [5, 10]:
                    out.append(("DPMSolverMultistepScheduler",
                                dict(algorithm_type=algo, solver_order=2, lower_order_final=True,
                                     use_karras_sigmas=karras, prediction_type=pred), n, {}))
    out.append(("DPMSolverMultistepScheduler",
                dict(algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
                     use_karras_sigmas=True, prediction_type="epsilon"), 20, {}))
    for karras in [False, True]:
        for spacing in SPACINGS:
            for pred in preds:
                # size: n = 10 only with the default spacing (linspace)
                for n in [5, 10] if spacing == "linspace" else [5]:
                    out.append(("EulerDiscreteScheduler",
                                dict(use_karras_sigmas=karras, timestep_spacing=spacing, prediction_type=pred),
                                n, {}))
    for spacing in SPACINGS:
        for pred in preds:
            # "sample" raises in step(); once per spacing is enough
            for n in [5, 10] if pred != "sample" else [5]:
                out.append(("EulerAncestralDiscreteScheduler",
                            dict(timestep_spacing=spacing, prediction_type=pred), n, {}))
    for pred in preds:
        for n in [5, 10]:
            out.append(("DDPMScheduler", dict(prediction_type=pred), n, {}))
    for eta in [0.0, 1.0]:
        for pred in preds:
            for n in [5, 10]:
                out.append(("DDIMScheduler", dict(prediction_type=pred), n, dict(eta=eta)))
    # Combinations diffusers refuses, kept as documented errors.
    out.append(("DPMSolverMultistepScheduler",
                dict(algorithm_type="dpmsolver", final_sigmas_type="zero"), 5, {}))
    out.append(("DPMSolverMultistepScheduler",
                dict(use_karras_sigmas=True, use_exponential_sigmas=True), 5, {}))
    out.append(("EulerDiscreteScheduler", dict(prediction_type="flow_prediction"), 5, {}))
    # DPM-Solver++'s options, both algorithms (appended last: the cases above keep their seeds).
    cosine = dict(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1)
    for algo in ["dpmsolver++", "sde-dpmsolver++"]:
        for options, n in [
            (dict(final_sigmas_type="sigma_min", lower_order_final=False), 10),
            (dict(final_sigmas_type="sigma_min", lower_order_final=True), 10),  # < 15 steps: last first order
            (dict(final_sigmas_type="sigma_min", lower_order_final=True, prediction_type="sample"), 16),
            (dict(final_sigmas_type="sigma_min", lower_order_final=False, euler_at_final=True), 10),
            (dict(use_lu_lambdas=True), 10),
            (dict(use_lu_lambdas=True, final_sigmas_type="sigma_min", lower_order_final=False,
                  prediction_type="v_prediction"), 10),
            (dict(solver_order=1), 10),
            (dict(solver_order=1, final_sigmas_type="sigma_min"), 5),
            (dict(cosine), 10),
            (dict(cosine, timestep_spacing="trailing"), 10),
            (dict(cosine, timestep_spacing="leading", final_sigmas_type="sigma_min", lower_order_final=False), 10),
        ]:
            out.append(("DPMSolverMultistepScheduler", dict(algorithm_type=algo, **options), n, {}))
    return out


def run_trajectory(name, kwargs, n, step_kwargs, seed):
    cls = SCHEDULER_CLASSES[name]
    module = SCHEDULER_MODULES[name]
    case = {"scheduler": name, "requested": kwargs, "num_inference_steps": n}
    if "eta" in step_kwargs:
        case["eta"] = step_kwargs["eta"]
    try:
        sch = cls(**kwargs)
    except Exception as e:  # noqa: BLE001
        case["error"] = error_text(e)
        case["error_at"] = "constructor"
        return case
    case["config"] = config_dict(sch)
    sch.set_timesteps(n)
    g_init = torch.Generator().manual_seed(seed)
    initial = torch.randn(SHAPE, generator=g_init, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed + 1)
    init_sigma = sch.init_noise_sigma
    x = initial * init_sigma
    sigmas = getattr(sch, "sigmas", None) if name not in ("DDPMScheduler", "DDIMScheduler") else None
    case.update({
        "timesteps": F32(sch.timesteps.to(torch.float32)),
        "sigmas": None if sigmas is None else F32(sigmas),
        "init_noise_sigma": F32(torch.as_tensor(init_sigma, dtype=torch.float32)),
        "initial": F32(initial),
    })
    order_used = []
    if name == "DPMSolverMultistepScheduler":
        first, second = sch.dpm_solver_first_order_update, sch.multistep_dpm_solver_second_order_update

        def first_wrap(*a, **k):
            order_used.append(1)
            return first(*a, **k)

        def second_wrap(*a, **k):
            order_used.append(2)
            return second(*a, **k)

        sch.dpm_solver_first_order_update = first_wrap
        sch.multistep_dpm_solver_second_order_update = second_wrap
    steps = []
    with NoiseRecorder(module) as rec:
        for t in sch.timesteps:
            step = {"t": F32(torch.as_tensor(t, dtype=torch.float32)), "sample_in": F32(x)}
            try:
                model_in = sch.scale_model_input(x, t)
                model_output = fake_model(model_in, t)
                out = sch.step(model_output, t, x, generator=g, **step_kwargs)
            except Exception as e:  # noqa: BLE001
                case["error"] = error_text(e)
                case["error_at"] = f"step {len(steps)}"
                break
            drawn = rec.take()
            assert len(drawn) <= 1, len(drawn)
            step.update({
                "model_input": F32(model_in),
                "model_output": F32(model_output),
                "noise": F32(drawn[0]) if drawn else None,
                "prev_sample": F32(out.prev_sample),
                "pred_original_sample": F32(out.pred_original_sample)
                if getattr(out, "pred_original_sample", None) is not None else None,
            })
            if name == "DPMSolverMultistepScheduler":
                # what convert_model_output made of model_output (x0 for dpmsolver++),
                # and which update formula step() used
                step["converted_model_output"] = F32(sch.model_outputs[-1])
                step["solver_order_used"] = order_used[-1]
            for v in (out.prev_sample,):
                if not torch.isfinite(v).all():
                    raise RuntimeError(f"non-finite prev_sample in {name} {kwargs} n={n}")
            x = out.prev_sample
            steps.append(step)
    case["steps"] = steps
    return case


def make_trajectories():
    cases = []
    for i, (name, kwargs, n, step_kwargs) in enumerate(trajectory_configs()):
        cases.append(run_trajectory(name, kwargs, n, step_kwargs, seed=5000 + 10 * i))
    return {"generator": GENERATOR, "shape": SHAPE, "cases": cases}


# --------------------------------------------------------------------------------------
# multistep.json: loops of the higher-order solvers (Heun, DPM-Solver++ of order 3,
# UniPC), run like trajectories.json, with each step's solver state recorded.
# --------------------------------------------------------------------------------------


def multistep_configs():
    out = []
    preds = PREDICTIONS
    # Heun: 2n - 1 step() calls (first order, then alternating second / first order).
    for karras in [False, True]:
        for spacing in ["linspace", "leading", "trailing"]:
            for pred in preds:
                for n in [5, 10] if spacing == "linspace" else [5]:
                    out.append(("HeunDiscreteScheduler",
                                dict(use_karras_sigmas=karras, timestep_spacing=spacing, prediction_type=pred), n))
    out.append(("HeunDiscreteScheduler", dict(prediction_type="epsilon", clip_sample=True), 5))
    # DPM-Solver++ of order 3 (lower_order_final: n < 15 ends with orders 2, 1).
    dpm3 = dict(algorithm_type="dpmsolver++", solver_order=3)
    for karras in [False, True]:
        for pred in preds:
            for n in [5, 10]:
                out.append(("DPMSolverMultistepScheduler", dict(dpm3, use_karras_sigmas=karras, prediction_type=pred), n))
    for options, n in [
        (dict(lower_order_final=False), 10),
        (dict(use_karras_sigmas=True, prediction_type="epsilon"), 20),  # >= 15 steps: third order to the end
        (dict(thresholding=True, prediction_type="sample"), 10),
        (dict(thresholding=True, prediction_type="epsilon", dynamic_thresholding_ratio=0.9,
              sample_max_value=1.5), 10),
        (dict(final_sigmas_type="sigma_min", lower_order_final=False), 10),
        (dict(timestep_spacing="trailing"), 10),
    ]:
        out.append(("DPMSolverMultistepScheduler", dict(dpm3, **options), n))
    # UniPC (defaults: bh2, predict_x0, corrector on every step but the first).
    for order in [1, 2, 3]:
        for karras in [False, True]:
            for pred in preds:
                for n in [5, 10]:
                    out.append(("UniPCMultistepScheduler",
                                dict(solver_order=order, use_karras_sigmas=karras, prediction_type=pred), n))
    for options, n in [
        (dict(solver_order=2, disable_corrector=[0, 2]), 10),
        (dict(solver_order=3, lower_order_final=False), 10),  # singular solve at the last step (sigma 0)
        (dict(solver_order=2, solver_type="bh1"), 10),  # NaN at the last step (sigma 0): recorded as such
        (dict(solver_order=2, thresholding=True, prediction_type="sample"), 10),
        (dict(solver_order=2, thresholding=True, prediction_type="epsilon", dynamic_thresholding_ratio=0.9,
              sample_max_value=1.5), 10),
        (dict(solver_order=3, use_karras_sigmas=True), 20),
        (dict(solver_order=2, timestep_spacing="leading"), 10),
        (dict(solver_order=2, timestep_spacing="trailing"), 10),
        (dict(solver_order=2, final_sigmas_type="sigma_min"), 10),
        (dict(solver_order=2, solver_type="bh1", final_sigmas_type="sigma_min"), 10),  # bh1 that stays finite
        (dict(solver_order=2, lower_order_final=False), 10),  # inf at the last step (sigma 0)
        (dict(solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min"), 10),  # order 3 to the end
    ]:
        out.append(("UniPCMultistepScheduler", options, n))
    # What diffusers does with combinations ddpm may refuse: errors, or loops that run.
    out.append(("HeunDiscreteScheduler", dict(prediction_type="flow_prediction"), 5))
    out.append(("HeunDiscreteScheduler", dict(use_karras_sigmas=True, use_exponential_sigmas=True), 5))
    out.append(("DPMSolverMultistepScheduler", dict(algorithm_type="sde-dpmsolver++", solver_order=3), 10))  # runs
    out.append(("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++", solver_order=4), 10))  # runs, order 3
    out.append(("UniPCMultistepScheduler", dict(solver_type="bh3"), 5))
    out.append(("UniPCMultistepScheduler", dict(solver_order=0), 5))
    return out


def run_multistep(name, kwargs, n, seed):
    """run_trajectory()'s loop on TORCH_SHAPE tensors (thresholding needs 3-D ones),
    recording each step's solver state."""
    cls = SCHEDULER_CLASSES[name]
    module = SCHEDULER_MODULES[name]
    case = {"scheduler": name, "requested": kwargs, "num_inference_steps": n}
    try:
        sch = cls(**kwargs)
    except Exception as e:  # noqa: BLE001
        case["error"] = error_text(e)
        case["error_at"] = "constructor"
        return case
    case["config"] = config_dict(sch)
    sch.set_timesteps(n)
    g_init = torch.Generator().manual_seed(seed)
    initial = torch.randn(SHAPE, generator=g_init, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed + 1)
    init_sigma = sch.init_noise_sigma
    x = (initial * init_sigma).reshape(TORCH_SHAPE)
    case.update({
        "timesteps": F32(sch.timesteps.to(torch.float32)),
        "sigmas": F32(sch.sigmas),
        "init_noise_sigma": F32(torch.as_tensor(init_sigma, dtype=torch.float32)),
        "initial": F32(initial),
    })
    calls = []  # (update, order) for each solver update step() ran

    def wrap(attr, label):
        original = getattr(sch, attr)

        def wrapped(*a, **k):
            calls.append((label, k.get("order")))
            return original(*a, **k)

        setattr(sch, attr, wrapped)

    if name == "DPMSolverMultistepScheduler":
        wrap("dpm_solver_first_order_update", 1)
        wrap("multistep_dpm_solver_second_order_update", 2)
        wrap("multistep_dpm_solver_third_order_update", 3)
    elif name == "UniPCMultistepScheduler":
        wrap("multistep_uni_c_bh_update", "corrector")
    rec = NoiseRecorder(module) if hasattr(module, "randn_tensor") else contextlib.nullcontext()
    steps = []
    with rec:
        for t in sch.timesteps:
            step = {"t": F32(torch.as_tensor(t, dtype=torch.float32)), "sample_in": F32(x)}
            calls.clear()
            try:
                model_in = sch.scale_model_input(x, t)
                model_output = fake_model(model_in, t)
                first_order = sch.state_in_first_order if name == "HeunDiscreteScheduler" else None
                step_index = sch.step_index
                out = sch.step(model_output, t, x, generator=g) if name == "DPMSolverMultistepScheduler" \
                    else sch.step(model_output, t, x)
            except Exception as e:  # noqa: BLE001
                case["error"] = error_text(e)
                case["error_at"] = f"step {len(steps)}"
                break
            drawn = rec.take() if isinstance(rec, NoiseRecorder) else []
            assert len(drawn) <= 1, len(drawn)
            step.update({
                "model_input": F32(model_in),
                "model_output": F32(model_output),
                "noise": F32(drawn[0]) if drawn else None,
                "prev_sample": F32(out.prev_sample),
                "pred_original_sample": F32(out.pred_original_sample)
                if getattr(out, "pred_original_sample", None) is not None else None,
            })
            if name == "HeunDiscreteScheduler":
                # scale_model_input set the index before step() (None only before the first call)
                assert step_index is not None and sch.step_index == step_index + 1
                step["first_order"] = bool(first_order)
                step["step_index"] = int(step_index)
            elif name == "DPMSolverMultistepScheduler":
                assert len(calls) == 1, calls
                step["converted_model_output"] = F32(sch.model_outputs[-1])
                step["solver_order_used"] = calls[0][0]
            elif name == "UniPCMultistepScheduler":
                assert len(calls) <= 1, calls
                step["converted_model_output"] = F32(sch.model_outputs[-1])
                step["predictor_order"] = int(sch.this_order)
                step["corrector_used"] = bool(calls)
                step["corrector_order"] = int(calls[0][1]) if calls else None
                step["corrected_sample"] = F32(sch.last_sample)
            if not torch.isfinite(out.prev_sample).all():
                # JSON holds no NaN: kept like an exception, with the finite steps before it
                case["error"] = "non-finite prev_sample (diffusers raised nothing)"
                case["error_at"] = f"step {len(steps)}"
                break
            x = out.prev_sample
            steps.append(step)
    case["steps"] = steps
    return case


def make_multistep():
    cases = []
    for i, (name, kwargs, n) in enumerate(multistep_configs()):
        cases.append(run_multistep(name, kwargs, n, seed=7000 + 10 * i))
    return {"generator": GENERATOR, "shape": SHAPE, "torch_shape": TORCH_SHAPE, "cases": cases}


# --------------------------------------------------------------------------------------
# laws.json: the law of the samples each solver draws with the exact model of a
# Gaussian prior N(mu, sd^2), at few steps (where it is not the prior): the loop run in
# float64 on many independent scalar samples. ddpm's tests compare their exact law of
# the discrete sampler (a recursion over the plan) with these means and stds.

LAW_MU, LAW_SD, LAW_SAMPLES = 0.5, 0.3, 400_000


def law_configs():
    dpm, sde = {"algorithm_type": "dpmsolver++"}, {"algorithm_type": "sde-dpmsolver++"}
    return [
        ("EulerAncestralDiscreteScheduler", {"prediction_type": "epsilon"}, 30),
        ("EulerAncestralDiscreteScheduler", {"prediction_type": "v_prediction"}, 20),
        ("DPMSolverMultistepScheduler", {**sde, "prediction_type": "epsilon"}, 20),
        ("DPMSolverMultistepScheduler", {**sde, "prediction_type": "sample", "use_karras_sigmas": True}, 30),
        ("DPMSolverMultistepScheduler", {**sde, "prediction_type": "v_prediction", "use_karras_sigmas": True}, 50),
        ("DPMSolverMultistepScheduler", {**dpm, "prediction_type": "epsilon", "use_karras_sigmas": True}, 20),
        ("EulerDiscreteScheduler", {"prediction_type": "v_prediction"}, 25),
    ]


def run_law(name, kwargs, n, seed):
    scheduler = SCHEDULER_CLASSES[name](**kwargs)
    scheduler.set_timesteps(n)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(LAW_SAMPLES, generator=g, dtype=torch.float64) * float(scheduler.init_noise_sigma)
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        index = scheduler.step_index if scheduler.step_index is not None else scheduler.index_for_timestep(t)
        sigma = float(scheduler.sigmas[index])
        ab = 1.0 / (1.0 + sigma * sigma)  # of the model input, in both scheduler families
        a, b = math.sqrt(ab), math.sqrt(1.0 - ab)
        k = 1.0 / (a * a * LAW_SD * LAW_SD + b * b)
        eps = b * k * (model_input - a * LAW_MU)
        x0 = (model_input - b * eps) / a
        output = {"epsilon": eps, "sample": x0, "v_prediction": a * eps - b * x0}[kwargs["prediction_type"]]
        x = scheduler.step(output, t, x, generator=g).prev_sample
    return {"scheduler": name, "config": kwargs, "num_inference_steps": n, "mu": LAW_MU, "sd": LAW_SD,
            "samples": LAW_SAMPLES, "mean": float(x.mean()), "std": float(x.std())}


def make_laws():
    cases = [run_law(name, kwargs, n, seed=9000 + i) for i, (name, kwargs, n) in enumerate(law_configs())]
    return {"generator": GENERATOR, "cases": cases}


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                  "tests", "data", "diffusers"))
    ap.add_argument("--only", choices=["timesteps", "schedules", "steps", "trajectories", "multistep", "laws"],
                    action="append")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    only = set(args.only or ["timesteps", "schedules", "steps", "trajectories", "multistep", "laws"])
    print("generator:", GENERATOR)

    if "timesteps" in only:
        data, notes = make_timesteps()
        size = write_json(os.path.join(out, "timesteps.json"), data, inline_depth=2)
        print(f"timesteps.json: {len(data['cases'])} cases + {len(data['custom_timesteps_cases'])} custom, "
              f"{size} bytes; {dict(notes)}")
    if "schedules" in only:
        data = make_schedules()
        size = write_json(os.path.join(out, "schedules.json"), data, inline_depth=2)
        errors = sum("error" in c for c in data["cases"])
        print(f"schedules.json: {len(data['cases'])} cases ({errors} errors), {size} bytes")
    if "steps" in only:
        data, stats, qstats = make_steps()
        size = write_json(os.path.join(out, "steps.json"), data, inline_depth=2)
        print(f"steps.json: {len(data['cases'])} cases, {size} bytes")
        for k in sorted(stats, key=str):
            print("   ", k, stats[k])
        print("  |x0| quantile classes (rows) per x0 mode:")
        for k in sorted(qstats, key=str):
            print("   ", k, qstats[k])
    if "trajectories" in only:
        data = make_trajectories()
        size = write_json(os.path.join(out, "trajectories.json"), data, inline_depth=4)
        errors = [(c["scheduler"], c["requested"], c["error"]) for c in data["cases"] if "error" in c]
        print(f"trajectories.json: {len(data['cases'])} cases ({len(errors)} errors), {size} bytes")
        for e in errors:
            print("   ", e)
    if "multistep" in only:
        data = make_multistep()
        size = write_json(os.path.join(out, "multistep.json"), data, inline_depth=4)
        errors = [(c["scheduler"], c["requested"], c["error"]) for c in data["cases"] if "error" in c]
        per = Counter(c["scheduler"] for c in data["cases"])
        nsteps = sum(len(c.get("steps", [])) for c in data["cases"])
        print(f"multistep.json: {len(data['cases'])} cases ({len(errors)} errors, {nsteps} steps), {size} bytes; "
              f"{dict(per)}")
        for e in errors:
            print("   ", e)
    if "laws" in only:
        data = make_laws()
        size = write_json(os.path.join(out, "laws.json"), data, inline_depth=2)
        print(f"laws.json: {len(data['cases'])} cases, {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
