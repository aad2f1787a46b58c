#!/usr/bin/env python3
"""Trains a class-conditional MLP denoiser on scikit-learn's digits and writes
everything ddpm's MlpPredictor and its tests need.

Run it through scripts/train-digits (which makes a throwaway venv); CI does not
run it, its outputs are committed:

  models/digits.safetensors             the denoiser (EMA weights) + model card
  models/digits_classifier.safetensors  a digit classifier trained on real digits only
  models/digits_metrics.json            quality of the denoiser, sampled with diffusers
  models/digits_loss.png                training loss
  models/digits_samples.png             DDIM samples, one row per class
  tests/data/digits_mlp_fixture.safetensors   network outputs on fixed inputs
  tests/data/digits_sampler_fixture.safetensors   network outputs at fractional timesteps,
                                        and whole diffusers sampling loops from fixed noise

Data convention: model space x in [-1, 1], pixel = (x + 1) * 8 in
scikit-learn's 0..16 units; a sample is 64 floats, the 8x8 image row-major.

The network ("mlp_denoiser", docs/model-format.md has the equations):

  temb = get_timestep_embedding(t, 128, flip_sin_to_cos=True, downscale_freq_shift=0)
  cond = time_embedding.linear_2(silu(time_embedding.linear_1(temb))) + class_embedding[y]
  h    = input_proj(x)
  for each block:  h = h + linear_2(silu(linear_1(norm(h)) + cond_proj(cond)))
  out  = output_proj(silu(norm_out(h)))           # v (prediction_type v_prediction)

Deterministic: every random draw comes from generators seeded by --seed, and
torch runs with --threads threads.
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
from torch import nn

from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler,
                       EulerDiscreteScheduler)
from diffusers.models.embeddings import get_timestep_embedding
from safetensors.torch import save_file
from sklearn.datasets import load_digits

ARCHITECTURE = "mlp_denoiser"
FORMAT_VERSION = 1
CARD_KEY = "ddpm_model_card"
NUM_CLASSES = 10
NULL_LABEL = NUM_CLASSES  # the extra row of the class embedding: "no label" (guidance)

# The schedule the model is trained with, in diffusers' names.
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "prediction_type": "v_prediction",
    # DDIM with clip_sample clips x0 but keeps the unclipped eps (diffusers'
    # DDIMScheduler.step), which wrecks guided samples: at guidance 3 only 18%
    # were classified as their label with clipping, 100% without. The
    # 1000-step DDPM loop clips (its posterior mean uses the clipped x0 alone).
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "thresholding": False,
    "rescale_betas_zero_snr": False,
    "timestep_spacing": "trailing",
    "steps_offset": 0,
    "set_alpha_to_one": True,
}
TIME_EMBEDDING = {"dim": 128, "flip_sin_to_cos": True, "downscale_freq_shift": 0.0,
                  "scale": 1.0, "max_period": 10000}
LAYER_NORM_EPS = 1e-5


# ---------------------------------------------------------------- data

def load_data():
    """Digits in model space: x = pixel / 8 - 1 in [-1, 1], float32, and labels."""
    digits = load_digits()
    x = (digits.data.astype(np.float32) / 8.0 - 1.0).astype(np.float32)
    return x, digits.target.astype(np.int64)


def to_pixels(x):
    return (np.clip(x, -1.0, 1.0) + 1.0) * 8.0


# ---------------------------------------------------------------- networks

class TimeEmbedding(nn.Module):
    def __init__(self, in_dim, hidden):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)

    def forward(self, temb):
        return self.linear_2(F.silu(self.linear_1(temb)))


class Block(nn.Module):
    """Pre-LayerNorm residual block; the condition is added before the SiLU."""

    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.linear_1 = nn.Linear(hidden, hidden)
        self.cond_proj = nn.Linear(hidden, hidden, bias=False)
        self.linear_2 = nn.Linear(hidden, hidden)
        nn.init.zeros_(self.linear_2.weight)
        nn.init.zeros_(self.linear_2.bias)

    def forward(self, h, cond):
        return h + self.linear_2(F.silu(self.linear_1(self.norm(h)) + self.cond_proj(cond)))


class MlpDenoiser(nn.Module):
    def __init__(self, data_dim=64, hidden=256, num_blocks=4, num_classes=NUM_CLASSES,
                 temb_dim=TIME_EMBEDDING["dim"]):
        super().__init__()
        self.data_dim, self.hidden, self.num_classes, self.temb_dim = data_dim, hidden, num_classes, temb_dim
        self.time_embedding = TimeEmbedding(temb_dim, hidden)
        self.class_embedding = nn.Embedding(num_classes + 1, hidden) if num_classes > 0 else None
        self.input_proj = nn.Linear(data_dim, hidden)
        self.blocks = nn.ModuleList([Block(hidden) for _ in range(num_blocks)])
        self.norm_out = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.output_proj = nn.Linear(hidden, data_dim)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def condition(self, t, y, temb=None):
        if temb is None:
            temb = get_timestep_embedding(t, self.temb_dim,
                                          flip_sin_to_cos=TIME_EMBEDDING["flip_sin_to_cos"],
                                          downscale_freq_shift=TIME_EMBEDDING["downscale_freq_shift"],
                                          scale=TIME_EMBEDDING["scale"],
                                          max_period=TIME_EMBEDDING["max_period"])
        cond = self.time_embedding(temb.to(self.input_proj.weight.dtype))
        if self.class_embedding is not None:
            cond = cond + self.class_embedding(y)
        return temb, cond

    def forward(self, x, t, y, trace=None, temb=None):
        temb, cond = self.condition(t, y, temb)
        h = self.input_proj(x)
        if trace is not None:
            trace.update(temb=temb, cond=cond, h_in=h)
        for i, block in enumerate(self.blocks):
            h = block(h, cond)
            if trace is not None:
                trace[f"h_block_{i}"] = h
        return self.output_proj(F.silu(self.norm_out(h)))


class Classifier(nn.Module):
    """64 -> 128 -> 10 with ReLU; input in model space. The hidden layer is the feature space."""

    def __init__(self, data_dim=64, hidden=128, classes=NUM_CLASSES):
        super().__init__()
        self.linear_1 = nn.Linear(data_dim, hidden)
        self.linear_2 = nn.Linear(hidden, classes)

    def features(self, x):
        return F.relu(self.linear_1(x))

    def forward(self, x):
        return self.linear_2(self.features(x))


# ---------------------------------------------------------------- export

def model_card(model, args, extra):
    return {
        "format": "ddpm-model-card",
        "version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "data_dim": model.data_dim,
        "data_shape": [8, 8],
        "hidden_dim": model.hidden,
        "num_blocks": len(model.blocks),
        "time_embedding": TIME_EMBEDDING,
        "num_classes": model.num_classes,
        "null_label": NULL_LABEL if model.num_classes > 0 else -1,
        "class_names": [str(c) for c in range(model.num_classes)],
        "activation": "silu",
        "layer_norm_eps": LAYER_NORM_EPS,
        "prediction_type": SCHEDULER_CONFIG["prediction_type"],
        "scheduler": SCHEDULER_CONFIG,
        "normalization": {
            "model_min": -1.0, "model_max": 1.0,
            "pixel_min": 0.0, "pixel_max": 16.0,
            "pixel_scale": 8.0, "pixel_offset": 1.0,
            "formula": "pixel = (x + 1) * 8",
        },
        "sampler": {"name": "ddim", "num_inference_steps": 50,
                    "timestep_spacing": SCHEDULER_CONFIG["timestep_spacing"], "eta": 0.0,
                    "clip_sample": SCHEDULER_CONFIG["clip_sample"], "guidance_scale": args.guidance},
        "training": extra,
    }


def export_mlp_denoiser(model, card, path):
    """Writes the state dict as float32 safetensors with the card in the metadata.

    The reference exporter for the mlp_denoiser family (docs/model-format.md):
    tensor names are the PyTorch state_dict names, weights [out, in] row-major.
    """
    tensors = {name: p.detach().to(torch.float32).contiguous().clone()
               for name, p in model.state_dict().items()}
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name} has non-finite values")
    save_file(tensors, path, metadata={CARD_KEY: json.dumps(card, sort_keys=True)})


def load_classifier(path):
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        accuracy = json.loads(f.metadata()[CARD_KEY])["heldout_accuracy"]
        state = {k: f.get_tensor(k) for k in f.keys()}
    classifier = Classifier()
    classifier.load_state_dict(state)
    return classifier.eval(), accuracy


def export_classifier(classifier, accuracy, path):
    card = {"format": "ddpm-model-card", "version": FORMAT_VERSION,
            "architecture": "mlp_classifier", "input": "model space x = pixel / 8 - 1, 64 values",
            "layers": "logits = linear_2(relu(linear_1(x)))", "features": "relu(linear_1(x))",
            "num_classes": NUM_CLASSES, "heldout_accuracy": accuracy}
    tensors = {n: p.detach().float().contiguous().clone() for n, p in classifier.state_dict().items()}
    save_file(tensors, path, metadata={CARD_KEY: json.dumps(card, sort_keys=True)})


# ---------------------------------------------------------------- training

def train_classifier(x, y, seed, log):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test = len(x) // 4
    test, train = order[:n_test], order[n_test:]
    torch.manual_seed(seed)
    clf = Classifier()
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    g = torch.Generator().manual_seed(seed)
    for epoch in range(150):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(clf(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = clf(torch.from_numpy(x[test])).argmax(1).numpy()
    accuracy = float((pred == y[test]).mean())
    log(f"classifier: held-out accuracy {accuracy:.4f} on {len(test)} digits "
        f"(trained on {len(train)})")
    return clf.eval(), accuracy, len(train), len(test)


def train_denoiser(x, y, args, log):
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    model = MlpDenoiser(hidden=args.hidden, num_blocks=args.blocks)
    ema = MlpDenoiser(hidden=args.hidden, num_blocks=args.blocks)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    scheduler = DDPMScheduler(**{k: SCHEDULER_CONFIG[k] for k in
                                 ("num_train_timesteps", "beta_schedule", "beta_start",
                                  "beta_end", "prediction_type", "clip_sample")})
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warmup = 500
    lr_at = lambda s: args.lr * min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / args.steps))
    data, labels = torch.from_numpy(x), torch.from_numpy(y)
    T = SCHEDULER_CONFIG["num_train_timesteps"]
    losses = []
    start = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(data), (args.batch,), generator=g)
        x0, label = data[idx], labels[idx].clone()
        label[torch.rand(args.batch, generator=g) < args.label_dropout] = NULL_LABEL
        t = torch.randint(0, T, (args.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x_t = scheduler.add_noise(x0, noise, t)
        target = scheduler.get_velocity(x0, noise, t)
        loss = F.mse_loss(model(x_t, t, label), target)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm, alpha=1 - decay)
        losses.append(loss.item())
        if (step + 1) % 1000 == 0:
            log(f"step {step + 1}/{args.steps}: loss {np.mean(losses[-1000:]):.4f} "
                f"({time.time() - start:.0f} s)")
    return ema.eval(), losses, time.time() - start


# ---------------------------------------------------------------- sampling with diffusers

@torch.no_grad()
def guided_output(model, x, t, labels, guidance):
    """The network's output with classifier-free guidance: u + w (c - u); w = 1 is plain conditional."""
    return guided_output_of_times(model, x, torch.full((len(x),), int(t), dtype=torch.long), labels, guidance)


