"""The server's follower: each process notices a changed live or shadow version by itself and switches.

`release.py promote`, `rollback` and `shadow` (and a build) move a link under MODEL_DIR; every
MODEL_POLL_SECONDS a thread in each worker (`Follower`, a `lifecycle.Service`) looks where the links
point. When one has moved it loads and verifies the new version there, away from the requests, and
switches with one dict assignment: a request scores with the old model or the new one, never a mix,
and its answer's `model_version` names the one that scored it. A version that fails verification is
refused and logged, counted in `sentiment_model_loads_total{outcome="refused"}`, and not tried again
until its link moves; the old one keeps serving. A new worker looks once before it answers.

A folder that is not a link (models baked into an image, or copied in by hand) is never followed: there
the image or the folder is the release, and SIGHUP or a restart serves a new one.
"""
import logging
import threading

from store import releases
from store.artifacts import ModelError

log = logging.getLogger("sentiment")

ROLES = ("live", "shadow")


class Follower:
    """Follows MODEL_DIR's links for every served model name, swapping loaded models into `models` (live)
    and `shadows` (shadow), both dicts of name -> loaded model (`serving.kind.ModelKind`) that the resources
    read per request.

    Parameters
    ----------
    model_dir : str or Path
        The folder whose links are followed.
    names : iterable of str
        The model names this server serves.
    discover : bool
        Also follow names that appear in MODEL_DIR later (a model added with `release.py add`).
    models, shadows : dict
        Name -> loaded model, live and in shadow; switched in place.
    interval : float
        Seconds between looks; 0 looks only once, at start.
    load : callable(folder)
        Loads and verifies a model folder (`kinds.load`, given by the web factory), raising `ModelError`.
    on_switch : callable(role, name, old, new)
        Called after each switch (metrics, the recorder's versions); `old` or `new` may be None.
    metrics : metrics.Metrics
        Counts each load by model, role and outcome.
    """

    def __init__(self, *, model_dir, names, models, shadows, interval, load, on_switch, metrics, discover=False):
        self.model_dir, self.names, self.interval, self.discover = model_dir, tuple(names), interval, discover
        self.models, self.shadows, self.on_switch, self.metrics = models, shadows, on_switch, metrics
        self.load = load
        self.seen = {}  # (role, name) -> the folder its link pointed at when last looked at
        self.stopping = threading.Event()
        self.thread = None

    def start(self):
        """Look once now (a worker forked after a release must not answer with the old version), then
        every `interval` seconds in a thread of this process."""
        self.stopping.clear()
        self.check()
        if self.interval > 0:
            self.thread = threading.Thread(target=self.follow, name="release follower", daemon=True)
            self.thread.start()

    def stop(self, timeout):
        """Stop looking; a load in progress is abandoned with the thread (it is a daemon)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def follow(self):
        """Look every `interval` seconds until stopped; nothing that goes wrong ends the thread."""
        while not self.stopping.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("following the releases in %s failed; trying again in %.1f s",
                              self.model_dir, self.interval)

    def check(self):
        """Look at every link once, and switch each one that has moved; with `discover`, a model added to
        MODEL_DIR since (`release.py add`) is loaded too."""
        names = self.names
        if self.discover:
            names += tuple(name for name in releases.model_names(self.model_dir) if name not in self.names)
        for name in names:
            for role in ROLES:
                self.check_one(role, name)

    def check_one(self, role, name):
        """Switch `name`'s model in `role` if its link has moved since the last look."""
        folder = releases.live_folder(self.model_dir, name) if role == "live" else \
            releases.shadow_folder(self.model_dir, name)
        key = (role, name)
        if key in self.seen and self.seen[key] == folder:
            return
        self.seen[key] = folder
        served = self.models if role == "live" else self.shadows
        old = served.get(name)
        if folder is None:
            if role == "shadow" and old is not None:  # shadow turned off; a live link never is
                del served[name]
                log.info("release: %s has no shadow any more (was %s)", name, old.version)
                self.on_switch(role, name, old, None)
            return
        if old is not None and releases.version_of_folder(folder) == old.version:
            return  # what this process already serves (it loaded it at start, or the master did)
        try:
            new = self.load(folder)
            if new.name != name:
                raise ModelError(f"{folder}: its manifest names the {new.name} model, not {name}.")
            live = self.models.get(name)
            if role == "shadow" and live is not None and not same_inputs(new, live):
                raise ModelError(f"{folder}: its kind or inputs differ from the live version's; a shadow is "
                                 "scored on the inputs the live version took, so it must take the same ones.")
        except (ModelError, OSError) as exc:
            self.metrics.count_model_load(name, role, "refused")
            log.error("release: refusing %s %s %s, %s; %s", name, role, folder.name, exc,
                      f"still serving {old.version}" if old is not None else "serving none")
            return
        served[name] = new  # one assignment: each request sees the old model or the new one
        shadow = self.shadows.get(name)
        if role == "live" and shadow is not None and not same_inputs(new, shadow):
            del self.shadows[name]
            log.error("release: %s shadow %s stops: its kind or inputs differ from the new live version's",
                      name, shadow.version)
            self.on_switch("shadow", name, shadow, None)
        self.metrics.count_model_load(name, role, "loaded")
        log.info("release: %s %s is now %s (was %s)", name, role, new.version, old.version if old else "none")
        self.on_switch(role, name, old, new)


def same_inputs(one, other):
    """Whether two loaded models are of one kind and take the same named inputs (a shadow is scored on
    what the live version checked)."""
    def inputs(model):
        return [spec["name"] for spec in model.describe().get("inputs") or []]
    return one.KIND == other.KIND and inputs(one) == inputs(other)
