"""The README's Python example runs and writes its PNG."""

import subprocess
import sys

import pytest

from conftest import REPO


def test_sample_digits_writes_a_png(tmp_path, digits_model):
    pytest.importorskip("matplotlib", reason="examples/sample_digits.py draws with matplotlib")
    out = tmp_path / "digits.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "sample_digits.py"), "--out", str(out), "--per-class", "2",
         "--backend", "cpu", "--model", str(digits_model)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "20 samples" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
