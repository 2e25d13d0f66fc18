"""The service direct and behind nginx (deploy/nginx.conf.template), side by side in one run.

    python benchmarks/bench_proxy.py              # models from $KAGGLE_DATA_DIR, about a minute and a half
    python benchmarks/bench_proxy.py --smoke      # tiny data, short rounds: a few seconds

Starts gunicorn with the repo's gunicorn.conf.py and Debian's nginx with the rendered template in
front of it, both on loopback, then measures:
  throughput  GET /?query=<6 words> with wrk -t2 -c8, alternating direct and proxied rounds: median
              requests/s and p99 of each, and the median per-round ratio;
  slow        for each count of slow clients (each sends a request line, then one header line every
              half second), the time normal GETs take while they trickle, direct and through nginx
              (a GET that gets no answer in 10 s counts as timed out).
"""
import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench_scoring
import requests
from bench_serving import QUERY, wrk

from tests.support import Nginx, Server, build_models, write_tiny_kaggle


def throughput(targets, *, rounds, seconds):
    """{name: [wrk result per round]}, the targets' rounds alternating so noise hits both alike."""
    path = "/?query=" + requests.utils.quote(QUERY)
    results = {name: [] for name in targets}
    for _ in range(rounds):
        for name, url in targets.items():
            results[name].append(wrk(url + path, seconds=seconds))
    return results


def trickle(port, stop, opened):
    """One slow client: a request line, then a header line every half second until `stop`."""
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /?query=slow HTTP/1.1\r\nHost: slow\r\n")
            opened.release()
            while not stop.wait(0.5):
                sock.sendall(b"X-Slow: 1\r\n")
    except OSError:
        opened.release()


def under_slow_clients(url, port, *, clients, gets=10):
    """(median seconds of the answered normal GETs, GETs sent, GETs timed out) while `clients` slow clients
    trickle at `port`. After two timeouts in a row the service is stuck: no more GETs are sent."""
    stop, opened = threading.Event(), threading.Semaphore(0)
    threads = [threading.Thread(target=trickle, args=(port, stop, opened), daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for _ in threads:
        opened.acquire(timeout=20)
    time.sleep(1.5)
    timings, sent, timeouts = [], 0, 0
    try:
        while sent < gets and timeouts < 2:
            sent += 1
            started = time.perf_counter()
            try:
                requests.get(url + "/", params={"query": QUERY}, timeout=10).raise_for_status()
                timings.append(time.perf_counter() - started)
            except requests.RequestException:
                timeouts += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    return (statistics.median(timings) if timings else float("nan")), sent, timeouts


def main(argv=None):
    """Build models, start gunicorn and nginx, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, one short round, few slow clients")
    parser.add_argument("--rounds", type=int, default=5, help="wrk rounds per target (default 5)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--slow-clients", default="4,50,200", help="counts of slow clients (default 4,50,200)")
    args = parser.parse_args(argv)
    for tool in ("wrk", "nginx", "envsubst"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"error: {tool} is not installed; on Debian: apt-get install -y wrk nginx-light gettext-base")
    rounds, seconds = (1, 1) if args.smoke else (args.rounds, args.seconds)
    counts = [4] if args.smoke else [int(n) for n in args.slow_clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        tmp = Path(tmp)
        data_dir = write_tiny_kaggle(tmp / "data") if args.smoke else bench_scoring.kaggle_data_dir()
        model_dir = build_models(bench_scoring.train_file(data_dir), tmp / "models")
        gunicorn = Server(model_dir, log_path=tmp / "gunicorn.log").wait_healthy()
        proxy = Nginx(tmp / "nginx", upstream=f"127.0.0.1:{gunicorn.port}").wait_healthy()
        try:
            results = throughput({"direct": gunicorn.url, "nginx": proxy.url}, rounds=rounds, seconds=seconds)
            slow = {(count, name): under_slow_clients(url, port, clients=count)
                    for count in counts
                    for name, url, port in (("direct", gunicorn.url, gunicorn.port),
                                            ("nginx", proxy.url, proxy.port))}
        finally:
            proxy.stop()
            gunicorn.stop()

    print(f"GET /?query=<{len(QUERY.split())} words>, wrk -t2 -c8, {rounds} round(s) of {seconds} s, alternating; "
          "gunicorn.conf.py; nginx with deploy/nginx.conf.template")
    print(f"{'path':<8} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for name, runs in results.items():
        print(f"{name:<8} {statistics.median(r['rps'] for r in runs):>10,.0f} "
              f"{statistics.median(r['p50'] for r in runs):>7.2f} {statistics.median(r['p99'] for r in runs):>7.2f} "
              f"{sum(r['errors'] for r in runs):>6}")
    ratio = statistics.median(n["rps"] / d["rps"] for n, d in zip(results["nginx"], results["direct"]))
    print(f"nginx / direct requests/s, median of per-round ratios: {ratio:.2f}x")
    print("\nnormal GETs while slow clients trickle their headers (up to 10 GETs, 10 s timeout each, "
          "stopping after 2 timeouts):")
    print(f"{'slow clients':>12} {'path':<8} {'median ms':>9} {'timed out':>11}")
    for (count, name), (median_s, sent, timeouts) in slow.items():
        answered = "-" if median_s != median_s else f"{median_s * 1000:.1f}"  # NaN: none answered
        print(f"{count:>12} {name:<8} {answered:>9} {f'{timeouts} of {sent}':>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
