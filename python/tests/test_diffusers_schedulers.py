"""ddpm.diffusers against diffusers itself (needs torch and diffusers; skipped without them).

The full-loop tests are diffusers' own (tests/schedulers/test_scheduler_*.py,
huggingface/diffusers at 58eb52c0): their dummy model and samples, their loops
(the Euler ones hand step() the scaled sample, as theirs do), torch's generator,
and their expected figures and tolerances. Each loop also runs with diffusers'
own scheduler and must agree with it to float rounding.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="ddpm.diffusers' tests need torch (pip install torch)")
diffusers = pytest.importorskip("diffusers", reason="ddpm.diffusers' tests need diffusers (pip install diffusers)")

import ddpm  # noqa: E402
import ddpm.diffusers as dd  # noqa: E402


# --- diffusers' SchedulerCommonTest fixtures (tests/schedulers/test_schedulers.py) ---
def dummy_model():
    def model(sample, t, *args):
        if isinstance(t, torch.Tensor):
            t = t.reshape(-1, *(1,) * (len(sample.shape) - 1)).to(sample.device, dtype=sample.dtype)
        return sample * t / (t + 1)

    return model


def _deter(flip):
    num_elems = 4 * 3 * 8 * 8
    sample = torch.arange(num_elems)
    if flip:
        sample = sample.flip(-1)
    return (sample.reshape(3, 8, 8, 4) / num_elems).permute(3, 0, 1, 2)


def dummy_sample_deter():
    return _deter(False)


def dummy_noise_deter():
    return _deter(True)


# --- the loops of diffusers' full-loop tests ---
def ddpm_loop(scheduler, with_noise=False):
    model, sample, generator = dummy_model(), dummy_sample_deter(), torch.manual_seed(0)
    if with_noise:
        timesteps = scheduler.timesteps[(len(scheduler) - 2) * scheduler.order:]
        sample = scheduler.add_noise(sample, dummy_noise_deter(), timesteps[:1])
    else:
        timesteps = reversed(range(len(scheduler)))
    for t in timesteps:
        sample = scheduler.step(model(sample, t), t, sample, generator=generator).prev_sample
    return sample


def ddim_loop(scheduler, with_noise=False):
    model, sample = dummy_model(), dummy_sample_deter()
    scheduler.set_timesteps(10)
    timesteps = scheduler.timesteps
    if with_noise:
        timesteps = timesteps[8 * scheduler.order:]
        sample = scheduler.add_noise(sample, dummy_noise_deter(), timesteps[:1])
    for t in timesteps:
        sample = scheduler.step(model(sample, t), t, sample, 0.0).prev_sample
    return sample


def euler_loop(scheduler, with_noise=False, device=None):
    steps = 10
    scheduler.set_timesteps(steps, device=device)
    generator = torch.manual_seed(0)
    model = dummy_model()
    init_noise_sigma = scheduler.init_noise_sigma
    if isinstance(init_noise_sigma, torch.Tensor):
        init_noise_sigma = init_noise_sigma.cpu()
    sample = dummy_sample_deter() * init_noise_sigma
    timesteps = scheduler.timesteps
    if with_noise:
        timesteps = timesteps[(steps - 2) * scheduler.order:]
        sample = scheduler.add_noise(sample, dummy_noise_deter(), timesteps[:1])
    for t in timesteps:
        sample = scheduler.scale_model_input(sample, t)
        sample = scheduler.step(model(sample, t), t, sample, generator=generator).prev_sample
    return sample


def heun_loop(scheduler, device=None):
    # test_scheduler_heun.py's loop: euler_loop's, without a generator (Heun's step takes none)
    scheduler.set_timesteps(10, device=device)
    model = dummy_model()
    sample = dummy_sample_deter() * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        sample = scheduler.scale_model_input(sample, t)
        sample = scheduler.step(model(sample, t), t, sample).prev_sample
    return sample


def unipc_loop(scheduler):
    # test_scheduler_unipc.py's full_loop
    model, sample = dummy_model(), dummy_sample_deter()
    scheduler.set_timesteps(10)
    for t in scheduler.timesteps:
        sample = scheduler.step(model(sample, t), t, sample).prev_sample
    return sample


def dpm_loop(scheduler, with_noise=False):
    model, sample = dummy_model(), dummy_sample_deter()
    scheduler.set_timesteps(10)
    generator = torch.manual_seed(0)
    timesteps = scheduler.timesteps
    if with_noise:
        timesteps = timesteps[5 * scheduler.order:]
        sample = scheduler.add_noise(sample, dummy_noise_deter(), timesteps[:1])
        generator = None
    for t in timesteps:
        sample = scheduler.step(model(sample, t), t, sample, generator=generator).prev_sample
    return sample


DDPM_CONFIG = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                   variance_type="fixed_small", clip_sample=True)
DDIM_CONFIG = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                   clip_sample=True)
EULER_CONFIG = dict(num_train_timesteps=1100, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")
DPM_CONFIG = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                  solver_order=2, prediction_type="epsilon", thresholding=False, sample_max_value=1.0,
                  algorithm_type="dpmsolver++", solver_type="midpoint", lower_order_final=False,
                  euler_at_final=False, lambda_min_clipped=-float("inf"), variance_type=None,
                  final_sigmas_type="sigma_min")


HEUN_CONFIG = dict(num_train_timesteps=1100, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")
UNIPC_CONFIG = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                    solver_order=2, solver_type="bh2", final_sigmas_type="sigma_min")


def _case(test, name, loop, config, total, mean, **loop_args):
    return pytest.param(name, loop, config, total, mean, loop_args, id=test)


def with_double_tables(scheduler):
    """diffusers' DDPMScheduler with float64 betas and alpha_bar, as ddpm's tables are.

    Its float32 alphas_cumprod rounds 1 - alpha_bar near t = 0 coarsely (1.5e-4
    relative at t = 1: alpha_bar_1 = 0.99978, an ulp of 6e-8), which moves its
    figures there."""
    T = scheduler.config.num_train_timesteps
    scheduler.betas = torch.linspace(scheduler.config.beta_start, scheduler.config.beta_end, T, dtype=torch.float64)
    scheduler.alphas = 1.0 - scheduler.betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, dim=0)
    return scheduler


# (diffusers' test, scheduler, loop, config, expected sum (None: the test checks
# only the mean), expected mean); tolerances 1e-2 on the sum, 1e-3 on the mean.
# (diffusers' Heun and UniPC tests allow 1e-2 on some means; 1e-3 holds here.)
FULL_LOOPS = [
    _case("ddpm.test_full_loop_no_noise", "DDPMScheduler", ddpm_loop, DDPM_CONFIG, 258.9606, 0.3372),
    _case("ddpm.test_full_loop_with_v_prediction", "DDPMScheduler", ddpm_loop,
          dict(DDPM_CONFIG, prediction_type="v_prediction"), 202.0296, 0.2631),
    _case("ddpm.test_full_loop_with_noise", "DDPMScheduler", ddpm_loop, DDPM_CONFIG, 387.9466, 0.5051,
          with_noise=True),
    _case("ddim.test_full_loop_no_noise", "DDIMScheduler", ddim_loop, DDIM_CONFIG, 172.0067, 0.223967),
    _case("ddim.test_full_loop_with_v_prediction", "DDIMScheduler", ddim_loop,
          dict(DDIM_CONFIG, prediction_type="v_prediction"), 52.5302, 0.0684),
    _case("ddim.test_full_loop_with_set_alpha_to_one", "DDIMScheduler", ddim_loop,
          dict(DDIM_CONFIG, set_alpha_to_one=True, beta_start=0.01), 149.8295, 0.1951),
    _case("ddim.test_full_loop_with_no_set_alpha_to_one", "DDIMScheduler", ddim_loop,
          dict(DDIM_CONFIG, set_alpha_to_one=False, beta_start=0.01), 149.0784, 0.1941),
    _case("ddim.test_full_loop_with_noise", "DDIMScheduler", ddim_loop, DDIM_CONFIG, 354.5418, 0.4616,
          with_noise=True),
    _case("euler.test_full_loop_no_noise", "EulerDiscreteScheduler", euler_loop, EULER_CONFIG, 10.0807, 0.0131),
    _case("euler.test_full_loop_with_v_prediction", "EulerDiscreteScheduler", euler_loop,
          dict(EULER_CONFIG, prediction_type="v_prediction"), 0.0002, 2.2676e-06),
    _case("euler.test_full_loop_device", "EulerDiscreteScheduler", euler_loop, EULER_CONFIG, 10.0807, 0.0131,
          device="cpu"),
    _case("euler.test_full_loop_device_karras_sigmas", "EulerDiscreteScheduler", euler_loop,
          dict(EULER_CONFIG, use_karras_sigmas=True), 124.52299499511719, 0.16213932633399963, device="cpu"),
    _case("euler.test_full_loop_with_noise", "EulerDiscreteScheduler", euler_loop, EULER_CONFIG,
          57062.9297, 74.3007, with_noise=True),
    _case("euler_ancestral.test_full_loop_no_noise", "EulerAncestralDiscreteScheduler", euler_loop,
          EULER_CONFIG, 152.3192, 0.1983),
    _case("euler_ancestral.test_full_loop_with_v_prediction", "EulerAncestralDiscreteScheduler", euler_loop,
          dict(EULER_CONFIG, prediction_type="v_prediction"), 108.4439, 0.1412),
    _case("euler_ancestral.test_full_loop_device", "EulerAncestralDiscreteScheduler", euler_loop, EULER_CONFIG,
          152.3192, 0.1983, device="cpu"),
    _case("euler_ancestral.test_full_loop_with_noise", "EulerAncestralDiscreteScheduler", euler_loop,
          EULER_CONFIG, 56163.0508, 73.1290, with_noise=True),
    _case("dpm_multi.test_full_loop_no_noise", "DPMSolverMultistepScheduler", dpm_loop, DPM_CONFIG, None, 0.3301),
    _case("dpm_multi.test_full_loop_with_noise", "DPMSolverMultistepScheduler", dpm_loop, DPM_CONFIG,
          318.4111, 0.4146, with_noise=True),
    _case("dpm_multi.test_full_loop_no_noise_thres", "DPMSolverMultistepScheduler", dpm_loop,
          dict(DPM_CONFIG, thresholding=True, dynamic_thresholding_ratio=0.87, sample_max_value=0.5), None, 1.1364),
    _case("dpm_multi.test_full_loop_with_v_prediction", "DPMSolverMultistepScheduler", dpm_loop,
          dict(DPM_CONFIG, prediction_type="v_prediction"), None, 0.2251),
    _case("dpm_multi.test_full_loop_with_karras_and_v_prediction", "DPMSolverMultistepScheduler", dpm_loop,
          dict(DPM_CONFIG, prediction_type="v_prediction", use_karras_sigmas=True), None, 0.2096),
    _case("dpm_multi.test_full_loop_with_lu_and_v_prediction", "DPMSolverMultistepScheduler", dpm_loop,
          dict(DPM_CONFIG, prediction_type="v_prediction", use_lu_lambdas=True), None, 0.1554),
    _case("heun.test_full_loop_no_noise", "HeunDiscreteScheduler", heun_loop, HEUN_CONFIG, 0.1233, 0.0002),
    _case("heun.test_full_loop_with_v_prediction", "HeunDiscreteScheduler", heun_loop,
          dict(HEUN_CONFIG, prediction_type="v_prediction"), 4.6934e-07, 6.1112e-10),
    _case("heun.test_full_loop_device", "HeunDiscreteScheduler", heun_loop, HEUN_CONFIG, 0.1233, 0.0002,
          device="cpu"),
    _case("heun.test_full_loop_device_karras_sigmas", "HeunDiscreteScheduler", heun_loop,
          dict(HEUN_CONFIG, use_karras_sigmas=True), 0.00015, 1.9869554535034695e-07, device="cpu"),
    _case("unipc.test_full_loop_no_noise", "UniPCMultistepScheduler", unipc_loop, UNIPC_CONFIG, None, 0.2464),
    _case("unipc.test_full_loop_with_karras", "UniPCMultistepScheduler", unipc_loop,
          dict(UNIPC_CONFIG, use_karras_sigmas=True), None, 0.2925),
    _case("unipc.test_full_loop_with_v_prediction", "UniPCMultistepScheduler", unipc_loop,
          dict(UNIPC_CONFIG, prediction_type="v_prediction"), None, 0.1014),
    _case("unipc.test_full_loop_with_karras_and_v_prediction", "UniPCMultistepScheduler", unipc_loop,
          dict(UNIPC_CONFIG, prediction_type="v_prediction", use_karras_sigmas=True), None, 0.1966),
]


# ddpm.test_full_loop_with_noise (two steps from t = 1) is the one figure ddpm
# does not reproduce to the test's 1e-2: its sum is 387.9672, not 387.9466,
# because diffusers' float32 alphas_cumprod makes 1 - alpha_bar_1 1.5e-4 too
# large; diffusers itself, given double tables, sums to 387.9669.
FLOAT32_TABLES_DECIDE = {"ddpm.test_full_loop_with_noise"}


@pytest.mark.parametrize("name, loop, config, total, mean, loop_args", FULL_LOOPS)
def test_diffusers_full_loop_tests_pass(request, name, loop, config, total, mean, loop_args):
    ours = loop(getattr(dd, name)(**config), **loop_args)
    theirs = getattr(diffusers, name)(**config)
    if name == "DDPMScheduler":  # 1000 steps, or steps near t = 0: compare with diffusers on ddpm's tables
        theirs = with_double_tables(theirs)
    theirs = loop(theirs, **loop_args)
    assert ours.dtype == theirs.dtype == torch.float32 and ours.shape == theirs.shape
    assert abs(torch.mean(torch.abs(ours)).item() - mean) < 1e-3
    if total is not None:
        if request.node.callspec.id in FLOAT32_TABLES_DECIDE:
            on_float32_tables = loop(getattr(diffusers, name)(**config), **loop_args)
            assert abs(torch.sum(torch.abs(on_float32_tables)).item() - total) < 1e-2
            assert abs(torch.sum(torch.abs(theirs)).item() - total) > 1e-2
            total = torch.sum(torch.abs(theirs)).item()
        assert abs(torch.sum(torch.abs(ours)).item() - total) < 1e-2
    # and element by element with diffusers' own run, to float rounding
    scale = torch.max(torch.abs(theirs)).item()
    assert torch.max(torch.abs(ours - theirs)).item() <= CANCELLATION.get(request.node.callspec.id, 1e-5) * scale


# Loops whose result is a small difference of large numbers: Heun with Karras
# sigmas ends at 4e-7 from a start of 25 (its last step, to sigma 0, cancels
# x against sigma eps), so float32 rounding of the earlier states is a larger
# share of the result. Measured: 4.7e-5 of the result's scale (1.9e-11).
CANCELLATION = {"heun.test_full_loop_device_karras_sigmas": 1e-4}


def test_dpm_solver_switch_and_fp16():
    # test_dpm_multi.py's test_switch (the config through DPM-Solver singlestep,
    # UniPC and DEIS and back) and test_fp16_support.
    scheduler = dd.DPMSolverMultistepScheduler(**DPM_CONFIG)
    assert abs(torch.mean(torch.abs(dpm_loop(scheduler))).item() - 0.3301) < 1e-3
    config = scheduler.config
    for name in ("DPMSolverSinglestepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler"):
        config = getattr(diffusers, name).from_config(config).config
    scheduler = dd.DPMSolverMultistepScheduler.from_config(config)
    assert abs(torch.mean(torch.abs(dpm_loop(scheduler))).item() - 0.3301) < 1e-3
    # (diffusers' test_fp16_support also turns thresholding on with ratio 0,
    # which ddpm refuses: its ratio is a quantile in (0, 1].)
    with pytest.raises(ddpm.Error, match="ratio"):
        dd.DPMSolverMultistepScheduler(**dict(DPM_CONFIG, thresholding=True, dynamic_thresholding_ratio=0))
    half = dd.DPMSolverMultistepScheduler(**DPM_CONFIG)
    half.set_timesteps(10)
    model, sample = dummy_model(), dummy_sample_deter().half()
    for t in half.timesteps:
        sample = half.step(model(sample, t), t, sample).prev_sample
    assert sample.dtype == torch.float16


@pytest.mark.parametrize("config", [
    dict(DPM_CONFIG, solver_order=3),
    dict(DPM_CONFIG, solver_order=3, final_sigmas_type="zero", lower_order_final=True),
    dict(DPM_CONFIG, solver_order=3, prediction_type="v_prediction", use_karras_sigmas=True,
         final_sigmas_type="zero"),
    dict(DPM_CONFIG, solver_order=3, prediction_type="sample", thresholding=True, dynamic_thresholding_ratio=0.87,
         sample_max_value=0.5),
], ids=["sigma_min", "zero_lower_order_final", "karras_v", "thresholding"])
def test_dpm_solver_order_three_matches_diffusers(config):
    # DPM-Solver++(3M): ddpm's dpmpp_3m rule, the engine's loop history handed from step() to step().
    ours = dd.DPMSolverMultistepScheduler(**config)
    ours.set_timesteps(10)
    assert ours.timesteps.dtype == torch.int64
    ours = dpm_loop(ours)
    theirs = dpm_loop(diffusers.DPMSolverMultistepScheduler(**config))
    scale = torch.max(torch.abs(theirs)).item()
    assert torch.max(torch.abs(ours - theirs)).item() <= 1e-5 * scale
    # DPM-Solver++(3M) SDE: the same loop drawing from the same torch generator.
    sde = dict(config, algorithm_type="sde-dpmsolver++")
    ours, theirs = dpm_loop(dd.DPMSolverMultistepScheduler(**sde)), dpm_loop(diffusers.DPMSolverMultistepScheduler(**sde))
    scale = torch.max(torch.abs(theirs)).item()
    assert torch.max(torch.abs(ours - theirs)).item() <= 1e-5 * scale


def test_dpm_solver_order_three_refuses_the_loop_diffusers_ends_in_nan():
    # Karras sigmas ending at sigma_min repeat the last sigma: the last step
    # has h = 0, and diffusers' third-order update divides by it (its loop
    # ends in NaN); ddpm's plan marks that step, and step() refuses it.
    config = dict(DPM_CONFIG, solver_order=3, use_karras_sigmas=True)
    theirs = dpm_loop(diffusers.DPMSolverMultistepScheduler(**config))
    assert torch.isnan(theirs).all()
    scheduler = dd.DPMSolverMultistepScheduler(**config)
    with pytest.raises(ddpm.Error, match="timestep 0 has a coefficient of -?nan"):
        dpm_loop(scheduler)
    assert scheduler.step_index == 9
    plan = ddpm.Sampler.from_scheduler(scheduler).plan
    assert [bool(step.error) for step in plan] == [False] * 9 + [True]


def test_unipc_switch_fp16_and_a_loop_started_part_way():
    # test_scheduler_unipc.py's test_switch: the config through DPM-Solver
    # singlestep, DEIS and DPM-Solver multistep and back.
    scheduler = dd.UniPCMultistepScheduler(**UNIPC_CONFIG)
    assert abs(torch.mean(torch.abs(unipc_loop(scheduler))).item() - 0.2464) < 1e-3
    config = scheduler.config
    for name in ("DPMSolverSinglestepScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler"):
        config = getattr(diffusers, name).from_config(config).config
    scheduler = dd.UniPCMultistepScheduler.from_config(config)
    assert scheduler.config.solver_type == "bh2"
    assert abs(torch.mean(torch.abs(unipc_loop(scheduler))).item() - 0.2464) < 1e-3
    # test_fp16_support without its thresholding ratio 0, which ddpm refuses (a quantile is in (0, 1])
    for order in (1, 2, 3):
        for solver_type in ("bh1", "bh2"):
            half = dd.UniPCMultistepScheduler(**dict(UNIPC_CONFIG, solver_order=order, solver_type=solver_type))
            half.set_timesteps(10)
            model, sample = dummy_model(), dummy_sample_deter().half()
            for t in half.timesteps:
                sample = half.step(model(sample, t), t, sample).prev_sample
            assert sample.dtype == torch.float16 and torch.isfinite(sample).all()
    # test_full_loop_with_noise starts at step 8 of 10, where diffusers restarts
    # its orders (first order, no corrector): ddpm's plan is the whole loop's,
    # so that step is refused by name (diffusers' figures: sum 315.5757, mean 0.4109).
    scheduler = dd.UniPCMultistepScheduler(**UNIPC_CONFIG)
    scheduler.set_timesteps(10)
    timesteps = scheduler.timesteps[8 * scheduler.order:]
    sample = scheduler.add_noise(dummy_sample_deter(), dummy_noise_deter(), timesteps[:1])
    reference = diffusers.UniPCMultistepScheduler(**UNIPC_CONFIG)
    reference.set_timesteps(10)
    torch.testing.assert_close(sample, reference.add_noise(dummy_sample_deter(), dummy_noise_deter(), timesteps[:1]))
    with pytest.raises(ddpm.Error, match="cannot take step 8 of 10 without the steps before it"):
        scheduler.step(dummy_model()(sample, timesteps[0]), timesteps[0], sample)


@pytest.mark.parametrize("algorithm_type", ["dpmsolver++", "sde-dpmsolver++"])
def test_dpm_solver_loop_matches_diffusers(algorithm_type):
    config = dict(DPM_CONFIG, final_sigmas_type="zero", algorithm_type=algorithm_type)
    for with_noise in (False, True):
        ours = dpm_loop(dd.DPMSolverMultistepScheduler(**config), with_noise=with_noise)
        if algorithm_type == "sde-dpmsolver++" and with_noise:
            continue  # diffusers' loop draws from torch's global generator there
        theirs = dpm_loop(diffusers.DPMSolverMultistepScheduler(**config), with_noise=with_noise)
        scale = torch.max(torch.abs(theirs)).item()
        assert torch.max(torch.abs(ours - theirs)).item() <= 1e-5 * scale, with_noise


# --- diffusers' pipelines with ddpm's scheduler swapped in ---
def tiny_unet():
    torch.manual_seed(0)  # a seeded random init
    return diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(32, 32), norm_num_groups=8,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()


def _run(pipe, **kwargs):
    return pipe(batch_size=2, generator=torch.manual_seed(3), output_type="np", **kwargs).images


def taking_pipeline_keywords(name):
    """diffusers' class of that name, its step() taking the keywords DDPMPipeline and DDIMPipeline pass
    (generator, eta, use_clipped_model_output), which diffusers' Heun and UniPC step() do not take
    (ddpm's classes take them all)."""
    base = getattr(diffusers, name)
    if "generator" in base.step.__code__.co_varnames:
        return base

    def step(self, model_output, timestep, sample, eta=0.0, use_clipped_model_output=False, generator=None,
             **kwargs):
        return base.step(self, model_output, timestep, sample, **kwargs)

    return type(name, (base,), {"step": step})


@pytest.mark.parametrize("pipeline, name, config, kwargs", [
    ("DDPMPipeline", "DDPMScheduler", {}, {"num_inference_steps": 20}),
    ("DDPMPipeline", "DDPMScheduler", {"variance_type": "fixed_large", "prediction_type": "v_prediction"},
     {"num_inference_steps": 15}),
    ("DDIMPipeline", "DDIMScheduler", {}, {"num_inference_steps": 12}),
    ("DDIMPipeline", "DDIMScheduler", {"timestep_spacing": "trailing"}, {"num_inference_steps": 12, "eta": 1.0}),
    ("DDPMPipeline", "DPMSolverMultistepScheduler", {}, {"num_inference_steps": 12}),
    ("DDPMPipeline", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++",
                                                     "use_karras_sigmas": True}, {"num_inference_steps": 12}),
    # (v and sample prediction: with the random UNet's eps the solvers' images
    # leave [-1, 1], and the pipeline's clamp would leave little to compare)
    ("DDIMPipeline", "DPMSolverMultistepScheduler", {"solver_order": 3, "prediction_type": "v_prediction"},
     {"num_inference_steps": 12}),
    ("DDPMPipeline", "UniPCMultistepScheduler", {"prediction_type": "v_prediction"}, {"num_inference_steps": 12}),
    ("DDPMPipeline", "UniPCMultistepScheduler", {"prediction_type": "sample", "thresholding": True},
     {"num_inference_steps": 12}),
    ("DDIMPipeline", "UniPCMultistepScheduler", {"solver_order": 3, "use_karras_sigmas": True,
                                                 "prediction_type": "v_prediction"}, {"num_inference_steps": 12}),
])
def test_pipelines_with_ddpm_scheduler_equal_diffusers(pipeline, name, config, kwargs):
    # The generator draws x_T and each step's noise alike for both schedulers,
    # so the stochastic samplers agree sample by sample too. DDIMPipeline makes
    # the scheduler it is built with a DDIMScheduler; one assigned afterwards
    # runs as it is. Its loop is DDPMPipeline's (with eta=0 and
    # use_clipped_model_output passed to step()), so diffusers' own multistep
    # schedulers are run in DDPMPipeline for the reference.
    unet = tiny_unet()
    reference = pipeline if name == "DDIMScheduler" or pipeline == "DDPMPipeline" else "DDPMPipeline"
    scheduler = taking_pipeline_keywords(name)(**config)
    pipe = getattr(diffusers, reference)(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    theirs = _run(pipe, **kwargs)
    pipe = getattr(diffusers, pipeline)(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = getattr(dd, name).from_config(scheduler.config)
    assert type(pipe.scheduler).__module__ == "ddpm.diffusers"
    ours = _run(pipe, **kwargs)
    assert ours.shape == theirs.shape and np.isfinite(ours).all()
    if name in ("UniPCMultistepScheduler",) or config.get("solver_order") == 3:
        assert ((theirs > 0) & (theirs < 1)).mean() > 0.5  # most pixels inside the clamp: a real comparison
    # Images in [0, 1]. Measured: up to 9e-6, and 5e-5 for DDIM's leading
    # spacing, whose last step (t = 0) divides by sqrt(alpha_bar) in float32
    # tables (2.7e-5 with diffusers on double tables).
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
                                  "HeunDiscreteScheduler"])
