"""Ctrl-C stops a long run between steps with KeyboardInterrupt and leaves the sampler usable."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ddpm

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals reach only the main thread")


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """These tests need Python's own SIGINT handler (KeyboardInterrupt). A
    process a shell starts in the background (`scripts/test &`) begins with
    SIGINT ignored, and then Python installs none: set it up here, and put
    back what was there."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_after(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.parametrize("predictor", ["fused_gaussian", "gmm"])
def test_sigint_stops_a_long_sample(predictor):
    sampler = ddpm.Sampler(backend="cpu")  # 1000 steps
    if predictor == "fused_gaussian":
        # 1000 steps over 8M elements: many seconds on two cores.
        shape, model = (64, 131072), ddpm.GaussianPredictor(0.5, 0.3)
    else:
        shape, model = (20000, 16), ddpm.GmmPredictor({"weights": [1.0], "means": [[0.0] * 16], "stds": [0.5]})
    timer = _interrupt_after(0.5)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            sampler.sample(shape, model, seed=1)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5.0, "the run did not stop between steps"
    # No half state: the same sampler and predictor give what fresh ones give.
    small = sampler.sample((3, 16), model, seed=2)
    np.testing.assert_array_equal(small, ddpm.Sampler(backend="cpu").sample((3, 16), model, seed=2))


def test_sigint_during_a_python_predictor():
    sampler = ddpm.Sampler(backend="cpu")
    calls = []

    def slow(x_t, t):
        calls.append(t)
        time.sleep(0.01)
        return np.zeros_like(x_t)

    timer = _interrupt_after(0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            sampler.sample((2, 3), slow)
    finally:
        timer.cancel()
    assert 0 < len(calls) < 1000


def test_keyboard_interrupt_raised_by_the_predictor():
    sampler = ddpm.Sampler(sampler="ddim", inference_steps=20, backend="cpu")

    def stop_at_ten(x_t, t):
        if t < 500:
            raise KeyboardInterrupt
        return np.zeros_like(x_t)

    with pytest.raises(KeyboardInterrupt):
        sampler.sample((4, 4), stop_at_ten)
    expected = ddpm.Sampler(sampler="ddim", inference_steps=20, backend="cpu").sample(
        (4, 4), ddpm.GaussianPredictor(), seed=5)
    np.testing.assert_array_equal(sampler.sample((4, 4), ddpm.GaussianPredictor(), seed=5), expected)


def test_the_sigint_tests_pass_when_started_with_sigint_ignored():
    """As under `scripts/test &` with stdin closed: SIGINT ignored from the start."""
    if os.environ.get("DDPM_INTERRUPT_TEST_CHILD"):
        pytest.skip("already the child run")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "sigint and not started_with_sigint_ignored"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DDPM_INTERRUPT_TEST_CHILD": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout, result.stdout[-3000:]
