#!/usr/bin/env python3
"""The digits model sampled by ddpm's CLI, measured as scripts/train_digits.py
measures diffusers' samples, and compared with diffusers on the same model.

Run it through scripts/evaluate-digits (the training venv: torch, diffusers,
scikit-learn); CI does not run it. For each setting it

  1. draws z ~ N(0, I) [1000, 64] (labels 0..9, 100 each, or the null label),
  2. samples with diffusers from x_T = z * init_noise_sigma (train_digits.sample_loop),
  3. samples with `ddpm sample --model --initial` from the same x_T (deterministic
     samplers must agree element by element: max |ddpm - diffusers| is reported),
  4. samples with `ddpm sample --model --seed` from ddpm's own noise (independent
     draws: their metrics differ from diffusers' by statistical noise only),

and reports, for 2 and 4 (and 3), the share the committed classifier labels as
the requested class, the Frechet distances to real half A (classifier features
and pixels; real half B vs A is the floor), and for unconditional sampling the
class histogram. The 1000-step DDPM loop is stochastic: only 4 is run, against
diffusers' figure in models/digits_metrics.json. Writes
models/digits_ddpm_metrics.json.

    scripts/evaluate-digits [--ddpm build/src/cli/ddpm] [--per-class 100]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_digits as td  # noqa: E402  (the model, classifier, data split and metrics)
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler,  # noqa: E402
                       EulerDiscreteScheduler)


def settings():
    """(name, diffusers scheduler or None, steps, ddpm flags, guidance, conditional)."""
    card = td.SCHEDULER_CONFIG
    karras_euler = EulerDiscreteScheduler.from_config(card, use_karras_sigmas=True)
    karras_dpm = DPMSolverMultistepScheduler.from_config(
        card, algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
        use_karras_sigmas=True)
    return [
        ("ddim50_w1", DDIMScheduler(**card), 50, [], 1.0, True),
        ("ddim50_w3", DDIMScheduler(**card), 50, [], 3.0, True),
        ("ddim50_unconditional", DDIMScheduler(**card), 50, [], 1.0, False),
        ("euler_karras20_w3", karras_euler, 20,
         ["--sampler", "euler", "--karras-sigmas", "--inference-steps", "20"], 3.0, True),
        ("dpmpp_2m_karras20_w3", karras_dpm, 20,
         ["--sampler", "dpmpp_2m", "--karras-sigmas", "--inference-steps", "20"], 3.0, True),
        ("ddpm1000_w1", None, 1000,
         ["--sampler", "ddpm", "--inference-steps", "1000", "--timestep-spacing", "leading",
          "--variance", "posterior", "--clip-x0", "-1,1"], 1.0, True),
    ]


def ddpm_sample(ddpm, model, out, labels, guidance, flags, initial=None, seed=None):
    args = [ddpm, "sample", "--model", model, "--backend", "cpu", "--out", out] + flags
    if labels is not None:
        args += ["--class", ",".join(str(int(v)) for v in labels),
                 "--guidance-scale", f"{guidance:g}"]
    if initial is not None:
        args += ["--initial", initial]
    else:
        args += ["--shape", f"{len(labels) if labels is not None else 1000},64", "--seed", str(seed)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def metrics(samples, labels, classifier, half_a):
    if labels is None:
        hist = np.bincount(td.classify(classifier, samples), minlength=td.NUM_CLASSES)
        return {"class_histogram": hist.tolist(),
                "frechet_distance_features": td.frechet_distance(
                    td.features_of(classifier, np.clip(samples, -1, 1)),
                    td.features_of(classifier, half_a)),
                "frechet_distance_pixels": td.frechet_distance(
                    td.to_pixels(samples).astype(np.float64), td.to_pixels(half_a).astype(np.float64))}
    return td.evaluate(samples, labels, classifier, half_a)


def short(m):
    if "conditional_accuracy" in m:
        return (f"accuracy {m['conditional_accuracy']:.3f}, FD features {m['frechet_distance_features']:.2f}, "
                f"pixels {m['frechet_distance_pixels']:.1f}")
    return (f"histogram {m['class_histogram']}, FD features {m['frechet_distance_features']:.2f}, "
            f"pixels {m['frechet_distance_pixels']:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ddpm", default="build/src/cli/ddpm")
    ap.add_argument("--models", default="models")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="models/digits_ddpm_metrics.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    log = lambda m: print(m, flush=True)

    model_path = os.path.join(args.models, "digits.safetensors")
    model = td.load_mlp_denoiser(model_path)
    classifier, clf_accuracy = td.load_classifier(os.path.join(args.models, "digits_classifier.safetensors"))
    x, y = td.load_data()
    # The same real halves as train_digits.py (its seed + 7).
    order = np.random.default_rng(args.seed + 7).permutation(len(x))
    half_a = x[order[: len(x) // 2]]
    log(f"classifier held-out accuracy {clf_accuracy:.4f}; {len(half_a)} real digits in half A")

    n = td.NUM_CLASSES * args.per_class
    conditional = torch.arange(td.NUM_CLASSES).repeat_interleave(args.per_class)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        initial, out = os.path.join(tmp, "x_T.npy"), os.path.join(tmp, "out.npy")
        for i, (name, scheduler, steps, flags, w, is_conditional) in enumerate(settings()):
            labels = conditional if is_conditional else None
            label_array = labels.numpy() if labels is not None else None
            r = {"guidance_scale": w, "steps": steps, "ddpm_flags": flags}
            t0 = time.time()
            if scheduler is not None:
                z = torch.randn((n, 64), generator=torch.Generator().manual_seed(args.seed + 300 + i))
                torch_labels = labels if labels is not None else torch.full((n,), td.NULL_LABEL)
                reference = td.sample_loop(model, scheduler, z, torch_labels, w, steps).numpy()
                # ddpm's x_T is variance preserving: diffusers' sigma-space x_T / sqrt(sigma_max^2 + 1).
                scheduler.set_timesteps(steps)
                scale = float(scheduler.init_noise_sigma)
                if isinstance(scheduler, EulerDiscreteScheduler):
                    scale /= float(np.sqrt(float(scheduler.sigmas[0]) ** 2 + 1.0))
                np.save(initial, (z.numpy() * scale).astype(np.float32))
                same = ddpm_sample(args.ddpm, model_path, out, label_array, w, flags, initial=initial)
                r["diffusers"] = metrics(reference, label_array, classifier, half_a)
                r["ddpm_same_noise"] = metrics(same, label_array, classifier, half_a)
                r["max_abs_difference_same_noise"] = float(np.abs(same - reference).max())
                log(f"{name}: diffusers {short(r['diffusers'])}")
                log(f"{name}: ddpm, same x_T: max |ddpm - diffusers| {r['max_abs_difference_same_noise']:.2e}")
            own = ddpm_sample(args.ddpm, model_path, out, label_array, w, flags, seed=args.seed + 1)
            r["ddpm_own_noise"] = metrics(own, label_array, classifier, half_a)
            r["seconds"] = round(time.time() - t0, 1)
            log(f"{name}: ddpm, own noise: {short(r['ddpm_own_noise'])} ({r['seconds']} s)")
            results[name] = r

    diffusers_metrics = json.load(open(os.path.join(args.models, "digits_metrics.json")))
    doc = {
        "model": model_path,
        "classifier_heldout_accuracy": clf_accuracy,
        "real_vs_real": diffusers_metrics["real_vs_real"],
        "protocol": {
            "samples": n, "per_class": args.per_class,
            "same_noise": "z ~ N(0, I) (torch, seed + 300 + setting index); diffusers from z * init_noise_sigma, "
                          "ddpm sample --initial from the same x_T in variance-preserving terms",
            "own_noise": f"ddpm sample --seed {args.seed + 1} (ddpm's Philox draws)",
            "classified": "samples clipped to [-1, 1], argmax of the committed classifier",
            "frechet_distance": "against real half A (train_digits.py's split); features = classifier "
                                "hidden layer (128, ReLU); pixels in 0..16 units",
            "ddpm1000_w1 diffusers": diffusers_metrics["samplers"].get("ddpm1000_w1"),
        },
        "settings": results,
        "versions": {"torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
                     "numpy": np.__version__},
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
