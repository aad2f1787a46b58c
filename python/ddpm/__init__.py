"""ddpm: reproducible diffusion sampling (DDPM, DDIM, Euler, DPM-Solver++) on the CPU and CUDA.

A thin layer over the C++ engine (nothing re-implemented here): arrays of
NumPy, PyTorch (CPU and CUDA) and CuPy go in through DLPack or the buffer
protocol without copies, and results come back in the caller's framework, on
the caller's device and (on a CUDA device) on the caller's current stream.

    import ddpm
    sampler = ddpm.Sampler(ddpm.Schedule("linear", steps=1000), sampler="ddim", inference_steps=50)
    x = sampler.sample((16, 64), ddpm.GaussianPredictor(mean=0.5, std=0.3), seed=1)
    fast = ddpm.Sampler(sampler="dpmpp_2m", inference_steps=20, use_karras_sigmas=True)

Predictors: GaussianPredictor, GmmPredictor, load_model (a trained network,
whatever its architecture: a UNet2DPredictor for a diffusers UNet2DModel folder,
an MlpPredictor for 'mlp_denoiser'), make_predictor (from a JSON description), or any callable f(x_t, t) ->
model_output, a torch.nn.Module included (ddpm.Predictor documents the
protocol, with the unconditional_label that classifier-free guidance needs).

Images: read_image (a PNG or JPEG as float32 [1, C, H, W] in [-1, 1]),
to_pixels and write_png (model space back to uint8 pixels or a PNG).

diffusers: ddpm.diffusers (imported on its own, never by `import ddpm`) has
ddpm's samplers as diffusers schedulers for diffusers' pipelines:
pipe.scheduler = ddpm.diffusers.DDIMScheduler.from_config(pipe.scheduler.config).

Errors: ddpm.Error (a ValueError) for bad input, ddpm.CudaError (a
RuntimeError) for a failed CUDA call, TypeError for a wrong dtype or an
unknown option, KeyboardInterrupt when Ctrl-C stops a run.
"""

from ._arrays import CopyWarning
from ._ddpm import (
    CudaError,
    Error,
    GaussianPredictor,
    GmmPredictor,
    MlpPredictor,
    NetworkPredictor,
    UNet2DPredictor,
    NoisePredictor,
    PlannedStep,
    Schedule,
    cuda_available,
    cuda_unavailable_reason,
    default_timestep_spacing,
    load_model,
    make_predictor,
    sampler_info,
)
from ._images import ImageWarning, read_image, to_pixels, write_png
from ._predictors import Predictor
from ._sampler import Sampler

__version__ = "0.1.0"

__all__ = [
    "CopyWarning",
    "CudaError",
    "Error",
    "GaussianPredictor",
    "GmmPredictor",
    "ImageWarning",
    "MlpPredictor",
    "NetworkPredictor",
    "UNet2DPredictor",
    "NoisePredictor",
    "PlannedStep",
    "Predictor",
    "Sampler",
    "Schedule",
    "cuda_available",
    "cuda_unavailable_reason",
    "default_timestep_spacing",
    "load_model",
    "make_predictor",
    "read_image",
    "sampler_info",
    "to_pixels",
    "write_png",
]
