"""bench/torch_baseline.py --unet: diffusers' UNet2DModel in PyTorch eager against ddpm
on the same folder, the same inputs and threads, in one process, rounds alternated.

For each folder (a UNet2DModel or pipeline folder, e.g. models/digits-unet, or one
written by scripts/check-unet-against-diffusers --keep-models) and each batch:

  eval   one network evaluation at t = 500: torch `model(x, t).sample` under
         inference_mode, and ddpm `ddpm.load_model(folder)(x, t)` (the CPU forward)
  loop   a 50-step DDIM loop (trailing spacing, eta 0, the folder's prediction type):
         torch with diffusers' DDIMScheduler as its pipelines run it, ddpm with
         Sampler.for_model(model, sampler="ddim").sample

Rounds alternate torch, ddpm, torch, ... so that both see the same machine state; the
median of each side's rounds is reported with the ratio. The share of torch's time in
oneDNN convolutions (aten::mkldnn_convolution and the ops under aten::convolution) comes
from torch.profiler over one evaluation. ddpm's side is skipped, with a note, when the
ddpm module is not importable in this Python.

    python3 bench/torch_baseline.py --unet FOLDER[,FOLDER] [--batches 1,16] [--threads 2]
                                    [--rounds 5] [--device cpu|cuda] [--json FILE]

With --device cuda both sides run on the GPU (ddpm's loop on its CUDA backend, one
graph; ddpm's single evaluation is timed on the CPU only, so that row is torch's alone).
"""
import json
import os
import platform
import statistics
import time


def _load_torch_model(torch, folder):
    from diffusers import UNet2DModel
    unet = os.path.join(folder, "unet") if os.path.exists(os.path.join(folder, "model_index.json")) else folder
    return UNet2DModel.from_pretrained(unet).eval()


def _scheduler(folder):
    from diffusers import DDIMScheduler
    config = os.path.join(folder, "scheduler", "scheduler_config.json")
    if os.path.exists(config):
        with open(config) as f:
            scheduler = DDIMScheduler.from_config(json.load(f))
    else:
        scheduler = DDIMScheduler()
    scheduler.register_to_config(timestep_spacing="trailing", clip_sample=False)
    return DDIMScheduler.from_config(scheduler.config)


def _onednn_share(torch, model, x, t, labels):
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x, t, class_labels=labels)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "mkldnn" in e.key or "convolution" in e.key)
    return conv / total if total else 0.0


def main_unet(args, unavailable):
    try:
        import numpy as np
        import torch
        import diffusers  # noqa: F401
    except ImportError as error:
        return unavailable(args, f"torch or diffusers is not installed ({error})")
    try:
        import ddpm
    except ImportError as error:
        ddpm = None
        ddpm_missing = f"the ddpm module is not importable ({error}): torch only"
    device = torch.device(args.device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return unavailable(args, f"torch {torch.__version__} sees no CUDA device")
    on_gpu = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize()
    batches = [int(b) for b in args.batches.split(",") if b]
    rows = []
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {threads} threads, "
          f"{platform.processor() or platform.machine()}; {args.rounds} alternated rounds, medians")
    if ddpm is None:
        print(f"  note: {ddpm_missing}")
    for folder in [f for f in args.unet.split(",") if f]:
        model = _load_torch_model(torch, folder).to(device)
        ours = ddpm.load_model(folder, threads=threads) if ddpm is not None else None
        c = model.config
        size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
        width = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[1]
        conditional = c.num_class_embeds is not None
        name = os.path.basename(os.path.normpath(folder))
        for batch in batches:
            g = torch.Generator().manual_seed(20261208)
            x_host = torch.randn((batch, c.in_channels, size, width), generator=g)
            labels_host = torch.arange(batch) % (c.num_class_embeds - 1) if conditional else None
            x_np = x_host.numpy()
            labels_np = labels_host.numpy() if conditional else None
            x = x_host.to(device)
            labels = labels_host.to(device) if conditional else None
            t = torch.tensor(500, device=device)

            def torch_eval():
                with torch.inference_mode():
                    model(x, t, class_labels=labels)
                synchronize()

            def ddpm_eval():
                ours(x_np, np.array(500.0, np.float32), labels_np)

            scheduler = _scheduler(folder)

            def torch_loop():
                scheduler.set_timesteps(args.loop_steps)
                sample = x.clone()
                with torch.inference_mode():
                    for step in scheduler.timesteps:
                        out = model(sample, step, class_labels=labels).sample
                        sample = scheduler.step(out, step, sample).prev_sample
                synchronize()

            sampler = (ddpm.Sampler.for_model(ours, sampler="ddim", num_inference_steps=args.loop_steps,
                                              timestep_spacing="trailing", clip_x0=None,
                                              backend="cuda" if on_gpu else "cpu", threads=threads)
                       if ours is not None else None)

            def ddpm_loop():
                sampler.sample(x_np.shape, ours, initial=x_np, class_labels=labels_np)

            for work, torch_fn, ddpm_fn in (("eval", torch_eval, ddpm_eval), ("loop", torch_loop, ddpm_loop)):
                with_ddpm = ours is not None and not (on_gpu and work == "eval")
                if work == "eval" or on_gpu:  # warm-up (on the CPU the evaluations warm the loops up too)
                    torch_fn()
                    if with_ddpm:
                        ddpm_fn()
                times = {"torch": [], "ddpm": []}
                for _ in range(args.rounds):
                    for side, fn in (("torch", torch_fn), ("ddpm", ddpm_fn)):
                        if side == "ddpm" and not with_ddpm:
                            continue
                        begin = time.perf_counter()
                        fn()
                        times[side].append(time.perf_counter() - begin)
                row = {"model": name, "work": work, "batch": batch, "threads": threads, "device": device.type,
                       "steps": args.loop_steps if work == "loop" else 1,
                       "torch_seconds": statistics.median(times["torch"]),
                       "torch_rounds": times["torch"]}
                line = f"  {name:24s} {work:4s} batch {batch:3d}: torch {row['torch_seconds'] * 1e3:9.2f} ms"
                if with_ddpm:
                    row["ddpm_seconds"] = statistics.median(times["ddpm"])
                    row["ddpm_rounds"] = times["ddpm"]
                    row["speedup"] = row["torch_seconds"] / row["ddpm_seconds"]
                    line += f", ddpm {row['ddpm_seconds'] * 1e3:9.2f} ms: {row['speedup']:.2f}x"
                if work == "eval" and not on_gpu:
                    row["torch_onednn_conv_share"] = _onednn_share(torch, model, x, t, labels)
                    line += f" (torch: {100 * row['torch_onednn_conv_share']:.0f}% in oneDNN convolutions)"
                print(line, flush=True)
                rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"available": True, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "torch_version": torch.__version__, "diffusers_version": diffusers.__version__,
                       "ddpm": ddpm is not None, "threads": threads, "cpu": platform.processor() or platform.machine(),
                       "python": platform.python_version(), "rounds": args.rounds, "rows": rows}, f, indent=2)
        print(f"wrote {args.json}")
    return 0
