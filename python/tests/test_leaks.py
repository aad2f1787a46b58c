"""Reference counting: 10,000 calls leak neither Python objects nor C++ memory."""

import gc
import sys
import tracemalloc

import numpy as np

import ddpm

CALLS = 10_000


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _calls(sampler, x0, model):
    t = sampler.timesteps[0]
    for _ in range(CALLS):
        x_t, eps = sampler.forward(x0, 123, seed=1)
        sampler.step(x_t, eps, t, seed=2, out=x_t)
    for _ in range(CALLS // 10):
        sampler.sample(x0.shape, lambda x, t: x, seed=3)
        sampler.sample(x0.shape, model, seed=3, class_labels=[0] * x0.shape[0])


def test_no_leak_over_ten_thousand_calls():
    # 4 KiB arrays: a leaked result per call would be 40 MiB, far above the bounds.
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=2, backend="cpu", threads=1)
    x0 = np.ones((4, 256), np.float32)
    model = ddpm.GaussianPredictor(0.1, 0.5)
    references = (sys.getrefcount(x0), sys.getrefcount(model), sys.getrefcount(sampler))
    _calls(sampler, x0, model)  # warm-up: caches, the allocator's pools
    gc.collect()
    rss = _rss_bytes()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    _calls(sampler, x0, model)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grown = _rss_bytes() - rss
    assert after - before < 256 * 1024, f"Python memory grew by {after - before} bytes"
    assert grown < 8 * 1024 * 1024, f"RSS grew by {grown} bytes"
    assert (sys.getrefcount(x0), sys.getrefcount(model), sys.getrefcount(sampler)) == references
