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

# Figures behind these settings: `python benchmarks/bench_serving.py --rounds 2 --seconds 5` on this
# 2-core machine (shared, load average 5-10, so single figures are +-30%; ratios are from the same
# rounds), GET /?query=<6 words>, wrk -t2 -c8, requests/s of service / tutorial baseline / constant app:
#   sync, 2 workers                  2,345 /   666 / 2,825  (no keep-alive: a TCP connection per request)
#   sync, 3 workers                  1,777 /   506 / 3,181
#   gthread, 2 workers x 2 threads   2,712 / 1,028 / 4,148
#   gthread, 2 workers x 4 threads   3,184 / 1,227 / 6,614
#   gthread, 2 x 4, models preloaded 3,990 /   804 / 3,281  (memory: total PSS 168 MiB instead of 205)
# One worker per core: scoring is CPU-bound, so more processes than cores only add context switches
# (3 sync workers answered fewer requests than 2). Override with WEB_CONCURRENCY on bigger machines.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))

# gthread keeps connections alive (sync closes each one), which is what clients that reuse
# connections, load balancers and wrk do: the Flask ceiling went from ~2,800 to ~6,600 requests/s and
# the service from ~2,300 to ~3,200. Four threads give each of 8 connections a thread on 2 workers;
# the GIL makes more threads useless for CPU-bound scoring.
worker_class = "gthread"
threads = 4

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
    gc.freeze()
    server.log.info("reload: models loaded again from %s", fresh.config["MODEL_DIR"])
