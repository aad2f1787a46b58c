#!/usr/bin/env python3
"""Trains a small class-conditional diffusers UNet2DModel on scikit-learn's
digits (upsampled 8x8 -> 16x16) and writes it as a diffusers pipeline folder,
with its quality measured as scripts/train_digits.py measures the MLP's.

Run it through scripts/train-digits-unet (which makes a throwaway venv); CI
does not run it, its outputs are committed:

  models/digits-unet/                  a genuine diffusers folder, written by
                                       DDPMPipeline(unet, scheduler).save_pretrained:
                                       model_index.json, unet/config.json,
                                       unet/diffusion_pytorch_model.safetensors (EMA weights),
                                       scheduler/scheduler_config.json
  models/digits_unet_metrics.json      quality (classifier accuracy, Frechet distances)
  models/digits_unet_loss.png          training loss
  models/digits_unet_samples.png       DDIM 50 samples with guidance, one row per class
  tests/data/diffusers/digits_unet_loops.safetensors
                                       whole diffusers sampling loops of the trained
                                       model (DDIM, DPM-Solver++(2M), Euler; 20 steps;
                                       guidance 1 and 2), every step recorded

Data: scikit-learn's 1,797 digits, model space x = pixel / 8 - 1 in [-1, 1]
(as train_digits.py), upsampled 8 -> 16 with
F.interpolate(mode="bilinear", align_corners=False); a sample is [1, 16, 16].

Labels 0..9 are the digits; label 10 is the null label ("no class") used for
classifier-free guidance: num_class_embeds = 11 and 10 % of training labels
are replaced by 10. diffusers itself has no notion of a null label: the
class embedding is a plain nn.Embedding(11, 4 * block_out_channels[0]) and
row 10 is only what this training makes of it.

Objective: v-prediction (--prediction-type, default v_prediction) under
DDPMScheduler's linear betas 1e-4 -> 0.02, T = 1000, MSE on
scheduler.get_velocity(x0, noise, t). Why not epsilon, the parameterisation of
diffusers' own google/ddpm-* checkpoints: trained the same way (2,800 steps),
the epsilon model left noise outside the upsampled-image subspace (rms > 0.1)
in 197 of 1,000 DDIM samples at guidance 2, all drawn from x_T of more than
average norm (|z| >= 15.9 where the mean is 16.0 over 256 values; 92 % of
those with |z| > 17), and reached 94.3 % accuracy at guidance 1 (FD features
1.40); the v model: 0 of 1,000, 98.0 % (0.70) (--prediction-type epsilon
reproduces the former). The likely reason: at t = 999 (sqrt(alpha_bar) =
0.0064) an epsilon model must return eps = x_t almost exactly, and a shrunken
prediction leaves the excess norm in x, from which the loop does not recover;
a v model predicts about -x0 there, and its eps = sqrt(ab) v + sqrt(1 - ab) x
is x by construction.

Quality: samples are mapped back to 8x8 with the least-squares inverse of the
bilinear upsampling (pinv of the 256x64 matrix: exact on upsampled real
digits, so real digits map back to themselves and the MLP's protocol, its
classifier and real halves apply unchanged), clipped to [-1, 1], and
measured with models/digits_classifier.safetensors exactly as
train_digits.evaluate does.

Deterministic: every draw comes from generators seeded by --seed; torch runs
with --threads threads and deterministic algorithms.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_digits as td  # noqa: E402  (data, classifier, Frechet distance, evaluate)

import diffusers  # noqa: E402
from diffusers import (DDIMScheduler, DDPMPipeline, DDPMScheduler,  # noqa: E402
                       DPMSolverMultistepScheduler, EulerDiscreteScheduler, UNet2DModel)
from safetensors.torch import save_file  # noqa: E402

NUM_CLASSES = 10
NULL_LABEL = 10
SIZE = 16

# The training schedule, in diffusers' names (written to scheduler/scheduler_config.json).
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "prediction_type": "v_prediction",
    "variance_type": "fixed_small",
    # DDIMScheduler with clip_sample clips x0 but keeps the unclipped eps, which
    # spoils guided samples (train_digits.py measured it); off for every sampler.
    "clip_sample": False,
    "timestep_spacing": "trailing",
}


def unet_config(channels, layers_per_block):
    return dict(
        sample_size=SIZE, in_channels=1, out_channels=1,
        block_out_channels=tuple(channels), layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        mid_block_type="UNetMidBlock2D",
        attention_head_dim=32, norm_num_groups=8,
        num_class_embeds=NUM_CLASSES + 1,
    )


# ---------------------------------------------------------------- data

def upsample(x8):
    """[N, 64] model space -> [N, 1, 16, 16], bilinear, align_corners=False."""
    x = torch.as_tensor(np.asarray(x8, np.float32)).reshape(-1, 1, 8, 8)
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def downsample_matrix():
    """The least-squares inverse of upsample as a [64, 256] float64 matrix."""
    eye = torch.eye(64, dtype=torch.float64).reshape(64, 1, 8, 8)
    up = F.interpolate(eye, size=(SIZE, SIZE), mode="bilinear", align_corners=False).reshape(64, 256).T
    return np.linalg.pinv(up.numpy())


def downsample(x16, matrix):
    """[N, 1, 16, 16] -> [N, 64] model space (float32)."""
    flat = np.asarray(x16, np.float64).reshape(len(x16), 256)
    return (flat @ matrix.T).astype(np.float32)


# ---------------------------------------------------------------- training

def make_scheduler():
    return DDPMScheduler(**SCHEDULER_CONFIG)


def train(x16, labels, args, log):
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    config = unet_config(args.channels, args.layers_per_block)
    model = UNet2DModel(**config)
    ema = UNet2DModel(**config)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    model.train()
    scheduler = make_scheduler()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warmup = max(1, min(200, args.steps // 10))
    lr_at = lambda s: args.lr * min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / args.steps))
    T = SCHEDULER_CONFIG["num_train_timesteps"]
    losses = []
    start = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(x16), (args.batch,), generator=g)
        x0, label = x16[idx], labels[idx].clone()
        label[torch.rand(args.batch, generator=g) < args.label_dropout] = NULL_LABEL
        t = torch.randint(0, T, (args.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x_t = scheduler.add_noise(x0, noise, t)
        target = noise if SCHEDULER_CONFIG["prediction_type"] == "epsilon" else scheduler.get_velocity(x0, noise, t)
        loss = F.mse_loss(model(x_t, t, label).sample, target)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        losses.append(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            log(f"step {step + 1}/{args.steps}: loss {np.mean(losses[-100:]):.4f} "
                f"({time.time() - start:.0f} s)")
    return ema.eval(), losses, time.time() - start


# ---------------------------------------------------------------- sampling with diffusers

@torch.no_grad()
def guided_output(unet, x, t, labels, guidance):
    """Classifier-free guidance on the model output (v or eps): out_null + w (out_label - out_null),
    from one call of 2N rows (w = 1: the conditional prediction alone, one call of N rows)."""
    if guidance == 1.0:
        return unet(x, t, labels).sample
    both = unet(torch.cat([x, x]), t, torch.cat([labels, torch.full_like(labels, NULL_LABEL)])).sample
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


@torch.no_grad()
def sample_loop(unet, scheduler, z, labels, guidance, steps, record=None):
    """A diffusers pipeline loop from N(0, I) draws z: x_T = z * init_noise_sigma.
    With record (a dict), every step's timestep, guided model output and sample go into it."""
    scheduler.set_timesteps(steps)
    x = z * scheduler.init_noise_sigma
    if record is not None:
        record.update(x_T=x.clone(), timesteps=[], model_output=[], samples=[])
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        out = guided_output(unet, model_input, t, labels, guidance)
        x = scheduler.step(out, t, x).prev_sample
        if record is not None:
            record["timesteps"].append(float(t))
            record["model_output"].append(out.clone())
            record["samples"].append(x.clone())
    return x


