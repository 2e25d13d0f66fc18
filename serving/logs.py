"""Log lines: the access line per request, the app's own messages and gunicorn's, as text or JSON.

`configure_logging` sets up the `sentiment` logger once per process; `AccessLog` writes the one line
per request that `operations.Operations` asks for; `JsonServerLogger` is gunicorn's logger when
LOG_FORMAT=json. Every JSON line has the same `time`, `level`, `logger` and `message` shape.
"""
import json
import logging
import sys
import threading
import time

from gunicorn.glogging import Logger as GunicornLogger

ACCESS_LOGGER = "sentiment.access"
# What a text access line writes for each control character of a path: \n becomes the two characters \ and n.
ESCAPE_CONTROLS = {code: chr(code).encode("unicode_escape").decode() for code in [*range(32), 127]}
JSON_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # then milliseconds and "Z": UTC


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (the app's own messages and gunicorn's)."""

    converter = time.gmtime  # the "Z" below promises UTC

    def format(self, record):
        """The record as a single line of JSON."""
        entry = {"time": self.formatTime(record, JSON_TIME_FORMAT) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format):
    """Send the app's own log lines (errors, reloads) to stdout as text or JSON, replacing earlier set-ups."""
    handler = logging.StreamHandler(sys.stdout)
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else text)
    logger = logging.getLogger("sentiment")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # one line per event, not a second copy from the root logger


class AccessLog:
    """One line per request on stdout, looking like the `sentiment` logger's lines (text or JSON).

    Written directly rather than through `logging`: its records, handler and formatter cost four times
    as much per request (~8 us against ~2 us), and this line is written for every request.
    """

    def __init__(self, *, json_lines, stream=None):
        self.stream, self.json_lines = stream, json_lines  # None: whatever sys.stdout is when a line is written
        self.lock = threading.Lock()  # gthread workers answer from several threads; lines must not mix
        # JSON lines are in UTC ("Z"), text lines in local time with logging's default asctime format,
        # as the `sentiment` logger writes them.
        self.clock, self.time_format = (time.gmtime, JSON_TIME_FORMAT) if json_lines else (
            time.localtime, logging.Formatter.default_time_format)
        self.second = (None, "")  # (Unix second, its formatted time): formatted once per second

    def timestamp(self, now):
        """`now` as the line's time, to the millisecond."""
        second, formatted = self.second
        if second != int(now):
            second = int(now)
            formatted = time.strftime(self.time_format, self.clock(second))
            self.second = (second, formatted)
        millis = int(now * 1000) % 1000
        if self.json_lines:
            return f"{formatted}.{millis:03d}Z"
        return logging.Formatter.default_msec_format % (formatted, millis)

    def write(self, *, request_id, method, path, status, seconds, model_name, remote_addr):
        """Write one request's line."""
        stamp = self.timestamp(time.time())
        if self.json_lines:
            line = json.dumps({
                "time": stamp, "level": "INFO", "logger": ACCESS_LOGGER, "request_id": request_id,
                "method": method, "path": path, "status": status, "latency_ms": round(seconds * 1000, 3),
                "model": model_name, "remote_addr": remote_addr,
            }, ensure_ascii=False)
        else:  # control characters escaped: a %0A in a URL must not start a forged line
            path = path.translate(ESCAPE_CONTROLS)
            line = (f"{stamp} INFO {ACCESS_LOGGER} {method} {path} {status} {seconds * 1000:.3f}ms "
                    f"model={model_name or '-'} id={request_id} client={remote_addr or '-'}")
        stream = self.stream or sys.stdout
        with self.lock:
            stream.write(line + "\n")
            stream.flush()


class JsonServerLogger(GunicornLogger):
    """gunicorn's own messages (start-up, worker exits) as JSON lines, in the app's format."""

    def setup(self, cfg):
        """gunicorn's usual set-up (run again on HUP), then the JSON formatter on its error log."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonLogFormatter())
