"""Predictors: Python callables against the built-ins, the digits model, descriptions."""

import numpy as np
import pytest

import ddpm
from conftest import gaussian_eps

MEAN, STD = 0.5, 0.3


@pytest.mark.parametrize("options", [{}, {"sampler": "ddim", "inference_steps": 50, "eta": 1.0}])
def test_callable_gaussian_equals_builtin(options):
    # The built-in predictor is fused into the step (computed inside the
    # kernel, in float32); the callable computes the same formula in float64
    # and the engine then runs its unfused loop. Each step differs by float
    # rounding only, so the samples agree to 1e-5 (measured: ~1e-6).
    sampler = ddpm.Sampler(backend="cpu", **options)
    schedule = sampler.schedule
    calls = []

    def predictor(x_t, t):
        calls.append(t)
        return gaussian_eps(x_t.astype(np.float64), t, schedule, MEAN, STD)

    x = sampler.sample((16, 40), predictor, seed=3)
    reference = sampler.sample((16, 40), ddpm.GaussianPredictor(MEAN, STD), seed=3)
    assert calls == sampler.timesteps
    np.testing.assert_allclose(x, reference, rtol=0, atol=1e-5)


def test_callable_equals_builtin_gmm_bit_for_bit_through_steps():
    # step() with the model output the built-in would produce is the loop: a
    # hand-written loop of step() calls equals sample() bit for bit.
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=25, eta=0.3, backend="cpu")
    x_T = np.random.default_rng(1).standard_normal((8, 12)).astype(np.float32)
    outputs = []

    def record(x_t, t):
        eps = gaussian_eps(x_t, t, sampler.schedule, MEAN, STD)
        outputs.append(eps)
        return eps

    sampled = sampler.sample(predictor=record, seed=4, initial=x_T)
    x = x_T.copy()
    for t, eps in zip(sampler.timesteps, outputs):
        x = sampler.step(x, eps, t, seed=4)
    np.testing.assert_array_equal(x, sampled)


def test_predictor_exception_propagates_unchanged():
    class Boom(Exception):
        pass

    def predictor(x_t, t):
        if t < 500:
            raise Boom(f"at {t}")
        return np.zeros_like(x_t)

    sampler = ddpm.Sampler(backend="cpu")
    with pytest.raises(Boom, match="at 499"):
        sampler.sample((2, 3), predictor)
    assert np.isfinite(sampler.sample((2, 3), ddpm.GaussianPredictor(), seed=1)).all()


def test_predictor_answers_are_checked():
    sampler = ddpm.Sampler(backend="cpu", inference_steps=2)
    with pytest.raises(ValueError, match=r"^the predictor returned shape \(2, 4\) but x_t has shape \(2, 3\)$"):
        sampler.sample((2, 3), lambda x, t: np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="^the predictor returned int64 values; it must return floating-point"):
        sampler.sample((2, 3), lambda x, t: np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="^predictor must be a ddpm predictor or a callable"):
        sampler.sample((2, 3), 42)


def test_callable_receives_labels_when_it_takes_them():
    seen = []

    def predictor(x_t, t, labels):
        seen.append(labels.copy())
        return np.zeros_like(x_t)

    sampler = ddpm.Sampler(backend="cpu", inference_steps=3)
    sampler.sample((4, 2), predictor, class_labels=[3, 1, 4, 1])
    assert len(seen) == 3
    for labels in seen:
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, [3, 1, 4, 1])
    with pytest.raises(TypeError, match="class_labels were given but the predictor takes only"):
        sampler.sample((4, 2), lambda x, t: x, class_labels=[0, 0, 0, 0])


def test_gmm_from_path_dict_and_description(tmp_path):
    spec = {"weights": [1.0], "means": [[0.25, -0.5]], "stds": [0.1]}
    path = tmp_path / "spec.json"
    path.write_text(__import__("json").dumps(spec))
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=40, backend="cpu")
    results = [sampler.sample((5, 2), p, seed=2) for p in (
        ddpm.GmmPredictor(spec), ddpm.GmmPredictor(path), ddpm.GmmPredictor(str(path)),
        ddpm.make_predictor({"type": "gmm", "path": str(path)}))]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert isinstance(ddpm.make_predictor('{"type": "gaussian"}'), ddpm.GaussianPredictor)
    with pytest.raises(ddpm.Error, match="weights"):
        ddpm.GmmPredictor({"weights": [0.5], "means": [[0.0]], "stds": [1.0]})


