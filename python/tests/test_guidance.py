"""Classifier-free guidance from Python: built-in unconditional priors, Python
callables with a null label, the model card's default scale, and the errors."""

import numpy as np
import pytest

import ddpm
from conftest import gaussian_eps

MEAN, STD = 0.5, 0.3
U_MEAN, U_STD = -0.25, 0.3
NULL = 7  # the test models' unconditional label


class GuidedGaussian(ddpm.Predictor):
    """E[eps | x_t] of N(MEAN, STD^2) for labelled rows, of N(U_MEAN, U_STD^2) for NULL rows."""

    unconditional_label = NULL

    def __init__(self, sampler):
        self.schedule = sampler.schedule
        self.calls = []

    def __call__(self, x_t, t, labels=None):
        self.calls.append((x_t.shape[0], None if labels is None else labels.copy()))
        x = x_t.astype(np.float64)
        conditional = gaussian_eps(x, t, self.schedule, MEAN, STD)
        unconditional = gaussian_eps(x, t, self.schedule, U_MEAN, U_STD)
        rows = (labels == NULL).reshape(-1, *([1] * (x.ndim - 1)))
        return np.where(rows, unconditional, conditional)


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m", "ddpm"])
@pytest.mark.parametrize("scale, rescale", [(3.0, 0.0), (0.0, 0.0), (5.0, 0.7)])
def test_callable_guidance_equals_builtin(name, scale, rescale):
    sampler = ddpm.Sampler(sampler=name, inference_steps=25, backend="cpu")
    model = GuidedGaussian(sampler)
    labels = np.arange(12) % 3
    x = sampler.sample((12, 10), model, seed=4, class_labels=labels, guidance_scale=scale,
                       guidance_rescale=rescale)
    builtin = ddpm.GaussianPredictor(MEAN, STD, unconditional=(U_MEAN, U_STD))
    reference = sampler.sample((12, 10), builtin, seed=4, guidance_scale=scale, guidance_rescale=rescale)
    np.testing.assert_allclose(x, reference, rtol=0, atol=1e-5)
    # One call of 2 x batch rows per step: the labels, then the null label.
    assert len(model.calls) == len(sampler.timesteps)
    for rows, seen in model.calls:
        assert rows == 24
        np.testing.assert_array_equal(seen, np.concatenate([labels, np.full(12, NULL)]))
    # The builtin with labels given (which it does not need) is the same.
    np.testing.assert_array_equal(
        sampler.sample((12, 10), builtin, seed=4, class_labels=labels, guidance_scale=scale,
                       guidance_rescale=rescale), reference)


def test_guidance_one_is_no_guidance():
    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=20, backend="cpu")
    model = GuidedGaussian(sampler)
    x = sampler.sample((4, 6), model, seed=1, class_labels=[0, 1, 2, 3], guidance_scale=1.0)
    assert all(rows == 4 for rows, _ in model.calls)
    np.testing.assert_allclose(x, sampler.sample((4, 6), ddpm.GaussianPredictor(MEAN, STD), seed=1), atol=1e-5)


def test_guided_gaussian_samples_the_extrapolated_law():
    # With equal stds, guidance w samples N(m_u + w (m_c - m_u), s^2) in the
    # continuous limit (issue 11's exact answer).
    sampler = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=50, backend="cpu")
    predictor = ddpm.GaussianPredictor(MEAN, STD, unconditional=(U_MEAN, STD))
    for w in (0.0, 2.0, 4.0):
        x = sampler.sample((4000, 4), predictor, seed=11, guidance_scale=w)
        target = U_MEAN + w * (MEAN - U_MEAN)
        assert abs(x.mean() - target) < 0.02, w
        assert abs(x.std() - STD) < 0.02, w


def test_gmm_unconditional_and_descriptions():
    spec = {"weights": [0.5, 0.5], "means": [[-1.0, 0.0], [1.0, 0.0]], "stds": [0.2, 0.2]}
    uncond = {"weights": [1.0], "means": [[0.0, 0.5]], "stds": [1.0]}
    predictor = ddpm.GmmPredictor(spec, unconditional=uncond)
    assert predictor.unconditional == uncond and predictor.unconditional_label == -1
    assert ddpm.GmmPredictor(spec).unconditional is None
    assert ddpm.GmmPredictor(spec).unconditional_label is None
    described = ddpm.make_predictor({"type": "gmm", **spec, "unconditional": uncond})
    sampler = ddpm.Sampler(sampler="euler_ancestral", inference_steps=20, backend="cpu")
    a = sampler.sample((9, 2), predictor, seed=2, guidance_scale=2.5)
    np.testing.assert_array_equal(a, sampler.sample((9, 2), described, seed=2, guidance_scale=2.5))
    assert not np.array_equal(a, sampler.sample((9, 2), predictor, seed=2))


