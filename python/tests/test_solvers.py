"""The solvers from Python: options, scheduler configs, model times, loops in
pieces with the multistep history, and step() loops by hand."""

import numpy as np
import pytest

import ddpm
from conftest import gaussian_eps

MEAN, STD = 0.5, 0.3
SOLVERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "heun", "dpmpp_3m", "unipc"]


def test_karras_option_alias_and_default_spacing():
    a = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=20, use_karras_sigmas=True, backend="cpu")
    b = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=20, karras_sigmas=True, backend="cpu")
    assert a.options == b.options
    assert a.options["use_karras_sigmas"] is True
    assert ddpm.Sampler(backend="cpu").options["use_karras_sigmas"] is False
    assert a.timesteps != ddpm.Sampler(sampler="dpmpp_2m", inference_steps=20, backend="cpu").timesteps
    # The spacing defaults to the sampler's, as diffusers' classes do.
    assert ddpm.default_timestep_spacing("ddpm") == "leading"
    assert ddpm.default_timestep_spacing("ddim") == "leading"
    for name in SOLVERS:
        assert ddpm.default_timestep_spacing(name) == "linspace"
        assert ddpm.Sampler(sampler=name, inference_steps=10).options["timestep_spacing"] == "linspace"
    with pytest.raises(ddpm.Error, match="unknown sampler"):
        ddpm.default_timestep_spacing("lms")
    # A round trip through the options dict.
    again = ddpm.Sampler(a.schedule, **{k: v for k, v in a.options.items() if k not in ("timesteps", "steps_offset")})
    assert again.options == a.options and again.timesteps == a.timesteps
    with pytest.raises(TypeError, match="give use_karras_sigmas or karras_sigmas, not both"):
        ddpm.Sampler(sampler="euler", use_karras_sigmas=True, karras_sigmas=True)
    with pytest.raises(TypeError, match="use_karras_sigmas must be a bool"):
        ddpm.Sampler(sampler="euler", use_karras_sigmas=1)


def test_undefined_combinations_are_errors():
    # The step rules' messages, as the engine words them.
    with pytest.raises(ddpm.Error, match="^Karras sigmas apply to the dpmpp_2m, .*not ddim"):
        ddpm.Sampler(sampler="ddim", inference_steps=10, use_karras_sigmas=True)
    with pytest.raises(ddpm.Error, match="eta applies only to the ddim sampler, not euler"):
        ddpm.Sampler(sampler="euler", eta=0.5)
    with pytest.raises(ddpm.Error, match="exclude each other"):
        ddpm.Sampler(sampler="dpmpp_2m", timesteps=[900, 500, 100], use_karras_sigmas=True)


@pytest.mark.parametrize("config, sampler", [
    ({"_class_name": "EulerDiscreteScheduler"}, "euler"),
    ({"_class_name": "EulerAncestralDiscreteScheduler"}, "euler_ancestral"),
    ({"_class_name": "DPMSolverMultistepScheduler"}, "dpmpp_2m"),
    ({"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++",
      "use_karras_sigmas": True}, "dpmpp_2m_sde"),
])
def test_from_config_takes_the_solver_classes(config, sampler):
    config = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
              "beta_end": 0.012, "prediction_type": "epsilon", **config}
    s = ddpm.Sampler.from_config(config, num_inference_steps=25, backend="cpu")
    o = s.options
    assert (o["sampler"], o["inference_steps"], o["timestep_spacing"]) == (sampler, 25, "linspace")
    assert o["use_karras_sigmas"] == config.get("use_karras_sigmas", False)
    assert np.isfinite(s.sample((4, 3), ddpm.GaussianPredictor(MEAN, STD), seed=1)).all()


def test_from_config_refuses_what_ddpm_lacks():
    with pytest.raises(ddpm.Error, match="solver_order"):
        ddpm.Sampler.from_config({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 4})
    # DPM-Solver++(3M) SDE is the SDE sampler at order 3.
    sde3 = ddpm.Sampler.from_config({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 3,
                                     "algorithm_type": "sde-dpmsolver++"}, inference_steps=8)
    assert sde3.options["sampler"] == "dpmpp_2m_sde" and sde3.options["solver_order"] == 3
    with pytest.raises(ddpm.Error, match="solver_p"):
        ddpm.Sampler.from_config({"_class_name": "UniPCMultistepScheduler", "solver_p": {"x": 1}})


