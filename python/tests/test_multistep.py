"""Heun, DPM-Solver++(3M) and UniPC from Python, against diffusers 0.42.1's
loops (tests/data/diffusers/multistep.json, described in its README): the
plans, every step through Sampler.step with the loop's history carried from
step to step, the loops whole and in one-step pieces, and the same loops through
ddpm.diffusers' scheduler classes step by step. NumPy only (no torch): the
ddpm.diffusers part runs with and without diffusers installed."""

import json
import math

import numpy as np
import pytest

import ddpm
from conftest import REPO

SHAPE = (2, 19)
FIXTURE = REPO / "tests" / "data" / "diffusers" / "multistep.json"


def _load():
    with open(FIXTURE) as f:
        return json.load(f)


CASES = _load()["cases"]


def _refused_by_ddpm(case):
    """What diffusers runs and ddpm refuses by name: solver_order 4, which
    diffusers runs as 3 silently."""
    return case["requested"].get("solver_order", 2) > 3


def _stochastic(case):
    """The SDE variant draws noise: its steps compare given diffusers' noise, its loops only with themselves."""
    return case["requested"].get("algorithm_type") == "sde-dpmsolver++"


def _label(case):
    return f"{case['scheduler']} {json.dumps(case['requested'], sort_keys=True)} n={case['num_inference_steps']}"


RUN = [pytest.param(c, id=_label(c)) for c in CASES if "error" not in c and not _refused_by_ddpm(c)]
REFUSED = [pytest.param(c, id=_label(c)) for c in CASES if _refused_by_ddpm(c)]


def _array(values):
    return np.asarray(values, np.float64).astype(np.float32).reshape(SHAPE)


def _relative_error(actual, expected):
    expected = np.asarray(expected, np.float64).reshape(-1)
    actual = np.asarray(actual, np.float64).reshape(-1)
    return np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30)


def _sigma_space(case):
    return case["scheduler"] == "HeunDiscreteScheduler"


def _state_after(case, k):
    """diffusers' state after step k in the engine's variance-preserving terms
    (Heun's x_s scaled down: the next step's model input)."""
    steps = case["steps"]
    if _sigma_space(case) and k + 1 < len(steps):
        return steps[k + 1]["model_input"]
    return steps[k]["prev_sample"]


def _x0_of(case, step):
    return step["pred_original_sample"] if _sigma_space(case) else step["converted_model_output"]


def _sampler(case):
    return ddpm.Sampler.from_config(case["config"], inference_steps=case["num_inference_steps"], backend="cpu")


def fake_model(x, t):
    """0.7 tanh(x) + 0.1 cos(0.37 j + 0.01 t), in float32 as the fixture script evaluates it."""
    j = np.arange(x.shape[-1], dtype=np.float32)
    shift = np.float32(0.01 * float(t))
    return (np.float32(0.7) * np.tanh(x) + np.float32(0.1) * np.cos(np.float32(0.37) * j + shift)).astype(np.float32)


