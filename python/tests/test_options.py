"""Sampler options: the CLI's names, diffusers' aliases, scheduler configs."""

import json

import numpy as np
import pytest

import ddpm


def test_options_round_trip_under_their_names():
    sampler = ddpm.Sampler(ddpm.Schedule("scaled_linear", steps=500, beta_start=1e-4, beta_end=0.02),
                           sampler="ddim", inference_steps=25, timestep_spacing="trailing", eta=0.2,
                           prediction_type="v_prediction", clip_x0=(-2, 2), set_alpha_to_one=False,
                           backend="cpu", threads=1)
    o = sampler.options
    assert (o["sampler"], o["inference_steps"], o["timestep_spacing"], o["eta"]) == ("ddim", 25, "trailing", 0.2)
    assert (o["prediction_type"], o["clip_x0"], o["set_alpha_to_one"]) == ("v_prediction", (-2.0, 2.0), False)
    assert (o["backend"], o["threads"]) == ("cpu", 1)
    assert sampler.timesteps == list(range(499, 0, -20))
    assert len(sampler.plan) == 25 and sampler.plan[0].timestep == 499
    again = ddpm.Sampler(sampler.schedule, **o)
    assert again.options == o and again.timesteps == sampler.timesteps
    # Every option dict makes its sampler again: the defaults, explicit timesteps.
    assert ddpm.Sampler(**ddpm.Sampler().options).options == ddpm.Sampler().options
    listed = ddpm.Sampler(sampler="ddim", timesteps=[900, 500, 100, 0], backend="cpu")
    assert listed.options["timesteps"] == [900, 500, 100, 0] and listed.options["inference_steps"] is None
    assert ddpm.Sampler(**listed.options).timesteps == [900, 500, 100, 0]
    with pytest.raises(ddpm.Error, match="timesteps is empty"):
        ddpm.Sampler(timesteps=[])
    # The solvers without inference steps run every step (and do not fail).
    assert ddpm.Sampler(sampler="dpmpp_2m", backend="cpu").timesteps == list(range(999, -1, -1))


def test_diffusers_aliases_equal_the_short_names():
    a = ddpm.Sampler(num_inference_steps=10, rescale_betas_zero_snr=True, prediction_type="v_prediction",
                     thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=2.0, backend="cpu")
    b = ddpm.Sampler(inference_steps=10, rescale_zero_snr=True, prediction_type="v_prediction",
                     thresholding=(0.9, 2.0), backend="cpu")
    assert a.options == b.options
    assert a.schedule.zero_terminal_snr
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(a.sample((2, 3), ddpm.GaussianPredictor(), seed=1),
                                  b.sample((2, 3), ddpm.GaussianPredictor(), seed=1))
    assert ddpm.Sampler(thresholding=0.95).options["dynamic_thresholding_ratio"] == 0.95
    assert ddpm.Sampler(timesteps=[900, 500, 100]).timesteps == [900, 500, 100]
    del x


def test_option_errors():
    with pytest.raises(TypeError, match=r"^unknown sampler option 'inference_step' \(known: sampler, "):
        ddpm.Sampler(inference_step=10)
    with pytest.raises(TypeError, match=r"^give inference_steps or num_inference_steps, not both$"):
        ddpm.Sampler(inference_steps=10, num_inference_steps=10)
    with pytest.raises(TypeError, match=r"^inference_steps must be an int, got float$"):
        ddpm.Sampler(inference_steps=10.0)
    with pytest.raises(TypeError, match=r"^eta must be a number, got str$"):
        ddpm.Sampler(sampler="ddim", eta="0.5")
    with pytest.raises(TypeError, match=r"^rescale_zero_snr must be a bool, got int$"):
        ddpm.Sampler(rescale_zero_snr=1)
    with pytest.raises(ddpm.Error, match=r"^unknown sampler 'euler_a' \(expected ddpm, ddim, .*\)$") as refused:
        ddpm.Sampler(sampler="euler_a")
    for name in ("euler_ancestral", "heun", "dpmpp_3m", "unipc"):
        assert name in str(refused.value)
    with pytest.raises(ddpm.Error, match=r"^unknown timestep spacing 'even'"):
        ddpm.Sampler(timestep_spacing="even")
    # The step rule's own check, not one of the Python layer's.
    with pytest.raises(ddpm.Error, match=r"^eta applies only to the ddim sampler"):
        ddpm.Sampler(eta=0.5)
    with pytest.raises(ddpm.Error, match=r"^clip_x0 and thresholding exclude each other: give one$"):
        ddpm.Sampler(clip_x0=(-1, 1), thresholding=0.99)
    with pytest.raises(ddpm.Error, match=r"^x0 clip range"):
        ddpm.Sampler(clip_x0=(1, -1))
    with pytest.raises(ddpm.Error, match=r"^unknown backend 'gpu' \(expected auto, cpu or cuda\)$"):
        ddpm.Sampler(backend="gpu")