def test_sigma_space_schedulers_in_a_scaling_loop_equal_diffusers(name):
    # DDPMPipeline and DDIMPipeline apply neither init_noise_sigma nor
    # scale_model_input; diffusers' other pipelines loop like this.
    unet = tiny_unet()

    def sample(scheduler):
        scheduler.set_timesteps(12)
        generator = torch.manual_seed(5)
        x = torch.randn((2, 3, 8, 8), generator=generator) * scheduler.init_noise_sigma
        with torch.no_grad():
            for t in scheduler.timesteps:
                eps = unet(scheduler.scale_model_input(x, t), t).sample
                x = scheduler.step(eps, t, x, generator=generator).prev_sample
        return x

    theirs = sample(taking_pipeline_keywords(name)())
    ours = sample(getattr(dd, name).from_config(getattr(diffusers, name)().config))
    scale = torch.max(torch.abs(theirs)).item()
    assert torch.max(torch.abs(ours - theirs)).item() <= 2e-5 * scale


def test_keyed_noise_does_not_depend_on_the_batch():
    # Without a generator, each row's noise is ddpm's (seed, global row, step):
    # a batch of 8 is the first 8 rows of a batch of 64, and first_sample=8
    # makes a batch of 8 the next 8 rows.
    inputs = torch.linspace(-1, 1, 64 * 12).reshape(64, 3, 2, 2)

    def run(x, first_sample=0):
        scheduler = dd.DDPMScheduler()
        scheduler.seed, scheduler.first_sample = 11, first_sample
        scheduler.set_timesteps(10)
        for t in scheduler.timesteps:
            x = scheduler.step(0.3 * x, t, x).prev_sample
        return x

    large = run(inputs)
    assert torch.equal(run(inputs[:8]), large[:8])
    assert torch.equal(run(inputs[8:16], first_sample=8), large[8:16])
    assert not torch.equal(large[:8], large[8:16])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_inputs_keep_their_dtype(dtype):
    scheduler = dd.EulerAncestralDiscreteScheduler()
    scheduler.set_timesteps(5)
    x = dummy_sample_deter().to(dtype)
    out = scheduler.step(0.5 * x, scheduler.timesteps[0], x, generator=torch.manual_seed(0))
    assert out.prev_sample.dtype == dtype and out.pred_original_sample.dtype == dtype
    assert torch.isfinite(out.prev_sample.float()).all()