def test_gaussian_unconditional_forms():
    p = ddpm.GaussianPredictor(0.5, 0.3, unconditional=(0.0, 1.0))
    assert p.unconditional == (0.0, 1.0) and p.unconditional_label == -1
    assert ddpm.GaussianPredictor().unconditional is None
    per_element = ddpm.GaussianPredictor(0.5, 0.3, unconditional=(np.zeros(3), [1.0, 2.0, 3.0]))
    assert per_element.unconditional == ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    described = ddpm.make_predictor({"type": "gaussian", "mean": 0.5, "std": 0.3,
                                     "unconditional": {"mean": 0.0, "std": 1.0}})
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=10, backend="cpu")
    np.testing.assert_array_equal(sampler.sample((3, 3), p, seed=1, guidance_scale=2.0),
                                  sampler.sample((3, 3), described, seed=1, guidance_scale=2.0))
    with pytest.raises(TypeError, match=r"unconditional must be None or a pair \(mean, std\)"):
        ddpm.GaussianPredictor(0.5, 0.3, unconditional=0.0)
    with pytest.raises(ddpm.Error, match="std"):
        ddpm.GaussianPredictor(0.5, 0.3, unconditional=(0.0, -1.0))


def test_guidance_errors():
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=5, backend="cpu")
    with pytest.raises(ddpm.Error, match="^classifier-free guidance needs an unconditional model, and this "
                                         "predictor has none"):
        sampler.sample((2, 3), ddpm.GaussianPredictor(), guidance_scale=3.0)
    guided = ddpm.GaussianPredictor(unconditional=(0.0, 1.0))
    with pytest.raises(ddpm.Error, match=r"^guidance rescale -0\.5 must be a finite number >= 0"):
        sampler.sample((2, 3), guided, guidance_scale=3.0, guidance_rescale=-0.5)
    with pytest.raises(ddpm.Error, match="^guidance rescale needs a guidance scale other than 1"):
        sampler.sample((2, 3), guided, guidance_rescale=0.7)
    with pytest.raises(ddpm.Error, match="^guidance scale inf is not finite"):
        sampler.sample((2, 3), guided, guidance_scale=float("inf"))
    with pytest.raises(TypeError, match="guidance_scale must be a number"):
        sampler.sample((2, 3), guided, guidance_scale="3")
    # Python callables: guidance needs the labels parameter and a null label.
    with pytest.raises(TypeError, match=r"^guidance_scale=3 calls the predictor with class labels .* but it takes "
                                        r"only \(x_t, t\)"):
        sampler.sample((2, 3), lambda x, t: x, class_labels=[0, 1], guidance_scale=3.0)
    with pytest.raises(ddpm.Error, match=r"^classifier-free guidance \(guidance_scale=3\) needs an unconditional "
                                         "model: give the predictor an unconditional_label attribute"):
        sampler.sample((2, 3), lambda x, t, labels: x, class_labels=[0, 1], guidance_scale=3.0)
    model = GuidedGaussian(sampler)
    with pytest.raises(ddpm.Error, match="^classifier-free guidance needs the class labels of the conditional rows"):
        sampler.sample((2, 3), model, guidance_scale=3.0)
    model.unconditional_label = "null"
    with pytest.raises(TypeError, match="unconditional_label must be an int or None"):
        sampler.sample((2, 3), model, class_labels=[0, 1], guidance_scale=3.0)


def test_default_guidance_scale_is_the_predictors():
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=10, backend="cpu")
    model = GuidedGaussian(sampler)
    labels = [0, 1, 2]
    plain = sampler.sample((3, 4), model, seed=1, class_labels=labels)
    model.guidance_scale = 2.0  # as a Python predictor recommends its scale
    np.testing.assert_array_equal(sampler.sample((3, 4), model, seed=1, class_labels=labels),
                                  sampler.sample((3, 4), model, seed=1, class_labels=labels, guidance_scale=2.0))
    assert not np.array_equal(sampler.sample((3, 4), model, seed=1, class_labels=labels), plain)
    np.testing.assert_array_equal(sampler.sample((3, 4), model, seed=1, class_labels=labels, guidance_scale=1),
                                  plain)


def test_digits_model_guides_at_the_cards_scale_by_default(digits_model):
    model = ddpm.MlpPredictor(digits_model, threads=2)
    assert model.guidance_scale == model.recommended_sampler["guidance_scale"] == 3.0
    assert model.unconditional_label == model.null_label == 10
    sampler = ddpm.Sampler.for_model(model, backend="cpu", threads=2)
    labels = np.arange(10)
    default = sampler.sample((10, 8, 8), model, seed=3, class_labels=labels)
    assert np.isfinite(default).all()
    np.testing.assert_array_equal(default, sampler.sample((10, 8, 8), model, seed=3, class_labels=labels,
                                                          guidance_scale=3.0))
    unguided = sampler.sample((10, 8, 8), model, seed=3, class_labels=labels, guidance_scale=1.0)
    assert not np.array_equal(default, unguided)
    # Without labels there is nothing to guide: the unconditional model alone
    # (the null label's rows, to float rounding: the network adds no label
    # embedding then).
    np.testing.assert_allclose(sampler.sample((10, 8, 8), model, seed=3),
                               sampler.sample((10, 8, 8), model, seed=3, class_labels=np.full(10, 10)), atol=1e-5)
    # A fast solver with guidance on the network.
    fast = ddpm.Sampler.for_model(model, sampler="dpmpp_2m", num_inference_steps=15, use_karras_sigmas=True,
                                  backend="cpu", threads=2)
    x = fast.sample((10, 8, 8), model, seed=3, class_labels=labels, guidance_rescale=0.7)
    assert np.isfinite(x).all() and -2 < x.min() and x.max() < 2  # model space is [-1, 1]; guided goes beyond
