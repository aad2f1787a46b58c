"""Sampler.from_config takes scheduler configs as diffusers hands them over:
dicts without _class_name, JSON with Python's Infinity/NaN, files and pipeline
folders; and DPM-Solver's options. Needs neither torch nor diffusers."""

import json
import math

import numpy as np
import pytest

import ddpm

DPM = "DPMSolverMultistepScheduler"


def test_a_config_without_class_name_takes_the_class_of_sampler():
    # A scheduler's .config has no _class_name; sampler= says whose defaults apply.
    config = {"num_train_timesteps": 500, "prediction_type": "v_prediction"}
    s = ddpm.Sampler.from_config(config, sampler="ddpm")
    assert s.schedule.steps == 500 and s.options["prediction_type"] == "v_prediction"
    # DDPMScheduler's defaults, not ddpm's: x0 clipped to [-1, 1], the posterior variance
    assert s.options["clip_x0"] == (-1.0, 1.0) and s.options["variance"] == "posterior"
    euler = ddpm.Sampler.from_config(config, sampler="euler", inference_steps=10)
    assert euler.options["timestep_spacing"] == "linspace" and euler.options["clip_x0"] is None
    with pytest.raises(ddpm.Error, match="sampler="):
        ddpm.Sampler.from_config(config)


def test_json_with_python_infinity_and_nan():
    text = json.dumps({"_class_name": DPM, "lambda_min_clipped": -math.inf, "solver_order": 2})
    assert "-Infinity" in text
    s = ddpm.Sampler.from_config(text, inference_steps=10)
    assert s.options["sampler"] == "dpmpp_2m" and s.options["lambda_min_clipped"] == -math.inf
    # a non-finite value where a number is needed is refused by name
    with pytest.raises(ddpm.Error, match="beta_end"):
        ddpm.Sampler.from_config('{"_class_name": "DDIMScheduler", "beta_end": NaN}')
    with pytest.raises(ddpm.Error, match="not valid JSON"):
        ddpm.Sampler.from_config('{"_class_name": "DDIMScheduler", ')


def test_files_and_pipeline_folders(tmp_path):
    config = {"_class_name": "DDIMScheduler", "num_train_timesteps": 300, "lambda_min_clipped": -math.inf}
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    for source in (tmp_path, tmp_path / "scheduler", tmp_path / "scheduler" / "scheduler_config.json",
                   str(tmp_path)):
        s = ddpm.Sampler.from_config(source)
        assert s.options["sampler"] == "ddim" and s.schedule.steps == 300
    (tmp_path / "empty").mkdir()
    with pytest.raises(ddpm.Error, match="scheduler_config.json"):
        ddpm.Sampler.from_config(tmp_path / "empty")


def test_keys_diffusers_ignores_are_ignored_and_unimplemented_values_refused():
    s = ddpm.Sampler.from_config({"_class_name": "DDIMScheduler", "_diffusers_version": "0.42.1",
                                  "_use_default_values": ["beta_end"], "some_other_class_key": 3})
    assert s.options["sampler"] == "ddim"
    with pytest.raises(ddpm.Error, match="use_exponential_sigmas"):
        ddpm.Sampler.from_config({"_class_name": "EulerDiscreteScheduler", "use_exponential_sigmas": True})
    with pytest.raises(ddpm.Error, match="solver_order"):
        ddpm.Sampler.from_config({"_class_name": DPM, "solver_order": 4})


def test_dpm_solver_options_from_a_config():
    config = {"_class_name": DPM, "algorithm_type": "sde-dpmsolver++", "final_sigmas_type": "sigma_min",
              "lower_order_final": False, "euler_at_final": True, "use_lu_lambdas": True,
              "lambda_min_clipped": -5.1, "solver_order": 1}
    s = ddpm.Sampler.from_config(config, inference_steps=8)
    o = s.options
    assert o["sampler"] == "dpmpp_2m_sde" and o["final_sigmas_type"] == "sigma_min"
    assert (o["lower_order_final"], o["euler_at_final"], o["use_lu_lambdas"], o["solver_order"]) == \
        (False, True, True, 1)
    assert o["lambda_min_clipped"] == -5.1
    assert all(step.order == 1 for step in s.plan)
    # sigma_min: the loop ends at the schedule's smallest sigma, not at a clean sample
    assert s.plan[-1].alpha_bar_prev < 1.0
    assert ddpm.Sampler(**o).options == o
    # the string diffusers' older fixtures hold, and null, are -inf too
    for value in ("-inf", None):
        assert ddpm.Sampler.from_config({"_class_name": DPM, "lambda_min_clipped": value}).options[
            "lambda_min_clipped"] == -math.inf


def test_dpm_solver_options_belong_to_dpm_solver():
    for option in ({"final_sigmas_type": "sigma_min"}, {"solver_order": 1}, {"use_lu_lambdas": True},
                   {"lambda_min_clipped": -5.0}, {"euler_at_final": True}, {"lower_order_final": False}):
        key = next(iter(option))
        with pytest.raises(ddpm.Error, match=key):
            ddpm.Sampler(sampler="ddim", **option)
    with pytest.raises(ddpm.Error, match="final_sigmas_type"):
        ddpm.Sampler(sampler="dpmpp_2m", final_sigmas_type="sigma_max")
    with pytest.raises(ddpm.Error, match="exclude"):
        ddpm.Sampler(sampler="dpmpp_2m", use_lu_lambdas=True, use_karras_sigmas=True, inference_steps=5)


def test_a_model_output_with_sample_is_read_through_it():
    class Output:
        def __init__(self, sample):
            self.sample = sample

    sampler = ddpm.Sampler(sampler="ddim", inference_steps=5, backend="cpu")
    x = sampler.sample((3, 4), lambda x_t, t: Output(0.5 * x_t), seed=2)
    np.testing.assert_array_equal(x, sampler.sample((3, 4), lambda x_t, t: 0.5 * x_t, seed=2))
