"""Settings (config.py): the environment read once with defaults, every bad value refused with a message
naming the setting, and an app given its settings that the developer's environment cannot reach."""
import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import app
from serving import config, prediction_log
from serving.config import DEFAULT_MODEL_DIR, ConfigError, Settings, positive_int
from support import ROOT

SETTING_NAMES = [f.name for f in fields(Settings)]
DEFAULTS = {"MODEL_DIR": str(DEFAULT_MODEL_DIR), "MAX_QUERY_LENGTH": 10_000, "MAX_BATCH_SIZE": 1_000,
            "MAX_CONTENT_LENGTH": 1_048_576, "API_TOKEN": None, "CORS_ORIGINS": ("*",), "LOG_FORMAT": "text",
            "FORWARDED_ALLOW_IPS": ("127.0.0.1", "::1"), "PROMETHEUS_MULTIPROC_DIR": None,
            "PREDICTION_LOG": "the default", "PREDICTION_LOG_TEXTS": False, "PREDICTION_LOG_SAMPLE": 1.0,
            "PREDICTION_LOG_DAYS": 30, "MODEL_POLL_SECONDS": 2.0}
# Every setting at a value no test app should ever pick up from the environment.
HOSTILE_ENVIRONMENT = {"MODEL_DIR": "/nowhere/models", "MAX_QUERY_LENGTH": "3", "MAX_BATCH_SIZE": "1",
                       "MAX_CONTENT_LENGTH": "10", "API_TOKEN": "from-the-shell", "CORS_ORIGINS": "https://only.example",
                       "LOG_FORMAT": "xml", "FORWARDED_ALLOW_IPS": "*",
                       "PREDICTION_LOG": "postgresql://shell@127.0.0.1:1/nowhere", "PREDICTION_LOG_TEXTS": "true",
                       "PREDICTION_LOG_SAMPLE": "0", "PREDICTION_LOG_DAYS": "1", "MODEL_POLL_SECONDS": "0"}


def defaults():
    """DEFAULTS with the default prediction log as it is now (tests point it at a folder of their own)."""
    return {**DEFAULTS, "PREDICTION_LOG": config.DEFAULT_PREDICTION_LOG}


def as_dict(settings):
    """Every setting by name."""
    return {name: getattr(settings, name) for name in SETTING_NAMES}


def test_the_settings_are_exactly_the_documented_ones_with_their_defaults():
    assert sorted(SETTING_NAMES) == sorted(DEFAULTS)
    assert as_dict(Settings.from_env({})) == as_dict(Settings.from_mapping({})) == defaults()


