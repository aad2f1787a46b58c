#!/usr/bin/env python3
"""scripts/gpu-results on a made-up gpu-check output: the report counts the
tests from ctest's JUnit file, shows each failure's first lines, and judges
every goal from the benchmark rows of one run, met or missed by their own
numbers. Standard library only; run by ctest (label cpu)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gpu-results")

JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="Linux-c++" tests="4" failures="1" disabled="0" skipped="1" hostname="" time="3">
  <testcase name="test_gpu_forward:Shapes/GpuForward.MatchesCpuBackend/0" classname="test_gpu_forward" time="0.5" status="run">
    <system-out>[  PASSED  ] 1 test.</system-out>
  </testcase>
  <testcase name="test_gpu_rules:GpuRule.LoopInPiecesEqualsTheWholeLoop/3" classname="test_gpu_rules" time="0.7" status="fail">
    <failure message="Failed"/>
    <system-out>tests/gpu/test_gpu_rules.cpp:150: Failure
Expected equality of these values:
  pieces[17]
[  FAILED  ] 1 test.</system-out>
  </testcase>
  <testcase name="test_gpu_mlp_predictor:MlpOnGpu.PredictAllocatesNothing" classname="test_gpu_mlp_predictor" time="0.3" status="notrun">
    <skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
    <system-out>[  SKIPPED ] no usable CUDA device</system-out>
  </testcase>
  <testcase name="test_gpu_reverse:GpuReverse.MatchesCpuBackend/0" classname="test_gpu_reverse" time="0.4" status="run">
    <system-out>ok</system-out>
  </testcase>
</testsuite>
"""


def row(kernel, section, elements, median, gbps=0.0, copy=0.0, steps=1):
    return {"kernel": kernel, "section": section, "label": kernel, "elements": elements,
            "steps_per_call": steps, "seconds": {"median": median, "min": median, "max": median},
            "gigabytes_per_second": gbps, "copy_gigabytes_per_second": copy}


class GpuResults(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.tmp.name, "out")
        os.makedirs(os.path.join(self.out, "tests"))
        self.write("machine.log", "date: 2026-12-08T10:00:00Z\ncommit: abc1234\n"
                   "name, compute_cap, memory.total [MiB]\nNVIDIA H100 80GB HBM3, 9.0, 81559 MiB\n")
        self.write("steps.tsv", "1. machine: NVIDIA H100 80GB HBM3\tPASS\t0.4\n"
                   "memcheck forward_kernel\tFAIL (sanitizer report, see sanitizer-memcheck.log)\t12.0\n")
        self.write("summary.txt", "gpu-check budget: 301 s of 480 s budget; logs in /x\n")
        self.write("tests/junit.xml", JUNIT)
        n, big = 12288, 1 << 24
        self.write("bench.json", json.dumps({"device": {"name": "NVIDIA H100 80GB HBM3"}, "settings": {"gpu": {}}, "rows": [
            row("forward", "gpu", 1 << 26, 1e-4, gbps=2900.0, copy=3000.0),      # 96.7%: met
            row("reverse_step", "gpu", 1 << 26, 1e-4, gbps=2400.0, copy=3000.0),  # 80%: missed
            row("fused_step", "gpu", big, 40e-6, gbps=2800.0, copy=3000.0),
            row("loop_fused_graph", "gpu-loop", n, 2.5e-6, steps=1000),           # 2.5 ms: met
            row("loop_fused_graph", "gpu-loop", big, 50e-6, steps=1000),          # 1.25x the kernel: missed
            row("loop_unfused_nograph", "gpu-loop", big, 250e-6, steps=1000),     # 5x: met
        ]}))
        self.write("torch.json", json.dumps({"available": True, "torch_version": "2.9", "device": "H100", "rows": [
            {"variant": "eager", "elements": n, "seconds_per_step": {"median": 40e-6}},   # 16x: missed
            {"variant": "eager", "elements": big, "seconds_per_step": {"median": 400e-6}},  # 8x: met
        ]}))
        self.write("sanitizer-memcheck.log", "==== memcheck: test_gpu_forward\n"
                   "========= COMPUTE-SANITIZER\n========= Invalid __global__ read of size 4 bytes\n"
                   "=========     at forward_kernel+0x80\n========= ERROR SUMMARY: 1 error\n")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        with open(os.path.join(self.out, name), "w") as f:
            f.write(text)

    def report(self):
        output = os.path.join(self.tmp.name, "report.md")
        done = subprocess.run([sys.executable, SCRIPT, self.out, "--output", output],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(output) as f:
            return f.read()

    def goal_line(self, text, start):
        lines = [l for l in text.splitlines() if l.startswith("| " + start)]
        self.assertEqual(len(lines), 1, f"one goal line starting {start!r} in:\n{text}")
        return lines[0]

    def test_counts_tests_and_shows_the_first_lines_of_each_failure(self):
        text = self.report()
        self.assertIn("# GPU check, 2026-12-08, NVIDIA H100 80GB HBM3", text)
        self.assertIn("4 cases: 2 passed, 1 failed, 1 skipped.", text)
        self.assertIn("FAILED: `test_gpu_rules:GpuRule.LoopInPiecesEqualsTheWholeLoop/3`", text)
        self.assertIn("tests/gpu/test_gpu_rules.cpp:150: Failure", text)
        self.assertIn("skipped: `test_gpu_mlp_predictor", text)
        self.assertIn("no usable CUDA device", text)
        self.assertIn("| memcheck forward_kernel | FAIL (sanitizer report", text)

    def test_judges_each_goal_by_its_own_numbers(self):
        text = self.report()
        self.assertIn("96.7% of 3000", self.goal_line(text, "forward at 67,108,864"))
        self.assertTrue(self.goal_line(text, "forward at 67,108,864").endswith("| met |"))
        self.assertIn("**missed**", self.goal_line(text, "reverse_step at 67,108,864"))
        self.assertIn("2.500 ms", self.goal_line(text, "T = 1000 fused graph loop at 12,288"))
        self.assertTrue(self.goal_line(text, "T = 1000 fused graph loop").endswith("| met |"))
        self.assertIn("(1.250x)", self.goal_line(text, "fused graph loop at 2^24"))
        self.assertIn("**missed**", self.goal_line(text, "fused graph loop at 2^24"))
        self.assertIn("5.0x", self.goal_line(text, "fused + graph >= 4x the eager unfused loop at 16,777,216"))
        self.assertIn("16.0x | **missed**", self.goal_line(text, ">= 20x PyTorch eager at 12,288"))
        self.assertIn("8.0x | met", self.goal_line(text, ">= 5x PyTorch eager at 16,777,216"))
        self.assertIn("fused_step: >= 90% of D2D copy at >= 2^26 | no row | not run", text)

    def test_quotes_the_sanitizer_reports(self):
        text = self.report()
        self.assertIn("- memcheck: 3 report lines, first:", text)
        self.assertIn("Invalid __global__ read of size 4 bytes", text)

    def test_names_the_file_by_date_and_device_and_refuses_a_missing_folder(self):
        done = subprocess.run([sys.executable, SCRIPT, self.out], capture_output=True, text=True,
                              cwd=self.tmp.name)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.tmp.name, "bench", "results",
                                                    "2026-12-08-nvidia-h100-80gb-hbm3.md")))
        done = subprocess.run([sys.executable, SCRIPT, os.path.join(self.tmp.name, "nothing")],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 2)
        self.assertIn("is not a folder", done.stderr)


if __name__ == "__main__":
    unittest.main()
