#!/usr/bin/env python3
"""The digits UNet2DModel (models/digits-unet) sampled by ddpm's CLI, measured
as scripts/train_digits_unet.py measures diffusers' samples, and compared with
diffusers on the same checkpoint (the UNet counterpart of evaluate_digits.py).

Run it through scripts/evaluate-digits-unet (the training venv: torch,
diffusers, scikit-learn); CI does not run it. For each setting (DDIM, 50
trailing steps, eta 0: guidance 1, guidance 2, and the null label for every
row) it

  1. draws z ~ N(0, I) [1000, 1, 16, 16] exactly as train_digits_unet.sample_many
     does (seed + 100 for the conditional settings, labels 0..9 x per-class;
     seed + 200 for the unconditional one), so the diffusers side repeats the
     numbers in models/digits_unet_metrics.json,
  2. samples with diffusers: DDIMScheduler.from_config(the folder's scheduler
     config), train_digits_unet.sample_loop in chunks of 200 rows, x_T = z
     (init_noise_sigma is 1),
  3. samples with `ddpm sample --model --sampler ddim --inference-steps 50
     --initial x_T.npy` from the same x_T (deterministic: max |ddpm - diffusers|
     is reported),
  4. samples with `ddpm sample --model ... --shape N --seed SEED+1` from ddpm's
     own noise (independent draws: their metrics differ from diffusers' by
     statistical noise only),

maps every 16x16 sample back to 8x8 with the pinv of the bilinear upsampling
(train_digits_unet.downsample) and reports the share the committed classifier
labels as the requested class, the Frechet distances to real half A
(classifier features and pixels), and for unconditional sampling the class
histogram, as train_digits_unet.py computed them; and the seconds each side
took. Writes models/digits_unet_ddpm_metrics.json.

    scripts/evaluate-digits-unet [--ddpm build/src/cli/ddpm] [--per-class 100]
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
import train_digits as td  # noqa: E402  (data, classifier, Frechet distance, evaluate)
import train_digits_unet as tdu  # noqa: E402  (sample_loop, pinv downsampling, labels)
import evaluate_digits as ed  # noqa: E402  (metrics incl. the unconditional histogram, short)

import diffusers  # noqa: E402
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel  # noqa: E402

STEPS = 50
CHUNK = 200  # rows per diffusers loop, as train_digits_unet.sample_many


def settings(seed):
    """(name, guidance, conditional, z seed): train_digits_unet.py's settings and seeds."""
    return [
        ("ddim50_w1", 1.0, True, seed + 100),
        ("ddim50_w2", 2.0, True, seed + 100),
        ("ddim50_unconditional", 1.0, False, seed + 200),
    ]


def diffusers_sample(unet, scheduler_config, z, labels, guidance):
    out = []
    for i in range(0, len(z), CHUNK):
        out.append(tdu.sample_loop(unet, DDIMScheduler.from_config(scheduler_config), z[i:i + CHUNK],
                                   labels[i:i + CHUNK], guidance, STEPS))
    return torch.cat(out).numpy()


def ddpm_sample(ddpm, model, out, labels, guidance, threads, n, initial=None, seed=None):
    args = [ddpm, "sample", "--model", model, "--backend", "cpu", "--threads", str(threads),
            "--sampler", "ddim", "--inference-steps", str(STEPS), "--out", out]
    if labels is not None:
        args += ["--class", ",".join(str(int(v)) for v in labels), "--guidance-scale", f"{guidance:g}"]
    if initial is not None:
        args += ["--initial", initial]
    else:
        args += ["--shape", str(n), "--seed", str(seed)]
    t0 = time.time()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return np.load(out), round(time.time() - t0, 1)


