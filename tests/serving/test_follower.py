"""The server's follower (follower.py): a running app switches to a promoted or rolled-back version by
itself, refuses one that fails verification, and scores a shadow version beside the live one."""

import pytest

import kinds
from app import create_app
from serving import lifecycle, prediction_log
from serving.config import MODEL_ROUTES, NUMBER_MODELS
from store import artifacts, releases
from support import build, flush, release_cli, samples, scrambled, value, wait_for

TEXTS = ["a gorgeous , moving film", "dull and far too long", "the plot", "an utter mess of a movie",
         "superb acting", "nothing happens", "it is a film", "brilliant , funny and warm"]





@pytest.fixture
def candidate(models, tiny_data, tmp_path):
    """A worse version of both models, built on scrambled labels and held back by the gate: its folder for
    binary (a known pair with the live one, whose labels differ on some texts)."""
    code, said = build("--data", scrambled(tiny_data / "train.tsv", tmp_path / "broken.tsv", share=0.9),
                       "--out", models)
    assert code == 3, said
    return releases.version_folders(models, "binary")[-1]


def following_app(models, url, **settings):
    """An app on `models` whose follower looks only when told (`follower_of(app).check()`)."""
    return create_app({"MODEL_DIR": str(models), "PREDICTION_LOG": url, "MODEL_POLL_SECONDS": 0, **settings})


def follower_of(application):
    return application.extensions[lifecycle.SERVICES][-1]


def served_version(client, route="/"):
    return client.get(route, query_string={"query": "a fine film"}).get_json()["model_version"]


def answered(response):
    """A response's JSON, once closed as a server closes it (that queues its prediction-log rows)."""
    response.close()
    return response.get_json()


def metrics_table(client):
    return samples(client.get("/metrics").get_data(as_text=True))


def test_a_running_app_answers_with_a_promoted_version_and_then_the_rolled_back_one(models, tiny_data,
                                                                                   own_prediction_log):
    application = following_app(models, own_prediction_log)
    client = application.test_client()
    first = served_version(client)
    # a new build goes live
    assert build("--data", tiny_data / "train.tsv", "--movies", tiny_data / "movies.json", "--out", models)[0] == 0
    second = releases.version_of_folder(releases.live_folder(models, "binary"))
    assert served_version(client) == first  # nothing switches until the follower looks
    follower_of(application).check()
    assert served_version(client) == second
    assert {m["name"]: m["version"] for m in client.get("/models").get_json()["models"]}["binary"] == second
    table = metrics_table(client)
    assert value(table, "sentiment_model_loads_total", model="binary", role="live", outcome="loaded") == 1
    old_info = {dict(labels)["version"]: v for (name, labels), v in table.items()
                if name == "sentiment_model_info" and dict(labels)["model"] == "binary"}
    assert old_info[first] == 0 and old_info[second] > 0

    assert release_cli(models, "rollback", "binary").returncode == 0
    follower_of(application).check()
    answer = client.get("/", query_string={"query": "a fine film"}).get_json()
    assert answer["model_version"] == first
    # The id of an answer by the version switched in is taken by /feedback (its version is known).
    taken = client.post("/feedback", json={"id": answer["id"], "label": "Positive"})
    assert taken.status_code == 202 and taken.get_json()["accepted"][0]["model_version"] == first


def test_a_request_answered_by_a_version_the_moment_it_is_switched_in_gets_its_id_and_version(
        models, tiny_data, own_prediction_log):
    # Under gunicorn a request thread may score with the new model before the follower's thread has
    # told the metrics and the recorder about it: such a request is answered like any other.
    application = following_app(models, own_prediction_log)
    client = application.test_client()
    follower = follower_of(application)
    told, in_between = follower.on_switch, {}

    def answer_first(role, name, old, new):
        in_between[name] = client.get(MODEL_ROUTES[name], query_string=(
            {"genre": "Drama", "budget": "1000000"} if name in NUMBER_MODELS else {"query": "a fine film"}))
        told(role, name, old, new)

    follower.on_switch = answer_first
    assert build("--data", tiny_data / "train.tsv", "--movies", tiny_data / "movies.json", "--out", models)[0] == 0
    follower.check()
    assert sorted(in_between) == sorted(MODEL_ROUTES)
    for name, response in in_between.items():
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert answer["model_version"] == releases.version_of_folder(releases.live_folder(models, name))
        taken = client.post("/feedback", json={"id": answer["id"], **(
            {"value": 5.0} if name in NUMBER_MODELS else {"label": answer["prediction"]})})
        assert taken.status_code == 202 and taken.get_json()["accepted"][0]["model_version"] == answer["model_version"]


