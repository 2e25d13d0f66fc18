"""The benchmarks run end to end in their smoke mode and print figures that agree with each other.

No figure is checked against a target here (speed is for the benchmarks themselves, on a quiet
machine). What is checked: every figure parses and is positive, no request failed, the derived
columns are computed from the figures printed beside them (within their rounding). No two timings
are compared with each other either: on a shared machine one app's second can be slower than another's.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from support import NGINX_BINARY, ROOT, postgres_bin

NUMBER = r"[\d,]+(?:\.\d+)?"


def number(text):
    """A printed figure (`1,005`, `2.21`) as a float."""
    return float(text.replace(",", ""))


def run_smoke(script, *args):
    """Run `benchmarks/<script> --smoke [args]`; return its standard output."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def figure(pattern, output):
    """The figures of the one line matching `pattern` (its groups), as floats."""
    found = re.search(pattern, output, re.M)
    assert found, f"no line matching {pattern!r} in:\n{output}"
    return [number(group) for group in found.groups()]


def close(printed, exact, *, decimals_printed, slack=0.0):
    """True if `printed` is `exact` rounded to `decimals_printed`, give or take `slack` from rounded inputs."""
    return abs(printed - exact) <= 0.5 * 10 ** -decimals_printed + slack + 1e-9


def test_scoring_benchmark_prints_per_text_costs_and_a_crossover_that_follow_from_its_timings():
    output = run_smoke("bench_scoring.py")
    fast_us, sklearn_us, times = figure(rf"median per short query: fast ({NUMBER}) us, scikit-learn ({NUMBER}) us "
                                        rf"\(({NUMBER})x\)", output)
    assert fast_us > 0 and sklearn_us > 0
    assert close(times, sklearn_us / fast_us, decimals_printed=0,
                 slack=times * (0.05 / fast_us + 0.05 / sklearn_us))
    rows = re.findall(rf"^\s+(\d+)\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})(  <- scikit-learn faster)?$",
                      output, re.M)
    assert len(rows) >= 2, output
    faster = []
    for size, fast_ms, sklearn_ms, fast_per_text, sklearn_per_text, marked in rows:
        size, fast_ms, sklearn_ms = int(size), number(fast_ms), number(sklearn_ms)
        assert fast_ms > 0 and sklearn_ms > 0
        # us per text is ms * 1000 / size; the ms shown are rounded to 0.001.
        assert close(number(fast_per_text), fast_ms * 1000 / size, decimals_printed=1, slack=0.5 / size)
        assert close(number(sklearn_per_text), sklearn_ms * 1000 / size, decimals_printed=1, slack=0.5 / size)
        assert (sklearn_ms <= fast_ms) if marked else (sklearn_ms >= fast_ms), (size, fast_ms, sklearn_ms)
        faster.append((size, bool(marked)))
    # The crossover is where scikit-learn stays faster up to the largest batch.
    trailing = []
    for size, marked in reversed(faster):
        if not marked:
            break
        trailing.append(size)
    if trailing:
        assert f"scikit-learn is faster from batch size {trailing[-1]} " in output
    else:
        assert "the fast path was faster at every size" in output


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk is not installed (apt-get install -y wrk); CI installs it")
def test_serving_benchmark_prints_a_table_whose_ratios_are_its_requests_per_second():
    # This checkout as the "before" one: the option runs, whatever the code it points at.
    output = run_smoke("bench_serving.py", "--before", str(ROOT),
                       *(["--no-postgres"] if postgres_bin("initdb") is None else []))
    header = re.search(r"^app\s+requests/s.*$", output, re.M)
    assert header, output
    others = re.findall(r"vs ([\w-]+)", header.group(0))
    assert others, header.group(0)
    columns = ["rps", "p50", "p99", "errors", *others, "cpu_us", "in_process_us"]
    row_pattern = r"^([\w-]+)\s+" + r"\s+".join(
        rf"({NUMBER})x" if name in others else f"({NUMBER})" for name in columns) + r"$"
    table = {found.group(1): dict(zip(columns, map(number, found.groups()[1:]), strict=True))
             for found in re.finditer(row_pattern, output, re.M)}
    assert {"service", "before", "ratings", "added-linear", "added-forest", *others} <= set(table), output
    assert ("postgres" in table) == (postgres_bin("initdb") is not None), output
    for app, row in table.items():
        assert row["errors"] == 0, f"{app} had errors under load:\n{output}"
        assert row["rps"] > 0 and 0 < row["p50"] <= row["p99"], (app, row)
        assert row["cpu_us"] > 0 and row["in_process_us"] > 0, (app, row)
        # Smoke mode runs one round, so each ratio is that round's requests/s over the other app's,
        # both shown rounded to whole requests.
        for other in others:
            exact = row["rps"] / table[other]["rps"]
            slack = exact * (0.5 / row["rps"] + 0.5 / table[other]["rps"])
            assert close(row[other], exact, decimals_printed=2, slack=slack), (app, other, row[other], exact)

    for path, row in (("/houses", "added-linear"), ("/forest", "added-forest")):  # models added with release.py add
        ratio, each = figure(rf"^GET {path} \(.* added with release.py add\) against GET /, the same app: "
                             rf"({NUMBER})x \(rounds: ({NUMBER})\)$", output)
        assert ratio == each and close(ratio, table[row]["rps"] / table["service"]["rps"], decimals_printed=2,
                                       slack=0.02), (row, ratio)
    # GET /ratings beside GET / on the same app: the one round's ratio of their requests/s.
    ratio, each = figure(rf"^GET /ratings \(a film's rating\) against GET / \(a text's sentiment\), the same app: "
                         rf"({NUMBER})x \(rounds: ({NUMBER})\)$", output)
    exact = table["ratings"]["rps"] / table["service"]["rps"]  # of the table's rounded requests/s, as above
    slack = exact * (0.5 / table["ratings"]["rps"] + 0.5 / table["service"]["rps"])
    assert ratio == each and close(ratio, exact, decimals_printed=2, slack=slack), (ratio, exact)

    # The comparisons spelt out are the table's column, with the one round's ratio beside it.
    compared = {"service": "SQLite", "postgres": "PostgreSQL"}
    for app in compared.keys() & table.keys():
        label = f"recording on {compared[app]} against PREDICTION_LOG=off"
        ratio, each = figure(rf"^GET, {label}: ({NUMBER})x \(rounds: ({NUMBER})\)$", output)
        assert ratio == each == table[app]["log-off"], (label, ratio, each, table[app])

    posts = {name: (number(rate), number(ratio)) for name, rate, ratio in re.findall(
        rf"^(service|log-off|postgres|before)\s+({NUMBER})\s+({NUMBER})x\s+{NUMBER}$", output, re.M)}
    assert {"service", "log-off", "before"} <= set(posts), output
    off = posts["log-off"][0]
    for app, (rate, ratio) in posts.items():
        exact = rate / off
        assert rate > 0 and close(ratio, exact, decimals_printed=2, slack=exact * (0.5 / rate + 0.5 / off)), app

    # Every recording server wrote a row for each answer it gave, and dropped none.
    recorded = re.findall(rf"^([\w-]+)\s+(SQLite|PostgreSQL)\s+({NUMBER}) rows for\s+({NUMBER}) answers, "
                          rf"dropped ({NUMBER})$", output, re.M)
    assert {name for name, *_ in recorded} >= {"service", "stack", "no-ops", "explain"}, output
    for name, _, rows, answers, dropped in recorded:
        assert number(rows) >= number(answers) > 0 and number(dropped) == 0, (name, rows, answers, dropped)
    assert "ROWS DROPPED" not in output

    assert figure(rf"fast ({NUMBER}) us, scikit-learn ({NUMBER}) us", output)[0] > 0
    wall, cpu = figure(rf"^predict\.py over \S+ \(.*\): ({NUMBER}) s wall \(({NUMBER}) s CPU\)", output)
    assert wall > 0 and cpu > 0
    assert figure(rf"^start-up to a 200 on /health: ({NUMBER}) s$", output)[0] > 0
    memory = re.search(r"^memory after start-up, MiB: (.*); total PSS (\d+)$", output, re.M)
    assert memory, output
    processes = re.findall(r"(master|worker \d+|writer \d+) RSS (\d+) PSS (\d+)", memory.group(1))
    assert processes[0][0] == "master" and len(processes) >= 2, memory.group(0)
    # The service records on SQLite: each worker has its prediction-log writer process.
    names = [name.split()[0] for name, _, _ in processes]
    assert names.count("writer") == names.count("worker") >= 1, memory.group(0)
    pss = [int(p) for _, _, p in processes]
    assert all(int(rss) >= int(p) > 0 for _, rss, p in processes), memory.group(0)
    # The total is summed before rounding; each part shown is rounded.
    assert abs(int(memory.group(2)) - sum(pss)) <= 0.5 * len(pss) + 0.5, memory.group(0)


@pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("envsubst") is None
                    or not os.path.exists(NGINX_BINARY),
                    reason="needs wrk and nginx (apt-get install -y wrk nginx-light); CI installs them")
def test_proxy_benchmark_compares_direct_and_nginx_and_nginx_is_not_stalled_by_slow_clients():
    output = run_smoke("bench_proxy.py")
    direct = figure(rf"^direct\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+(\d+)$", output)
    proxied = figure(rf"^nginx\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+(\d+)$", output)
    assert direct[3] == 0 and proxied[3] == 0, output
    assert all(value > 0 for value in direct[:3] + proxied[:3])
    (ratio,) = figure(rf"median of per-round ratios: ({NUMBER})x", output)
    assert abs(ratio - proxied[0] / direct[0]) <= 0.01, output  # one round: the same figure, up to rounding
    median_ms, timeouts, sent = figure(r"^\s+4 nginx\s+([\d.]+)\s+(\d+) of (\d+)$", output)
    assert timeouts == 0 and sent == 10 and median_ms < 1000, output


@pytest.mark.parametrize("corpus", [[], ["--films"]], ids=["phrases", "films"])
def test_batch_benchmark_prints_phrases_per_second_that_follow_from_its_wall_times(corpus):
    output = run_smoke("bench_batch.py", *corpus)
    assert "outputs: the same bytes from every engine" in output
    rows = re.findall(rf"^\s*({NUMBER})\s+(local|dask, 1 worker|dask, 2 workers)\s+({NUMBER})\s+({NUMBER})\s+"
                      rf"({NUMBER})x\s+(\d+)$", output, re.M)
    assert len(rows) == 6, output  # two sizes, three engines
    speeds = {}
    for lines, engine, wall, speed, ratio, peak in rows:
        lines, wall, speed = number(lines), number(wall), number(speed)
        speeds[lines, engine] = speed
        # The tiny corpus has no blank line, so every line is a phrase (or a film): phrases/s = lines / wall,
        # and the wall time shown is rounded to 0.01 s.
        assert abs(speed - lines / wall) <= lines / wall * (0.005 / wall) + 0.5, (lines, engine, wall, speed)
        assert close(number(ratio), speed / speeds[lines, "local"], decimals_printed=2,
                     slack=number(ratio) * (0.5 / speed + 0.5 / speeds[lines, "local"]))
        assert int(peak) > 0
    startup = figure(rf"local ({NUMBER}) s, dask, 1 worker ({NUMBER}) s, dask, 2 workers ({NUMBER}) s", output)
    assert all(seconds > 0 for seconds in startup)


