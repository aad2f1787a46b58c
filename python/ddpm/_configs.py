"""Scheduler configs as diffusers hands them over, turned into the JSON the engine reads.

diffusers' configs come as dicts (a scheduler's ``.config``, a FrozenDict that
has no ``_class_name``), as JSON text written by Python's json module (which
writes ``-Infinity`` for the DPM-Solver default ``lambda_min_clipped``), or as a
file: ``scheduler_config.json``, or a pipeline folder holding
``scheduler/scheduler_config.json``. All of them become a plain dict here, and
the engine gets JSON text without non-finite numbers: those become the strings
"inf", "-inf" and "nan" (the engine reads "-inf" for lambda_min_clipped and
refuses them by name anywhere else).

The engine reads the keys of the class the config names (its _class_name, or
the one of sampler=), refuses by name a value that would change the numbers
and that ddpm does not implement (use_exponential_sigmas, solver_order 3 with
sde-dpmsolver++, ...) and ignores the rest (diffusers' bookkeeping, other
classes' keys), as diffusers' from_config does.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping

from . import _ddpm

_MAX_CONFIG_BYTES = 64 << 20  # as the CLI's --scheduler-config
CONFIG_NAME = "scheduler_config.json"



def _read_file(path):
    """The file's text, read with bounded memory; every failure a ddpm.Error."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise _ddpm.Error(f"cannot read {path}: {e.strerror}") from None
    # Not a regular file (a directory, /dev/zero, a FIFO): refused before it is opened.
    if stat.S_ISDIR(st.st_mode):
        raise _ddpm.Error(f"cannot read {path}: Is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise _ddpm.Error(f"cannot read {path}: not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise _ddpm.Error(f"cannot read {path}: {e.strerror}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise _ddpm.Error(f"{path}: larger than 64 MiB, not a scheduler config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _ddpm.Error(f"{path}: not UTF-8 text, not a scheduler config") from None


def config_file(path):
    """The scheduler_config.json a path names: the file itself, or in a folder
    (a scheduler's save_config folder, or a pipeline's, under scheduler/)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for candidate in (os.path.join(path, CONFIG_NAME), os.path.join(path, "scheduler", CONFIG_NAME)):
            if os.path.exists(candidate):
                return candidate
        raise _ddpm.Error(f"{path}: a folder without {CONFIG_NAME} or scheduler/{CONFIG_NAME}")
    return path


def _parse(text, source):
    # Python's json reads Infinity, -Infinity and NaN, as diffusers' configs hold them.
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise _ddpm.Error(f"{source} is not valid JSON: {e}") from None
    except RecursionError:
        raise _ddpm.Error(f"{source} is nested too deeply to be a scheduler config") from None
    if not isinstance(value, dict):
        raise _ddpm.Error(f"{source} must be a JSON object")
    return value


def config_dict(config):
    """A scheduler config given as a mapping, JSON text or a path, as a new dict."""
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return _parse(config, "scheduler config")
    if isinstance(config, (str, os.PathLike)):
        path = config_file(config)
        return _parse(_read_file(path), path)
    raise TypeError(f"config must be a dict, JSON text or a path, got {type(config).__name__}")


def _finite_json(value):
    """value with non-finite floats as strings and NumPy values as Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # NumPy and torch values
        return _finite_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def engine_config(config, sampler=None):
    """The engine's JSON for a config dict: the class from _class_name, else
    from sampler= (its diffusers class's defaults)."""
    config = dict(config)
    if not config.get("_class_name") and isinstance(sampler, str):
        # The diffusers class whose defaults the sampler takes (the engine's rule registry says).
        try:
            config["_class_name"] = _ddpm.sampler_info(sampler)["diffusers_class"]
        except _ddpm.Error:
            pass  # an unknown name: the sampler option refuses it with the valid ones
    return json.dumps(_finite_json(config), allow_nan=False)
