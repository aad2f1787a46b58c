#!/usr/bin/env python3
"""Sample the committed digits model from Python and save a PNG grid.

    pip install . matplotlib
    python examples/sample_digits.py --out out/digits_python.png

One row per digit 0-9, drawn with the sampler the model card recommends
(DDIM, 50 trailing steps, eta 0, v-prediction: Sampler.for_model) and
classifier-free guidance at the card's scale (3; the model has a null label),
then turned into pixels with the card's normalization: pixel = (x + 1) * 8 in
scikit-learn's 0-16 units. --sampler dpmpp_2m --steps 15 --karras samples
with DPM-Solver++(2M) instead.
"""

import argparse
import pathlib

import numpy as np

import ddpm

REPO = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=REPO / "models" / "digits.safetensors", type=pathlib.Path)
    parser.add_argument("--out", default=pathlib.Path("out/digits_python.png"), type=pathlib.Path)
    parser.add_argument("--per-class", default=10, type=int, help="samples of each digit (columns)")
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--backend", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--guidance-scale", default=None, type=float,
                        help="classifier-free guidance scale (default: the model card's; 1: none)")
    parser.add_argument("--sampler", default=None, help="a step rule instead of the card's (e.g. dpmpp_2m)")
    parser.add_argument("--steps", default=None, type=int, help="inference steps instead of the card's")
    parser.add_argument("--karras", action="store_true", help="Karras sigmas (euler, dpmpp_2m, dpmpp_2m_sde)")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("sample_digits.py draws with matplotlib: pip install matplotlib")

    model = ddpm.MlpPredictor(args.model)
    overrides = {"backend": args.backend}
    if args.sampler:
        overrides["sampler"] = args.sampler
    if args.steps:
        overrides["inference_steps"] = args.steps
    if args.karras:
        overrides["use_karras_sigmas"] = True
    sampler = ddpm.Sampler.for_model(model, **overrides)
    guidance = model.guidance_scale if args.guidance_scale is None else args.guidance_scale
    print(sampler, f"| guidance {guidance:g} | recommended:", model.recommended_sampler)
    classes = model.num_classes
    labels = np.repeat(np.arange(classes), args.per_class)
    x = sampler.sample((len(labels), *model.data_shape), model, seed=args.seed, class_labels=labels,
                       guidance_scale=guidance, progress=True)

    n = model.normalization
    pixels = np.clip((x + n["pixel_offset"]) * n["pixel_scale"], n["pixel_min"], n["pixel_max"])
    figure, axes = plt.subplots(classes, args.per_class, figsize=(args.per_class * 0.6, classes * 0.6))
    for ax, image, label in zip(axes.flat, pixels, labels):
        ax.imshow(image, cmap="gray_r", vmin=n["pixel_min"], vmax=n["pixel_max"])
        ax.set_axis_off()
    figure.suptitle(f"ddpm: digits 0-{classes - 1}, {len(sampler.timesteps)} {sampler.options['sampler']} steps, "
                    f"guidance {guidance:g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}: {len(labels)} samples, one row per digit")


if __name__ == "__main__":
    main()