def test_the_fixture_has_every_rule():
    names = {c.values[0]["scheduler"] for c in RUN}
    assert names == {"HeunDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}
    assert len(RUN) == 89 and len(REFUSED) == 1


@pytest.mark.parametrize("case", RUN)
def test_plan_agrees(case):
    sampler = _sampler(case)
    expected = {"HeunDiscreteScheduler": "heun", "DPMSolverMultistepScheduler": "dpmpp_3m",
                "UniPCMultistepScheduler": "unipc"}[case["scheduler"]]
    if _stochastic(case):
        expected = "dpmpp_2m_sde"  # at solver_order 3: DPM-Solver++(3M) SDE
    assert sampler.options["sampler"] == expected
    assert sampler.backend == "cpu"
    times, sigmas = case["timesteps"], case["sigmas"]
    plan = sampler.plan
    assert len(plan) == len(times) and len(sigmas) == len(plan) + 1
    assert sampler.model_timesteps == pytest.approx(times, rel=1e-5, abs=1e-5)
    if _sigma_space(case):  # diffusers' float32 timesteps: the model gets floats
        assert all(isinstance(t, float) for t in sampler.model_timesteps)
        assert [s.stage for s in plan] == [1] + [2, 1] * ((len(plan) - 1) // 2)
    for step, sigma in zip(plan, sigmas):
        # (the C++ test bounds this by diffusers' float32 cumprod error; 1e-4 covers it here)
        assert math.sqrt(1.0 / step.alpha_bar - 1.0) == pytest.approx(sigma, rel=1e-4)
    init = case["init_noise_sigma"]
    expected_scale = init / math.sqrt(1.0 + sigmas[0] ** 2) if _sigma_space(case) else init
    assert sampler.initial_noise_scale == pytest.approx(expected_scale, rel=1e-6)


@pytest.mark.parametrize("case", RUN)
def test_every_step_with_the_history_carried(case):
    sampler = _sampler(case)
    history = np.full(sampler.history_size(SHAPE), 1e6, np.float32)  # the first step must not read it
    assert history.size > np.prod(SHAPE)  # deeper than dpmpp_2m's one slot
    for k, step in enumerate(case["steps"]):
        planned = sampler.plan[k]
        x = _array(step["model_input"])
        noise = None if step["noise"] is None else _array(step["noise"])
        prev, x0 = sampler.step(x, _array(step["model_output"]), step_index=k, history=history, return_x0=True,
                                noise=noise)
        assert _relative_error(prev, _state_after(case, k)) <= 1e-5, f"step {k}"
        x0_tolerance = 1e-5 * max(1.0, math.sqrt(1.0 / planned.alpha_bar) / 10.0)
        assert _relative_error(x0, _x0_of(case, step)) <= x0_tolerance, f"step {k} x0"
        if case["scheduler"] == "UniPCMultistepScheduler":
            assert planned.order == step["predictor_order"] and planned.corrects == step["corrector_used"]
            # the corrected sample is the history's last slot
            assert _relative_error(history.reshape(-1, *SHAPE)[-1], step["corrected_sample"]) <= 1e-5
        elif case["scheduler"] == "DPMSolverMultistepScheduler":
            assert planned.order == step["solver_order_used"]
            assert (planned.prev_from_x0_prev2 != 0) == (planned.order == 3)
        else:
            assert planned.stage == (1 if step["first_order"] else 2)
            assert (planned.prev_from_last_sample != 0) == (planned.stage == 2)


@pytest.mark.parametrize("case", RUN)
def test_loop_whole_and_in_one_step_pieces(case):
    sampler = _sampler(case)
    start = _array(case["steps"][0]["model_input"])
    whole = sampler.sample(predictor=fake_model, initial=start, seed=7)
    if not _stochastic(case):
        assert _relative_error(whole, case["steps"][-1]["prev_sample"]) <= 2e-5
    history = np.full(sampler.history_size(SHAPE), np.nan, np.float32)
    x = start.copy()
    n = len(sampler.plan)
    for k in range(n):
        sampler.sample(predictor=fake_model, initial=x, out=x, seed=7, start_index=k, end_index=k, history=history)
        if k + 1 < n and not _stochastic(case):
            assert _relative_error(x, _state_after(case, k)) <= 2e-5, f"piece {k}"
    np.testing.assert_array_equal(x, whole)


@pytest.mark.parametrize("case", REFUSED)
def test_what_ddpm_does_not_run_is_refused_by_name(case):
    with pytest.raises(ddpm.Error, match="solver_order"):
        _sampler(case)


# --- ddpm.diffusers' classes, as a diffusers pipeline drives them ---
@pytest.mark.parametrize("case", RUN)
def test_diffusers_classes_step_by_step(case):
    import ddpm.diffusers as dd

    scheduler = getattr(dd, case["scheduler"]).from_config(case["config"])
    scheduler.set_timesteps(case["num_inference_steps"])
    assert scheduler.order == (2 if _sigma_space(case) else 1)
    timesteps = np.asarray(scheduler.timesteps, np.float64)
    np.testing.assert_allclose(timesteps, case["timesteps"], rtol=1e-6, atol=1e-4)
    assert str(scheduler.timesteps.dtype).endswith("float32" if _sigma_space(case) else "int64")
    np.testing.assert_allclose(np.asarray(scheduler.sigmas, np.float64), case["sigmas"], rtol=1e-4)
    assert float(scheduler.init_noise_sigma) == pytest.approx(case["init_noise_sigma"], rel=1e-6)
    for k, (t, step) in enumerate(zip(scheduler.timesteps, case["steps"])):
        sample = _array(step["sample_in"])
        if _sigma_space(case):
            assert scheduler.state_in_first_order == step["first_order"]
        model_input = scheduler.scale_model_input(sample, t)
        assert _relative_error(model_input, step["model_input"]) <= 1e-6
        noise = None if step["noise"] is None else _array(step["noise"])
        out = scheduler.step(_array(step["model_output"]), t, sample, variance_noise=noise)
        assert scheduler.step_index == k + 1
        assert _relative_error(out.prev_sample, step["prev_sample"]) <= 1e-5, f"step {k}"
        if _sigma_space(case):
            assert _relative_error(out.pred_original_sample, step["pred_original_sample"]) <= 1e-5


def test_diffusers_multistep_classes_do_not_start_part_way():
    import ddpm.diffusers as dd

    unipc = dd.UniPCMultistepScheduler.from_config({"num_train_timesteps": 1000})
    unipc.set_timesteps(10)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    with pytest.raises(ddpm.Error, match="cannot take step 8 of 10 without the steps before it"):
        unipc.step(0.1 * x, unipc.timesteps[8], x)
    # Heun starts on any step's first model call (img2img: begin_index = t_start * order).
    heun = dd.HeunDiscreteScheduler.from_config({"num_train_timesteps": 1000})
    heun.set_timesteps(6)
    heun.set_begin_index(4)
    y = heun.step(0.1 * x, heun.timesteps[4], x).prev_sample
    assert heun.step_index == 5 and not heun.state_in_first_order
    heun.step(0.1 * y, heun.timesteps[5], y)
    assert heun.state_in_first_order


# --- the options, the plan's new fields and the history, from Python ---
def test_new_options_and_their_round_trip():
    s = ddpm.Sampler(sampler="unipc", inference_steps=6, solver_order=3, solver_type="bh1",
                     disable_corrector=[0, 2], use_karras_sigmas=True)
    o = s.options
    assert (o["sampler"], o["solver_order"], o["solver_type"], o["disable_corrector"]) == ("unipc", 3, "bh1", [0, 2])
    assert ddpm.Sampler(**o).options == o
    # the corrector of step i + 1 (which corrects step i) is off for each i listed
    assert [step.corrects for step in s.plan] == [False, False, True, False, True, True]
    assert ddpm.Sampler(sampler="unipc", inference_steps=6).options["disable_corrector"] == []
    # every sampler shows them, with their defaults, so that Sampler(**options) rebuilds it
    for name in ("ddpm", "euler", "heun", "dpmpp_3m"):
        o = ddpm.Sampler(sampler=name, inference_steps=6).options
        assert (o["solver_type"], o["disable_corrector"]) == ("bh2", [])
        assert ddpm.Sampler(**o).options == o
    with pytest.raises(TypeError, match="disable_corrector must be a sequence of ints"):
        ddpm.Sampler(sampler="unipc", disable_corrector="0")
    with pytest.raises(TypeError, match="solver_type must be a str"):
        ddpm.Sampler(sampler="unipc", solver_type=2)
    with pytest.raises(ddpm.Error, match="unknown solver_type 'bh3'"):
        ddpm.Sampler(sampler="unipc", solver_type="bh3")


@pytest.mark.parametrize("options, refusal", [
    # The step rules decide which sampler takes what; their messages reach Python as they are.
    ({"sampler": "dpmpp_2m", "solver_type": "bh1"}, "solver_type bh1 applies to the unipc sampler, not dpmpp_2m"),
    ({"sampler": "ddim", "disable_corrector": [1]}, "disable_corrector applies to the unipc sampler, not ddim"),
    ({"sampler": "heun", "thresholding": True}, "heun sampler has no dynamic thresholding"),
    ({"sampler": "unipc", "clip_x0": (-1, 1)}, "unipc sampler has no x0 clipping"),
    ({"sampler": "unipc", "solver_order": 4}, "solver_order 4"),
    ({"sampler": "heun", "eta": 0.5}, "eta applies only to the ddim sampler, not heun"),
    ({"sampler": "unipc", "use_lu_lambdas": True}, "use_lu_lambdas"),
])
def test_what_a_rule_does_not_take_is_refused_by_the_rule(options, refusal):
    with pytest.raises(ddpm.Error, match=refusal):
        ddpm.Sampler(inference_steps=6, **options)


def test_the_new_samplers_run_and_take_clipping_where_diffusers_does():
    for name in ("heun", "dpmpp_3m", "unipc"):
        # auto picks CUDA where a device is usable (every rule runs there too)
        assert ddpm.Sampler(sampler=name, inference_steps=6).backend == ("cuda" if ddpm.cuda_available() else "cpu")
    heun = ddpm.Sampler(sampler="heun", inference_steps=6, clip_x0=(-0.5, 0.5), backend="cpu")
    x = heun.sample((3, 4), lambda x_t, t: 3.0 * x_t, seed=1)  # (diffusers' clip_sample)
    assert np.isfinite(x).all() and np.abs(x).max() <= 0.5 + 1e-6


def test_plan_fields_and_history_sizes():
    shape = (2, 3, 4)
    n = 2 * 12
    heun = ddpm.Sampler(sampler="heun", inference_steps=5, backend="cpu")
    assert len(heun.plan) == len(heun.timesteps) == len(heun.model_timesteps) == 9
    assert [s.stage for s in heun.plan] == [1, 2, 1, 2, 1, 2, 1, 2, 1]
    assert heun.model_timesteps[1] == heun.model_timesteps[2]  # diffusers' [t0, t1, t1, t2, t2, ...]
    assert all(s.prev_from_last_sample != 0 for s in heun.plan if s.stage == 2)
    assert heun.history_size(shape) == 2 * n  # the first call's x0_hat and sample
    three = ddpm.Sampler(sampler="dpmpp_3m", inference_steps=8, backend="cpu")
    assert [s.order for s in three.plan] == [1, 2, 3, 3, 3, 3, 2, 1]
    assert [s.prev_from_x0_prev2 != 0 for s in three.plan] == [s.order == 3 for s in three.plan]
    assert three.history_size(shape) == 2 * n and three.history_size(2) == 2 * 2
    unipc = ddpm.Sampler(sampler="unipc", inference_steps=6, solver_order=3, backend="cpu")
    corrected = unipc.plan[3]
    assert corrected.corrects and isinstance(corrected.corrected_from_x0_prev, tuple)
    assert len(corrected.corrected_from_x0_prev) == 3 and corrected.corrected_from_x0 != 0
    assert corrected.corrected_from_last_sample != 0 and not unipc.plan[0].corrects
    assert unipc.history_size(shape) == 4 * n  # three x0_hats and the corrected sample
    assert ddpm.Sampler(sampler="dpmpp_2m", inference_steps=6).history_size(shape) == n
    assert ddpm.Sampler(sampler="ddim", inference_steps=6).history_size(shape) == 0
    for sampler in (ddpm.Sampler(sampler="ddim"), heun):
        assert all(s.stage in (0, 1, 2) and not s.corrects and s.corrected_from_x0_prev == (0.0, 0.0, 0.0)
                   for s in sampler.plan)


@pytest.mark.parametrize("name", ["heun", "dpmpp_3m", "unipc"])
def test_a_piece_or_step_without_the_history_is_refused(name):
    sampler = ddpm.Sampler(sampler=name, inference_steps=6, backend="cpu")
    model = ddpm.GaussianPredictor(0.5, 0.3)
    x = np.full((2, 3), 0.5, np.float32)
    # position 1: Heun's second model call, the others' second-order step
    with pytest.raises(ddpm.Error, match="step 1 combines earlier steps' outputs"):
        sampler.sample((2, 3), model, start_index=1)
    with pytest.raises(ddpm.Error, match="step 1 combines earlier steps' outputs"):
        sampler.step(x, x, step_index=1)
    history = np.zeros(sampler.history_size(x.shape), np.float32)
    with pytest.raises(ddpm.Error, match="step 1 combines earlier steps' outputs"):
        sampler.step(x, x, step_index=1, history=history, history_given=False)
    with pytest.raises(ddpm.Error, match="history has 5 values"):
        sampler.step(x, x, step_index=0, history=np.zeros(5, np.float32))
    with pytest.raises(ddpm.Error, match="history has 5 values"):
        sampler.sample((2, 3), model, history=np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="history must be a float32 array"):
        sampler.step(x, x, step_index=0, history=np.zeros(history.size, np.float64))
    with pytest.raises(ValueError, match="history is read-only"):
        history.flags.writeable = False
        sampler.step(x, x, step_index=0, history=history)


@pytest.mark.parametrize("name", ["heun", "dpmpp_3m", "unipc", "dpmpp_2m"])
def test_pieces_with_a_history_of_any_shape_equal_the_whole_loop(name):
    sampler = ddpm.Sampler(sampler=name, inference_steps=12, use_karras_sigmas=True, backend="cpu")
    model = ddpm.GaussianPredictor(0.5, 0.3)
    whole = sampler.sample((5, 7), model, seed=3, first_sample=2)
    # the history is a buffer of history_size() floats: flat, or shaped at will
    history = np.full((sampler.history_size((5, 7)) // 35, 5, 7), np.nan, np.float32)
    ends = [3, 4, 8, len(sampler.plan) - 1]  # (Heun: 3 ends on a first call, 4 on a second)
    x, start = None, 0
    for end in ends:
        x = sampler.sample((5, 7), model, seed=3, first_sample=2, initial=x, start_index=start, end_index=end,
                           history=history)
        start = end + 1
    np.testing.assert_array_equal(x, whole)


def test_dpmpp_2m_history_in_step_is_its_previous_x0():
    # For dpmpp_2m, step(history=) holds the previous step's x0_hat: the same
    # numbers as previous_x0=, and history_given=False is a first-order step.
    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=10, backend="cpu")
    rng = np.random.default_rng(0)
    x, m, x0 = (rng.standard_normal((2, 5)).astype(np.float32) for _ in range(3))
    history = x0.reshape(-1).copy()
    # (the history form always has the engine write x0_hat, as return_x0=True does)
    with_history, returned = sampler.step(x, m, step_index=3, history=history, return_x0=True)
    expected, expected_x0 = sampler.step(x, m, step_index=3, previous_x0=x0, return_x0=True)
    np.testing.assert_array_equal(with_history, expected)
    np.testing.assert_array_equal(returned, expected_x0)
    np.testing.assert_array_equal(history, returned.reshape(-1))  # written: the next step's previous x0
    np.testing.assert_array_equal(sampler.step(x, m, step_index=3, history=x0.copy(), history_given=False),
                                  sampler.step(x, m, step_index=3, return_x0=True)[0])
    with pytest.raises(TypeError, match="previous_x0 or history, not both"):
        sampler.step(x, m, step_index=3, history=history, previous_x0=x0)


@pytest.mark.parametrize("config, sampler", [
    ({"_class_name": "HeunDiscreteScheduler", "use_karras_sigmas": True, "clip_sample": True}, "heun"),
    ({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 3}, "dpmpp_3m"),
    ({"_class_name": "UniPCMultistepScheduler", "solver_order": 3, "solver_type": "bh1",
      "disable_corrector": [1], "lower_order_final": False, "final_sigmas_type": "sigma_min"}, "unipc"),
])
def test_from_config_takes_the_new_classes(config, sampler):
    config = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
              "beta_end": 0.012, "prediction_type": "v_prediction", **config}
    s = ddpm.Sampler.from_config(config, num_inference_steps=9, backend="cpu")
    o = s.options
    assert (o["sampler"], o["inference_steps"], o["prediction_type"]) == (sampler, 9, "v_prediction")
    for key in ("solver_type", "disable_corrector", "lower_order_final", "final_sigmas_type", "use_karras_sigmas"):
        if key in config:
            assert o[key] == config[key], key
    if sampler == "heun":
        assert o["clip_x0"] == (-1.0, 1.0)
    assert np.isfinite(s.sample((4, 3), ddpm.GaussianPredictor(0.5, 0.3), seed=1)).all()
    # a config without _class_name takes the class of sampler=
    bare = {k: v for k, v in config.items() if k != "_class_name"}
    assert ddpm.Sampler.from_config(bare, sampler=sampler, inference_steps=9).options == \
        dict(o, backend="auto")


def test_heun_config_defaults_are_heuns():
    """HeunDiscreteScheduler's own default betas (0.00085 .. 0.012), not the other classes' (1e-4 .. 0.02)."""
    s = ddpm.Sampler.from_config({"_class_name": "HeunDiscreteScheduler"})
    assert s.schedule.beta[0] == pytest.approx(0.00085) and s.schedule.beta[-1] == pytest.approx(0.012)


def test_sampler_info_is_the_rule_registry():
    """What each rule declares; the config intake takes a sampler's diffusers class from it."""
    classes = {name: ddpm.sampler_info(name)["diffusers_class"] for name in
               ("ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m", "unipc")}
    assert classes["heun"] == "HeunDiscreteScheduler" and classes["unipc"] == "UniPCMultistepScheduler"
    assert classes["dpmpp_3m"] == classes["dpmpp_2m"] == "DPMSolverMultistepScheduler"
    heun = ddpm.sampler_info("heun")
    assert heun["model_calls_per_step"] == 2 and heun["fractional_timesteps"] and heun["karras_sigmas"]
    assert not heun["solver_order"] and ddpm.sampler_info("unipc")["solver_order"]
    assert not ddpm.sampler_info("ddim")["karras_sigmas"]
    assert ddpm.sampler_info("ddim")["default_timestep_spacing"] == "leading"
    assert ddpm.sampler_info("ddim")["eta"] and not ddpm.sampler_info("heun")["eta"]
    assert ddpm.sampler_info("heun")["clip_x0"] and not ddpm.sampler_info("heun")["thresholding"]
    assert ddpm.sampler_info("euler_ancestral")["prediction_types"] == ["epsilon", "v_prediction"]
    three_m = ddpm.sampler_info("dpmpp_3m")
    assert three_m["fixed_solver_order"] == 3 and three_m["lower_order_sampler"] == "dpmpp_2m"
    assert ddpm.sampler_info("ddpm")["lower_order_sampler"] is None
    assert ddpm.sampler_info("unipc")["history_depth"] == 3
    with pytest.raises(ddpm.Error, match="unknown sampler 'plms'"):
        ddpm.sampler_info("plms")


def test_a_config_run_by_another_sampler_drops_its_class_keys():
    """As diffusers' from_config of another class: UniPC's order-3 config runs Heun; a 3M
    config overridden to solver_order 2 is DPM-Solver++(2M)."""
    unipc = {"_class_name": "UniPCMultistepScheduler", "solver_order": 3, "solver_type": "bh1",
             "disable_corrector": [1]}
    heun = ddpm.Sampler.from_config(unipc, sampler="heun", inference_steps=5, backend="cpu")
    assert heun.options["sampler"] == "heun" and len(heun.plan) == 9
    dpm3 = {"_class_name": "DPMSolverMultistepScheduler", "solver_order": 3}
    two = ddpm.Sampler.from_config(dpm3, solver_order=2, inference_steps=6, backend="cpu")
    assert two.options["sampler"] == "dpmpp_2m" and max(s.order for s in two.plan) == 2
    three = ddpm.Sampler.from_config(dpm3, inference_steps=6, backend="cpu")
    assert max(s.order for s in three.plan) == 3
    # The class's defaults too: DDPM's clip_sample does not stop a solver without one.
    for name in ("dpmpp_2m", "euler", "unipc"):
        switched = ddpm.Sampler.from_config({"_class_name": "DDPMScheduler"}, sampler=name, inference_steps=6,
                                            backend="cpu")
        assert switched.options["sampler"] == name and switched.options["clip_x0"] is None