def test_a_version_that_fails_verification_is_refused_counted_and_the_old_one_keeps_serving(
        models, tiny_data, own_prediction_log, caplog):
    application = following_app(models, own_prediction_log)
    client = application.test_client()
    first = served_version(client)
    assert build("--data", tiny_data / "train.tsv", "--movies", tiny_data / "movies.json", "--out", models)[0] == 0
    damaged = releases.live_folder(models, "binary") / artifacts.CLASSIFIER_FILE
    damaged.write_bytes(damaged.read_bytes()[:-10])  # the new live version, damaged after its publish
    for _ in range(3):  # refused once, and not tried again until its link moves
        follower_of(application).check()
    assert served_version(client) == first
    assert value(metrics_table(client), "sentiment_model_loads_total", model="binary", role="live",
                 outcome="refused") == 1
    refusals = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    assert len(refusals) == 1 and str(damaged) in refusals[0] and f"still serving {first}" in refusals[0]


def test_a_model_built_after_the_start_is_served_once_the_follower_sees_it(models, tiny_data, own_prediction_log):
    (models / "fine-grained").unlink()
    application = following_app(models, own_prediction_log)
    client = application.test_client()
    assert client.get("/fine-grained?query=fine").status_code == 404
    assert build("--data", tiny_data / "train.tsv", "--movies", tiny_data / "movies.json", "--out", models)[0] == 0
    follower_of(application).check()
    assert client.get("/fine-grained?query=fine").status_code == 200


def test_the_follower_thread_switches_by_itself_within_its_poll(models, tiny_data, own_prediction_log):
    application = following_app(models, own_prediction_log, MODEL_POLL_SECONDS=0.1)
    lifecycle.start_services(application)
    try:
        client = application.test_client()
        first = served_version(client)
        assert build("--data", tiny_data / "train.tsv", "--movies", tiny_data / "movies.json", "--out", models)[0] == 0
        assert wait_for(lambda: served_version(client) != first, timeout=20)
    finally:
        lifecycle.stop_services(application, 10)


def test_models_handed_to_the_app_are_never_switched(models, tiny_data, own_prediction_log):
    application = create_app({"MODEL_DIR": str(models), "PREDICTION_LOG": own_prediction_log},
                             models=kinds.load_models(models))
    first = served_version(application.test_client())
    assert build("--data", tiny_data / "train.tsv", "--movies", tiny_data / "movies.json", "--out", models)[0] == 0
    follower_of(application).check()
    assert served_version(application.test_client()) == first


# --- Shadow scoring ------------------------------------------------------------------------------

def test_a_shadow_scores_every_text_without_changing_the_answers_and_counts_agreement(
        models, candidate, own_prediction_log):
    live = kinds.load(models / "binary")
    shadow = kinds.load(candidate)
    expected_agree = sum(a == b for a, b in zip([p["prediction"] for p in live.predict(TEXTS)],
                                                shadow.predictions_of(TEXTS)))
    assert 0 < expected_agree < len(TEXTS)  # the pair disagrees on some texts: agreement is measured

    plain = following_app(models, own_prediction_log).test_client()
    unshadowed = [plain.get("/", query_string={"query": t}).get_json() for t in TEXTS]
    done = release_cli(models, "shadow", "binary", shadow.version, "--why", "try the new export")
    assert done.returncode == 0 and f"{shadow.version} is in shadow" in done.stdout, done.stderr
    application = following_app(models, own_prediction_log, PREDICTION_LOG_TEXTS=True)
    lifecycle.start_services(application)
    client = application.test_client()
    answers = [answered(client.get("/", query_string={"query": t})) for t in TEXTS[:4]]
    answers += answered(client.post("/", json={"queries": TEXTS[4:]}))["predictions"]
    strip = lambda a: {k: v for k, v in a.items() if k != "id"}  # noqa: E731
    assert [strip(a) for a in answers] == [strip(a) for a in unshadowed]
    assert {m["name"]: m["shadow_version"] for m in client.get("/models").get_json()["models"]} == {
        "binary": shadow.version, "fine-grained": None, "ratings": None}
    table = metrics_table(client)
    assert value(table, "sentiment_shadow_total", model="binary", agree="true") == expected_agree
    assert value(table, "sentiment_shadow_total", model="binary", agree="false") == len(TEXTS) - expected_agree
    # Feedback for two answers: both versions' accuracy on them, from the log.
    for answer in answers[:2]:
        assert client.post("/feedback", json={"id": answer["id"], "label": "Positive"}).status_code == 202
    flush(application)
    lifecycle.stop_services(application, 10)

    rows = prediction_log.read_predictions(own_prediction_log).set_index("id").loc[[a["id"] for a in answers]]
    assert rows["shadow_label"].tolist() == shadow.predictions_of(TEXTS)
    assert set(rows["shadow_version"]) == {shadow.version}
    compared = prediction_log.compare_shadow(own_prediction_log, model="binary")
    assert compared == [{"live": live.version, "shadow": shadow.version, "texts": len(TEXTS), "agreed": expected_agree,
                         "feedback": 2, "live_right": [a["prediction"] for a in answers[:2]].count("Positive"),
                         "shadow_right": rows["shadow_label"].tolist()[:2].count("Positive")}]
    shown = release_cli(models, "compare", "binary", "--log", own_prediction_log)
    assert shown.returncode == 0, shown.stderr
    assert f"{expected_agree / len(TEXTS):.1%}" in shown.stdout and shadow.version in shown.stdout