def guided_output_of_times(model, x, tt, labels, guidance):
    """guided_output with the times tt (one per row) given as a tensor."""
    if guidance == 1.0:
        return model(x, tt, labels)
    both = model(torch.cat([x, x]), torch.cat([tt, tt]),
                 torch.cat([labels, torch.full_like(labels, NULL_LABEL)]))
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


@torch.no_grad()
def sample_ddim(model, labels, guidance, seed, steps=50):
    sched = DDIMScheduler(**SCHEDULER_CONFIG)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((len(labels), model.data_dim), generator=g)
    for t in sched.timesteps:
        x = sched.step(guided_output(model, x, t, labels, guidance), t, x, eta=0.0).prev_sample
    return x.numpy()


@torch.no_grad()
def sample_ddpm(model, labels, guidance, seed):
    """The 1000-step ancestral loop (posterior variance, x0 clipped to [-1, 1])."""
    sched = DDPMScheduler(**{k: SCHEDULER_CONFIG[k] for k in
                             ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end",
                              "prediction_type", "clip_sample_range")},
                          clip_sample=True, variance_type="fixed_small")
    sched.set_timesteps(SCHEDULER_CONFIG["num_train_timesteps"])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((len(labels), model.data_dim), generator=g)
    for t in sched.timesteps:
        x = sched.step(guided_output(model, x, t, labels, guidance), t, x, generator=g).prev_sample
    return x.numpy()


