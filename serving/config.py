"""Settings: every fact the service, the CLIs and the pages share, and the environment read once.

No Flask here. `Settings.from_env()` reads the environment variables once, at start-up; tests and
tools build `Settings.from_mapping({...})`, which never looks at the environment. The routes, the
endpoints behind the token and the default model folder are defined here once and imported by
`web/`, `predict.py`, `training/build.py` and the tests.
"""
import hashlib
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # the repository's root: serving/ is one level below it
DEFAULT_MODEL_DIR = HERE / "lib" / "models"
# What the service writes as it runs (the prediction log's SQLite file): beside the code, ignored by git,
# and apart from MODEL_DIR, which may be read-only.
DEFAULT_STATE_DIR = HERE / "state"
DEFAULT_PREDICTION_LOG = "sqlite:///" + str(DEFAULT_STATE_DIR / "predictions.sqlite3")
PREDICTION_LOG_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")

# The scoring routes, by the model each serves (the model folder's name under MODEL_DIR).
MODEL_ROUTES = {"binary": "/", "fine-grained": "/fine-grained", "ratings": "/ratings"}
NUMBER_MODELS = frozenset({"ratings"})  # the routes of models of named inputs answering a number
# A model added with `release.py add` takes any other name of this shape, and is served at /NAME or the route
# its manifest names (`model_route`).
ADDED_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
ADDED_ROUTE = re.compile(r"(/[a-z0-9][a-z0-9._-]{0,39}){1,3}")
# Every JSON and metrics route, by endpoint name; the pages' routes are in pages.PAGE_ROUTES.
ROUTES = {**MODEL_ROUTES, "feedback": "/feedback", "health": "/health", "models": "/models",
          "openapi": "/openapi.json", "metrics": "/metrics"}
# The Open Inference Protocol's routes (web/open_inference.py), by endpoint; each model route comes with and
# without /versions/<model_version>.
V2_MODEL = "/v2/models/<model_name>"
V2_ROUTES = {
    "v2_server": ["/v2"],
    "v2_live": ["/v2/health/live"],
    "v2_ready": ["/v2/health/ready"],
    **{endpoint: [V2_MODEL + tail, V2_MODEL + "/versions/<model_version>" + tail]
       for endpoint, tail in (("v2_model", ""), ("v2_model_ready", "/ready"), ("v2_infer", "/infer"))},
}
# Endpoints that need the token when API_TOKEN is set; /health, /openapi.json, the pages, and the
# protocol's health and metadata stay open for probes and people.
PROTECTED_ENDPOINTS = frozenset(MODEL_ROUTES) | {"feedback", "models", "v2_infer"}
# Paths an added model's route may not start with: the service's own, and the pages'.
RESERVED_PATHS = frozenset({"feedback", "health", "models", "openapi.json", "metrics", "v2", "docs", "demo", "static"})
LOG_FORMATS = ("text", "json")
# On every answer, the app's and gunicorn's own (web.operations, serving.lifecycle): a browser must not guess
# a type, nor a cache keep an answer.
NO_SNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")


def model_route(name, manifest):
    """The route a model is scored at: a built model's fixed one, else its manifest's `route`, else /NAME."""
    return MODEL_ROUTES.get(name) or manifest.get("route") or "/" + name


def model_routes(models):
    """{name: route} of a server: every built model's (one not built answers 404 saying how to build it),
    then each added model it serves ({name: a loaded model})."""
    return {**MODEL_ROUTES, **{name: served.route for name, served in models.items() if name not in MODEL_ROUTES}}


def model_index(name):
    """The byte an answer id carries its model as: a built model's position in MODEL_ROUTES, else one of the
    other 253 values, from a hash of the name (`release.py add` refuses a name whose byte another model of
    the folder has, so an id names one model)."""
    if name in MODEL_ROUTES:
        return list(MODEL_ROUTES).index(name)
    return len(MODEL_ROUTES) + hashlib.sha256(name.encode()).digest()[0] % (256 - len(MODEL_ROUTES))


