#!/usr/bin/env python3
"""The DDPM reverse loop in careful float32 NumPy: the CPU figure to beat.

The same math as `ddpm-bench`'s CPU rows: a linear schedule (beta 1e-4 .. 0.02,
T = 1000), the analytic Gaussian predictor eps = b (x - a mu) / (a^2 s^2 + b^2)
with mu = 0.5, s = 0.3, and the reverse step
    x_{t-1} = (x_t - eps_coef_t eps) / sqrt(alpha_t) + sigma_t z,  sigma_t = sqrt(beta_t), z = 0 at t = 0
on a 128 x 3072 batch. "Careful": the schedule is precomputed in float64 and
turned into per-step float32 scalars once, every update is in place into
preallocated arrays, and z comes from np.random.default_rng().standard_normal
with dtype=float32 and out=. NumPy runs it on one thread (no BLAS is used).

Two variants are timed:
  explicit  the predictor and the step as written above (6 in-place passes + z)
  folded    the predictor folded into the step's scalars: x = c1 x + c0 + sigma z
            (3 passes + z), the fastest this loop gets in NumPy

    python3 bench/numpy_baseline.py [--batch 128] [--dim 3072] [--steps 1000] [--runs 3] [--json FILE]
"""
import argparse
import json
import platform
import statistics
import sys
import time


def schedule(np, steps, mu, s):
    """Per-step float32 scalars, computed in float64 (index t = 0 .. T-1)."""
    beta = np.linspace(1e-4, 0.02, steps, dtype=np.float64)
    alpha = 1.0 - beta
    alpha_bar = np.cumprod(alpha)
    a = np.sqrt(alpha_bar)
    b = np.sqrt(1.0 - alpha_bar)
    eps_coef = beta / b
    sqrt_recip_alpha = 1.0 / np.sqrt(alpha)
    sigma = np.sqrt(beta)
    sigma[0] = 0.0
    k1 = b / (a * a * s * s + b * b)  # eps = k1 x - k0
    k0 = k1 * a * mu
    f32 = lambda v: [np.float32(x) for x in v]
    return {
        "k1": f32(k1), "k0": f32(k0), "eps_coef": f32(eps_coef),
        "sqrt_recip_alpha": f32(sqrt_recip_alpha), "sigma": f32(sigma),
        # folded: x_{t-1} = c1 x + c0 + sigma z
        "c1": f32(sqrt_recip_alpha * (1.0 - eps_coef * k1)),
        "c0": f32(sqrt_recip_alpha * eps_coef * k0),
    }


def loop_explicit(np, x, eps, z, rng, c, steps):
    k1, k0, ec, sra, sigma = c["k1"], c["k0"], c["eps_coef"], c["sqrt_recip_alpha"], c["sigma"]
    for t in range(steps - 1, -1, -1):
        np.multiply(x, k1[t], out=eps)   # eps = k1 x - k0  (the Gaussian predictor)
        eps -= k0[t]
        eps *= ec[t]                     # x = (x - eps_coef eps) / sqrt(alpha)
        x -= eps
        x *= sra[t]
        if t > 0:                        # + sigma z
            rng.standard_normal(dtype=np.float32, out=z)
            z *= sigma[t]
            x += z


def loop_folded(np, x, eps, z, rng, c, steps):
    c1, c0, sigma = c["c1"], c["c0"], c["sigma"]
    for t in range(steps - 1, -1, -1):
        x *= c1[t]
        x += c0[t]
        if t > 0:
            rng.standard_normal(dtype=np.float32, out=z)
            z *= sigma[t]
            x += z


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--dim", type=int, default=3072)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per variant; the median is reported")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    try:
        import numpy as np
    except ImportError as error:
        print(f"numpy_baseline: numpy is unavailable ({error}); install it with 'pip install numpy'")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"available": False, "reason": f"numpy unavailable: {error}"}, f, indent=2)
        return 0

    c = schedule(np, args.steps, mu=0.5, s=0.3)
    shape = (args.batch, args.dim)
    element_steps = args.batch * args.dim * args.steps
    x_T = np.random.default_rng(20261123).standard_normal(shape, dtype=np.float32)
    x = np.empty(shape, dtype=np.float32)
    eps = np.empty_like(x)
    z = np.empty_like(x)

    print(f"numpy {np.__version__}, Python {platform.python_version()}, {platform.processor() or platform.machine()}")
    print(f"reverse loop, float32, {args.batch}x{args.dim}, T={args.steps}, median of {args.runs} runs")
    results = {}
    for name, loop in (("explicit", loop_explicit), ("folded", loop_folded)):
        rng = np.random.default_rng(1234)
        x[...] = x_T
        loop(np, x, eps, z, rng, c, min(args.steps, 50))  # warm-up: pages touched, code paths hot
        times = []
        for _ in range(args.runs):
            x[...] = x_T
            start = time.perf_counter()
            loop(np, x, eps, z, rng, c, args.steps)
            times.append(time.perf_counter() - start)
        if not np.all(np.isfinite(x)):
            print(f"numpy_baseline: {name}: non-finite output", file=sys.stderr)
            return 1
        median = statistics.median(times)
        rate = element_steps / median
        results[name] = {
            "seconds": {"median": median, "min": min(times), "max": max(times), "runs": args.runs},
            "element_steps_per_second": rate,
            "output_mean": float(x.mean()), "output_std": float(x.std()),
        }
        print(f"  {name:9s} {median:8.3f} s  [{min(times):.3f} .. {max(times):.3f}]  "
              f"{rate / 1e6:8.1f} M element-steps/s   (sample mean {x.mean():.3f}, std {x.std():.3f}; "
              f"expected 0.5, 0.3)")
    print("The ddpm CPU backend targets >= 3x the 'explicit' figure (see bench/README.md).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "available": True, "numpy_version": np.__version__, "python": platform.python_version(),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "batch": args.batch, "dim": args.dim, "steps": args.steps, "results": results,
            }, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