def test_the_cluster_batch_benchmark_prints_each_way_of_reading_with_cpu_by_process_and_a_scale_table():
    output = run_smoke("bench_batch.py", "--cluster")
    assert "outputs: the same bytes from every engine" in output
    lines = number(re.search(rf"^({NUMBER}) lines \(", output, re.M).group(1))
    rows = re.findall(rf"^(local|workers read, -o|workers read\+write|client reads, -o)\s+({NUMBER})\s+({NUMBER})\s+"
                      rf"({NUMBER})x\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s", output, re.M)
    assert [row[0] for row in rows] == ["local", "workers read, -o", "workers read+write", "client reads, -o"], output
    local_speed = number(rows[0][2])
    for engine, wall, speed, ratio, client, scheduler, workers in rows:
        assert number(wall) > 0 and number(client) > 0 and number(scheduler) >= 0, (engine, output)
        assert close(number(ratio), number(speed) / local_speed, decimals_printed=2, slack=0.01), (engine, output)
        # Every line of the tiny corpus but the blank ones is a phrase, so phrases/s is at most lines / wall.
        assert number(speed) <= lines / number(wall) * 1.01 + 1, (engine, output)
        if engine != "local":
            assert number(workers) > 0, (engine, output)  # the workers did the scoring
    assert len(re.findall(r"^\s+(4|16|64) workers:\s+[\d,]+ phrases/s, bound by the (workers|scheduler|client)", output,
                          re.M)) == 3, output