def ddim(config):
    return DDIMScheduler.from_config(config)


def sample_many(unet, labels, guidance, seed, steps=50, chunk=200):
    """DDIM (the pipeline's config: trailing spacing, eta 0, no clipping) in chunks of rows."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((len(labels), 1, SIZE, SIZE), generator=g)
    out = []
    for i in range(0, len(labels), chunk):
        out.append(sample_loop(unet, ddim(SCHEDULER_CONFIG), z[i:i + chunk], labels[i:i + chunk],
                               guidance, steps))
    return torch.cat(out).numpy()


# ---------------------------------------------------------------- loops fixture

def fixture_loops(config):
    """(name, scheduler, steps, guidance): the deterministic loops of the fixture."""
    loops = []
    for w in (1.0, 2.0):
        tag = f"w{w:g}"
        loops.append((f"ddim_20_{tag}", DDIMScheduler.from_config(config), 20, w))
        loops.append((f"dpmpp_2m_20_{tag}",
                      DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++",
                                                              solver_order=2), 20, w))
        # Euler's own default spacing (linspace) gives fractional timesteps: the UNet's
        # sinusoidal embedding between integer t, as diffusers passes them.
        loops.append((f"euler_20_{tag}",
                      EulerDiscreteScheduler.from_config(config, timestep_spacing="linspace"), 20, w))
    return loops


@torch.no_grad()
def write_loops_fixture(unet, scheduler_config, path, model_dir):
    g = torch.Generator().manual_seed(2468)
    z = torch.randn((4, 1, SIZE, SIZE), generator=g)
    labels = torch.tensor([0, 3, 7, NULL_LABEL])
    tensors = {"z": z, "labels": labels.float()}
    loops = {}
    for name, scheduler, steps, w in fixture_loops(scheduler_config):
        rec = {}
        final = sample_loop(unet, scheduler, z, labels, w, steps, record=rec)
        tensors[f"{name}.x_T"] = rec["x_T"]
        tensors[f"{name}.timesteps"] = torch.tensor(rec["timesteps"], dtype=torch.float32)
        tensors[f"{name}.model_output"] = torch.stack(rec["model_output"])
        tensors[f"{name}.samples"] = torch.stack(rec["samples"])
        tensors[f"{name}.final"] = final
        cfg = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
        loops[name] = {"scheduler": type(scheduler).__name__, "config": cfg, "steps": steps,
                       "guidance_scale": w, "timesteps": rec["timesteps"],
                       "init_noise_sigma": float(scheduler.init_noise_sigma)}
    note = ("z [4, 1, 16, 16] ~ N(0, I) (torch.Generator seed 2468); labels [0, 3, 7, 10] stored as F32 "
            "(10 is the null label). Each loop NAME starts from NAME.x_T = z * init_noise_sigma and runs "
            "diffusers' pipeline loop: for each t = NAME.timesteps[k], model_input = scale_model_input(x, t) (x itself for DDIM "
            "and DPM-Solver++, x / sqrt(sigma^2 + 1) for Euler), NAME.model_output[k] = the guided model output, v "
            "(w = 1: unet(model_input, t, labels); else one call of 8 rows [labels, 10 x 4] and "
            "v_null + w (v_label - v_null)), NAME.samples[k] = step(model_output, t, x).prev_sample. NAME.final = the last sample. The UNet gets t as the scheduler's tensor "
            "(int64 for DDIM and DPM-Solver++, float32 fractional for Euler).")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              metadata={"ddpm_fixture": json.dumps({
                  "model": model_dir, "generator": generator_info(), "loops": loops, "note": note},
                  default=str)})
    return loops


def generator_info():
    import platform
    return {"script": "scripts/train_digits_unet.py", "torch": torch.__version__,
            "diffusers": diffusers.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# ---------------------------------------------------------------- plots

def plot_loss(losses, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    w = max(1, min(50, len(losses) // 4))
    smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
    ax.plot(np.arange(len(losses)), losses, color="0.85", lw=0.5, label="per step")
    ax.plot(np.arange(w - 1, len(losses)), smooth, color="C0", lw=1.2, label=f"mean of {w}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"{SCHEDULER_CONFIG['prediction_type']} MSE")
    ax.set_title("digits UNet2DModel: training loss")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_grid(samples, path, title):
    """samples: [rows, cols, 1, 16, 16] model space."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows, cols = samples.shape[:2]
    cell = SIZE + 1
    canvas = np.ones((rows * cell + 1, cols * cell + 1)) * 16
    for r in range(rows):
        for c in range(cols):
            canvas[1 + r * cell:1 + r * cell + SIZE, 1 + c * cell:1 + c * cell + SIZE] = \
                td.to_pixels(samples[r, c, 0])
    fig, ax = plt.subplots(figsize=(cols * 0.5, rows * 0.5 + 0.4), dpi=80)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2800, help="optimiser steps")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--channels", default="16,32,32", help="block_out_channels")
    ap.add_argument("--layers-per-block", type=int, default=1)
    ap.add_argument("--label-dropout", type=float, default=0.1)
    ap.add_argument("--prediction-type", choices=["v_prediction", "epsilon"], default="v_prediction")
    ap.add_argument("--guidance", type=float, default=2.0, help="the guided setting measured and shown")
    ap.add_argument("--per-class", type=int, default=100, help="samples per class for the metrics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", default="models")
    ap.add_argument("--classifier", default="models/digits_classifier.safetensors",
                    help="the MLP's digit classifier (scripts/train-digits)")
    ap.add_argument("--loops-fixture", default="tests/data/diffusers/digits_unet_loops.safetensors")
    ap.add_argument("--fixture-only", action="store_true",
                    help="only rewrite the loops fixture from the model already in OUT/digits-unet")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="keep the trained model in OUT/digits-unet and the loss plot; redo metrics, "
                         "sample grid and loops fixture")
    args = ap.parse_args()
    args.channels = [int(c) for c in args.channels.split(",")]
    SCHEDULER_CONFIG["prediction_type"] = args.prediction_type

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    log = lambda m: print(m, flush=True)
    model_dir = os.path.join(args.out, "digits-unet")
    metrics_path = os.path.join(args.out, "digits_unet_metrics.json")

    if args.fixture_only or args.evaluate_only:
        unet = UNet2DModel.from_pretrained(model_dir, subfolder="unet", low_cpu_mem_usage=False).eval()
        with open(metrics_path) as f:
            training = json.load(f)["training"]
        SCHEDULER_CONFIG["prediction_type"] = DDPMScheduler.from_pretrained(
            model_dir, subfolder="scheduler").config.prediction_type
    if args.fixture_only:
        write_loops_fixture(unet, dict(DDPMScheduler.from_pretrained(model_dir, subfolder="scheduler").config),
                            args.loops_fixture, model_dir)
        log(f"wrote {args.loops_fixture}")
        return 0

    x8, y = td.load_data()
    x16 = upsample(x8)
    labels = torch.from_numpy(y)
    log(f"digits: {len(x8)} images, upsampled to {tuple(x16.shape[1:])}, model space "
        f"[{x16.min():.2f}, {x16.max():.2f}]")
    down = downsample_matrix()
    assert np.abs(downsample(x16.numpy(), down) - x8).max() < 1e-5, "pinv does not invert the upsampling"

    if not args.evaluate_only:
        unet, losses, seconds = train(x16, labels, args, log)
        n_params = sum(p.numel() for p in unet.parameters())
        log(f"UNet2DModel: {n_params} parameters, trained in {seconds:.0f} s "
            f"({seconds / args.steps:.3f} s a step)")
        os.makedirs(args.out, exist_ok=True)
        plot_loss(losses, os.path.join(args.out, "digits_unet_loss.png"))
        scheduler = make_scheduler()
        DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(model_dir)
        training = {"steps": args.steps, "batch": args.batch, "optimizer": "AdamW", "lr": args.lr,
                    "lr_schedule": "linear warm-up (min(200, steps/10) steps), cosine decay to 0",
                    "grad_clip_norm": 1.0, "ema_decay": args.ema,
                    "ema_warmup": "decay min(ema, (1 + step) / (10 + step))",
                    "label_dropout": args.label_dropout,
                    "loss": f"MSE on {'epsilon' if args.prediction_type == 'epsilon' else 'v'}",
                    "seed": args.seed, "torch_threads": args.threads, "seconds": round(seconds, 1),
                    "seconds_per_step": round(seconds / args.steps, 4),
                    "parameters": n_params, "final_loss_mean_100": float(np.mean(losses[-100:])),
                    "data": f"scikit-learn digits, all {len(x8)} images, bilinear 8 -> 16"}
    # The model as diffusers reads it back (what the metrics and the fixture use).
    unet = UNet2DModel.from_pretrained(model_dir, subfolder="unet", low_cpu_mem_usage=False).eval()
    scheduler_config = dict(DDPMScheduler.from_pretrained(model_dir, subfolder="scheduler").config)

    classifier, clf_accuracy = td.load_classifier(args.classifier)
    rng = np.random.default_rng(args.seed + 7)  # train_digits.py's real halves
    order = rng.permutation(len(x8))
    half_a, half_b = x8[order[: len(x8) // 2]], x8[order[len(x8) // 2:]]
    half_b_round_trip = downsample(upsample(half_b).numpy(), down)
    floor = {
        "frechet_distance_features": td.frechet_distance(td.features_of(classifier, half_b),
                                                         td.features_of(classifier, half_a)),
        "frechet_distance_pixels": td.frechet_distance(td.to_pixels(half_b).astype(np.float64),
                                                       td.to_pixels(half_a).astype(np.float64)),
        "classifier_accuracy_on_half_b": float((td.classify(classifier, half_b) == y[order[len(x8) // 2:]]).mean()),
        "round_trip_max_abs_error": float(np.abs(half_b_round_trip - half_b).max()),
        "sizes": [len(half_b), len(half_a)],
    }
    log(f"real vs real: FD features {floor['frechet_distance_features']:.3f}, pixels "
        f"{floor['frechet_distance_pixels']:.2f}; 8 -> 16 -> 8 round trip max error "
        f"{floor['round_trip_max_abs_error']:.1e}")

    cond_labels = torch.arange(NUM_CLASSES).repeat_interleave(args.per_class)
    results, timings = {}, {}
    for name, w in (("ddim50_w1", 1.0), (f"ddim50_w{args.guidance:g}", args.guidance)):
        t0 = time.time()
        samples16 = sample_many(unet, cond_labels, w, args.seed + 100)
        timings[name] = round(time.time() - t0, 1)
        samples = downsample(samples16, down)
        results[name] = td.evaluate(samples, cond_labels.numpy(), classifier, half_a)
        results[name].update(guidance_scale=w, sampler="ddim",
                             range_16x16=[float(samples16.min()), float(samples16.max())])
        log(f"{name}: accuracy {results[name]['conditional_accuracy']:.3f}, FD features "
            f"{results[name]['frechet_distance_features']:.3f}, pixels "
            f"{results[name]['frechet_distance_pixels']:.2f} ({timings[name]:.0f} s)")
        if w == args.guidance:
            plot_grid(samples16.reshape(NUM_CLASSES, args.per_class, 1, SIZE, SIZE)[:, :12],
                      os.path.join(args.out, "digits_unet_samples.png"),
                      f"UNet2DModel, DDIM 50 steps (trailing), guidance {w:g}: one row per class")

    n_uncond = NUM_CLASSES * args.per_class
    t0 = time.time()
    uncond16 = sample_many(unet, torch.full((n_uncond,), NULL_LABEL), 1.0, args.seed + 200)
    timings["ddim50_unconditional"] = round(time.time() - t0, 1)
    uncond = downsample(uncond16, down)
    hist = np.bincount(td.classify(classifier, uncond), minlength=NUM_CLASSES)
    results["ddim50_unconditional"] = {
        "class_histogram": hist.tolist(),
        "real_class_histogram": np.bincount(y, minlength=NUM_CLASSES).tolist(),
        "frechet_distance_features": td.frechet_distance(td.features_of(classifier, np.clip(uncond, -1, 1)),
                                                         td.features_of(classifier, half_a)),
        "frechet_distance_pixels": td.frechet_distance(td.to_pixels(uncond).astype(np.float64),
                                                       td.to_pixels(half_a).astype(np.float64)),
    }
    log(f"unconditional: histogram {hist.tolist()}, FD features "
        f"{results['ddim50_unconditional']['frechet_distance_features']:.3f} "
        f"({timings['ddim50_unconditional']:.0f} s)")

    write_loops_fixture(unet, scheduler_config, args.loops_fixture, model_dir)
    log(f"wrote {args.loops_fixture}")

    metrics = {
        "model": model_dir,
        "architecture": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dict(unet.config).items() if not k.startswith("_")},
        "classifier": {"path": args.classifier, "heldout_accuracy": clf_accuracy},
        "protocol": {
            "samples_per_class": args.per_class,
            "ddim": "diffusers DDIMScheduler.from_config(the pipeline's scheduler config): 50 steps, "
                    "timestep_spacing trailing, eta 0, clip_sample false, set_alpha_to_one true",
            "guidance": "classifier-free on the model output: out = out_null + w (out_label - out_null), "
                        "null label 10; "
                        "w = 1 is conditional only",
            "downsampling": "16x16 -> 8x8 by the least-squares inverse (pinv) of the bilinear 8 -> 16 "
                            "upsampling: exact on upsampled real digits",
            "classified": "8x8 samples clipped to [-1, 1], argmax of the classifier "
                          "(train_digits.evaluate)",
            "frechet_distance": f"against real half A ({len(half_a)} digits, train_digits.py's split); "
                                "features = classifier hidden layer (128, ReLU); pixels in 0..16 units",
            "seed": args.seed,
        },
        "real_vs_real": floor,
        "samplers": results,
        "sampling_seconds": timings,
        "training": training,
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "diffusers": diffusers.__version__,
                     "scikit-learn": __import__("sklearn").__version__},
    }
    with open(metrics_path, "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    log(f"wrote {model_dir}/, {metrics_path}, {args.out}/digits_unet_loss.png, "
        f"{args.out}/digits_unet_samples.png, {args.loops_fixture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