# ---------------------------------------------------------------- metrics

def frechet_distance(a, b):
    from scipy import linalg
    mu1, mu2 = a.mean(0), b.mean(0)
    # A tiny ridge keeps sqrtm stable where a covariance is singular (the
    # digits' corner pixels are always 0): it changes FD by ~1e-6 per dimension.
    ridge = 1e-6 * np.eye(a.shape[1])
    s1, s2 = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@torch.no_grad()
def features_of(classifier, x):
    return classifier.features(torch.from_numpy(np.asarray(x, np.float32))).double().numpy()


@torch.no_grad()
def classify(classifier, x):
    return classifier(torch.from_numpy(np.clip(np.asarray(x, np.float32), -1, 1))).argmax(1).numpy()


def evaluate(samples, labels, classifier, real_half):
    pred = classify(classifier, samples)
    per_class = [float((pred[labels == c] == c).mean()) for c in range(NUM_CLASSES)]
    return {
        "conditional_accuracy": float((pred == labels).mean()),
        "per_class_accuracy": per_class,
        "frechet_distance_features": frechet_distance(
            features_of(classifier, np.clip(samples, -1, 1)), features_of(classifier, real_half)),
        "frechet_distance_pixels": frechet_distance(
            to_pixels(samples).astype(np.float64), to_pixels(real_half).astype(np.float64)),
    }