def test_from_config_dict_text_and_file(tmp_path):
    config = {"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "epsilon", "steps_offset": 1,
              "clip_sample": False, "set_alpha_to_one": False, "_diffusers_version": "0.42.1"}
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps(config))
    samplers = [ddpm.Sampler.from_config(c, inference_steps=10, backend="cpu")
                for c in (config, json.dumps(config), path, str(path))]
    for s in samplers:
        assert s.options == samplers[0].options
    o = samplers[0].options
    assert (o["sampler"], o["steps_offset"], o["clip_x0"], o["set_alpha_to_one"]) == ("ddim", 1, None, False)
    assert samplers[0].timesteps == list(range(901, 0, -100))
    ddpm_config = {"_class_name": "DDPMScheduler"}
    o = ddpm.Sampler.from_config(ddpm_config).options
    assert (o["sampler"], o["variance"], o["clip_x0"]) == ("ddpm", "posterior", (-1.0, 1.0))
    assert ddpm.Sampler.from_config(ddpm_config, thresholding=0.99).options["clip_x0"] is None
    # (EulerDiscreteScheduler and then HeunDiscreteScheduler were the example
    # here until their rules landed: see test_solvers.py and test_multistep.py.)
    with pytest.raises(ddpm.Error, match="has no ddpm step rule; choose one with sampler="):
        ddpm.Sampler.from_config({"_class_name": "LMSDiscreteScheduler"})
    assert ddpm.Sampler.from_config({"_class_name": "LMSDiscreteScheduler"}, sampler="ddim").options["sampler"] == "ddim"


def test_schedule_tables():
    s = ddpm.Schedule("linear", steps=10, beta_start=0.1, beta_end=0.2)
    np.testing.assert_allclose(s.beta, np.linspace(0.1, 0.2, 10))
    np.testing.assert_allclose(s.alphas_cumprod, np.cumprod(1 - np.linspace(0.1, 0.2, 10)))
    assert s.betas.dtype == np.float64 and len(s) == 10
    custom = ddpm.Schedule(betas=[0.1, 0.2, 0.3])
    np.testing.assert_array_equal(custom.beta, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(ddpm.Schedule.from_betas(np.array([0.1, 0.2, 0.3])).alpha_bar, custom.alpha_bar)
    with pytest.raises(ddpm.Error):
        ddpm.Schedule(betas=[0.1, 1.5])
    with pytest.raises(ddpm.Error, match="unknown"):
        ddpm.Schedule("quadratic")


def test_from_config_reads_files_with_bounded_memory(tmp_path):
    # /dev/zero is endless: refused before it is read, as the CLI refuses it.
    # A folder is read as a save_config or pipeline folder: one without a config is refused.
    for path, message in [("/dev/zero", "not a regular file"), (tmp_path, "a folder without scheduler_config.json"),
                          (tmp_path / "absent.json", "No such file or directory")]:
        with pytest.raises(ddpm.Error, match=message):
            ddpm.Sampler.from_config(path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ddpm.Error, match="not UTF-8"):
        ddpm.Sampler.from_config(binary)
    good = tmp_path / "scheduler_config.json"
    good.write_text(json.dumps({"_class_name": "DDIMScheduler", "num_train_timesteps": 1000}))
    assert ddpm.Sampler.from_config(good).options["sampler"] == "ddim"
    assert ddpm.Sampler.from_config(tmp_path).options["sampler"] == "ddim"
    (tmp_path / "scheduler_config.json").unlink()
    (tmp_path / "scheduler_config.json").mkdir()
    with pytest.raises(ddpm.Error, match="Is a directory"):
        ddpm.Sampler.from_config(tmp_path)


def test_sample_refuses_an_initial_that_would_be_converted_silently():
    prior = ddpm.GaussianPredictor(mean=0.0, std=1.0)
    sampler = ddpm.Sampler(inference_steps=2, backend="cpu")
    for initial, message in [(np.zeros((4, 3), np.int64), "floating-point array, got int64"),
                             (np.zeros((4, 3), bool), "floating-point array, got bool"),
                             (np.float32(0), "0-d")]:
        with pytest.raises(TypeError, match=message):
            sampler.sample(predictor=prior, initial=initial)
    # float64 is converted, with a CopyWarning, as documented.
    with pytest.warns(ddpm.CopyWarning):
        assert sampler.sample(predictor=prior, initial=np.zeros((4, 3))).dtype == np.float32


def test_integer_options_beyond_64_bits_are_out_of_range():
    for key in ("inference_steps", "threads", "steps_offset"):
        with pytest.raises(ddpm.Error, match=f"{key} {2**64} is out of range"):
            ddpm.Sampler(**{key: 2**64})