def test_callables_get_the_model_time():
    # As diffusers' pipelines give it: a 0-d array, int64 for ddpm, ddim and
    # DPM-Solver++ (diffusers' int64 timesteps), float32 for the Euler
    # samplers (diffusers' float32 ones), also where whole.
    for options, dtype in [({"sampler": "ddim", "inference_steps": 10}, np.int64),
                           ({"sampler": "dpmpp_2m", "inference_steps": 10, "use_karras_sigmas": True}, np.int64),
                           ({"sampler": "euler", "inference_steps": 10}, np.float32),
                           ({"sampler": "euler", "inference_steps": 10, "use_karras_sigmas": True}, np.float32),
                           ({"sampler": "heun", "inference_steps": 10}, np.float32),
                           ({"sampler": "unipc", "inference_steps": 10, "use_karras_sigmas": True}, np.int64),
                           ({"sampler": "dpmpp_3m", "inference_steps": 10}, np.int64)]:
        sampler = ddpm.Sampler(backend="cpu", **options)
        seen = []
        sampler.sample((2, 3), lambda x, t: seen.append(t) or np.zeros_like(x), seed=1)
        assert all(isinstance(t, np.ndarray) and t.ndim == 0 and t.dtype == dtype for t in seen), options
        assert [t.item() for t in seen] == sampler.model_timesteps, options
        assert [round(t.item()) for t in seen] == sampler.timesteps
    euler = ddpm.Sampler(sampler="euler", inference_steps=12, backend="cpu")
    assert any(t != int(t) for t in euler.model_timesteps)
    assert ddpm.Sampler(sampler="euler", inference_steps=10).model_timesteps[:3] == [999.0, 888.0, 777.0]
    assert [s.model_timestep for s in euler.plan] == pytest.approx(euler.model_timesteps)
    assert 0 < euler.initial_noise_scale < 1  # diffusers' init_noise_sigma in variance-preserving terms


def _euler_gaussian_eps(sampler, x_t, t):
    """E[eps | x_t] at a fractional Euler time: sigma interpolated over t as diffusers does."""
    ab = np.asarray(sampler.schedule.alpha_bar)
    sigma = np.interp(t, np.arange(len(ab)), np.sqrt((1 - ab) / ab))
    alpha_bar = 1.0 / (1.0 + sigma * sigma)
    a, b = np.sqrt(alpha_bar), np.sqrt(1 - alpha_bar)
    return (b * (x_t.astype(np.float64) - a * MEAN) / (a * a * STD * STD + b * b)).astype(np.float32)


@pytest.mark.parametrize("karras", [False, True])
def test_euler_callable_with_fractional_times_equals_builtin(karras):
    # Measured: 4e-7 (linspace) and 1.2e-5 (Karras, where sigma -> t -> sigma
    # goes through log-sigma interpolation and back through np.interp); with
    # t rounded to an int the error is 1e-3 and 6e-4.
    sampler = ddpm.Sampler(sampler="euler", inference_steps=30, use_karras_sigmas=karras, backend="cpu")
    x = sampler.sample((16, 20), lambda x_t, t: _euler_gaussian_eps(sampler, x_t, t), seed=2)
    reference = sampler.sample((16, 20), ddpm.GaussianPredictor(MEAN, STD), seed=2)
    np.testing.assert_allclose(x, reference, rtol=0, atol=5e-5)


def _gaussian_model(sampler, calls=None):
    schedule = sampler.schedule

    def model(x_t, t):
        if calls is not None:
            calls.append(t)
        return gaussian_eps(x_t.astype(np.float64), t, schedule, MEAN, STD)

    return model


