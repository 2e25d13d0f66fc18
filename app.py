"""The command and WSGI entry point of the sentiment API: `app.app` for gunicorn, `python app.py` for development.

    python app.py                 # development server on 127.0.0.1:5000
    gunicorn app:app              # production; server settings in gunicorn.conf.py

The app itself is built by `web.factory.create_app` (re-exported here, with `build_in_master`).
"""
import argparse
import logging
import sys

import kinds
from serving import lifecycle, logs
from serving.config import ConfigError, Settings
from web import factory
from web.factory import build_in_master, create_app

__all__ = ["build_in_master", "create_app", "main"]


def __getattr__(name):
    """`app.app` is what `gunicorn app:app` imports: the app `build_in_master` built in gunicorn's master (kept
    as `web.factory.app`, and built again on SIGHUP), else one built on first use; tests build their own."""
    if name == "app":
        if "app" not in vars(factory):
            factory.app = create_app()
        return factory.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None):
    """`python app.py`: the development server on 127.0.0.1:5000, debug off unless --debug."""
    parser = argparse.ArgumentParser(description="Serve the sentiment models (development server).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--debug", action="store_true", help="Flask's debugger: never on a shared network")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure_logging(settings.LOG_FORMAT)
        application = create_app(settings)
    except (kinds.ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The app logs one line per request without the query string; Werkzeug's own line would add the
    # full URL, and with it the text being scored.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    lifecycle.start_services(application)  # one process, no fork: its services start here
    try:
        application.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)
    finally:
        lifecycle.stop_services(application, lifecycle.STOP_TIMEOUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
