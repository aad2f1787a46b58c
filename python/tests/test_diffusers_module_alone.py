"""ddpm.diffusers without diffusers: plain config dicts and NumPy arrays; and
importing ddpm never imports diffusers or torch."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import ddpm


def test_importing_ddpm_imports_neither_diffusers_nor_torch():
    code = "import sys, ddpm; print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is not None,
                    reason="diffusers is installed: test_diffusers_schedulers.py covers ddpm.diffusers with it")
def test_schedulers_work_on_numpy_without_diffusers(tmp_path):
    import ddpm.diffusers as dd

    assert not dd.HAVE_DIFFUSERS
    scheduler = dd.DPMSolverMultistepScheduler.from_config({"num_train_timesteps": 800, "clip_sample": True})
    scheduler.set_timesteps(12)
    sampler = ddpm.Sampler.from_config({"_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 800},
                                       inference_steps=12)
    assert [int(t) for t in scheduler.timesteps] == sampler.timesteps and len(scheduler) == 800
    x = np.linspace(-2, 2, 48, dtype=np.float64).reshape(4, 12)
    y, x0 = x.astype(np.float32), None
    for i, t in enumerate(scheduler.timesteps):
        out = scheduler.step(0.3 * x, t, x)
        y, x0 = sampler.step(y, (0.3 * y.astype(np.float64)).astype(np.float32), step_index=i, previous_x0=x0,
                             return_x0=True)
        x = out.prev_sample
        assert x.dtype == np.float64 and out.pred_original_sample.dtype == np.float64
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-6 * np.abs(y).max())  # float32 rounding
    scheduler.save_config(tmp_path)
    saved = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert saved["_class_name"] == "DPMSolverMultistepScheduler" and saved["num_train_timesteps"] == 800
    assert dd.DPMSolverMultistepScheduler.from_pretrained(tmp_path).config["num_train_timesteps"] == 800
