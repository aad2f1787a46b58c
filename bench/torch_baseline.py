#!/usr/bin/env python3
"""The DDPM reverse loop in plain PyTorch: the peer baseline for ddpm-bench's GPU rows.

Each step is the analytic Gaussian predictor and the reverse update written
with torch ops, as a user of an eager framework writes them:

    eps = b * (x - a * mu) / (a * a * s * s + b * b)          # E[eps | x_t], x0 ~ N(mu, s^2)
    x   = (x - eps_coef * eps) / sqrt(alpha) + sigma * randn_like(x)

(linear schedule, beta 1e-4 .. 0.02, T = 1000; mu = 0.5, s = 0.3; sigma_t =
sqrt(beta_t), no noise at t = 0). Eager that is 9 kernels a step, 76 bytes per
element counted over them (ddpm-bench's "unfused_step" row runs the same 9).
Variants, each timed only where it works (otherwise reported as
"unavailable: reason"):

  eager                 the expressions above, coefficients as Python floats
  compile               torch.compile(fullgraph=True) of one step, coefficients as
                        0-d device tensors so that one graph serves every step
  compile-cudagraphs    the same with mode="reduce-overhead" (CUDA Graphs)

Timing: CUDA events around a run of steps after a warm-up run (which also
compiles), the median (min, max) of --repetitions runs, reported per step.
Sizes: 12,288 (one 3x64x64 image), 2^24 and 2^26 elements; T = 1000 steps for
sizes up to 2^24, --large-steps (default 100) above, per-step time either way.
A full T-step run ends with sample mean and std, which must be about 0.5 and 0.3.

    python3 bench/torch_baseline.py [--json FILE] [--sizes 12288,16777216,67108864]

Exits 0 with a message (and "available": false in the JSON) when torch or a
CUDA device is missing.

With --mlp it runs instead the trained digits model (models/digits.safetensors,
its weights read from the file) in the loop ddpm-bench's MLP rows time: the
card's DDIM, 50 trailing steps, v-prediction, eta 0, labels 0..9 in turn, no
guidance, written as a user of eager PyTorch writes it (the network as
nn.Modules, the update as tensor ops, under torch.inference_mode); samples per
second at batch 1, 64 and 4096, on the CPU by default (--device cuda for the
GPU), with --threads torch threads (default: all).

    python3 bench/torch_baseline.py --mlp [--batches 1,64,4096] [--threads 2] [--json FILE]

With --unet FOLDER[,FOLDER] it times diffusers' UNet2DModel folders against ddpm in
one process, alternating rounds (bench/torch_unet_baseline.py): one evaluation and a
50-step DDIM loop at --batches (default 1,16 there), with diffusers installed.

    python3 bench/torch_baseline.py --unet models/digits-unet [--batches 1,16] [--threads 2]
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

MU, S = 0.5, 0.3
MIN_BYTES_PER_ELEMENT = 8       # read x, write x: what a fused step moves
EAGER_BYTES_PER_ELEMENT = 76    # summed over the 9 eager kernels (see bench/unfused_reverse.cuh)
EAGER_KERNELS = 9


def unavailable(args, reason):
    print(f"torch_baseline: skipped: {reason}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"available": False, "reason": reason,
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)
    return 0


class Schedule:
    """Per-step coefficients as Python floats, computed in float64."""

    def __init__(self, torch, steps):
        beta = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
        alpha = 1.0 - beta
        alpha_bar = torch.cumprod(alpha, dim=0)
        sigma = beta.sqrt()
        sigma[0] = 0.0
        self.steps = steps
        self.a = alpha_bar.sqrt().tolist()
        self.b = (1.0 - alpha_bar).sqrt().tolist()
        self.eps_coef = (beta / (1.0 - alpha_bar).sqrt()).tolist()
        self.sqrt_alpha = alpha.sqrt().tolist()
        self.sigma = sigma.tolist()

    def device_table(self, torch, device):
        """[T, 5] float32 on the device: a, b, eps_coef, sqrt_alpha, sigma."""
        return torch.tensor(list(zip(self.a, self.b, self.eps_coef, self.sqrt_alpha, self.sigma)),
                            dtype=torch.float32, device=device)


def make_eager(torch, sched):
    a, b, ec, sqa, sigma = sched.a, sched.b, sched.eps_coef, sched.sqrt_alpha, sched.sigma

    def step(x, t):
        eps = b[t] * (x - a[t] * MU) / (a[t] * a[t] * S * S + b[t] * b[t])
        x = (x - ec[t] * eps) / sqa[t]
        if t > 0:
            x = x + sigma[t] * torch.randn_like(x)
        return x

    return step


def make_compiled(torch, sched, device, mode):
    table = sched.device_table(torch, device)

    def step_body(x, a, b, ec, sqa, sigma):
        eps = b * (x - a * MU) / (a * a * S * S + b * b)
        x = (x - ec * eps) / sqa
        return x + sigma * torch.randn_like(x)  # sigma = 0 at t = 0

    kwargs = {"fullgraph": True, "dynamic": False}
    if mode is not None:
        kwargs["mode"] = mode
    compiled = torch.compile(step_body, **kwargs)
    mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

    def step(x, t):
        row = table[t]
        if mode == "reduce-overhead" and mark_step is not None:
            mark_step()  # the previous step's output is consumed as this step's input only
        return compiled(x, row[0], row[1], row[2], row[3], row[4])

    return step


class Timer:
    """CUDA events on a GPU, perf_counter on the CPU (--device cpu smoke runs)."""

    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device.type == "cuda"

    def time(self, fn):
        if self.cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            stop = self.torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop) * 1e-3
        begin = time.perf_counter()
        fn()
        return time.perf_counter() - begin


def run_variant(torch, args, device, sched, name, step, n, steps, timer):
    # t = T-1 down to T-steps: the whole loop when steps = T (t = 0 draws no noise).
    ts = list(range(sched.steps - 1, sched.steps - 1 - steps, -1))
    generator_seed = 1234
    torch.manual_seed(generator_seed)
    x_T = torch.randn(n, device=device, dtype=torch.float32)
    state = {}

    def timed_loop(step_list):
        state["x"] = x_T.clone()  # outside the timed region
        if device.type == "cuda":
            torch.cuda.synchronize()

        def body():
            x = state.pop("x")
            for t in step_list:
                x = step(x, t)
            state["x"] = x

        return timer.time(body)

    timed_loop(ts[: min(len(ts), args.warmup_steps)])  # warm-up (and compile)
    timed_loop(ts[-min(len(ts), 2):])  # the t = 0 branch too, where it differs
    per_step = [timed_loop(ts) / steps for _ in range(args.repetitions)]
    x = state["x"]
    if not bool(torch.isfinite(x).all()):
        raise RuntimeError("non-finite output")
    median = statistics.median(per_step)
    row = {
        "variant": name, "elements": n, "steps": steps, "full_loop": steps == sched.steps,
        "seconds_per_step": {"median": median, "min": min(per_step), "max": max(per_step),
                             "repetitions": args.repetitions},
        "element_steps_per_second": n / median,
        "gigabytes_per_second_at_8_bytes": n * MIN_BYTES_PER_ELEMENT / median / 1e9,
    }
    if name == "eager":
        row["kernels_per_step"] = EAGER_KERNELS
        row["bytes_per_element_over_kernels"] = EAGER_BYTES_PER_ELEMENT
        row["gigabytes_per_second_over_kernels"] = n * EAGER_BYTES_PER_ELEMENT / median / 1e9
    if steps == sched.steps:
        row["output_mean"], row["output_std"] = float(x.mean()), float(x.std())
    return row


def describe(row):
    text = (f"{row['seconds_per_step']['median'] * 1e6:10.2f} us/step "
            f"[{row['seconds_per_step']['min'] * 1e6:.2f} .. {row['seconds_per_step']['max'] * 1e6:.2f}]  "
            f"{row['element_steps_per_second'] / 1e9:8.3f} G element-steps/s  "
            f"{row['gigabytes_per_second_at_8_bytes']:8.1f} GB/s at 8 B/elem")
    if "gigabytes_per_second_over_kernels" in row:
        text += f" ({row['gigabytes_per_second_over_kernels']:.1f} GB/s over its 9 kernels, 76 B/elem)"
    if "output_mean" in row:
        text += f"  mean {row['output_mean']:.3f} std {row['output_std']:.3f}"
    return text


# ---------------------------------------------------------------- the digits MLP (--mlp)

def read_safetensors(torch, path):
    """The F32 tensors and the metadata of a safetensors file (the format is 8 bytes of
    header length, the JSON header, the data), without the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[base + begin:base + end]),
                                         dtype=torch.float32).reshape(entry["shape"])
    return tensors, header.get("__metadata__", {})


