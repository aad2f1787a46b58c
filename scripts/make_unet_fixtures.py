#!/usr/bin/env python3
"""Writes tiny seeded diffusers UNet2DModel folders and their outputs under
tests/data/diffusers/unet/, for checking a native UNet2DModel against diffusers.

Run it through scripts/make-unet-fixtures, which builds a throwaway venv with the
pinned torch and diffusers (scripts/diffusers-venv). Not run in CI; its outputs
are committed. tests/data/diffusers/unet/README.md describes every folder.

Written (OUT = tests/data/diffusers/unet):
  OUT/<model>/config.json, diffusion_pytorch_model.safetensors
                           UNet2DModel.save_pretrained of a seeded random model whose
                           every parameter is perturbed (nothing all-zero or all-one)
  OUT/<model>/cases.safetensors
                           inputs (sample, timestep, class_labels) and float32 outputs
                           of diffusers' forward pass, plus the outputs on the correctly
                           rounded timestep embedding and in float64
  OUT/basic/diffusion_pytorch_model.{fp16,bf16}.safetensors
                           save_pretrained(variant="fp16" / "bf16") of the half-precision
                           weights; cases.safetensors holds the float32 outputs of a
                           float32 model loaded from each (fp16.case_k.output, bf16.…)
  OUT/legacy_attention_names/
                           basic's weights under the attention names of diffusers < 0.14
                           (query/key/value/proj_attn) with a config in the old key set
  OUT/pipeline/            DDPMPipeline(unet=ddpm_cifar_like, DDPMScheduler()).save_pretrained
  OUT/hostile/<case>/      one unsupported field or one broken weights file each
  OUT/manifest.json        every folder, what it covers, its cases, and for the hostile
                           ones what diffusers itself does with them

Deterministic: seeded generators, one torch thread, deterministic algorithms; two
runs write byte-identical files (the script checks the pipeline's unet against
ddpm_cifar_like byte for byte).
"""
import argparse
import copy
import json
import math
import os
import platform
import shutil
import sys

import numpy as np
import torch

import diffusers
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

GENERATOR = {
    "script": "scripts/make_unet_fixtures.py",
    "diffusers": diffusers.__version__,
    "torch": torch.__version__,
    "numpy": np.__version__,
    "python": platform.python_version(),
}
WEIGHTS = "diffusion_pytorch_model.safetensors"