def test_scheduler_api():
    scheduler = dd.EulerDiscreteScheduler.from_config(diffusers.DDPMScheduler().config)
    reference = diffusers.EulerDiscreteScheduler.from_config(diffusers.DDPMScheduler().config)
    for s in (scheduler, reference):
        s.set_timesteps(12)  # fractional timesteps
    assert len(scheduler) == 1000 and scheduler.order == 1
    assert scheduler.timesteps.dtype == reference.timesteps.dtype == torch.float32
    torch.testing.assert_close(scheduler.timesteps, reference.timesteps)
    torch.testing.assert_close(scheduler.sigmas, reference.sigmas)
    assert float(scheduler.init_noise_sigma) == pytest.approx(float(reference.init_noise_sigma), rel=1e-6)
    assert scheduler.step_index is None and scheduler.begin_index is None
    x = dummy_sample_deter()
    torch.testing.assert_close(scheduler.scale_model_input(x, scheduler.timesteps[0]),
                               reference.scale_model_input(x, reference.timesteps[0]))
    assert scheduler.step_index == 0
    # add_noise at a fractional timestep of the loop
    t = scheduler.timesteps[3:4]
    assert t.item() != int(t.item())
    noise = dummy_noise_deter()
    torch.testing.assert_close(scheduler.add_noise(x, noise, t), reference.add_noise(x, noise, t))
    # a pipeline that starts part way (img2img) sets the first step's index
    outs = []
    for s in (scheduler, reference):
        s.set_timesteps(12)
        s.set_begin_index(2)
        assert s.begin_index == 2 and s.step_index is None
        outs.append(s.step(x, s.timesteps[2], x, return_dict=False))
        assert s.step_index == 3
    assert len(outs[0]) == 2
    torch.testing.assert_close(outs[0][0], outs[1][0])
    names = {c.__name__ for c in scheduler.compatibles}
    assert "DDPMScheduler" in names and "EulerDiscreteScheduler" in names
    with pytest.raises(ValueError, match="one of"):
        scheduler.set_timesteps(num_inference_steps=5, timesteps=[10, 5])


