"""Shared fixtures of the Python tests: the repository, the ddpm CLI, torch."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _find_cli():
    given = os.environ.get("DDPM_CLI")
    if given:
        return pathlib.Path(given)
    for candidate in (REPO / "build" / "src" / "cli" / "ddpm", shutil.which("ddpm")):
        if candidate and pathlib.Path(candidate).is_file():
            return pathlib.Path(candidate)
    return None


@pytest.fixture(scope="session")
def cli():
    """A function running the ddpm CLI with arguments; skips when there is no CLI."""
    path = _find_cli()
    if path is None or not path.is_file():
        pytest.skip("the ddpm CLI was not found (build it with scripts/test, or set DDPM_CLI)")

    def run(*args):
        result = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, f"ddpm {' '.join(map(str, args))} failed: {result.stderr}"
        return result

    return run


@pytest.fixture(scope="session")
def digits_model():
    path = REPO / "models" / "digits.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    return path


def gaussian_eps(x_t, t, schedule, mean, std):
    """E[eps | x_t] for x0 ~ N(mean, std^2), as the built-in GaussianPredictor computes it."""
    a = np.sqrt(schedule.alpha_bar[t])
    b = np.sqrt(1.0 - schedule.alpha_bar[t])
    return (b * (x_t - a * mean) / (a * a * std * std + b * b)).astype(np.float32)
