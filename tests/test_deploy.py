"""deploy/: the Dockerfile and the Kubernetes manifests, checked offline:
linted, validated against the API schemas, and their numbers consistent with
each other and with what hybrid does on TERM."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT, free_port, wait_for

DEPLOY = ROOT / "deploy"
MANIFESTS = sorted(p for p in (DEPLOY / "kubernetes").glob("*.yaml")
                   if p.name != "kustomization.yaml")
KUBERNETES_VERSION = "1.30.0"
HADOLINT = Path(sys.executable).parent / "hadolint"


def manifest(kind: str) -> dict:
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            if document["kind"] == kind:
                return document
    raise AssertionError(f"no {kind} in deploy/kubernetes")


def container() -> dict:
    (only,) = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


def dockerfile_instruction(name: str) -> str:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return line[len(name) + 1:]


def test_the_dockerfile_passes_hadolint_with_no_rule_ignored():
    done = subprocess.run([str(HADOLINT), "--no-color", str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hadolint ignore" not in (DEPLOY / "Dockerfile").read_text()


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_valid_for_the_kubernetes_api(path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


def test_the_grace_period_covers_the_shutdown_delay_and_the_graceful_timeout():
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    delay, graceful = float(env()["HYBRID_SHUTDOWN_DELAY"]), float(env()["HYBRID_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] >= delay + graceful + 5


def test_the_readiness_probe_sees_a_term_before_the_shutdown_delay_ends():
    probe = container()["readinessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] < float(env()["HYBRID_SHUTDOWN_DELAY"])


def test_the_probes_ask_the_control_endpoint_on_its_port():
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports["control"] == int(env()["HYBRID_CONTROL_BIND"].rpartition(":")[2])
    assert ports["http"] == int(env()["PORT"])
    probes = {name: container()[name]["httpGet"] for name in
              ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {name: (get["path"], get["port"]) for name, get in probes.items()} == {
        "startupProbe": ("/readyz", "control"), "readinessProbe": ("/readyz", "control"),
        "livenessProbe": ("/livez", "control")}


def test_a_rolling_update_never_lowers_capacity():
    strategy = manifest("Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_the_disruption_budget_and_the_autoscaler_agree_with_the_replicas():
    replicas = manifest("Deployment")["spec"]["replicas"]
    budget = manifest("PodDisruptionBudget")["spec"]["minAvailable"]
    autoscaler = manifest("HorizontalPodAutoscaler")["spec"]
    assert budget < replicas <= autoscaler["maxReplicas"]
    assert budget < autoscaler["minReplicas"]


def test_the_service_targets_the_apps_port_not_the_control_port():
    (port,) = manifest("Service")["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_the_image_and_the_deployment_agree_on_the_ports_and_the_user():
    exposed = set(dockerfile_instruction("EXPOSE").split())
    assert exposed == {str(p["containerPort"]) for p in container()["ports"]}
    user = dockerfile_instruction("USER")
    assert manifest("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"] \
        == int(user)
    assert dockerfile_instruction("STOPSIGNAL") == "SIGTERM"


def healthcheck_command() -> list[str]:
    instruction = dockerfile_instruction("HEALTHCHECK")
    return json.loads(re.search(r"CMD (\[.*\])", instruction).group(1))


def test_the_images_healthcheck_passes_once_hybrid_is_ready(start_server):
    port = free_port()
    command = healthcheck_command()
    probe_env = {"HYBRID_CONTROL_BIND": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin"}
    command[0] = sys.executable  # the image's python3
    before = subprocess.run(command, env=probe_env, capture_output=True, timeout=30)
    assert before.returncode != 0  # nothing answers yet
    start_server("tests.apps.basic:app", env={"HYBRID_CONTROL_BIND": f"127.0.0.1:{port}"})
    wait_for(lambda: subprocess.run(command, env=probe_env, capture_output=True,
                                    timeout=30).returncode == 0,
             message="the healthcheck to pass")