# ---------------------------------------------------------------- fixture

def exact_timestep_embedding(t, spec=TIME_EMBEDDING):
    """get_timestep_embedding with every float32 operation correctly rounded.

    torch's float32 exp, sin and cos may be 1 ulp off (and differ between
    CPUs: AVX2 vs AVX-512 code paths); at t ~ 1000 one ulp of a frequency
    moves sin(t f) by up to ~6e-5. ddpm computes this exact form, so the
    fixture carries it and the network's output on it beside torch's own.
    """
    half = spec["dim"] // 2
    k = np.arange(half, dtype=np.float32)
    exponent = (np.float32(-math.log(spec["max_period"])) * k) / np.float32(half - spec["downscale_freq_shift"])
    frequency = np.exp(exponent.astype(np.float64)).astype(np.float32)
    angle = np.float32(spec["scale"]) * (np.asarray(t, np.float32)[:, None] * frequency[None, :])
    s = np.sin(angle.astype(np.float64)).astype(np.float32)
    c = np.cos(angle.astype(np.float64)).astype(np.float32)
    return np.concatenate([c, s] if spec["flip_sin_to_cos"] else [s, c], axis=1)


@torch.no_grad()
def write_fixture(model, path):
    """Network outputs on fixed (x_t, t, label) rows, float32 and float64."""
    timesteps = [0, 999, 1, 10, 100, 250, 500, 750, 998, 37, 999, 0, 500, 123, 877, 640]
    n = len(timesteps)
    g = torch.Generator().manual_seed(1234)
    x_t = torch.randn((n, model.data_dim), generator=g) * 1.3
    labels = torch.tensor([i % (NUM_CLASSES + 1) for i in range(n)], dtype=torch.long)
    labels[1] = NULL_LABEL
    t = torch.tensor(timesteps, dtype=torch.long)
    trace = {}
    out = model(x_t, t, labels, trace=trace)
    temb_exact = torch.from_numpy(exact_timestep_embedding(timesteps))
    out_exact = model(x_t, t, labels, temb=temb_exact)
    model64 = MlpDenoiser(hidden=model.hidden, num_blocks=len(model.blocks)).double()
    model64.load_state_dict(model.state_dict())
    out64 = model64(x_t.double(), t, labels, temb=temb_exact.double())
    tensors = {"x_t": x_t, "timestep": t.float(), "label": labels.float(), "output": out,
               "temb_exact": temb_exact, "output_exact_embedding": out_exact,
               "output_float64": out64.float()}
    tensors.update({k: v.float() for k, v in trace.items()})
    note = ("timestep and label are integers stored as F32. output: PyTorch's float32 forward "
            "pass as it is (temb from diffusers' get_timestep_embedding, torch's exp/sin/cos); "
            "temb_exact: the same embedding with every float32 operation correctly rounded; "
            "output_exact_embedding: the float32 forward pass on temb_exact; output_float64: the "
            "float64 forward pass on temb_exact, rounded to float32; temb, cond, h_in, h_block_i: "
            "float32 intermediates of output (docs/model-format.md)")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              metadata={"ddpm_fixture": json.dumps({"model": "models/digits.safetensors",
                                                    "rows": n, "torch": torch.__version__,
                                                    "note": note})})
    return (float((out.double() - out64).abs().max() / out64.abs().max()),
            float((out_exact.double() - out64).abs().max() / out64.abs().max()))


