"""The deployment files say what the tested code does: the Dockerfile runs only commands the Makefile
runs, its health check works against a live gunicorn, and the Kubernetes probes and ports agree with it."""
import json
import re
import subprocess
import sys

import pytest
import yaml

from support import ROOT, free_port


def dockerfile_instructions():
    """[(INSTRUCTION, arguments)] of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def exec_form(arguments):
    """The command of a CMD or HEALTHCHECK CMD in exec (JSON) form, as a list."""
    return json.loads(arguments[arguments.index("["):])


def makefile_commands():
    """The Makefile's recipe lines as one would type them in the virtual environment."""
    recipes = [line.strip() for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t")]
    return {re.sub(r"\s+", " ", line.replace("$(BIN)/", "").replace(" --quiet", "")) for line in recipes}


@pytest.fixture(scope="module")
def kubernetes():
    """The Deployment and the Service of deploy/kubernetes.yaml, by kind."""
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    return {doc["kind"]: doc for doc in documents}


def test_every_command_in_the_dockerfile_is_one_the_makefile_runs():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [args for kind, args in instructions if kind == "RUN"]
    assert runs == ["pip install -r requirements.txt", "python build_model.py"]
    commands = [args for kind, args in instructions if kind == "CMD"]
    assert len(commands) == 1
    assert set(runs) | {" ".join(exec_form(commands[0]))} <= makefile_commands()


def test_the_container_runs_as_an_unprivileged_user_on_the_port_it_exposes():
    instructions = dict(dockerfile_instructions()[1:])  # later instructions of a kind win, as in Docker
    user = instructions["USER"].split(":")[0]
    assert user not in ("0", "root")
    assert "BIND=0.0.0.0:5000" in instructions["ENV"].split()
    assert instructions["EXPOSE"] == "5000"


@pytest.mark.parametrize("serving", [True, False], ids=["server-up", "nothing-listening"])
def test_the_dockerfile_health_check_passes_only_when_health_answers(serving, live_server):
    health = dict(dockerfile_instructions())["HEALTHCHECK"]
    command = exec_form(health[health.index("CMD") + 3:])
    assert command[0] == "python"
    port = live_server.port if serving else free_port()
    command = [sys.executable] + [part.replace("127.0.0.1:5000", f"127.0.0.1:{port}") for part in command[1:]]
    assert "/health" in command[-1]
    result = subprocess.run(command, capture_output=True, timeout=30)
    assert (result.returncode == 0) is serving


def test_kubernetes_probes_ask_health_on_the_port_the_server_binds(kubernetes):
    deployment, service = kubernetes["Deployment"], kubernetes["Service"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BIND"] == f"0.0.0.0:{ports['http']}" and ports["http"] == 5000
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert service["spec"]["ports"][0]["targetPort"] in ports
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_kubernetes_pods_have_resources_and_the_images_non_root_user(kubernetes):
    pod = kubernetes["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert set(container["resources"]) == {"requests", "limits"}
    assert str(pod["securityContext"]["runAsUser"]) == dict(dockerfile_instructions()[1:])["USER"].split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # A read-only root file system needs a writable /tmp for gunicorn's and the metrics' files.
    if container["securityContext"].get("readOnlyRootFilesystem"):
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])