def check_added(name, route, taken):
    """Raise `ConfigError` unless `name` and `route` suit a model added beside `taken` ({name: route} of the
    models already there, built or added); return the route, /NAME by default."""
    if not ADDED_NAME.fullmatch(name or ""):
        raise ConfigError(f"{name[:64]!r} cannot name a model: use 1 to 40 lower-case letters, digits and "
                          "hyphens, starting with a letter (for example iris or house-prices).")
    if name in MODEL_ROUTES:
        raise ConfigError(f"{name} is a model build_model.py builds; give the added model another name.")
    route = route or "/" + name
    if not ADDED_ROUTE.fullmatch(route) or route.split("/")[1] in RESERVED_PATHS or name in RESERVED_PATHS:
        raise ConfigError(f"{route[:64]!r} cannot be a model's route: use a path of lower-case letters, digits, "
                          f"dots and hyphens like /{name}, not under /{', /'.join(sorted(RESERVED_PATHS))}.")
    for other, other_route in taken.items():
        if other == name:
            continue
        if other_route == route:
            raise ConfigError(f"{route} is the {other} model's route; choose another with --route.")
        if model_index(other) == model_index(name):
            raise ConfigError(f"answer ids could not tell {name} from {other}, already in the model folder (their "
                              "names hash alike); choose another name.")
    return route


def model_dir(environ=os.environ):
    """The model folder, by the service's rule: $MODEL_DIR when set and not empty, else lib/models beside the
    code. Every command's default (`build_model.py --out`, `predict.py --model-dir`) comes from here."""
    return Path(environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)


class ConfigError(Exception):
    """A setting has a value the service cannot use."""


def positive_int(name, raw, default):
    """An integer setting that must be at least 1; `raw` may be a string (from the environment) or an int."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or isinstance(raw, bool) or (isinstance(raw, float) and raw != value):
        raise ConfigError(f"{name}={raw!r}: must be a whole number of at least 1 (default {default}).")
    return value


def flag(name, raw, default):
    """A true/false setting: true, false, 1, 0, yes or no (or a bool)."""
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    value = FLAGS.get(str(raw).strip().lower())
    if value is None:
        raise ConfigError(f"{name}={raw!r}: must be true or false (default {str(default).lower()}).")
    return value


FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def number(name, raw, default, *, low, high, rule, hint=""):
    """A number setting from `low` to `high` (a word or nan fails both bounds); `rule` says the range."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(raw, bool) or not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: must be {rule} ({hint}default {default}).")
    return value


def share(name, raw, default):
    """A number from 0 to 1 (a fraction of requests)."""
    return number(name, raw, default, low=0.0, high=1.0, rule="a number from 0 to 1")


def seconds(name, raw, default):
    """A time in seconds, 0 or more (0: never)."""
    return number(name, raw, default, low=0.0, high=float(1 << 31), rule="a number of seconds, 0 or more",
                  hint="0 turns it off; ")


def database_url(name, raw, default):
    """The prediction log's database: a sqlite:/// or postgresql:// URL, or off."""
    value = (raw or default).strip()
    if value != "off" and not value.startswith(PREDICTION_LOG_SCHEMES):
        raise ConfigError(f"{name}={without_password(value)!r}: must be sqlite:///PATH, postgresql://USER@HOST/DB "
                          f"or off (default {default}).")
    return value


def without_password(url):
    """A URL as it may be printed: `scheme://user:***@host/...`, as the operator wrote it otherwise."""
    scheme, separator, rest = url.partition("://")
    location, slash, path = rest.partition("/")
    if not separator or "@" not in location:
        return url
    userinfo, host = location.rsplit("@", 1)
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{slash}{path}"


def one_of(name, raw, choices):
    """A setting that must be one of `choices`; the first is the default."""
    value = raw or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: must be one of {', '.join(choices)} (default {choices[0]}).")
    return value


