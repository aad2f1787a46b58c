"""Progress reports, and the GIL released while the engine works."""

import io
import sys
import threading
import time

import numpy as np

import ddpm
from ddpm._progress import PlainBar


def test_progress_callback_sees_every_step():
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=8, backend="cpu")
    reports = []
    sampler.sample((2, 3), lambda x, t: np.zeros_like(x), progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (8, 8)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)


def test_plain_bar_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    ddpm.Sampler(sampler="ddim", inference_steps=5, backend="cpu").sample(
        (2, 3), ddpm.GaussianPredictor(), progress=True)
    assert captured.getvalue().endswith("5/5\n")
    bar = PlainBar("x", stream=io.StringIO(), width=4)
    bar(2, 4)
    bar(4, 4)
    assert bar._stream.getvalue() == "\rx  [##--]  2/4\rx  [####]  4/4"


def test_the_gil_is_released_while_sampling():
    sampler = ddpm.Sampler(backend="cpu", threads=1)
    worker = threading.Thread(target=sampler.sample, args=((8, 16384), ddpm.GaussianPredictor()))
    ticks = 0
    started = time.monotonic()
    worker.start()
    while worker.is_alive():
        ticks += 1  # runs only while the worker does not hold the GIL
    elapsed = time.monotonic() - started
    worker.join()
    assert elapsed > 0.2, "the run was too short to tell"
    assert ticks > 10_000, f"this thread ran {ticks} times in {elapsed:.2f} s: the GIL was held"
