"""gunicorn settings for `gunicorn app:app`: server settings only, each with the reason for its value.

The app's own settings (MODEL_DIR, limits, API_TOKEN, ...) are environment variables read by
app.load_config(); see the README.
"""
import gc
import os
import sys

import app as sentiment_app
import model

# Loopback by default, like `python app.py`; a container or a reverse proxy sets BIND=0.0.0.0:5000.
bind = os.environ.get("BIND", "127.0.0.1:5000")

# Figures behind these settings: `python benchmarks/bench_serving.py --rounds N --seconds S
# [--gunicorn-arg=...]` on this 2-core machine, shared with other jobs (load average 4-10: single
# figures swing by up to 2x between runs, so compare the ratios, which come from the same rounds).
# GET /?query=<6 words>, wrk -t2 -c8; requests/s of service / tutorial baseline / constant app:
#   sync, 2 workers            2,345 /   666 / 2,825  (0.84 of constant)   2,980 /   805 / 5,164  (0.65)
#   sync, 3 workers            1,777 /   506 / 3,181  (0.57)
#   gthread, 2 x 1 thread      5,574 / 1,148 / 3,862  (1.21)             2,981 / 1,043 / 3,545  (0.82)
#   gthread, 2 x 2 threads     2,712 / 1,028 / 4,148  (0.75)             4,536 / 1,459 / 5,383  (0.80)
#   gthread, 2 x 4 threads     3,184 / 1,227 / 6,614  (0.49)             2,905 /   767 / 3,582  (0.77)
#                              4,144 / 1,296 / 6,513  (0.61)             3,046 /   714 / 4,027  (0.76)
# One worker per core: scoring is CPU-bound, so more processes than cores only add context switches
# (3 sync workers answered fewer requests than 2). Override with WEB_CONCURRENCY on bigger machines.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))

# gthread keeps connections alive (sync closes each one), which is what clients that reuse
# connections, load balancers and wrk do: the framework's ceiling rises from ~2,800-5,200 to
# ~3,500-6,600 requests/s. Threads only interleave under the GIL: 4 per worker came out worst
# against the constant app in every run (0.49-0.77), 1 and 2 about even (0.80-1.21); 2 keeps a
# second thread free when one client is slow to send its request.
worker_class = "gthread"
threads = 2

# Every request is answered in milliseconds; 30 s only catches a worker that is truly stuck.
timeout = 30

# On SIGTERM (deploys, `docker stop`), finish in-flight requests for up to 10 s before exiting.
graceful_timeout = 10

# Clients that reuse connections (requests.Session, browsers, load balancers) skip a TCP handshake.
keepalive = 5

# Access log on stdout, so the container runtime or systemd collects it.
accesslog = "-"
errorlog = "-"


def on_starting(server):
    """Refuse to start, once and clearly, when a model cannot be trusted; then load the app once.

    The app is built here, in the master, after the check, rather than by gunicorn's preload_app
    (which loads it before any hook runs, so a bad model would end in a traceback). Workers fork
    with it: the models are loaded once and their arrays shared, and start-up loads them once.
    Measured (bench_serving.py, Kaggle models, 2 workers): total PSS of master + workers 166-168 MiB,
    against 199-205 MiB when each worker loaded its own; start-up to a healthy /health 1.4-1.5 s.
    """
    try:
        settings = sentiment_app.load_config()
        model.verify_models(settings["MODEL_DIR"])
        sentiment_app.app = sentiment_app.create_app()
    except (model.ModelError, sentiment_app.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    # Keep the loaded objects out of the garbage collector's sweeps, which would write to (and so
    # copy into every worker) the pages the workers share with the master.
    gc.freeze()


def on_reload(server):
    """SIGHUP: load the models in MODEL_DIR again before new workers fork; keep the old ones if bad.

    The app was built in the master (on_starting), and new workers fork with whatever it holds, so
    without this they would keep serving the models loaded at start.
    """
    try:
        fresh = sentiment_app.create_app()
    except (model.ModelError, sentiment_app.ConfigError) as exc:
        server.log.error("reload: keeping the models already loaded, the new ones are unusable: %s", exc)
        return
    sentiment_app.app = fresh
    # The old app is frozen too, and its reference cycles would keep its models alive for ever:
    # thaw, collect it, and freeze the new one.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    server.log.info("reload: models loaded again from %s", fresh.config["MODEL_DIR"])