def test_set_variables_are_read_and_converted_and_empty_ones_keep_their_defaults_but_cors(tmp_path):
    environ = {"MODEL_DIR": str(tmp_path), "MAX_QUERY_LENGTH": "50", "MAX_BATCH_SIZE": " 7 ",
               "MAX_CONTENT_LENGTH": "2048", "API_TOKEN": "s3cret", "CORS_ORIGINS": "https://a.example, https://b.example,",
               "LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "UNRELATED": "ignored",
               "FORWARDED_ALLOW_IPS": "10.0.0.5, 10.0.0.6", "PREDICTION_LOG": "postgresql://app@db.example/log",
               "PREDICTION_LOG_TEXTS": "yes", "PREDICTION_LOG_SAMPLE": "0.25", "PREDICTION_LOG_DAYS": "7",
               "MODEL_POLL_SECONDS": "0.5"}
    assert as_dict(Settings.from_env(environ)) == {
        "PREDICTION_LOG": "postgresql://app@db.example/log", "PREDICTION_LOG_TEXTS": True,
        "PREDICTION_LOG_SAMPLE": 0.25, "PREDICTION_LOG_DAYS": 7, "MODEL_POLL_SECONDS": 0.5,
        "MODEL_DIR": str(tmp_path), "MAX_QUERY_LENGTH": 50, "MAX_BATCH_SIZE": 7, "MAX_CONTENT_LENGTH": 2048,
        "API_TOKEN": "s3cret", "CORS_ORIGINS": ("https://a.example", "https://b.example"), "LOG_FORMAT": "json",
        "FORWARDED_ALLOW_IPS": ("10.0.0.5", "10.0.0.6"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    # An empty CORS_ORIGINS is a choice, not an omission: no origin may read the answers.
    assert as_dict(Settings.from_env({name: "" for name in SETTING_NAMES})) == {**defaults(), "CORS_ORIGINS": ()}


def test_a_mapping_takes_python_values_and_lists_of_origins():
    settings = Settings.from_mapping({"MAX_BATCH_SIZE": 7,
                                      "CORS_ORIGINS": ["https://a.example", " https://b.example "]})
    assert settings.MAX_BATCH_SIZE == 7
    assert settings.CORS_ORIGINS == ("https://a.example", "https://b.example")


# (what is set, the message); strings are refused alike from the environment and from a mapping.
BAD_STRINGS = {
    "zero": ({"MAX_QUERY_LENGTH": "0"}, "MAX_QUERY_LENGTH='0': must be a whole number of at least 1 (default 10000)."),
    "negative": ({"MAX_QUERY_LENGTH": "-5"}, "MAX_QUERY_LENGTH='-5': must be a whole number of at least 1"),
    "word": ({"MAX_BATCH_SIZE": "many"}, "MAX_BATCH_SIZE='many': must be a whole number of at least 1 (default 1000)."),
    "fraction": ({"MAX_BATCH_SIZE": "2.5"}, "MAX_BATCH_SIZE='2.5': must be a whole number"),
    "exponent": ({"MAX_CONTENT_LENGTH": "1e6"},
                 "MAX_CONTENT_LENGTH='1e6': must be a whole number of at least 1 (default 1048576)."),
    "unknown log format": ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': must be one of text, json (default text)."),
    "log format in capitals": ({"LOG_FORMAT": "JSON"}, "LOG_FORMAT='JSON': must be one of text, json"),
    "a database that is no URL": ({"PREDICTION_LOG": "predictions.db"},
                                  "PREDICTION_LOG='predictions.db': must be sqlite:///PATH, postgresql://USER@HOST/DB "
                                  "or off"),
    "another database": ({"PREDICTION_LOG": "mysql://u:pw@db/x"},
                         "PREDICTION_LOG='mysql://u:***@db/x': must be sqlite:///PATH"),
    "a share over 1": ({"PREDICTION_LOG_SAMPLE": "1.5"},
                       "PREDICTION_LOG_SAMPLE='1.5': must be a number from 0 to 1 (default 1.0)."),
    "a share that is a word": ({"PREDICTION_LOG_SAMPLE": "half"}, "PREDICTION_LOG_SAMPLE='half': must be a number"),
    "a flag that is a word": ({"PREDICTION_LOG_TEXTS": "maybe"},
                              "PREDICTION_LOG_TEXTS='maybe': must be true or false (default false)."),
    "no days": ({"PREDICTION_LOG_DAYS": "0"}, "PREDICTION_LOG_DAYS='0': must be a whole number of at least 1"),
    "a negative poll": ({"MODEL_POLL_SECONDS": "-1"}, "MODEL_POLL_SECONDS='-1': must be a number of seconds, "
                                                      "0 or more (0 turns it off; default 2.0)."),
    "a poll that is a word": ({"MODEL_POLL_SECONDS": "often"},
                              "MODEL_POLL_SECONDS='often': must be a number of seconds"),
    "an endless poll": ({"MODEL_POLL_SECONDS": "inf"}, "MODEL_POLL_SECONDS='inf': must be a number of seconds"),
}
# What only a mapping can hold: Python values, and names that are no setting (the environment has many).
BAD_MAPPINGS = {
    "zero as a number": ({"MAX_QUERY_LENGTH": 0}, "MAX_QUERY_LENGTH=0: must be a whole number of at least 1"),
    "a boolean": ({"MAX_BATCH_SIZE": True}, "MAX_BATCH_SIZE=True: must be a whole number of at least 1"),
    "a fraction as a number": ({"MAX_BATCH_SIZE": 2.5}, "MAX_BATCH_SIZE=2.5: must be a whole number of at least 1"),
    "a misspelt name": ({"MAX_QUERY_LENGHT": 5}, "unknown setting(s): MAX_QUERY_LENGHT."),
    "a lower-case name": ({"model_dir": "/srv/models"}, "unknown setting(s): model_dir."),
}
BAD_SETTINGS = [pytest.param(source, *case, id=f"{source}: {name}")
                for source in ("environment", "mapping") for name, case in BAD_STRINGS.items()]
BAD_SETTINGS += [pytest.param("mapping", *case, id=f"mapping: {name}") for name, case in BAD_MAPPINGS.items()]


@pytest.mark.parametrize("source, given, message", BAD_SETTINGS)
def test_a_bad_setting_is_refused_with_a_message_naming_it_and_the_rule(source, given, message):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(given) if source == "environment" else Settings.from_mapping(given)
    assert message in str(refused.value)


@pytest.mark.parametrize("raw, value", [(None, 3), ("", 3), ("7", 7), (" 7 ", 7), (7, 7)])
def test_positive_int_reads_strings_and_ints_and_falls_back_to_the_default(raw, value):
    assert positive_int("WEB_CONCURRENCY", raw, 3) == value


def test_a_bad_setting_stops_the_development_server_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    assert app.main([]) == 1
    assert capsys.readouterr().err == (
        "error: LOG_FORMAT='xml': must be one of text, json (default text).\n")


def test_without_a_config_create_app_reads_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MAX_QUERY_LENGTH", "5")
    response = app.create_app().test_client().get("/?query=superb")
    assert response.status_code == 413
    assert "the limit is 5" in response.get_json()["message"]


def test_a_mapping_never_reads_the_environment(monkeypatch, tmp_path):
    for name, value in {**HOSTILE_ENVIRONMENT, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    assert as_dict(Settings.from_mapping({})) == defaults()


# Run in a fresh interpreter, so prometheus-client is imported with the hostile environment already set,
# as it would be in a developer's shell.
HERMETIC_APP = """
import json, sys
from serving import lifecycle
from app import create_app
application = create_app({"MODEL_DIR": sys.argv[1], "PREDICTION_LOG": sys.argv[2]})
lifecycle.start_services(application)
client = application.test_client()
answer = client.get("/?query=a+brilliant+superb+film", headers={"Origin": "https://other.example"})
answer.close()  # as a server does once the answer is sent: that queues its row
metrics = client.get("/metrics").get_data(as_text=True)
lifecycle.stop_services(application, 10)
print("RESULT " + json.dumps({"status": answer.status_code, "cors": answer.headers.get("Access-Control-Allow-Origin"),
                              "metrics": metrics}))
"""


def test_an_app_given_its_settings_ignores_a_hostile_environment(model_dir, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    environment = {**os.environ, **HOSTILE_ENVIRONMENT, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    log_url = f"sqlite:///{tmp_path}/predictions.sqlite3"  # given, as a test must: the checkout's is not the test's
    process = subprocess.run([sys.executable, "-c", HERMETIC_APP, str(model_dir), log_url], cwd=ROOT,
                             env=environment, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    *access_lines, result = process.stdout.splitlines()
    result = json.loads(result.removeprefix("RESULT "))
    # No token asked for, a text over 3 characters scored, any origin allowed: the defaults, not the shell's.
    assert result["status"] == 200 and result["cors"] == "*"
    # Metrics counted in the app's own memory, nothing written to the shell's folder.
    assert re.search(r'^sentiment_http_requests_total\{endpoint="binary",method="GET",status="200"\} 1\.0$',
                     result["metrics"], re.MULTILINE)
    assert list(metrics_dir.iterdir()) == []
    # One access line per request in the default text format, not refused as LOG_FORMAT=xml would be.
    assert len(access_lines) == 2
    assert re.fullmatch(r"\S+ \S+ INFO sentiment.access GET / 200 \d+\.\d+ms model=binary id=[0-9a-f]{32} "
                        r"client=127\.0\.0\.1", access_lines[0])
    assert " GET /metrics 200 " in access_lines[1]
    # The answer recorded, without its text: not a share of 0 nor texts kept, as the shell would have it.
    rows = prediction_log.read_predictions(log_url)
    assert len(rows) == 1 and rows["text"].tolist() == [None]


@pytest.mark.parametrize("url, printed", [
    ("postgresql://app:s3cret@db.example:5432/log", "postgresql://app:***@db.example:5432/log"),
    ("postgresql://app@db.example/log", "postgresql://app@db.example/log"),
    ("postgresql://app:p@ss@db/log", "postgresql://app:***@db/log"),
    ("sqlite:////srv/state/p.sqlite3", "sqlite:////srv/state/p.sqlite3"),
    ("off", "off"),
])
def test_a_database_url_is_printed_as_written_but_for_its_password(url, printed):
    assert config.without_password(url) == printed


@pytest.mark.parametrize("environ", [{}, {"MODEL_DIR": ""}, {"MODEL_DIR": "/srv/models"}],
                         ids=["unset", "empty", "set"])
def test_every_command_finds_the_models_where_the_service_does(environ):
    import predict
    from training import build as build_model

    assert config.model_dir(environ) == Path(Settings.from_env(environ).MODEL_DIR)
    # The commands' defaults come from that rule, not from reading the environment themselves.
    for module in (build_model, predict):
        assert "os.environ" not in Path(module.__file__).read_text()
