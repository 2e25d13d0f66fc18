"""The deployment files agree with each other and with the app: the Kubernetes manifest probes /health
on the port the Dockerfile's BIND serves, runs the image's non-root user, and publishes only the app's
public routes through its Ingress; the compose file publishes nginx alone.

The Dockerfile itself is executed (its RUN commands, its CMD, its HEALTHCHECK) by
e2e/test_container_recipe.py, which reads it with `support.dockerfile_instructions`, as this module does.
"""

import pytest
import yaml

from serving.config import ROUTES, Settings
from support import ROOT, dockerfile_env, dockerfile_instructions, dockerfile_last
from web.factory import ADDED_ENDPOINT


@pytest.fixture(scope="module")
def kubernetes():
    """The Deployment and the Service of deploy/kubernetes.yaml, by kind."""
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    return {doc["kind"]: doc for doc in documents}


@pytest.fixture(scope="module")
def container(kubernetes):
    """The Deployment's one container."""
    (container,) = kubernetes["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def test_the_image_exposes_the_port_its_server_binds():
    instructions = dockerfile_instructions()
    bind_port = dockerfile_env(instructions)["BIND"].rpartition(":")[2]
    assert dockerfile_last(instructions, "EXPOSE") == bind_port


def test_kubernetes_probes_ask_health_on_the_port_the_server_binds(kubernetes, container):
    pod = kubernetes["Deployment"]["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # not those from a Secret
    # The manifest's BIND and port are the image's: the pods serve where the image says.
    assert env["BIND"] == dockerfile_env(dockerfile_instructions())["BIND"] == f"0.0.0.0:{ports['http']}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["http"])
    assert kubernetes["Service"]["spec"]["ports"][0]["targetPort"] in ports
    assert kubernetes["Service"]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert kubernetes["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_kubernetes_pods_run_as_the_images_non_root_user_with_a_writable_tmp(kubernetes, container):
    pod = kubernetes["Deployment"]["spec"]["template"]["spec"]
    user, _, group = dockerfile_last(dockerfile_instructions(), "USER").partition(":")
    assert user not in ("0", "root")
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == (user, group)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert set(container["resources"]) == {"requests", "limits"}
    # A read-only root file system needs a writable /tmp for gunicorn's and the metrics' files.
    if container["securityContext"].get("readOnlyRootFilesystem"):
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_the_ingress_routes_exactly_the_apps_public_endpoints_to_the_service(kubernetes, app):
    """Every route of the app but /metrics is reachable through the Ingress, and nothing else is."""
    (rule,) = kubernetes["Ingress"]["spec"]["rules"]
    routed = {(p["path"], p["pathType"]) for p in rule["http"]["paths"]}
    # Added models' routes are the operator's to list (the manifest says how): the rule that answers them is not.
    public = {r.rule for r in app.url_map.iter_rules() if r.endpoint not in ("metrics", ADDED_ENDPOINT)}
    exact = {(rule, "Exact") for rule in public if "<" not in rule}
    prefixes = {(rule.split("/<")[0], "Prefix") for rule in public if "<" in rule}
    assert routed == {p for p in exact if (p[0], "Prefix") not in prefixes} | prefixes
    assert ROUTES["metrics"] not in {path for path, _ in routed}
    service = kubernetes["Service"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert all(p["backend"]["service"]["name"] == service["metadata"]["name"] for p in rule["http"]["paths"])


def test_the_ingress_and_compose_limit_bodies_to_the_apps_limit(kubernetes):
    annotations = kubernetes["Ingress"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    assert 1024 * 1024 == Settings().MAX_CONTENT_LENGTH
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert "ports" not in compose["services"]["app"], "only nginx may face the network"
    assert "nginx.conf.template" in compose["services"]["nginx"]["volumes"][0]


def test_kubernetes_replicas_share_one_postgresql_prediction_log_from_a_secret(kubernetes):
    container = kubernetes["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    (log,) = [e for e in container["env"] if e["name"] == "PREDICTION_LOG"]
    assert log["valueFrom"]["secretKeyRef"] == {"name": "sentiment-prediction-log", "key": "url"}
    # With a read-only root file system the default SQLite file could not be written: it must not be the default.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_image_gives_the_server_user_its_state_folder_and_leaves_a_checkouts_log_out():
    instructions = dockerfile_instructions()
    user = dockerfile_last(instructions, "USER")
    assert f"mkdir -p state && chown {user} state" in [arguments for kind, arguments in instructions if kind == "RUN"]
    assert "state" in (ROOT / ".dockerignore").read_text().split()


def test_the_kserve_inference_service_runs_the_image_as_an_open_inference_protocol_predictor(kubernetes, app):
    (service,) = yaml.safe_load_all((ROOT / "deploy" / "kserve.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = service["spec"]["predictor"]
    (container,) = predictor["containers"]
    # A custom predictor: KServe's own container name, and the protocol it reads from PROTOCOL.
    assert container["name"] == "kserve-container"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROTOCOL"] == "v2"
    deployed = kubernetes["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == deployed["image"]
    (port,) = container["ports"]
    assert env["BIND"] == f"0.0.0.0:{port['containerPort']}" == dockerfile_env(dockerfile_instructions())["BIND"]
    # The probes ask the protocol's own health endpoints, which the app serves, on the container's port.
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port["containerPort"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": port["containerPort"]}
    assert {"/v2/health/ready", "/v2/health/live"} <= rules
    user, _, group = dockerfile_last(dockerfile_instructions(), "USER").partition(":")
    assert (str(predictor["securityContext"]["runAsUser"]), str(predictor["securityContext"]["runAsGroup"])) == (
        user, group)
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])
    assert "secretKeyRef" in next(e for e in container["env"] if e["name"] == "PREDICTION_LOG")["valueFrom"]