def test_per_element_gaussian_prior():
    means = np.linspace(-1, 1, 6, dtype=np.float32)
    predictor = ddpm.GaussianPredictor(mean=means, std=0.0)
    assert predictor.means == pytest.approx(list(means))
    x = ddpm.Sampler(backend="cpu").sample((3, 6), predictor, seed=1)
    np.testing.assert_allclose(x, np.broadcast_to(means, (3, 6)), atol=2e-3)


def test_digits_model_ddim_with_class_labels(digits_model):
    model = ddpm.MlpPredictor(digits_model, threads=2)
    assert model.prediction_type == "v_prediction"
    assert (model.num_classes, model.null_label, model.data_shape) == (10, 10, [8, 8])
    assert model.scheduler_config["num_train_timesteps"] == 1000
    sampler = ddpm.Sampler.for_model(model, backend="cpu", threads=2)
    options = sampler.options
    assert (options["sampler"], options["inference_steps"], options["timestep_spacing"]) == ("ddim", 50, "trailing")
    assert options["prediction_type"] == "v_prediction" and options["clip_x0"] is None
    labels = np.repeat(np.arange(10, dtype=np.int64), 2)
    # Unguided (with labels, sample() guides at the card's scale by default: test_guidance.py).
    x = sampler.sample((20, 8, 8), model, seed=7, class_labels=labels, guidance_scale=1.0)
    assert x.shape == (20, 8, 8) and np.isfinite(x).all()
    assert -1.5 < x.min() and x.max() < 1.5  # model space is [-1, 1]
    again = sampler.sample((20, 8, 8), model, seed=7, class_labels=labels, guidance_scale=1.0)
    np.testing.assert_array_equal(x, again)
    # The same run from the explicit options equals it bit for bit.
    explicit = ddpm.Sampler(sampler="ddim", inference_steps=50, timestep_spacing="trailing",
                            prediction_type="v_prediction", backend="cpu")
    np.testing.assert_array_equal(explicit.sample((20, 64), model, seed=7, class_labels=labels, guidance_scale=1.0),
                                  x.reshape(20, 64))
    with pytest.raises(ddpm.Error, match="the model predicts v_prediction"):
        ddpm.Sampler(backend="cpu", inference_steps=2).sample((1, 64), model)


def test_split_alignment_parts_equal_one_call(digits_model):
    model = ddpm.MlpPredictor(digits_model, threads=2)
    assert model.split_alignment == 64
    assert ddpm.GaussianPredictor(mean=0.0, std=1.0).split_alignment == 1
    sampler = ddpm.Sampler.for_model(model, backend="cpu", inference_steps=6)
    labels = np.arange(150, dtype=np.int64) % 10
    whole = sampler.sample((150, 64), model, seed=3, first_sample=40, class_labels=labels)
    # Parts cut at global samples 64 and 128 (rows 24 and 88 of this job).
    parts = [sampler.sample((e - b, 64), model, seed=3, first_sample=40 + b, class_labels=labels[b:e])
             for b, e in [(0, 24), (24, 88), (88, 150)]]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_load_model_creates_the_network_its_card_names(tmp_path):
    """ddpm.load_model reads the card's architecture: the digits model is an MlpPredictor."""
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "models", "digits.safetensors")
    model = ddpm.load_model(path, threads=1)
    assert isinstance(model, ddpm.MlpPredictor) and isinstance(model, ddpm.NetworkPredictor)
    assert model.architecture == "mlp_denoiser"
    direct = ddpm.MlpPredictor(path, threads=1)
    assert model.card == direct.card
    assert ddpm.Sampler.for_model(model).options == ddpm.Sampler.for_model(direct).options
    with pytest.raises(ddpm.Error, match="no such file|cannot"):
        ddpm.load_model(tmp_path / "missing.safetensors")