@torch.no_grad()
def guided_output_at(model, x, t, labels, guidance):
    """guided_output at a time t that may be fractional (Euler's steps with Karras sigmas):
    the network gets t as it is, as diffusers pipelines pass scheduler.timesteps to a UNet."""
    return guided_output_of_times(model, x, torch.full((len(x),), float(t), dtype=torch.float32), labels,
                                  guidance)


@torch.no_grad()
def sample_loop(model, scheduler, z, labels, guidance, steps):
    """A diffusers pipeline loop from the given N(0, I) draws z: x_T = z * init_noise_sigma."""
    scheduler.set_timesteps(steps)
    x = z * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        out = guided_output_at(model, scheduler.scale_model_input(x, t), t, labels, guidance)
        x = scheduler.step(out, t, x).prev_sample
    return x


# The deterministic loops of the sampler fixture: (name, scheduler, steps, guidance).
def fixture_loops():
    return [
        ("ddim_50_trailing_w3", DDIMScheduler(**SCHEDULER_CONFIG), 50, 3.0),
        ("euler_karras_20_w1", EulerDiscreteScheduler.from_config(SCHEDULER_CONFIG, use_karras_sigmas=True),
         20, 1.0),
        ("dpmpp_2m_karras_20_w3",
         DPMSolverMultistepScheduler.from_config(SCHEDULER_CONFIG, algorithm_type="dpmsolver++",
                                                 solver_order=2, lower_order_final=True,
                                                 use_karras_sigmas=True), 20, 3.0),
    ]