def test_heun_scheduler_api():
    config = dict(HEUN_CONFIG, use_karras_sigmas=True)
    scheduler, reference = dd.HeunDiscreteScheduler(**config), diffusers.HeunDiscreteScheduler(**config)
    for s in (scheduler, reference):
        s.set_timesteps(7)
    assert scheduler.order == reference.order == 2 and len(scheduler) == 1100
    assert len(scheduler.timesteps) == 13 and scheduler.timesteps.dtype == reference.timesteps.dtype
    torch.testing.assert_close(scheduler.timesteps, reference.timesteps)
    torch.testing.assert_close(scheduler.sigmas, reference.sigmas)
    assert float(scheduler.init_noise_sigma) == pytest.approx(float(reference.init_noise_sigma), rel=1e-6)
    x, noise = dummy_sample_deter(), dummy_noise_deter()
    t = scheduler.timesteps[4:5]  # a timestep that occurs twice: diffusers' rule takes the second
    torch.testing.assert_close(scheduler.add_noise(x, noise, t), reference.add_noise(x, noise, t))
    # img2img: start on a step's first model call (begin_index = t_start * order)
    model, outs = dummy_model(), []
    for s in (scheduler, reference):
        s.set_timesteps(7)
        s.set_begin_index(4)
        y = x * s.init_noise_sigma
        for t in s.timesteps[4:]:
            assert s.state_in_first_order == (s.step_index is None or s.step_index % 2 == 0)
            y = s.step(model(s.scale_model_input(y, t), t), t, y).prev_sample
        outs.append(y)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5 * torch.max(torch.abs(outs[1])).item())
    names = {c.__name__ for c in scheduler.compatibles}
    assert {"HeunDiscreteScheduler", "UniPCMultistepScheduler", "EulerDiscreteScheduler"} <= names