@pytest.mark.parametrize("name", ["dpmpp_2m", "dpmpp_2m_sde"])
@pytest.mark.parametrize("predictor", ["builtin", "callable"])
def test_pieces_with_history_equal_the_whole_loop(name, predictor):
    sampler = ddpm.Sampler(sampler=name, inference_steps=20, backend="cpu")
    model = ddpm.GaussianPredictor(MEAN, STD) if predictor == "builtin" else _gaussian_model(sampler)
    whole = sampler.sample((7, 9), model, seed=3, first_sample=5)
    history = np.zeros((7, 9), np.float32)
    x = sampler.sample((7, 9), model, seed=3, first_sample=5, end_index=8, history=history)
    first_x0 = history.copy()
    sampler.sample(predictor=model, initial=x, out=x, seed=3, first_sample=5, start_index=9, history=history)
    np.testing.assert_array_equal(x, whole)
    assert not np.array_equal(first_x0, history)  # each piece writes the history at its end
    # The same by timestep, in three pieces.
    t = sampler.timesteps
    history[...] = np.nan  # the first piece does not read it
    x = sampler.sample((7, 9), model, seed=3, first_sample=5, end_step=t[4], history=history)
    x = sampler.sample(predictor=model, initial=x, seed=3, first_sample=5, start_step=t[5], end_step=t[13],
                       history=history)
    x = sampler.sample(predictor=model, initial=x, seed=3, first_sample=5, start_step=t[14], history=history)
    np.testing.assert_array_equal(x, whole)


def test_without_history_a_multistep_piece_restarts_at_first_order():
    model = ddpm.GaussianPredictor(MEAN, STD)
    for name, differs in [("dpmpp_2m", True), ("ddim", False), ("euler", False)]:
        sampler = ddpm.Sampler(sampler=name, inference_steps=20, backend="cpu")
        whole = sampler.sample((5, 4), model, seed=1)
        x = sampler.sample((5, 4), model, seed=1, end_index=9)
        x = sampler.sample(predictor=model, initial=x, seed=1, start_index=10)
        assert (not np.array_equal(x, whole)) == differs, name
        if differs:  # and it is the same as an explicit history_given=False
            h = np.full((5, 4), np.nan, np.float32)
            y = sampler.sample((5, 4), model, seed=1, end_index=9)
            y = sampler.sample(predictor=model, initial=y, seed=1, start_index=10, history=h, history_given=False)
            np.testing.assert_array_equal(x, y)