def origins(raw):
    """A list setting (CORS_ORIGINS, FORWARDED_ALLOW_IPS): a comma-separated string or a list; `*` is any."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(o.strip() for o in items if o.strip())


@dataclass(frozen=True)
class Settings:
    """The service's settings, named as the environment variables that set them."""

    MODEL_DIR: str = str(DEFAULT_MODEL_DIR)
    MAX_QUERY_LENGTH: int = 10_000  # characters per text
    MAX_BATCH_SIZE: int = 1_000  # texts per POST
    MAX_CONTENT_LENGTH: int = 1 << 20  # bytes per request body
    API_TOKEN: str | None = None  # when set, scoring and /models need `Authorization: Bearer <token>`
    CORS_ORIGINS: tuple = ("*",)
    LOG_FORMAT: str = "text"
    # Proxies whose X-Forwarded-For the access line believes (`*`: any); gunicorn reads the same variable,
    # with the same default, for the headers it trusts.
    FORWARDED_ALLOW_IPS: tuple = ("127.0.0.1", "::1")
    # Where each scored text is recorded (a database URL, or off), whether the texts themselves are kept,
    # the share of answers recorded (by a hash of their id), and for how many days rows are kept.
    PREDICTION_LOG: str | None = None  # None: DEFAULT_PREDICTION_LOG
    PREDICTION_LOG_TEXTS: bool = False
    PREDICTION_LOG_SAMPLE: float = 1.0
    PREDICTION_LOG_DAYS: int = 30
    # How often each worker looks whether a release moved MODEL_DIR's live or shadow links (0: never; SIGHUP
    # still reloads). A look is a few stat calls; a switch loads the new version in the background.
    MODEL_POLL_SECONDS: float = 2.0
    # Set by gunicorn's hooks (or the operator): metrics are then summed over every worker's files.
    PROMETHEUS_MULTIPROC_DIR: str | None = field(default=None)

    def __post_init__(self):
        """Check and normalise every value, whether it came from the environment or from a mapping."""
        default = Settings.__dataclass_fields__
        checked = {
            "MODEL_DIR": str(self.MODEL_DIR or default["MODEL_DIR"].default),
            "LOG_FORMAT": one_of("LOG_FORMAT", self.LOG_FORMAT, LOG_FORMATS),
            "CORS_ORIGINS": origins(self.CORS_ORIGINS),
            "FORWARDED_ALLOW_IPS": origins(self.FORWARDED_ALLOW_IPS),
            "API_TOKEN": self.API_TOKEN or None,
            "PROMETHEUS_MULTIPROC_DIR": self.PROMETHEUS_MULTIPROC_DIR or None,
            # Read when the settings are made, not when the module is: tests point it at their own folder.
            "PREDICTION_LOG": database_url("PREDICTION_LOG", self.PREDICTION_LOG, DEFAULT_PREDICTION_LOG),
            "PREDICTION_LOG_TEXTS": flag("PREDICTION_LOG_TEXTS", self.PREDICTION_LOG_TEXTS, False),
            "PREDICTION_LOG_SAMPLE": share("PREDICTION_LOG_SAMPLE", self.PREDICTION_LOG_SAMPLE, 1.0),
            "MODEL_POLL_SECONDS": seconds("MODEL_POLL_SECONDS", self.MODEL_POLL_SECONDS, 2.0),
        }
        for name in ("MAX_QUERY_LENGTH", "MAX_BATCH_SIZE", "MAX_CONTENT_LENGTH", "PREDICTION_LOG_DAYS"):
            checked[name] = positive_int(name, getattr(self, name), default[name].default)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, mapping):
        """Settings from a dict of the names above; the others keep their defaults. Never reads the environment."""
        unknown = set(mapping) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}.")
        return cls(**mapping)

    @classmethod
    def from_env(cls, environ=os.environ):
        """Settings from the environment variables of the same names; unset or empty ones keep their defaults,
        but an empty CORS_ORIGINS allows no origin."""
        return cls(**{f.name: environ[f.name] for f in fields(cls)
                      if environ.get(f.name) or (f.name == "CORS_ORIGINS" and f.name in environ)})