def test_callables_get_tensor_timesteps_and_unets_are_predictors():
    unet = tiny_unet()
    sampler = ddpm.Sampler(sampler="euler", inference_steps=6, backend="cpu")
    seen = []

    def model(x, t):
        seen.append(t)
        return unet(x, t).sample

    x = sampler.sample((2, 3, 8, 8), model, seed=1, like=torch.empty(0))
    assert all(isinstance(t, torch.Tensor) and t.ndim == 0 and t.dtype == torch.float32 for t in seen)
    assert [t.item() for t in seen] == pytest.approx(sampler.model_timesteps)
    with torch.no_grad():
        direct = sampler.sample((2, 3, 8, 8), unet, seed=1, like=torch.empty(0))
    torch.testing.assert_close(direct, x)


# --- configs ---
@pytest.mark.parametrize("name", ["DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler",
                                  "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler",
                                  "HeunDiscreteScheduler", "UniPCMultistepScheduler"])
def test_save_config_round_trips(name, tmp_path):
    theirs = getattr(diffusers, name)(num_train_timesteps=500, prediction_type="v_prediction")
    theirs.save_config(tmp_path / "theirs")
    text = (tmp_path / "theirs" / "scheduler_config.json").read_text()
    ours = getattr(dd, name).from_pretrained(tmp_path / "theirs")
    assert {k: v for k, v in ours.config.items() if not k.startswith("_")} == \
        {k: v for k, v in theirs.config.items() if not k.startswith("_")}
    ours.save_config(tmp_path / "ours")
    back = getattr(diffusers, name).from_pretrained(tmp_path / "ours")
    assert {k: v for k, v in back.config.items() if not k.startswith("_")} == \
        {k: v for k, v in theirs.config.items() if not k.startswith("_")}
    for sampler in (ddpm.Sampler.from_config(tmp_path / "theirs"), ddpm.Sampler.from_config(text),
                    ddpm.Sampler.from_scheduler(theirs), ddpm.Sampler.from_scheduler(ours)):
        assert sampler.schedule.steps == 500 and sampler.options["prediction_type"] == "v_prediction"
    if name == "DPMSolverMultistepScheduler":
        assert "-Infinity" in text  # diffusers' lambda_min_clipped, read as Python's json writes it


def test_pipeline_folder_config(tmp_path):
    pipe = diffusers.DDPMPipeline(unet=tiny_unet(), scheduler=diffusers.DDIMScheduler(num_train_timesteps=300))
    pipe.save_pretrained(tmp_path)
    sampler = ddpm.Sampler.from_config(tmp_path)
    assert sampler.options["sampler"] == "ddim" and sampler.schedule.steps == 300
    assert dd.DDIMScheduler.from_pretrained(tmp_path, subfolder="scheduler").config["num_train_timesteps"] == 300