def test_a_shadow_turned_off_is_dropped_and_no_longer_counted(models, candidate, own_prediction_log):
    version = releases.version_of_folder(candidate)
    assert release_cli(models, "shadow", "binary", version).returncode == 0
    application = following_app(models, own_prediction_log)
    client = application.test_client()
    client.get("/?query=fine")
    off = release_cli(models, "shadow", "binary", "--off")
    assert off.returncode == 0 and "no shadow any more" in off.stdout, off.stderr
    follower_of(application).check()
    client.get("/?query=fine")
    client.get("/?query=fine")
    table = metrics_table(client)
    assert sum(value(table, "sentiment_shadow_total", model="binary", agree=a) for a in ("true", "false")) == 1
    assert [e["action"] for e in releases.release_history(models, "binary")][-2:] == ["shadow", "shadow-off"]


def test_a_shadow_of_another_kind_is_refused_and_the_live_answers_go_on(models, own_prediction_log, tmp_path, caplog):
    import shutil

    from support import edit_manifest

    # The ratings model's folder, renamed binary and linked as binary's shadow: it takes films, not texts.
    odd = shutil.copytree(releases.live_folder(models, "ratings"), tmp_path / "odd")
    edit_manifest(odd, lambda manifest: manifest.update(name="binary"))
    link = models / artifacts.VERSIONS_DIR / releases.SHADOW_DIR / "binary"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(odd)
    try:
        application = following_app(models, own_prediction_log)
        client = application.test_client()
        assert client.get("/?query=fine").status_code == 200
        table = metrics_table(client)
        assert value(table, "sentiment_model_loads_total", model="binary", role="shadow", outcome="refused") == 1
        assert sum(value(table, "sentiment_shadow_total", model="binary", agree=a) for a in ("true", "false")) == 0
        assert any("kind or inputs differ from the live version's" in r.getMessage() for r in caplog.records)
    finally:
        link.unlink()


def test_list_shows_the_shadow_and_promoting_it_ends_the_shadow(models, candidate):
    version = releases.version_of_folder(candidate)
    assert release_cli(models, "shadow", "binary", version).returncode == 0
    listed = release_cli(models, "list", "binary").stdout
    assert next(line for line in listed.splitlines() if version in line).split()[1] == "shadow"
    assert release_cli(models, "promote", "binary", version).returncode == 0
    assert releases.shadow_folder(models, "binary") is None
    assert [e["action"] for e in releases.release_history(models, "binary")][-2:] == ["promote", "shadow-off"]


@pytest.mark.parametrize("args, complaint", [
    (["shadow", "binary", "--off"], "binary has no shadow to turn off"),
    (["shadow", "binary", "20990101T000000Z-deadbeef"], "has no version"),
    (["shadow", "binary"], "one of the arguments version --off is required"),
    (["compare", "binary", "--log", "sqlite:////nowhere/log.sqlite3"], "no such file"),
])
def test_shadow_commands_refuse_what_cannot_be_done_in_one_line(models, args, complaint):
    done = release_cli(models, *args)
    assert done.returncode != 0 and complaint in done.stderr and "Traceback" not in done.stderr


def test_the_live_version_cannot_be_its_own_shadow(models):
    done = release_cli(models, "shadow", "binary", releases.version_of_folder(releases.live_folder(models, "binary")))
    assert done.returncode == 1 and "is the live version" in done.stderr


def test_a_shadow_is_never_pruned(models, candidate, tiny_data):
    assert release_cli(models, "shadow", "binary", releases.version_of_folder(candidate)).returncode == 0
    for _ in range(3):
        assert build("--data", tiny_data / "train.tsv", "--out", models, "--keep", "1")[0] == 0
    assert candidate.is_dir() and releases.shadow_folder(models, "binary") == candidate.resolve()
