"""diffusers UNet2DModel folders from Python: ddpm.load_model, the model called as
diffusers' UNet2DModel(x, t, class_labels).sample against diffusers' own outputs
(tests/data/diffusers/unet/), its configs, and sampling with Sampler.for_model."""

import json

import numpy as np
import pytest

import ddpm
from conftest import REPO

UNETS = REPO / "tests" / "data" / "diffusers" / "unet"
DIGITS_UNET = REPO / "models" / "digits-unet"


def read_safetensors(path):
    """The tensors of a safetensors file as float32 arrays, and its metadata (numpy only)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32"
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], np.float32).reshape(entry["shape"])
    return tensors, metadata


def relative_error(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def test_load_model_reads_a_folder_as_a_unet():
    model = ddpm.load_model(UNETS / "basic", threads=1)
    assert isinstance(model, ddpm.UNet2DPredictor)
    assert model.architecture == "UNet2DModel"
    assert model.config["block_out_channels"] == [8, 16]
    assert model.scheduler_config is None  # a bare model folder
    assert model.sample_shape == [3, 8, 8]
    assert model.parameter_count == 45259


@pytest.mark.parametrize("folder", ["basic", "ddpm_cifar_like", "class_scale_shift", "heads_no_mid_attention",
                                    "no_mid_block_centered", "class_attn_groups"])
def test_calling_the_model_is_diffusers_unet2dmodel(folder):
    model = ddpm.load_model(UNETS / folder)
    cases, _ = read_safetensors(UNETS / folder / "cases.safetensors")
    for k in range(6):
        labels = cases.get(f"case_{k}.class_labels")
        # Timesteps as arrays keep fractional times, as diffusers' tensors do.
        out = model(cases[f"case_{k}.sample"], cases[f"case_{k}.timestep"],
                    None if labels is None else labels.astype(np.int64))
        assert out.dtype == np.float32
        assert relative_error(out, cases[f"case_{k}.output"]) < 1e-4, (folder, k)


def test_a_python_number_timestep_is_truncated_as_diffusers_does():
    model = ddpm.load_model(UNETS / "basic")
    cases, _ = read_safetensors(UNETS / "basic" / "cases.safetensors")
    x = cases["case_0.sample"]
    np.testing.assert_array_equal(model(x, 17.9), model(x, np.array(17.0, np.float32)))
    assert not np.array_equal(model(x, 17.9), model(x, np.array(17.9, np.float32)))


def test_the_fp16_variant_and_its_refusals():
    full = ddpm.load_model(UNETS / "basic")
    half = ddpm.load_model(UNETS / "basic", variant="fp16")
    cases, _ = read_safetensors(UNETS / "basic" / "cases.safetensors")
    out = half(cases["case_2.sample"], cases["case_2.timestep"])
    assert relative_error(out, cases["fp16.case_2.output"]) < 1e-4
    assert relative_error(full(cases["case_2.sample"], cases["case_2.timestep"]), out) > 1e-4
    with pytest.raises(ddpm.Error, match="fp8.safetensors for --variant fp8"):
        ddpm.load_model(UNETS / "basic", variant="fp8")
    with pytest.raises(ddpm.Error, match=r'"time_embedding_type" is "fourier"'):
        ddpm.load_model(UNETS / "hostile" / "time_embedding_fourier")
    with pytest.raises(ddpm.Error, match="non-finite value"):
        ddpm.load_model(UNETS / "hostile" / "nan_weight")
    with pytest.raises(ddpm.Error, match="precision"):
        ddpm.load_model(UNETS / "basic", precision="fp64")


def test_a_pipeline_folder_brings_its_scheduler_and_samples_digits():
    model = ddpm.load_model(DIGITS_UNET, threads=2)
    assert model.scheduler_config["_class_name"] == "DDPMScheduler"
    assert model.prediction_type == "v_prediction"
    assert model.null_label == 10
    sampler = ddpm.Sampler.for_model(model, sampler="ddim", num_inference_steps=20)
    assert sampler.options["prediction_type"] == "v_prediction"
    x = sampler.sample((10, 1, 16, 16), model, class_labels=list(range(10)), guidance_scale=2.0, seed=3)
    assert x.shape == (10, 1, 16, 16) and np.isfinite(x).all()
    # The same loop ends where diffusers' does (tests/test_unet2d.cpp checks the
    # values); here, that each sample is its own: one row alone gives its bits.
    one = sampler.sample((1, 1, 16, 16), model, class_labels=[4], guidance_scale=2.0, seed=3, first_sample=4)
    np.testing.assert_array_equal(one[0], x[4])


def test_sampling_at_another_size_resizes_the_unet():
    model = ddpm.load_model(UNETS / "pipeline")
    sampler = ddpm.Sampler.for_model(model, sampler="ddim", num_inference_steps=2)
    x = sampler.sample((2, 3, 8, 24), model, seed=1)
    assert x.shape == (2, 3, 8, 24) and np.isfinite(x).all()
    assert model.sample_shape == [3, 8, 24]
    with pytest.raises(ddpm.Error, match="multiples of 8"):
        sampler.sample((2, 3, 12, 12), model, seed=1)


def test_calls_refuse_float_labels_and_wrong_channels():
    model = ddpm.load_model(UNETS / "class_scale_shift")
    x = np.zeros((2, 1, 8, 12), np.float32)
    with pytest.raises(TypeError, match="integers"):
        model(x, 5, [1.5, 0.0])
    with pytest.raises(ValueError, match=r"takes \[batch, 1, height, width\]"):
        model(np.zeros((2, 3, 8, 12), np.float32), 5, [1, 0])