def measure(samples16, labels, down, classifier, half_a):
    m = ed.metrics(tdu.downsample(samples16, down), labels, classifier, half_a)
    m["range_16x16"] = [float(samples16.min()), float(samples16.max())]
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ddpm", default="build/src/cli/ddpm")
    ap.add_argument("--models", default="models")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads and ddpm --threads")
    ap.add_argument("--out", default="models/digits_unet_ddpm_metrics.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    log = lambda m: print(m, flush=True)

    model_dir = os.path.join(args.models, "digits-unet")
    unet = UNet2DModel.from_pretrained(model_dir, subfolder="unet", low_cpu_mem_usage=False).eval()
    scheduler_config = dict(DDPMScheduler.from_pretrained(model_dir, subfolder="scheduler").config)
    classifier, clf_accuracy = td.load_classifier(os.path.join(args.models, "digits_classifier.safetensors"))
    x8, _ = td.load_data()
    # The same real halves as train_digits.py and train_digits_unet.py (their seed + 7).
    order = np.random.default_rng(args.seed + 7).permutation(len(x8))
    half_a = x8[order[: len(x8) // 2]]
    down = tdu.downsample_matrix()
    log(f"classifier held-out accuracy {clf_accuracy:.4f}; {len(half_a)} real digits in half A; "
        f"{args.threads} threads")

    n = tdu.NUM_CLASSES * args.per_class
    conditional = torch.arange(tdu.NUM_CLASSES).repeat_interleave(args.per_class)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        initial, out = os.path.join(tmp, "x_T.npy"), os.path.join(tmp, "out.npy")
        for name, w, is_conditional, z_seed in settings(args.seed):
            labels = conditional if is_conditional else torch.full((n,), tdu.NULL_LABEL)
            label_array = conditional.numpy() if is_conditional else None
            r = {"guidance_scale": w, "steps": STEPS, "z_seed": z_seed}
            z = torch.randn((n, 1, tdu.SIZE, tdu.SIZE), generator=torch.Generator().manual_seed(z_seed))
            t0 = time.time()
            reference = diffusers_sample(unet, scheduler_config, z, labels, w)
            seconds = {"diffusers": round(time.time() - t0, 1)}
            # DDIM's init_noise_sigma is 1: diffusers' x_T is z, and so is ddpm's.
            np.save(initial, (z * DDIMScheduler.from_config(scheduler_config).init_noise_sigma)
                    .numpy().astype(np.float32))
            same, seconds["ddpm_same_noise"] = ddpm_sample(args.ddpm, model_dir, out, label_array, w,
                                                           args.threads, n, initial=initial)
            own, seconds["ddpm_own_noise"] = ddpm_sample(args.ddpm, model_dir, out, label_array, w,
                                                         args.threads, n, seed=args.seed + 1)
            assert same.shape == reference.shape == own.shape, (same.shape, reference.shape, own.shape)
            r["diffusers"] = measure(reference, label_array, down, classifier, half_a)
            r["ddpm_same_noise"] = measure(same, label_array, down, classifier, half_a)
            r["ddpm_own_noise"] = measure(own, label_array, down, classifier, half_a)
            diff = np.abs(same.astype(np.float64) - reference.astype(np.float64))
            r["max_abs_difference_same_noise"] = float(diff.max())
            r["mean_abs_difference_same_noise"] = float(diff.mean())
            r["seconds"] = seconds
            log(f"{name}: diffusers {ed.short(r['diffusers'])} ({seconds['diffusers']} s)")
            log(f"{name}: ddpm, same x_T: {ed.short(r['ddpm_same_noise'])}; max |ddpm - diffusers| "
                f"{r['max_abs_difference_same_noise']:.2e} ({seconds['ddpm_same_noise']} s)")
            log(f"{name}: ddpm, own noise: {ed.short(r['ddpm_own_noise'])} ({seconds['ddpm_own_noise']} s)")
            results[name] = r

    committed = json.load(open(os.path.join(args.models, "digits_unet_metrics.json")))
    doc = {
        "model": model_dir,
        "classifier_heldout_accuracy": clf_accuracy,
        "real_vs_real": committed["real_vs_real"],
        "protocol": {
            "samples": n, "per_class": args.per_class,
            "sampler": f"DDIM, {STEPS} trailing steps, eta 0, no clipping; diffusers: "
                       "DDIMScheduler.from_config(the folder's scheduler config), train_digits_unet.sample_loop "
                       f"in chunks of {CHUNK} rows; ddpm: sample --model --backend cpu --sampler ddim "
                       f"--inference-steps {STEPS} --threads {args.threads}",
            "guidance": "out_null + w (out_label - out_null) on the v output, null label 10; w = 1: conditional only; "
                        "unconditional: label 10 for every row (ddpm: no --class)",
            "same_noise": "z ~ N(0, I) [N, 1, 16, 16] (torch.Generator, seed + 100 conditional, seed + 200 "
                          "unconditional, as train_digits_unet.py); diffusers from x_T = z, ddpm sample --initial "
                          "from the same x_T",
            "own_noise": f"ddpm sample --shape {n} --seed {args.seed + 1} (ddpm's Philox draws)",
            "downsampling": "16x16 -> 8x8 by the pinv of the bilinear 8 -> 16 upsampling (train_digits_unet.downsample)",
            "classified": "8x8 samples clipped to [-1, 1], argmax of the committed classifier",
            "frechet_distance": "against real half A (train_digits.py's split); features = classifier "
                                "hidden layer (128, ReLU); pixels in 0..16 units",
            "seconds": "wall-clock seconds for N samples: diffusers' loop alone; ddpm's whole CLI run "
                       "(loading the folder and writing the .npy included)",
            "seed": args.seed,
        },
        "settings": results,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": args.threads},
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "numpy": np.__version__,
                     "scikit-learn": __import__("sklearn").__version__},
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
