#!/usr/bin/env python3
"""Full-size UNet2DModel architectures in diffusers: parameter counts, the time
of one forward pass, and (with --ddpm) ddpm's output for the same model and
inputs compared with diffusers'.

Run it through scripts/check-unet-against-diffusers (which makes a throwaway
venv with the pinned torch and diffusers). Not a fixture and not run in CI:
the models are hundreds of MB and are written to a temporary folder.

For each architecture it

  1. builds UNet2DModel(config) from a seeded random init, every parameter
     perturbed as the committed fixtures are (make_unet_fixtures.perturb),
  2. writes it with save_pretrained and loads it back with from_pretrained,
  3. evaluates it on seeded inputs x ~ N(0, 1) [16, C, H, W] at --timestep:
     batch 1 (the first row) and batch 16, timing one call each after a
     warm-up call, with --threads torch threads,
  4. writes OUT/<name>/x_b1.npy, y_b1.npy, x_b16.npy, y_b16.npy (float32) and
     OUT/<name>/result.json (config, parameters, timings, versions),
  5. with --ddpm PATH, runs ddpm on the same folder and inputs (compare_with_ddpm)
     and reports max |ddpm - diffusers| / max |diffusers|.

Architectures:

  ddpm-cifar10-32   google/ddpm-cifar10-32's config.json (diffusers 0.0.4 on the Hub):
                    block_out_channels [128, 256, 256, 256], DownBlock2D, AttnDownBlock2D,
                    DownBlock2D, DownBlock2D / UpBlock2D, UpBlock2D, AttnUpBlock2D, UpBlock2D,
                    layers_per_block 2, norm_num_groups 32, norm_eps 1e-6, downsample_padding 0,
                    flip_sin_to_cos false, freq_shift 1, attention_head_dim null (one head),
                    3 -> 3 channels, 32x32; 35.7 M parameters
  attn2-64          a 64x64 model with attention at 16x16 and 8x8: block_out_channels
                    [64, 128, 256, 256], DownBlock2D, DownBlock2D, AttnDownBlock2D, AttnDownBlock2D
                    (mirrored up), layers_per_block 2, attention_head_dim 64 (4 heads at 256),
                    resnet_time_scale_shift scale_shift, norm_num_groups 32

    scripts/check-unet-against-diffusers [--out DIR] [--threads N] [--only NAME] [--ddpm PATH]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_unet_fixtures as muf  # noqa: E402  (perturb: the fixtures' parameter noise)

import diffusers  # noqa: E402
from diffusers import UNet2DModel  # noqa: E402

ARCHITECTURES = {
    # google/ddpm-cifar10-32/config.json, its keys as written there ("_diffusers_version": "0.0.4").
    "ddpm-cifar10-32": dict(
        act_fn="silu", attention_head_dim=None, block_out_channels=[128, 256, 256, 256],
        center_input_sample=False,
        down_block_types=["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
        downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, in_channels=3, layers_per_block=2,
        mid_block_scale_factor=1, norm_eps=1e-6, norm_num_groups=32, out_channels=3, sample_size=32,
        time_embedding_type="positional",
        up_block_types=["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"]),
    "attn2-64": dict(
        sample_size=64, in_channels=3, out_channels=3, block_out_channels=[64, 128, 256, 256],
        down_block_types=["DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
        up_block_types=["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
        layers_per_block=2, attention_head_dim=64, norm_num_groups=32,
        resnet_time_scale_shift="scale_shift"),
}


# ------------------------------------------------------------------------------------
# The ddpm side
# ------------------------------------------------------------------------------------

def ddpm_cli(ddpm, workdir):
    """A callable (folder, sample, timestep) -> output for compare_with_ddpm, running

        ddpm unet-eval --model DIR --input x.npy --timestep T --out y.npy

    DIR: a diffusers UNet2DModel folder (config.json + diffusion_pytorch_model.safetensors)
    or a pipeline folder (its unet/ subfolder); x.npy: float32 [B, C, H, W]; T: one
    timestep for every row, an integer or a fractional number as diffusers takes it;
    y.npy: float32 [B, out_channels, H, W], UNet2DModel(x, T).sample.
    """
    def evaluate(folder, sample, timestep):
        x_path, y_path = os.path.join(workdir, "ddpm_x.npy"), os.path.join(workdir, "ddpm_y.npy")
        np.save(x_path, np.ascontiguousarray(sample, dtype=np.float32))
        subprocess.run([ddpm, "unet-eval", "--model", folder, "--input", x_path,
                        "--timestep", f"{timestep:g}", "--out", y_path], check=True)
        return np.load(y_path)
    return evaluate


def compare_with_ddpm(evaluate, folder, sample, timestep, reference):
    """Runs evaluate(folder, sample, timestep) -> numpy array (ddpm's output of the model in
    folder for the float32 sample [B, C, H, W] at one timestep) and compares it with
    diffusers' reference output: {"shape", "max_abs_diff", "max_rel_diff" (max |diff| /
    max |reference|), "seconds"}. Raises ValueError when the shapes differ."""
    t0 = time.time()
    out = np.asarray(evaluate(folder, sample, timestep), dtype=np.float64)
    seconds = time.time() - t0
    if out.shape != reference.shape:
        raise ValueError(f"ddpm gave shape {out.shape}, diffusers {reference.shape}")
    diff = np.abs(out - reference.astype(np.float64))
    return {"shape": list(out.shape), "max_abs_diff": float(diff.max()),
            "max_rel_diff": float(diff.max() / np.abs(reference).max()), "seconds": round(seconds, 3)}


# ------------------------------------------------------------------------------------
# The diffusers side
# ------------------------------------------------------------------------------------

def timed(model, x, t):
    with torch.no_grad():
        t0 = time.perf_counter()
        y = model(x, t).sample
        return y, time.perf_counter() - t0


def run(name, config, args, tmp, log):
    torch.manual_seed(args.seed)
    model = UNet2DModel(**config)
    muf.perturb(model, args.seed + 1000)
    folder = os.path.join(tmp, name)
    model.save_pretrained(folder)
    del model
    model = UNet2DModel.from_pretrained(folder, low_cpu_mem_usage=False).eval()
    n_params = sum(p.numel() for p in model.parameters())
    size = config["sample_size"]
    g = torch.Generator().manual_seed(args.seed + 1)
    x16 = torch.randn((16, config["in_channels"], size, size), generator=g)
    t = torch.tensor(args.timestep, dtype=torch.int64 if float(args.timestep).is_integer() else torch.float32)
    timed(model, x16[:1], t)  # warm-up
    y1, s1 = timed(model, x16[:1], t)
    y16, s16 = timed(model, x16, t)
    rows_equal = float((y16[:1] - y1).abs().max())
    out = os.path.join(args.out, name)
    os.makedirs(out, exist_ok=True)
    for tag, arr in (("x_b1", x16[:1]), ("y_b1", y1), ("x_b16", x16), ("y_b16", y16)):
        np.save(os.path.join(out, f"{tag}.npy"), arr.numpy().astype(np.float32))
    result = {"name": name, "config": {k: v for k, v in dict(model.config).items() if not k.startswith("_")},
              "parameters": n_params, "timestep": args.timestep, "threads": args.threads,
              "seconds_batch_1": round(s1, 4), "seconds_batch_16": round(s16, 4),
              "batch_16_row_0_vs_batch_1_max_abs": rows_equal,
              "weights_bytes": os.path.getsize(os.path.join(folder, muf.WEIGHTS)),
              "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                           "python": platform.python_version()},
              "cpu": platform.processor() or platform.machine()}
    log(f"{name}: {n_params:,} parameters ({result['weights_bytes'] / 1e6:.1f} MB of float32); one "
        f"forward pass at t = {args.timestep:g} with {args.threads} thread(s): batch 1 {s1:.3f} s, "
        f"batch 16 {s16:.3f} s ({s16 / 16:.3f} s a sample); |output| max {float(y16.abs().max()):.3f}; "
        f"row 0 of batch 16 vs batch 1: {rows_equal:.1e}")
    if args.ddpm:
        evaluate = ddpm_cli(args.ddpm, tmp)
        result["ddpm"] = {}
        for tag, x, y in (("batch_1", x16[:1], y1), ("batch_16", x16, y16)):
            r = compare_with_ddpm(evaluate, folder, x.numpy(), args.timestep, y.numpy())
            result["ddpm"][tag] = r
            log(f"{name} {tag}: ddpm vs diffusers max |diff| {r['max_abs_diff']:.2e}, relative "
                f"{r['max_rel_diff']:.2e} ({r['seconds']} s)")
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/unet-check", help="where the .npy files and result.json go")
    ap.add_argument("--ddpm", help="a ddpm binary with the unet-eval command: compare its outputs")
    ap.add_argument("--only", choices=sorted(ARCHITECTURES), action="append",
                    help="run only this architecture (repeatable)")
    ap.add_argument("--timestep", type=float, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="with --ddpm: largest max |diff| / max |diffusers| accepted")
    ap.add_argument("--keep-models", metavar="DIR",
                    help="write the models here and keep them (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    diffusers.utils.logging.set_verbosity_error()
    log = lambda m: print(m, flush=True)
    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {args.threads} thread(s)")
    names = args.only or list(ARCHITECTURES)
    results = []
    try:
        if args.keep_models:
            os.makedirs(args.keep_models, exist_ok=True)
            results = [run(n, ARCHITECTURES[n], args, args.keep_models, log) for n in names]
        else:
            with tempfile.TemporaryDirectory(prefix="ddpm-unet-check-") as tmp:
                results = [run(n, ARCHITECTURES[n], args, tmp, log) for n in names]
    except (OSError, subprocess.CalledProcessError) as exc:
        if not args.ddpm:
            raise
        log(f"check-unet-against-diffusers: running `{args.ddpm} unet-eval` failed: {exc}")
        return 2
    log(f"wrote {args.out}/<name>/{{x_b1,y_b1,x_b16,y_b16}}.npy and result.json")
    if args.ddpm:
        worst = max(r["max_rel_diff"] for res in results for r in res["ddpm"].values())
        if worst > args.tolerance:
            log(f"FAIL: ddpm differs from diffusers by {worst:.2e} (relative) > {args.tolerance:g}")
            return 1
        log(f"ok: ddpm within {worst:.2e} (relative) of diffusers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