@torch.no_grad()
def write_sampler_fixture(model, path):
    """The network at fractional timesteps, and whole sampling loops in diffusers.

    frac_*: 16 rows, 4 rows at each of 4 fractional times (the first two are Karras
    timesteps of Euler plans); output as torch runs it and on the exactly
    rounded embedding. loops: z [10, 64] ~ N(0, I), labels 0..9, and each loop's
    final sample from x_T = z * init_noise_sigma (all three are deterministic)."""
    times = [893.6077880859375, 12.253524780273438, 437.25, 998.5]
    n = 4 * len(times)
    g = torch.Generator().manual_seed(4321)
    x_t = torch.randn((n, model.data_dim), generator=g) * 1.2
    t = torch.tensor([times[i // 4] for i in range(n)], dtype=torch.float32)
    labels = torch.tensor([(3 * i) % (NUM_CLASSES + 1) for i in range(n)], dtype=torch.long)
    out = model(x_t, t, labels)
    temb_exact = torch.from_numpy(exact_timestep_embedding(t.numpy()))
    out_exact = model(x_t, t, labels, temb=temb_exact)
    tensors = {"frac_x_t": x_t, "frac_timestep": t, "frac_label": labels.float(),
               "frac_output": out, "frac_temb_exact": temb_exact,
               "frac_output_exact_embedding": out_exact}
    z = torch.randn((NUM_CLASSES, model.data_dim), generator=g)
    loop_labels = torch.arange(NUM_CLASSES)
    tensors.update({"z": z, "labels": loop_labels.float()})
    loops = {}
    for name, scheduler, steps, guidance in fixture_loops():
        tensors[name] = sample_loop(model, scheduler, z, loop_labels, guidance, steps)
        loops[name] = {"scheduler": type(scheduler).__name__, "config": dict(scheduler.config),
                       "steps": steps, "guidance_scale": guidance,
                       "timesteps": [float(v) for v in scheduler.timesteps]}
    note = ("frac_timestep and frac_label are stored as F32 (labels are integers). frac_output: "
            "PyTorch's float32 forward at the fractional time; frac_output_exact_embedding: the same on "
            "the correctly rounded embedding (frac_temb_exact). z: N(0, I) draws; each loop starts from "
            "x_T = z * init_noise_sigma with labels 0..9 and ends with the tensor of its name")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              metadata={"ddpm_fixture": json.dumps({"model": "models/digits.safetensors",
                                                    "torch": torch.__version__,
                                                    "diffusers": __import__("diffusers").__version__,
                                                    "loops": loops, "note": note}, default=str)})
    return float((out - out_exact).abs().max() / out_exact.abs().max())


def load_mlp_denoiser(path):
    """The inverse of export_mlp_denoiser: a model built from the card, weights loaded."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        card = json.loads(f.metadata()[CARD_KEY])
        state = {k: f.get_tensor(k) for k in f.keys()}
    model = MlpDenoiser(data_dim=card["data_dim"], hidden=card["hidden_dim"],
                        num_blocks=card["num_blocks"], num_classes=card["num_classes"],
                        temb_dim=card["time_embedding"]["dim"])
    model.load_state_dict(state)
    return model.eval()


# ---------------------------------------------------------------- plots

def plot_loss(losses, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    w = 200
    smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
    ax.plot(np.arange(len(losses)), losses, color="0.85", lw=0.5, label="per step")
    ax.plot(np.arange(w - 1, len(losses)), smooth, color="C0", lw=1.2, label=f"mean of {w}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("v-prediction MSE")
    ax.set_title("digits denoiser: training loss")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_grid(samples, path, title):
    """samples: [10 rows, cols, 64] in model space."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows, cols = samples.shape[0], samples.shape[1]
    canvas = np.ones((rows * 9 + 1, cols * 9 + 1)) * 16
    for r in range(rows):
        for c in range(cols):
            canvas[1 + r * 9:1 + r * 9 + 8, 1 + c * 9:1 + c * 9 + 8] = to_pixels(samples[r, c]).reshape(8, 8)
    fig, ax = plt.subplots(figsize=(cols * 0.45, rows * 0.45 + 0.4), dpi=80)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- main

def write_and_log_fixture(model, path, log, sampler_path=None):
    torch_rel, exact_rel = write_fixture(model, path)
    log(f"fixture: float64 forward vs float32 as torch runs it {torch_rel:.2e}, vs float32 on "
        f"the exact embedding {exact_rel:.2e} (max difference / max |output|)")
    if sampler_path:
        frac_rel = write_sampler_fixture(model, sampler_path)
        log(f"sampler fixture {sampler_path}: at fractional times, torch's embedding vs the exact "
            f"one {frac_rel:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12000, help="optimiser steps")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--label-dropout", type=float, default=0.15)
    ap.add_argument("--guidance", type=float, default=3.0, help="the guided setting measured and shown")
    ap.add_argument("--per-class", type=int, default=100, help="samples per class for the metrics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="models")
    ap.add_argument("--fixture", default="tests/data/digits_mlp_fixture.safetensors")
    ap.add_argument("--sampler-fixture", default="tests/data/digits_sampler_fixture.safetensors")
    ap.add_argument("--skip-ddpm", action="store_true", help="leave out the 1000-step DDPM metrics")
    ap.add_argument("--fixture-only", action="store_true",
                    help="only rewrite the fixtures from the model already in --out")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="keep the trained model and classifier in --out (and the loss plot); "
                         "rewrite its card, the metrics, the sample grid and the fixture")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(os.path.dirname(args.fixture), exist_ok=True)
    log = lambda m: print(m, flush=True)
    if args.fixture_only:
        write_and_log_fixture(load_mlp_denoiser(os.path.join(args.out, "digits.safetensors")),
                              args.fixture, log, args.sampler_fixture)
        return 0

    x, y = load_data()
    log(f"digits: {len(x)} images, model space [{x.min():.0f}, {x.max():.0f}]")
    classifier_path = os.path.join(args.out, "digits_classifier.safetensors")
    model_path = os.path.join(args.out, "digits.safetensors")
    if args.evaluate_only:
        classifier, clf_accuracy = load_classifier(classifier_path)
        n_test = len(x) // 4
        n_train = len(x) - n_test
        model = load_mlp_denoiser(model_path)
        from safetensors import safe_open
        with safe_open(model_path, framework="pt") as f:
            training = json.loads(f.metadata()[CARD_KEY])["training"]
        log(f"evaluating {model_path} (trained in {training['seconds']} s); classifier held-out "
            f"accuracy {clf_accuracy:.4f}")
    else:
        classifier, clf_accuracy, n_train, n_test = train_classifier(x, y, args.seed, log)
        export_classifier(classifier, clf_accuracy, classifier_path)
        model, losses, train_seconds = train_denoiser(x, y, args, log)
        log(f"denoiser: {sum(p.numel() for p in model.parameters())} parameters, "
            f"trained in {train_seconds:.0f} s")
        plot_loss(losses, os.path.join(args.out, "digits_loss.png"))
        training = {"steps": args.steps, "batch": args.batch, "optimizer": "AdamW", "lr": args.lr,
                    "lr_schedule": "500-step linear warm-up, cosine decay to 0",
                    "ema_decay": args.ema, "label_dropout": args.label_dropout,
                    "loss": "MSE on v", "seed": args.seed, "torch_threads": args.threads,
                    "seconds": round(train_seconds, 1),
                    "data": f"scikit-learn digits, all {len(x)} images"}

    # Real-vs-real floor: two random halves of the real digits.
    rng = np.random.default_rng(args.seed + 7)
    order = rng.permutation(len(x))
    half_a, half_b = x[order[: len(x) // 2]], x[order[len(x) // 2:]]
    floor = {
        "frechet_distance_features": frechet_distance(features_of(classifier, half_b),
                                                      features_of(classifier, half_a)),
        "frechet_distance_pixels": frechet_distance(to_pixels(half_b).astype(np.float64),
                                                    to_pixels(half_a).astype(np.float64)),
        "classifier_accuracy_on_half_b": float((classify(classifier, half_b) == y[order[len(x) // 2:]]).mean()),
        "sizes": [len(half_b), len(half_a)],
    }
    log(f"real vs real: FD features {floor['frechet_distance_features']:.3f}, "
        f"pixels {floor['frechet_distance_pixels']:.2f}")

    labels = torch.arange(NUM_CLASSES).repeat_interleave(args.per_class)
    results = {}
    timings = {}
    settings = [("ddim50_w1", "ddim", 1.0), (f"ddim50_w{args.guidance:g}", "ddim", args.guidance)]
    if not args.skip_ddpm:
        settings.append(("ddpm1000_w1", "ddpm", 1.0))
    for name, kind, w in settings:
        t0 = time.time()
        samples = (sample_ddim if kind == "ddim" else sample_ddpm)(model, labels, w, args.seed + 100)
        timings[name] = time.time() - t0
        results[name] = evaluate(samples, labels.numpy(), classifier, half_a)
        results[name]["guidance_scale"] = w
        results[name]["sampler"] = kind
        log(f"{name}: accuracy {results[name]['conditional_accuracy']:.3f}, FD features "
            f"{results[name]['frechet_distance_features']:.3f}, pixels "
            f"{results[name]['frechet_distance_pixels']:.2f} ({timings[name]:.0f} s)")
        if name == f"ddim50_w{args.guidance:g}":
            plot_grid(samples.reshape(NUM_CLASSES, args.per_class, -1)[:, :12],
                      os.path.join(args.out, "digits_samples.png"),
                      f"DDIM 50 steps (trailing), guidance {w:g}: one row per class")

    # Unconditional: the null label for every row.
    n_uncond = NUM_CLASSES * args.per_class
    null = torch.full((n_uncond,), NULL_LABEL, dtype=torch.long)
    uncond = sample_ddim(model, null, 1.0, args.seed + 200)
    hist = np.bincount(classify(classifier, uncond), minlength=NUM_CLASSES)
    results["ddim50_unconditional"] = {
        "class_histogram": hist.tolist(),
        "real_class_histogram": np.bincount(y, minlength=NUM_CLASSES).tolist(),
        "frechet_distance_features": frechet_distance(features_of(classifier, np.clip(uncond, -1, 1)),
                                                      features_of(classifier, half_a)),
        "frechet_distance_pixels": frechet_distance(to_pixels(uncond).astype(np.float64),
                                                    to_pixels(half_a).astype(np.float64)),
    }
    log(f"unconditional histogram {hist.tolist()}, FD features "
        f"{results['ddim50_unconditional']['frechet_distance_features']:.3f}")

    card = model_card(model, args, training)
    export_mlp_denoiser(model, card, model_path)
    write_and_log_fixture(model, args.fixture, log, args.sampler_fixture)

    metrics = {
        "model": "models/digits.safetensors",
        "classifier": {"architecture": "64 -> 128 -> 10, ReLU", "input": "model space",
                       "heldout_accuracy": clf_accuracy, "train": n_train, "test": n_test},
        "protocol": {
            "samples_per_class": args.per_class,
            "ddim": "diffusers DDIMScheduler, 50 steps, timestep_spacing trailing, eta 0, "
                    "clip_sample false, set_alpha_to_one true",
            "ddpm": "diffusers DDPMScheduler, 1000 steps, variance_type fixed_small, clip_sample true",
            "guidance": "classifier-free: v = v_null + w (v_label - v_null); w = 1 is conditional only",
            "classified": "samples clipped to [-1, 1], argmax of the classifier",
            "frechet_distance": f"against real half A ({len(half_a)} digits); features = "
                                f"classifier hidden layer (128, ReLU); pixels in 0..16 units",
            "seed": args.seed,
        },
        "real_vs_real": floor,
        "samplers": results,
        "sampling_seconds": timings,
        "training": training,
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "diffusers": __import__("diffusers").__version__,
                     "scikit-learn": __import__("sklearn").__version__},
    }
    with open(os.path.join(args.out, "digits_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    log("wrote " + ", ".join(os.path.join(args.out, n) for n in
                             ("digits.safetensors", "digits_classifier.safetensors",
                              "digits_metrics.json", "digits_loss.png", "digits_samples.png"))
        + ", " + args.fixture + ", " + args.sampler_fixture)


if __name__ == "__main__":
    sys.exit(main())