# ------------------------------------------------------------------------------------
# The models. Each: (name, seed, what it covers, UNet2DModel kwargs). Everything not
# given is diffusers' default (and is written to config.json by save_pretrained).
# ------------------------------------------------------------------------------------
MODELS = [
    ("basic", 11,
     "all four block types (AttnDownBlock2D last, without a downsampler; AttnUpBlock2D first, "
     "with an upsampler), UNetMidBlock2D with attention (its GroupNorm has norm_num_groups "
     "groups), attention_head_dim 8 = 2 heads of 8 at 16 channels, layers_per_block 1, "
     "otherwise diffusers' defaults (flip_sin_to_cos true, freq_shift 0, downsample_padding 1, "
     "norm_eps 1e-5, resnet_time_scale_shift default); also fp16 and bf16 variants",
     dict(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
          down_block_types=("DownBlock2D", "AttnDownBlock2D"),
          up_block_types=("AttnUpBlock2D", "UpBlock2D"),
          layers_per_block=1, norm_num_groups=4, attention_head_dim=8)),
    ("ddpm_cifar_like", 12,
     "google/ddpm-cifar10-32's layout shrunk: 4 levels (DownBlock2D, AttnDownBlock2D, DownBlock2D, "
     "DownBlock2D / UpBlock2D, UpBlock2D, AttnUpBlock2D, UpBlock2D), layers_per_block 2, "
     "attention_head_dim null (one head over all channels), flip_sin_to_cos false, freq_shift 1, "
     "downsample_padding 0 (asymmetric zero pad right/bottom), norm_eps 1e-6; 16x16 down to 2x2",
     dict(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(4, 8, 8, 8),
          down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
          up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
          layers_per_block=2, norm_num_groups=2, attention_head_dim=None,
          flip_sin_to_cos=False, freq_shift=1, downsample_padding=0, norm_eps=1e-6)),
    ("class_scale_shift", 13,
     "class-conditional (num_class_embeds 5: labels 0-3 and 4 used as the null label), "
     "resnet_time_scale_shift scale_shift (time_emb_proj gives 2C: norm2(h) * (1 + scale) + shift), "
     "so the mid-block attention has NO GroupNorm (attn_norm_num_groups null), "
     "mid_block_scale_factor 1.414 (divides the mid resnets' and attention's residual sums), "
     "time_embedding_dim 40 (not 4 x 8), non-square sample_size [8, 12], 1 -> 1 channels, "
     "AttnDownBlock2D first (with a downsampler), 2 heads of 4, freq_shift 1",
     dict(sample_size=(8, 12), in_channels=1, out_channels=1, block_out_channels=(8, 16),
          down_block_types=("AttnDownBlock2D", "DownBlock2D"),
          up_block_types=("UpBlock2D", "AttnUpBlock2D"),
          layers_per_block=1, norm_num_groups=4, attention_head_dim=4,
          resnet_time_scale_shift="scale_shift", mid_block_scale_factor=1.414,
          time_embedding_dim=40, num_class_embeds=5, freq_shift=1)),
    ("heads_no_mid_attention", 14,
     "3 levels (8, 12, 16) with attention in the first two down and last two up blocks "
     "(AttnUpBlock2D last: no upsampler), attention_head_dim 4 = 2, 3 and 4 heads, "
     "UNetMidBlock2D with add_attention false (two resnets), layers_per_block 1, "
     "non-square [16, 12] (down to 4x3), 3 -> 5 channels, norm_eps 1e-4, "
     "flip_sin_to_cos false with freq_shift 0",
     dict(sample_size=(16, 12), in_channels=3, out_channels=5, block_out_channels=(8, 12, 16),
          down_block_types=("AttnDownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
          up_block_types=("UpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D"),
          layers_per_block=1, norm_num_groups=4, attention_head_dim=4, add_attention=False,
          norm_eps=1e-4, flip_sin_to_cos=False, freq_shift=0)),
    ("no_mid_block_centered", 15,
     "mid_block_type null (no mid block), center_input_sample true (x -> 2x - 1 first), "
     "odd block_out_channels (9, 18) with norm_num_groups 3, so the timestep embedding has an "
     "odd width 9 (diffusers pads a zero column after the 4 + 4 sin/cos), attention_head_dim 6 "
     "= 3 heads at 18 channels, 5 -> 1 channels, downsample_padding 0, layers_per_block 1",
     dict(sample_size=8, in_channels=5, out_channels=1, block_out_channels=(9, 18),
          down_block_types=("DownBlock2D", "AttnDownBlock2D"),
          up_block_types=("AttnUpBlock2D", "UpBlock2D"),
          layers_per_block=1, norm_num_groups=3, attention_head_dim=6, mid_block_type=None,
          center_input_sample=True, downsample_padding=0)),
    ("class_attn_groups", 16,
     "class-conditional (num_class_embeds 3: labels 0, 1 and 2 as the null label), scale_shift "
     "with attn_norm_num_groups 2 (so the mid attention does have a GroupNorm, of 2 groups, while "
     "the resnets use 4), mid_block_scale_factor 0.7, attention_head_dim null (1 head), "
     "layers_per_block 2, non-square [12, 8], 2 -> 3 channels, norm_eps 1e-6",
     dict(sample_size=(12, 8), in_channels=2, out_channels=3, block_out_channels=(8, 16),
          down_block_types=("DownBlock2D", "AttnDownBlock2D"),
          up_block_types=("AttnUpBlock2D", "UpBlock2D"),
          layers_per_block=2, norm_num_groups=4, attention_head_dim=None,
          resnet_time_scale_shift="scale_shift", attn_norm_num_groups=2,
          mid_block_scale_factor=0.7, num_class_embeds=3, norm_eps=1e-6)),
]

# (batch, timestep values, how they are passed). "scalar": a 0-d tensor broadcast to the
# batch; "rows": one per row. int64 as DDPM/DDIM/DPM-Solver pipelines pass them, float32
# as Euler-type schedulers do (fractional).
CASES = [
    (1, 0, "scalar", torch.int64),
    (1, 999, "scalar", torch.int64),
    (3, [0, 1, 999], "rows", torch.int64),
    (3, 17.5, "scalar", torch.float32),
    (3, [17.5, 0.25, 998.75], "rows", torch.float32),
    (2, [500, 250], "rows", torch.int64),
]


def sample_shape(config):
    size = config["sample_size"]
    h, w = (size, size) if isinstance(size, int) else size
    return config["in_channels"], h, w


def perturb(model, seed):
    """Adds seeded noise to every parameter: 0.2 N(0, 1) to normalisation weights and biases
    (GroupNorm starts at weight 1, bias 0), 0.05 N(0, 1) to everything else."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.2 if "norm" in name.rsplit(".", 2)[-2] else 0.05
            p.add_(torch.randn(p.shape, generator=g) * scale)
    for name, p in model.state_dict().items():
        if torch.all(p == 0) or torch.all(p == 1):
            raise AssertionError(f"{name} is constant after perturbation")


def build(config, seed):
    torch.manual_seed(seed)
    model = UNet2DModel(**config)
    perturb(model, seed + 1000)
    return model.eval()


def exact_embedding(t, dim, flip, shift):
    """get_timestep_embedding with each float32 operation correctly rounded (exp, sin, cos
    in float64, then rounded); an odd dim gets diffusers' zero column at the end."""
    half = dim // 2
    k = np.arange(half, dtype=np.float32)
    exponent = (np.float32(-math.log(10000)) * k) / np.float32(half - shift)
    frequency = np.exp(exponent.astype(np.float64)).astype(np.float32)
    angle = np.asarray(t, np.float32)[:, None] * frequency[None, :]
    s = np.sin(angle.astype(np.float64)).astype(np.float32)
    c = np.cos(angle.astype(np.float64)).astype(np.float32)
    emb = np.concatenate([c, s] if flip else [s, c], axis=1)
    if dim % 2 == 1:
        emb = np.pad(emb, ((0, 0), (0, 1)))
    return torch.from_numpy(emb)


class ExactTimesteps(torch.nn.Module):
    """Stands in for model.time_proj: the correctly rounded embedding of the given times."""

    def __init__(self, dim, flip, shift):
        super().__init__()
        self.dim, self.flip, self.shift = dim, flip, shift

    def forward(self, timesteps):
        return exact_embedding(timesteps.to(torch.float32).numpy(), self.dim, self.flip, self.shift)


def make_inputs(config, seed):
    """The cases' inputs: sample ~ N(0, 1), timesteps per CASES, class labels (every label,
    the last one -- the null label by this project's convention -- included)."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = sample_shape(config)
    n_labels = config.get("num_class_embeds")
    inputs = []
    label_cursor = 0
    for batch, t, form, dtype in CASES:
        sample = torch.randn((batch, c, h, w), generator=g)
        timestep = torch.tensor(t, dtype=dtype)
        labels = None
        if n_labels:
            # Walk through the labels from the last (null) one so every label occurs.
            labels = torch.tensor([(n_labels - 1 - (label_cursor + i)) % n_labels for i in range(batch)])
            label_cursor += batch
        inputs.append((sample, timestep, labels, form))
    return inputs


@torch.no_grad()
def outputs(model, inputs):
    return [model(s, t, class_labels=y).sample for s, t, y, _ in inputs]


@torch.no_grad()
def reference_outputs(model, config, inputs):
    """(float32 on the exact embedding, float64 on the exact embedding) for each case."""
    dim = config["block_out_channels"][0]
    exact = ExactTimesteps(dim, config.get("flip_sin_to_cos", True), config.get("freq_shift", 0))
    m32 = copy.deepcopy(model)
    m32.time_proj = exact
    m64 = copy.deepcopy(model).double()
    m64.time_proj = exact
    out32, out64 = [], []
    for s, t, y, _ in inputs:
        out32.append(m32(s, t, class_labels=y).sample)
        out64.append(m64(s.double(), t, class_labels=y).sample.float())
    return out32, out64


def case_metadata(inputs):
    meta = []
    for k, (s, t, y, form) in enumerate(inputs):
        meta.append({"name": f"case_{k}", "batch": s.shape[0], "timestep_form": form,
                     "timestep_dtype": str(t.dtype).replace("torch.", ""),
                     "timestep": t.tolist(), "class_labels": None if y is None else y.tolist()})
    return meta


def write_cases(path, model_name, config, inputs, outs, exact, f64, extra=None, note_extra=""):
    tensors = {}
    for k, (s, t, y, _) in enumerate(inputs):
        p = f"case_{k}."
        tensors[p + "sample"] = s
        tensors[p + "timestep"] = t.to(torch.float32)
        if y is not None:
            tensors[p + "class_labels"] = y.to(torch.float32)
        tensors[p + "output"] = outs[k]
        tensors[p + "output_exact_embedding"] = exact[k]
        tensors[p + "output_float64"] = f64[k]
    tensors.update(extra or {})
    note = ("case_k.sample [B, C, H, W] float32; case_k.timestep as passed to diffusers but stored as "
            "F32: shape [] for a 0-d tensor broadcast to the batch, [B] for one per row (timestep_dtype "
            "says whether diffusers got int64 or float32); case_k.class_labels [B] integers stored as "
            "F32 (diffusers got int64). case_k.output: UNet2DModel(sample, timestep, class_labels).sample "
            "in float32 as torch runs it (1 thread); output_exact_embedding: the same with the timestep "
            "embedding correctly rounded (float64 exp/sin/cos, rounded to float32); output_float64: the "
            "model in float64 on that embedding, rounded to float32." + note_extra)
    meta = {"model": model_name, "generator": GENERATOR, "cases": case_metadata(inputs), "note": note}
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              metadata={"ddpm_fixture": json.dumps(meta)})


def rel_err(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@torch.no_grad()
def sensitivity(model, inputs):
    """For each parameter tensor: max |output change| / max |output| when it is zeroed
    (cases 2 and 4: batch 3, integer and fractional times)."""
    chosen = [inputs[2], inputs[4]]
    base = outputs(model, chosen)
    result = {}
    for name, p in model.named_parameters():
        saved = p.detach().clone()
        p.zero_()
        changed = outputs(model, chosen)
        p.copy_(saved)
        result[name] = max(rel_err(c, b) for c, b in zip(changed, base))
    return result


# ------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------

def write_model(out, name, seed, covers, config, log):
    folder = os.path.join(out, name)
    model = build(config, seed)
    model.save_pretrained(folder)
    # What a user gets back: the saved folder loaded by diffusers.
    loaded = UNet2DModel.from_pretrained(folder, low_cpu_mem_usage=False).eval()
    inputs = make_inputs(config, seed + 2000)
    outs = outputs(loaded, inputs)
    exact, f64 = reference_outputs(loaded, config, inputs)
    extra, note_extra, variants = {}, "", {}
    if name == "basic":
        for variant, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
            half = copy.deepcopy(model).to(dtype)
            half.save_pretrained(folder, variant=variant)
            back = UNet2DModel.from_pretrained(folder, variant=variant, torch_dtype=torch.float32,
                                                low_cpu_mem_usage=False).eval()
            assert next(back.parameters()).dtype == torch.float32
            outs_v = outputs(back, inputs)
            for k, o in enumerate(outs_v):
                extra[f"{variant}.case_{k}.output"] = o
            variants[variant] = {
                "file": f"diffusion_pytorch_model.{variant}.safetensors",
                "max_rel_diff_to_fp32_weights": max(rel_err(a, b) for a, b in zip(outs_v, outs))}
        note_extra = (" fp16.case_k.output / bf16.case_k.output: the same inputs through a float32 model "
                      "loaded from diffusion_pytorch_model.fp16 / .bf16.safetensors "
                      "(from_pretrained(variant=..., torch_dtype=torch.float32)): the half weights "
                      "widened exactly, computed in float32.")
    write_cases(os.path.join(folder, "cases.safetensors"), name, config, inputs, outs, exact, f64,
                extra, note_extra)
    sens = sensitivity(loaded, inputs)
    insensitive = {k: v for k, v in sens.items() if v < 1e-5}
    # Only the attention key biases may not matter: q . (k_j + b) = q . k_j + q . b is the same
    # shift for every key j, which softmax cancels (zeroing them moves outputs by rounding only).
    assert all(k.endswith(".to_k.bias") for k in insensitive), insensitive
    n_params = sum(p.numel() for p in loaded.parameters())
    log(f"{name}: {n_params} parameters, |output| max "
        f"{max(float(o.abs().max()) for o in outs):.3f}, torch vs exact embedding "
        f"{max(rel_err(a, b) for a, b in zip(outs, exact)):.1e}, float32 vs float64 "
        f"{max(rel_err(a, b) for a, b in zip(exact, f64)):.1e}; least sensitive tensor "
        f"{min(sens, key=sens.get)} {min(sens.values()):.1e}" +
        (f"; fp16 {variants['fp16']['max_rel_diff_to_fp32_weights']:.1e}, "
         f"bf16 {variants['bf16']['max_rel_diff_to_fp32_weights']:.1e}" if variants else ""))
    entry = {"folder": name, "covers": covers, "seed": seed, "parameters": n_params,
             "tensors": len(loaded.state_dict()),
             "sample_shape": list(sample_shape(config)),
             "cases": case_metadata(inputs),
             "max_rel_diff_torch_vs_exact_embedding": max(rel_err(a, b) for a, b in zip(outs, exact)),
             "max_rel_diff_float32_vs_float64": max(rel_err(a, b) for a, b in zip(exact, f64)),
             "tensors_that_do_not_matter": insensitive,
             "min_sensitivity_of_the_others": min(v for v in sens.values() if v >= 1e-5)}
    if variants:
        entry["variants"] = variants
    return model, entry


LEGACY_RENAMES = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
# The keys UNet2DModel configs had in diffusers 0.0.4 (google/ddpm-*), attention_head_dim left
# out: a config without it gets the default 8.
LEGACY_KEYS = ["act_fn", "block_out_channels", "center_input_sample", "down_block_types",
               "downsample_padding", "flip_sin_to_cos", "freq_shift", "in_channels", "layers_per_block",
               "mid_block_scale_factor", "norm_eps", "norm_num_groups", "out_channels", "sample_size",
               "time_embedding_type", "up_block_types"]


def write_legacy(out, basic_folder, log):
    """basic's weights with the pre-0.14 attention names, and a config of the old key set."""
    folder = os.path.join(out, "legacy_attention_names")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(basic_folder, "config.json")) as f:
        config = json.load(f)
    assert config["attention_head_dim"] == 8 and config["mid_block_type"] == "UNetMidBlock2D"
    legacy = {"_class_name": "UNet2DModel", "_diffusers_version": "0.0.4"}
    legacy.update({k: config[k] for k in LEGACY_KEYS})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(legacy, f, indent=2, sort_keys=True)
        f.write("\n")
    state = load_file(os.path.join(basic_folder, WEIGHTS))
    renamed = {}
    for key, value in state.items():
        new = key
        if ".attentions." in key:
            for modern, old in LEGACY_RENAMES.items():
                if f".{modern}." in key:
                    new = key.replace(f".{modern}.", f".{old}.")
        renamed[new] = value
    save_file(renamed, os.path.join(folder, WEIGHTS), metadata={"format": "pt"})
    # diffusers renames them back on load: same outputs as basic, bit for bit.
    back = UNet2DModel.from_pretrained(folder, low_cpu_mem_usage=False).eval()
    ref = UNet2DModel.from_pretrained(basic_folder, low_cpu_mem_usage=False).eval()
    inputs = make_inputs(dict(ref.config), 11 + 2000)
    for a, b in zip(outputs(back, inputs), outputs(ref, inputs)):
        assert torch.equal(a, b), "legacy names do not load as basic"
    n = sum(1 for k in renamed if k not in state)
    log(f"legacy_attention_names: {n} tensors renamed; diffusers loads it to basic's outputs bit for bit")
    return {"folder": "legacy_attention_names",
            "covers": "basic's weights with the attention tensors under their diffusers < 0.14 names "
                      "(query, key, value, proj_attn for to_q, to_k, to_v, to_out.0), as in old Hub "
                      "checkpoints; config.json with only the keys a diffusers 0.0.4 config has "
                      "(no attention_head_dim: diffusers' default 8 applies; no mid_block_type, "
                      "add_attention, class_embed_type, ...: defaults). diffusers loads it "
                      "(ModelMixin._fix_state_dict_keys_on_load) and gives basic's outputs bit for bit: "
                      "compare with basic/cases.safetensors",
            "renamed_tensors": n}


