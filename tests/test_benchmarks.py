"""The benchmarks run end to end in their smoke mode and print every figure they promise.

No figure is checked against a target here (speed is for the benchmarks themselves, on a quiet
machine); what is checked is that the scripts work and report what the README's table shows.
"""
import re
import shutil
import subprocess
import sys

import pytest

from support import ROOT


def run_smoke(script):
    """Run `benchmarks/<script> --smoke`; return its standard output."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_scoring_benchmark_reports_both_paths_and_the_crossover():
    output = run_smoke("bench_scoring.py")
    assert re.search(r"median per short query: fast [\d.]+ us, scikit-learn [\d.]+ us", output)
    assert re.search(r"^\s+100\s+[\d.]+\s+[\d.]+", output, re.M)
    assert "scikit-learn is faster from batch size" in output or "fast path was faster at every size" in output


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk is not installed (apt-get install -y wrk); CI installs it")
def test_serving_benchmark_prints_the_table_for_every_app_without_errors():
    output = run_smoke("bench_serving.py")
    for app in ("service", "baseline", "constant", "stack", "no-ops"):
        row = re.search(rf"^{app}\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)(\s+[\d.]+x){{3}}\s+(\d+)\s+([\d.]+)$", output, re.M)
        assert row, f"no table row for {app}:\n{output}"
        assert float(row.group(1).replace(",", "")) > 0
        assert int(row.group(6)) > 0 and float(row.group(7)) > 0  # workers' CPU per request, in-process us
        assert row.group(4) == "0", f"{app} had errors under load:\n{output}"
    for figure in ("POST / with 1,000 phrases over HTTP: ", "predict.py over test.tsv", "start-up to a 200 on /health: ",
                   "memory after start-up, MiB: master RSS", "worker 1 RSS", "targets (issue 3):"):
        assert figure in output