def test_history_is_checked():
    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=10, backend="cpu")
    model = ddpm.GaussianPredictor()
    with pytest.raises(ddpm.Error, match="history"):
        sampler.sample((3, 4), model, history=np.zeros((3, 5), np.float32))
    with pytest.raises(ddpm.Error, match="history"):
        sampler.sample((3, 4), model, start_index=3, history=np.full((3, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="history is read-only"):
        h = np.zeros((3, 4), np.float32)
        h.flags.writeable = False
        sampler.sample((3, 4), model, history=h)
    with pytest.raises(TypeError, match="history"):
        sampler.sample((3, 4), model, history=np.zeros((3, 4), np.float64))


@pytest.mark.parametrize("name", SOLVERS + ["ddim"])
def test_a_step_loop_by_hand_equals_sample(name):
    # A Python model driven by hand, diffusers style: the multistep rules get
    # the loop's history (history_size() floats, one array for every step);
    # dpmpp_2m also takes the older previous_x0 form.
    options = {"sampler": name, "inference_steps": 15, "backend": "cpu"}
    if name in ("euler", "dpmpp_2m", "heun", "unipc"):
        options["use_karras_sigmas"] = True
    sampler = ddpm.Sampler(**options)
    outputs = []

    def model(x_t, t):
        m = _euler_gaussian_eps(sampler, x_t, t)
        outputs.append(m)
        return m

    x_T = np.random.default_rng(4).standard_normal((6, 11)).astype(np.float32)
    sampled = sampler.sample(predictor=model, initial=x_T, seed=8)
    size = sampler.history_size(x_T.shape)
    assert (size > 0) == (name.startswith("dpmpp") or name in ("heun", "unipc"))
    history = np.full(size, np.nan, np.float32)  # the first step does not read it
    x = x_T
    for i, t in enumerate(sampler.model_timesteps):
        m = model(x, t)
        np.testing.assert_array_equal(m, outputs[i])  # the same x_t as the loop's
        if size:
            x = sampler.step(x, m, step_index=i, history=history, seed=8)
        else:
            # (With return_x0=True the single-step rules compute x0 first and
            # x_prev from it, which can differ from the loop's folded update
            # in the last bit: see the README.)
            x = sampler.step(x, m, t, seed=8)
    np.testing.assert_array_equal(x, sampled)
    if name == "dpmpp_2m":
        x, x0 = x_T, None
        for i, t in enumerate(sampler.model_timesteps):
            x, x0 = sampler.step(x, model(x, t), step_index=i, previous_x0=x0, return_x0=True, seed=8)
        np.testing.assert_array_equal(x, sampled)


def test_without_previous_x0_dpmpp_steps_are_first_order():
    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=10, backend="cpu")
    rng = np.random.default_rng(0)
    x, m, x0 = (rng.standard_normal((2, 5)).astype(np.float32) for _ in range(3))
    assert sampler.plan[3].order == 2 and sampler.plan[3].prev_from_x0_prev != 0
    first = sampler.step(x, m, step_index=3)
    second = sampler.step(x, m, step_index=3, previous_x0=x0)
    assert not np.array_equal(first, second)
    # t names the same step as step_index; a float t is looked up among the model times.
    np.testing.assert_array_equal(sampler.step(x, m, sampler.timesteps[3], previous_x0=x0), second)
    euler = ddpm.Sampler(sampler="euler", inference_steps=10, backend="cpu")
    t = euler.model_timesteps[3]
    np.testing.assert_array_equal(euler.step(x, m, t), euler.step(x, m, step_index=3))
    np.testing.assert_array_equal(euler.step(x, m, t, step_index=3), euler.step(x, m, step_index=3))
    with pytest.raises(ddpm.Error, match="is not one of the sampler's model timesteps"):
        euler.step(x, m, t + 0.25)
    with pytest.raises(ddpm.Error, match="is not the timestep of step_index 4"):
        euler.step(x, m, t, step_index=4)
    with pytest.raises(TypeError, match="needs the step"):
        euler.step(x, m)
    with pytest.raises(ddpm.Error, match="shape mismatch"):
        sampler.step(x, m, step_index=3, previous_x0=x0[:1])
    with pytest.raises(ddpm.Error, match="index 10"):
        sampler.step(x, m, step_index=10)


def test_repeated_karras_timesteps_are_named_by_index():
    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=200, use_karras_sigmas=True, backend="cpu")
    t = sampler.timesteps
    repeated = next(v for v in t if t.count(v) > 1)
    i = t.index(repeated)
    model = ddpm.GaussianPredictor(MEAN, STD)
    with pytest.raises(ddpm.Error):
        sampler.sample((2, 3), model, seed=1, start_step=repeated)
    whole = sampler.sample((2, 3), model, seed=1)
    h = np.empty((2, 3), np.float32)
    x = sampler.sample((2, 3), model, seed=1, end_index=i, history=h)
    x = sampler.sample(predictor=model, initial=x, seed=1, start_index=i + 1, history=h)
    np.testing.assert_array_equal(x, whole)


def test_type_stubs_describe_the_new_api():
    import pathlib

    stub = pathlib.Path(ddpm._ddpm.__file__).with_name("_ddpm.pyi")
    if not stub.is_file():
        pytest.skip(f"no {stub.name} beside the module (built without nanobind's stubgen)")
    text = stub.read_text()
    for name in ("def default_timestep_spacing(", "def model_timesteps(", "guidance_scale: float",
                 "history: numpy.typing.ArrayLike | None", "previous_x0:", "def unconditional_label(",
                 "unconditional: tuple[", "def history_size(", "def stage(", "def prev_from_x0_prev2(",
                 "def corrected_from_x0_prev(self) -> tuple[float, float, float]", "history: NDArray | None"):
        assert name in text, name