def write_pipeline(out, cifar_model, log):
    folder = os.path.join(out, "pipeline")
    DDPMPipeline(unet=cifar_model, scheduler=DDPMScheduler()).save_pretrained(folder)
    a = open(os.path.join(folder, "unet", WEIGHTS), "rb").read()
    b = open(os.path.join(out, "ddpm_cifar_like", WEIGHTS), "rb").read()
    assert a == b, "pipeline/unet differs from ddpm_cifar_like"
    DDPMPipeline.from_pretrained(folder, low_cpu_mem_usage=False)  # it loads
    log("pipeline: model_index.json, unet/ (= ddpm_cifar_like byte for byte), scheduler/")
    return {"folder": "pipeline",
            "covers": "DDPMPipeline(unet=ddpm_cifar_like, scheduler=DDPMScheduler()).save_pretrained: "
                      "model_index.json, unet/config.json + weights (byte-identical to ddpm_cifar_like: "
                      "its cases apply), scheduler/scheduler_config.json (DDPMScheduler defaults)"}


# ------------------------------------------------------------------------------------
# Hostile variants
# ------------------------------------------------------------------------------------
HOSTILE_BASE = dict(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(4, 4),
                    down_block_types=("AttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                    layers_per_block=1, norm_num_groups=2, attention_head_dim=2)

# (folder, what changes, config changes, constructible by diffusers)
HOSTILE_CONFIGS = [
    ("time_embedding_fourier", "time_embedding_type \"fourier\" (GaussianFourierProjection, output / t)",
     {"time_embedding_type": "fourier"}, True),
    ("time_embedding_learned", "time_embedding_type \"learned\" (nn.Embedding of num_train_timesteps 1000)",
     {"time_embedding_type": "learned", "num_train_timesteps": 1000}, True),
    ("class_embed_timestep", "class_embed_type \"timestep\" (labels through the sinusoidal embedding + MLP)",
     {"class_embed_type": "timestep"}, True),
    ("class_embed_identity", "class_embed_type \"identity\" (class_labels are embedding vectors)",
     {"class_embed_type": "identity"}, True),
    ("downsample_resnet", "downsample_type \"resnet\" (AttnDownBlock2D downsamples with a ResnetBlock2D)",
     {"downsample_type": "resnet"}, True),
    ("upsample_resnet", "upsample_type \"resnet\" (AttnUpBlock2D upsamples with a ResnetBlock2D)",
     {"upsample_type": "resnet"}, True),
    ("act_fn_gelu", "act_fn \"gelu\" (the resnets' activation; the time MLP and conv_act stay SiLU)",
     {"act_fn": "gelu"}, True),
    ("mid_block_cross_attn", "mid_block_type \"UNetMidBlock2DCrossAttn\": UNet2DModel builds a plain "
     "UNetMidBlock2D for ANY non-null mid_block_type, so diffusers loads it",
     {"mid_block_type": "UNetMidBlock2DCrossAttn"}, True),
    ("down_block_unknown", "down_block_types [\"AttnDownBlock2D\", \"FancyDownBlock2D\"] (no such block; "
     "config.json only)", {"down_block_types": ["AttnDownBlock2D", "FancyDownBlock2D"]}, False),
    ("up_block_unsupported", "up_block_types [\"AttnUpBlock2D\", \"ResnetUpsampleBlock2D\"] (a diffusers "
     "block ddpm does not implement; config.json only)",
     {"up_block_types": ["AttnUpBlock2D", "ResnetUpsampleBlock2D"]}, False),
]
# (folder, what is wrong with the weights)
HOSTILE_WEIGHTS = [
    ("missing_tensor", "up_blocks.0.attentions.0.to_v.bias is absent"),
    ("extra_tensor", "one tensor more: time_embedding.cond_proj.weight [16, 4] (a real TimestepEmbedding "
                     "name, for cond_proj_dim, which this config does not have)"),
    ("misshapen_tensor", "time_embedding.linear_1.weight stored [4, 16] (transposed) instead of [16, 4]: "
                         "same element count"),
    ("nan_weight", "mid_block.resnets.0.conv1.weight[0, 0, 1, 1] is NaN"),
]


def try_diffusers(folder, config_only=False):
    """What diffusers does with the folder: 'loads' or the exception's type and first two
    lines, and the warnings it logs (first two lines each; the folder's path as <folder>). A folder with config.json alone is tried with
    from_config (from_pretrained would only say the weights file is missing)."""
    import logging
    messages = []

    def first_lines(text):
        lines = [line.strip() for line in text.replace(folder, "<folder>").splitlines() if line.strip()]
        return " ".join(lines[:2])[:300]

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(first_lines(record.getMessage()))

    handler = Keep(level=logging.WARNING)
    logger = logging.getLogger("diffusers")
    logger.addHandler(handler)
    try:
        if config_only:
            UNet2DModel.from_config(UNet2DModel.load_config(folder))
        else:
            UNet2DModel.from_pretrained(folder, low_cpu_mem_usage=False)
        result = "loads"
    except Exception as exc:  # noqa: BLE001 -- recorded, not handled
        result = f"{type(exc).__name__}: {first_lines(str(exc))}"
    finally:
        logger.removeHandler(handler)
    return {"result": result, "warnings": messages}


def write_hostile(out, log):
    root = os.path.join(out, "hostile")
    entries = []
    base_folder = os.path.join(root, "base")
    base = build(HOSTILE_BASE, 21)
    base.save_pretrained(base_folder)
    base_config = json.load(open(os.path.join(base_folder, "config.json")))
    entries.append({"folder": "hostile/base", "wrong": "nothing: the valid model the others change",
                    "diffusers": try_diffusers(base_folder)})
    for name, wrong, change, constructible in HOSTILE_CONFIGS:
        folder = os.path.join(root, name)
        if constructible:
            config = dict(HOSTILE_BASE)
            config.update(change)
            build(config, 21).save_pretrained(folder)
        else:
            os.makedirs(folder, exist_ok=True)
            config = dict(base_config)
            config.update(change)
            with open(os.path.join(folder, "config.json"), "w") as f:
                json.dump(config, f, indent=2, sort_keys=True)
                f.write("\n")
        entries.append({"folder": f"hostile/{name}", "wrong": wrong, "config_change": change,
                        "weights": constructible,
                        "diffusers": try_diffusers(folder, config_only=not constructible)})
    state = load_file(os.path.join(base_folder, WEIGHTS))
    for name, wrong in HOSTILE_WEIGHTS:
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(os.path.join(base_folder, "config.json"), os.path.join(folder, "config.json"))
        bad = {k: v.clone() for k, v in state.items()}
        if name == "missing_tensor":
            del bad["up_blocks.0.attentions.0.to_v.bias"]
        elif name == "extra_tensor":
            bad["time_embedding.cond_proj.weight"] = torch.randn(
                (16, 4), generator=torch.Generator().manual_seed(5)) * 0.1
        elif name == "misshapen_tensor":
            bad["time_embedding.linear_1.weight"] = bad["time_embedding.linear_1.weight"].T.contiguous()
        elif name == "nan_weight":
            bad["mid_block.resnets.0.conv1.weight"][0, 0, 1, 1] = float("nan")
        save_file(bad, os.path.join(folder, WEIGHTS), metadata={"format": "pt"})
        entries.append({"folder": f"hostile/{name}", "wrong": wrong, "weights": True,
                        "diffusers": try_diffusers(folder)})
    for e in entries:
        d = e["diffusers"]
        log(f"  {e['folder']}: diffusers {d['result'][:100]}" +
            (f" (warns: {d['warnings'][0][:100]})" if d["warnings"] else ""))
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/data/diffusers/unet")
    args = ap.parse_args()
    log = lambda m: print(m, flush=True)
    diffusers.utils.logging.disable_progress_bar()
    if os.path.isdir(args.out):
        # Start clean, keeping the hand-written README.
        for entry in os.listdir(args.out):
            path = os.path.join(args.out, entry)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif entry != "README.md":
                os.remove(path)
    os.makedirs(args.out, exist_ok=True)
    log(f"generator: {GENERATOR}")

    manifest = {"generator": GENERATOR, "models": [], "hostile": []}
    built = {}
    for name, seed, covers, config in MODELS:
        built[name], entry = write_model(args.out, name, seed, covers, config, log)
        manifest["models"].append(entry)
    manifest["models"].append(write_legacy(args.out, os.path.join(args.out, "basic"), log))
    manifest["models"].append(write_pipeline(args.out, built["ddpm_cifar_like"], log))
    log("hostile:")
    manifest["hostile"] = write_hostile(args.out, log)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    log(f"wrote {args.out}: {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