def make_mlp_denoiser(torch, card):
    """The mlp_denoiser of docs/model-format.md as nn.Modules (the names are the tensors')."""
    nn, F = torch.nn, torch.nn.functional
    h, d, e = card["hidden_dim"], card["data_dim"], card["time_embedding"]["dim"]
    eps = card["layer_norm_eps"]

    class TimeEmbedding(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_1, self.linear_2 = nn.Linear(e, h), nn.Linear(h, h)

        def forward(self, temb):
            return self.linear_2(F.silu(self.linear_1(temb)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(h, eps=eps)
            self.linear_1, self.linear_2 = nn.Linear(h, h), nn.Linear(h, h)
            self.cond_proj = nn.Linear(h, h, bias=False)

        def forward(self, x, cond):
            return x + self.linear_2(F.silu(self.linear_1(self.norm(x)) + self.cond_proj(cond)))

    class MlpDenoiser(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_embedding = TimeEmbedding()
            if card["num_classes"] > 0:
                self.class_embedding = nn.Embedding(card["num_classes"] + 1, h)
            self.input_proj = nn.Linear(d, h)
            self.blocks = nn.ModuleList([Block() for _ in range(card["num_blocks"])])
            self.norm_out = nn.LayerNorm(h, eps=eps)
            self.output_proj = nn.Linear(h, d)

        def embed(self, t, n):
            """diffusers' get_timestep_embedding of one timestep t for n rows."""
            spec = card["time_embedding"]
            half = spec["dim"] // 2
            exponent = -math.log(spec["max_period"]) * torch.arange(half, dtype=torch.float32)
            exponent = exponent / (half - spec["downscale_freq_shift"])
            angle = spec.get("scale", 1.0) * (torch.full((n, 1), float(t)) * torch.exp(exponent)[None, :])
            parts = [torch.cos(angle), torch.sin(angle)] if spec["flip_sin_to_cos"] else \
                [torch.sin(angle), torch.cos(angle)]
            return torch.cat(parts, dim=1)

        def forward(self, x, t, labels):
            cond = self.time_embedding(self.embed(t, len(x)).to(x.device))
            if card["num_classes"] > 0:
                cond = cond + self.class_embedding(labels)
            h_ = self.input_proj(x)
            for block in self.blocks:
                h_ = block(h_, cond)
            return self.output_proj(F.silu(self.norm_out(h_)))

    return MlpDenoiser()


def ddim_plan(card, steps):
    """(t, sqrt(ab), sqrt(1 - ab), sqrt(ab_prev), sqrt(1 - ab_prev)) per step: DDIM with
    trailing timesteps and set_alpha_to_one, as the card's sampler (float64)."""
    sched = card["scheduler"]
    big_t = sched["num_train_timesteps"]
    if sched["beta_schedule"] != "linear":
        raise ValueError("the baseline knows the linear schedule only")
    betas = [sched["beta_start"] + (sched["beta_end"] - sched["beta_start"]) * i / (big_t - 1)
             for i in range(big_t)]
    alpha_bar, product = [], 1.0
    for b in betas:
        product *= 1.0 - b
        alpha_bar.append(product)
    ratio = big_t / steps
    timesteps = [int(round(big_t - i * ratio)) - 1 for i in range(steps)]  # trailing
    plan = []
    for t in timesteps:
        prev = t - big_t // steps
        ab, ab_prev = alpha_bar[t], (alpha_bar[prev] if prev >= 0 else 1.0)
        plan.append((t, math.sqrt(ab), math.sqrt(1 - ab), math.sqrt(ab_prev), math.sqrt(1 - ab_prev)))
    return plan


def main_mlp(args):
    try:
        import torch
    except ImportError as error:
        return unavailable(args, f"PyTorch is not installed ({error})")
    device = torch.device(args.device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return unavailable(args, f"torch {torch.__version__} sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    tensors, metadata = read_safetensors(torch, args.model)
    card = json.loads(metadata["ddpm_model_card"])
    if card["prediction_type"] != "v_prediction":
        raise SystemExit("the baseline's update is written for v_prediction")
    model = make_mlp_denoiser(torch, card)
    model.load_state_dict(tensors)
    model = model.to(device).eval()
    plan = ddim_plan(card, card.get("sampler", {}).get("num_inference_steps", 50))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"torch {torch.__version__} on {device_name}, {torch.get_num_threads()} threads: {args.model}, "
          f"DDIM {len(plan)} trailing steps, v_prediction, labels 0..9 in turn, no guidance")

    def loop(x, labels):
        for t, a, b, a_prev, b_prev in plan:
            v = model(x, t, labels)
            x0 = a * x - b * v
            eps = b * x + a * v
            x = a_prev * x0 + b_prev * eps
        return x

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    rows = []
    for batch in [int(b) for b in args.batches.split(",") if b]:
        g = torch.Generator().manual_seed(20261127)
        x_T = torch.randn((batch, card["data_dim"]), generator=g).to(device)
        labels = (torch.arange(batch) % card["num_classes"]).to(device)
        seconds = []
        with torch.inference_mode():
            loop(x_T, labels)  # warm-up
            synchronize()
            while len(seconds) < args.repetitions or sum(seconds) < args.min_seconds:
                begin = time.perf_counter()
                x = loop(x_T, labels)
                synchronize()
                seconds.append(time.perf_counter() - begin)
                if len(seconds) >= 200:
                    break
        if not bool(torch.isfinite(x).all()):
            raise RuntimeError("non-finite samples")
        median = statistics.median(seconds)
        row = {"variant": "eager-mlp", "batch": batch, "steps": len(plan),
               "seconds_per_loop": {"median": median, "min": min(seconds), "max": max(seconds),
                                    "repetitions": len(seconds)},
               "samples_per_second": batch / median}
        print(f"  batch {batch:5d}: {median * 1e3:9.3f} ms per loop [{min(seconds) * 1e3:.3f} .. "
              f"{max(seconds) * 1e3:.3f}], {batch / median:10.1f} samples/s ({len(seconds)} runs)")
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"available": True, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "torch_version": torch.__version__, "device": device_name,
                       "threads": torch.get_num_threads(), "python": platform.python_version(),
                       "model": args.model, "loop": "DDIM, trailing, v_prediction, eta 0, no guidance",
                       "rows": rows}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE", help="write every row as JSON")
    parser.add_argument("--sizes", default="12288,16777216,67108864",
                        help="comma-separated element counts (default 12288,2^24,2^26)")
    parser.add_argument("--steps", type=int, default=1000, help="T (default 1000)")
    parser.add_argument("--large-steps", type=int, default=100,
                        help="steps timed for sizes above 2^24 (default 100), per-step time reported")
    parser.add_argument("--repetitions", type=int, default=3, help="timed runs per row, median reported")
    parser.add_argument("--warmup-steps", type=int, default=20, help="steps of the warm-up run")
    parser.add_argument("--variants", default="eager,compile,compile-cudagraphs")
    parser.add_argument("--device", default=None,
                        help="cuda (default; cpu only for smoke-testing this script); with --mlp cpu (default) or cuda")
    parser.add_argument("--mlp", action="store_true", help="time the digits model's loop instead (see above)")
    parser.add_argument("--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                        "models", "digits.safetensors"),
                        help="--mlp: the model file (default: models/digits.safetensors)")
    parser.add_argument("--batches", default=None, help="--mlp: batch sizes (default 1,64,4096; --unet: 1,16)")
    parser.add_argument("--unet", metavar="FOLDER[,FOLDER]",
                        help="time these diffusers UNet2DModel folders against ddpm instead (see above)")
    parser.add_argument("--rounds", type=int, default=5, help="--unet: alternated rounds per row (default 5)")
    parser.add_argument("--loop-steps", type=int, default=50, help="--unet: DDIM steps of the loop (default 50)")
    parser.add_argument("--threads", type=int, default=0, help="--mlp: torch threads (default: torch's)")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="--mlp: time each batch for at least this long (default 1)")
    args = parser.parse_args()
    if args.unet:
        args.batches = args.batches or "1,16"
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_unet_baseline import main_unet
        return main_unet(args, unavailable)
    args.batches = args.batches or "1,64,4096"
    if args.mlp:
        return main_mlp(args)
    args.device = args.device or "cuda"

    try:
        import torch
    except ImportError as error:
        return unavailable(args, f"PyTorch is not installed ({error})")
    if args.device == "cuda" and not torch.cuda.is_available():
        return unavailable(args, f"torch {torch.__version__} sees no CUDA device "
                                 f"(built for CUDA {torch.version.cuda})")
    device = torch.device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    sched = Schedule(torch, args.steps)
    timer = Timer(torch, device)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {device_name}")
    print(f"reverse loop with the analytic Gaussian predictor, float32, T={args.steps}; "
          f"median of {args.repetitions} runs, per step")
    rows = []
    for name in variants:
        try:
            if name == "eager":
                step = make_eager(torch, sched)
            elif name == "compile":
                step = make_compiled(torch, sched, device, None)
            elif name == "compile-cudagraphs":
                if device.type != "cuda":
                    raise RuntimeError("CUDA Graphs need a CUDA device")
                step = make_compiled(torch, sched, device, "reduce-overhead")
            else:
                raise ValueError(f"unknown variant '{name}'")
        except Exception as error:  # report and go on with the other variants
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            print(f"  {name:20s} unavailable: {reason}")
            rows.append({"variant": name, "unavailable": reason})
            continue
        for n in sizes:
            steps = args.steps if n <= (1 << 24) else min(args.steps, args.large_steps)
            try:
                row = run_variant(torch, args, device, sched, name, step, n, steps, timer)
                print(f"  {name:20s} {n:>11,d} elements, {steps:4d} steps: {describe(row)}")
            except Exception as error:
                first_line = str(error).splitlines()[0] if str(error) else ""
                reason = f"{type(error).__name__}: {first_line}"
                print(f"  {name:20s} {n:>11,d} elements: unavailable: {reason}")
                row = {"variant": name, "elements": n, "steps": steps, "unavailable": reason}
            rows.append(row)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "available": True,
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
                "device": device_name, "python": platform.python_version(),
                "schedule": {"kind": "linear", "beta_start": 1e-4, "beta_end": 0.02, "steps": args.steps},
                "prior": {"mean": MU, "std": S},
                "rows": rows,
            }, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
