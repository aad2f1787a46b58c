"""Same options and seed, same numbers: the module against the ddpm CLI, bit for bit."""

import numpy as np
import pytest

import ddpm

SHAPE = (6, 5, 7)  # an odd sample size (35) that does not fill a SIMD vector


def _save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


@pytest.mark.parametrize("steps", ["int", "per_sample", "given_noise"])
def test_forward_equals_cli(cli, tmp_path, steps):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(SHAPE).astype(np.float32)
    sampler = ddpm.Sampler(ddpm.Schedule("cosine", steps=500), backend="cpu")
    args = ["forward", "--x0", _save(tmp_path, "x0.npy", x0), "--schedule", "cosine", "--steps", 500,
            "--seed", 11, "--first-sample", 3, "--backend", "cpu", "--out", tmp_path / "xt.npy",
            "--noise-out", tmp_path / "eps.npy", "--velocity-out", tmp_path / "v.npy"]
    noise = None
    if steps == "int":
        t = 321
        args += ["--t", t]
    else:
        t = np.array([0, 1, 250, 498, 499, 7], dtype=np.int64)
        args += ["--t-per-sample", _save(tmp_path, "t.npy", t.astype(np.float32))]
    if steps == "given_noise":
        noise = rng.standard_normal(SHAPE).astype(np.float32)
        args += ["--noise", _save(tmp_path, "noise.npy", noise)]
    cli(*args)
    x_t, eps, v = sampler.forward(x0, t, seed=11, noise=noise, first_sample=3, velocity=True)
    np.testing.assert_array_equal(x_t, np.load(tmp_path / "xt.npy"))
    np.testing.assert_array_equal(eps, np.load(tmp_path / "eps.npy"))
    np.testing.assert_array_equal(v, np.load(tmp_path / "v.npy"))


# (module options, the same as CLI flags)
SAMPLERS = {
    "ddpm": ({}, []),
    "ddpm_posterior_clipped": ({"variance": "posterior", "clip_x0": (-1.0, 1.0)},
                               ["--variance", "posterior", "--clip-x0", "-1,1"]),
    "ddim_trailing": ({"sampler": "ddim", "inference_steps": 50, "timestep_spacing": "trailing"},
                      ["--sampler", "ddim", "--inference-steps", 50, "--timestep-spacing", "trailing"]),
    "ddim_eta_v_prediction": (
        {"sampler": "ddim", "num_inference_steps": 20, "eta": 0.5, "prediction_type": "v_prediction"},
        ["--sampler", "ddim", "--inference-steps", 20, "--eta", 0.5, "--prediction-type", "v_prediction"]),
    "ddpm_thresholding_sample": (
        {"inference_steps": 100, "thresholding": (0.9, 1.5), "prediction_type": "sample"},
        ["--inference-steps", 100, "--thresholding", "0.9,1.5", "--prediction-type", "sample"]),
    "euler_ancestral_v_prediction": (
        {"sampler": "euler_ancestral", "inference_steps": 20, "prediction_type": "v_prediction"},
        ["--sampler", "euler_ancestral", "--inference-steps", 20, "--prediction-type", "v_prediction"]),
    "dpmpp_2m_sde_trailing": (
        {"sampler": "dpmpp_2m_sde", "inference_steps": 20, "timestep_spacing": "trailing"},
        ["--sampler", "dpmpp_2m_sde", "--inference-steps", 20, "--timestep-spacing", "trailing"]),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sample_equals_cli(cli, tmp_path, name):
    options, flags = SAMPLERS[name]
    cli("sample", "--predictor", "gaussian", "--mean", 0.5, "--std", 0.3, "--shape", "6,5,7", "--seed", 5,
        "--first-sample", 2, "--backend", "cpu", "--out", tmp_path / "s.npy", *flags)
    sampler = ddpm.Sampler(backend="cpu", **options)
    x = sampler.sample(SHAPE, ddpm.GaussianPredictor(mean=0.5, std=0.3), seed=5, first_sample=2)
    np.testing.assert_array_equal(x, np.load(tmp_path / "s.npy"))


def test_gmm_sample_and_pieces_equal_cli(cli, tmp_path):
    spec = {"weights": [0.3, 0.7], "means": [[-1.0, 0.5], [1.0, -0.5]], "stds": [0.2, 0.4]}
    spec_path = tmp_path / "gmm.json"
    spec_path.write_text(__import__("json").dumps(spec))
    flags = ["--sampler", "ddim", "--inference-steps", 30, "--backend", "cpu", "--seed", 9]
    cli("sample", "--predictor", "gmm", "--gmm", spec_path, "--shape", "33,2", "--out", tmp_path / "g.npy", *flags)
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=30, backend="cpu")
    whole = sampler.sample((33, 2), ddpm.GmmPredictor(spec), seed=9)
    np.testing.assert_array_equal(whole, np.load(tmp_path / "g.npy"))
    # The same loop in two pieces, the second continuing from the first in place.
    t = sampler.timesteps
    x = sampler.sample((33, 2), ddpm.GmmPredictor(str(spec_path)), seed=9, end_step=t[11])
    sampler.sample(predictor=ddpm.GmmPredictor(spec), seed=9, initial=x, out=x, start_step=t[12])
    np.testing.assert_array_equal(x, whole)
