"""deploy/Dockerfile built and run for real: the image serves, drains on
`docker stop`, reaps orphans as PID 1, and behaves as deploy/kubernetes'
Deployment says when a test plays the kubelet against it.

Docker is used when a daemon answers and skipped, with the reason, when
none does; under CI=true (where .ci/run starts one) that is a failure. With
no registry reachable, the Dockerfile's base is made locally first
(deploy/offline-base.sh), so the Dockerfile built is the one users build.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for
from tests.test_deploy import container as deployment_container
from tests.test_deploy import manifest

pytestmark = pytest.mark.timeout(600)

# Debian's client, when both it and another `docker` are installed.
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
ROOTFS_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hybrid" / "rootfs-bookworm.tar"


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the container tests must run under CI=true: {reason}")
    pytest.skip(reason)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def base_images() -> tuple[str, str]:
    """The Dockerfile's final and build stage bases (PYTHON_IMAGE, BUILD_IMAGE)."""
    lines = (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
    args = dict(line.removeprefix("ARG ").split("=", 1) for line in lines if line.startswith("ARG "))
    return args["PYTHON_IMAGE"], args["BUILD_IMAGE"]


def dangling_images() -> list[str]:
    return docker("images", "--quiet", "--filter", "dangling=true").stdout.split()


@dataclass
class Images:
    hybrid: str       # deploy/Dockerfile as users build it
    user: str         # FROM hybrid + a user's app, as the README shows
    bridge_network: bool


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    if DOCKER is None:
        unavailable("no docker client is installed")
    daemon = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=30)
    if daemon.returncode != 0:
        unavailable(f"no docker daemon answers: {daemon.stderr.strip().splitlines()[-1]}")
    networks = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    made: list[str] = []
    dangling_before = set(dangling_images())
    bases = base_images()
    missing = [base for base in bases if docker("image", "inspect", base, check=False).returncode]
    if missing:
        made_base = subprocess.run(
            [str(ROOT / "deploy" / "offline-base.sh"), *bases], capture_output=True, text=True,
            timeout=400, env={**os.environ, "DOCKER": str(DOCKER), "ROOTFS_CACHE": str(ROOTFS_CACHE)})
        if made_base.returncode != 0:
            unavailable(f"{' and '.join(missing)} not here and could not be made: "
                        f"{made_base.stderr.strip()}")
        made += missing
    tag = f"hybrid-test-{uuid.uuid4().hex[:8]}"
    try:
        docker("build", "--network", "host", "-f", "deploy/Dockerfile", "-t", f"{tag}:hybrid", str(ROOT),
               timeout=400)
        made.append(f"{tag}:hybrid")
        context = tmp_path_factory.mktemp("user-image")
        shutil.copy(ROOT / "tests" / "apps" / "container_app.py", context)
        (context / "Dockerfile").write_text(
            f"FROM {tag}:hybrid\nCOPY container_app.py /app/\nCMD [\"container_app:app\"]\n")
        docker("build", "--network", "host", "-t", f"{tag}:user", str(context), timeout=120)
        made.append(f"{tag}:user")
        yield Images(f"{tag}:hybrid", f"{tag}:user", bridge_network="bridge" in networks)
    finally:
        # The build stage is left as an untagged image by the classic builder.
        made += [image for image in dangling_images() if image not in dangling_before]
        for image in reversed(made):
            docker("rmi", "--force", image, check=False)


@dataclass
class Container:
    """A running container, and the host ports that reach its app and control endpoint."""

    id: str
    http: int
    control: int
    output: list[str] = field(default_factory=list)

    def get(self, port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def answers(self, port: int, path: str) -> int | None:
        try:
            return self.get(port, path, timeout=2)[0]
        except (OSError, http.client.HTTPException):
            return None

    def exec_python(self, code: str) -> str:
        return docker("exec", self.id, "python3", "-c", code).stdout

    def exit_code(self) -> int:
        return int(docker("inspect", "--format", "{{.State.ExitCode}}", self.id).stdout)

    def running(self) -> bool:
        return docker("inspect", "--format", "{{.State.Running}}", self.id).stdout.strip() == "true"

    def logs(self) -> str:
        done = docker("logs", self.id, check=False)
        return done.stdout + done.stderr


@pytest.fixture
def run_container(images: Images) -> Iterator:
    started: list[Container] = []

    def run(image: str, *options: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Container:
        http_port, control_port = free_port(), free_port()
        env = dict(env or {})
        if images.bridge_network:
            network = ["-p", f"127.0.0.1:{http_port}:{env.get('PORT', '8000')}",
                       "-p", f"127.0.0.1:{control_port}:9000"]
            env["HYBRID_CONTROL_BIND"] = "0.0.0.0:9000"
        else:
            # A daemon without a bridge (dockerd --bridge=none): the host's
            # network, on ports free there.
            network = ["--network", "host"]
            env.update(PORT=str(http_port), HYBRID_CONTROL_BIND=f"127.0.0.1:{control_port}")
        environment = [item for name, value in env.items() for item in ("-e", f"{name}={value}")]
        container_id = docker("run", "--detach", *network, *environment, *options, image, *args).stdout.strip()
        running = Container(container_id, http_port, control_port)
        started.append(running)
        return running

    yield run
    for running in started:
        docker("rm", "--force", running.id, check=False)


def wait_ready(container: Container, timeout: float = 30) -> None:
    try:
        wait_for(lambda: container.answers(container.control, "/readyz") == 200, timeout=timeout,
                 interval=0.1, message="/readyz 200")
    except AssertionError:
        raise AssertionError(container.logs()) from None


def test_the_image_serves_the_demo_app_once_ready(images, run_container):
    running = run_container(images.hybrid)
    wait_ready(running)
    assert running.get(running.http, "/") == (200, b"Hello from hybrid!\n")


def test_a_users_image_from_ours_serves_their_app(images, run_container):
    running = run_container(images.user)
    wait_ready(running)
    assert running.get(running.http, "/") == (200, b"Hello from a container\n")


def test_the_arbiter_is_pid_1_and_runs_as_the_unprivileged_user(images, run_container):
    running = run_container(images.user)
    wait_ready(running)
    command = running.exec_python("print(open('/proc/1/cmdline').read().split('\\0')[1:3])")
    assert command.strip() == "['/opt/hybrid/bin/hybrid', 'run']"
    assert running.exec_python("import os; print(os.stat('/proc/1').st_uid)").strip() == "10001"


def test_an_orphaned_grandchild_is_handed_to_pid_1_and_reaped(images, run_container):
    running = run_container(images.user)
    wait_ready(running)
    status, body = running.get(running.http, "/orphan")
    assert status == 200
    orphan = int(body)
    parent = running.exec_python(f"print(open('/proc/{orphan}/stat').read().rpartition(')')[2].split()[1])")
    assert parent.strip() == "1"
    # It sleeps 1 s; once it exits, only PID 1's waitpid removes it from /proc.
    check = f"import os; print(os.path.exists('/proc/{orphan}'))"
    wait_for(lambda: running.exec_python(check).strip() == "False", timeout=10, interval=0.2,
             message=f"the orphan {orphan} reaped")


def test_docker_stop_finishes_the_request_in_flight_and_exits_zero(images, run_container):
    running = run_container(images.user, "--stop-timeout", "30")
    wait_ready(running)
    readiness: list[tuple[float, int | None]] = []
    stopped = threading.Event()

    def watch_readiness() -> None:
        while not stopped.is_set():
            readiness.append((time.monotonic(), running.answers(running.control, "/readyz")))
            time.sleep(0.1)

    slow: list[tuple[int, bytes]] = []
    request = threading.Thread(target=lambda: slow.append(running.get(running.http, "/slow?seconds=7", 30)))
    request.start()
    watcher = threading.Thread(target=watch_readiness)
    watcher.start()
    wait_for(lambda: "slow request started" in running.logs(), timeout=10, interval=0.2,
             message="the request in the worker")
    began = time.monotonic()
    docker("stop", running.id, timeout=60)
    took = time.monotonic() - began
    stopped.set()
    request.join(30)
    watcher.join(5)

    assert slow == [(200, b"slept\n")]
    assert running.exit_code() == 0, running.logs()
    assert took < 30
    answers = [status for _, status in readiness]
    assert 503 in answers, answers
    first_refusal = answers.index(503)
    assert set(answers[:first_refusal]) == {200}
    assert set(answers[first_refusal:]) <= {503, None}


@dataclass
class Probe:
    """One of a container's probes, as the kubelet reads and applies it."""

    path: str
    port: int
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int
    initial_delay: float

    @classmethod
    def from_manifest(cls, spec: dict, ports: dict[str, int]) -> Probe:
        get = spec["httpGet"]
        return cls(path=get["path"], port=ports.get(get["port"], get["port"]),
                   period=spec.get("periodSeconds", 10), timeout=spec.get("timeoutSeconds", 1),
                   failure_threshold=spec.get("failureThreshold", 3),
                   success_threshold=spec.get("successThreshold", 1),
                   initial_delay=spec.get("initialDelaySeconds", 0))

    def passes(self) -> bool:
        # The kubelet's rule: a status from 200 to 399 within the timeout.
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            connection.request("GET", self.path)
            return 200 <= connection.getresponse().status < 400
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


class Kubelet:
    """The probes on their schedule, and what the kubelet concludes from them:
    the pod's readiness (so whether the Service sends it traffic) and whether
    the liveness probe would have restarted it."""

    def __init__(self, probes: dict[str, Probe]) -> None:
        self.probes = probes
        self.ready = threading.Event()
        self.restart_wanted = threading.Event()
        self.readiness_failures = 0
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, deadline: float) -> None:
        """Run the startup probe until it passes, then readiness and liveness."""
        startup = self.probes["startupProbe"]
        time.sleep(startup.initial_delay)
        failures = 0
        while not startup.passes():
            failures += 1
            assert failures < startup.failure_threshold, "the startup probe gave up: the kubelet restarts"
            assert time.monotonic() < deadline
            time.sleep(startup.period)
        for name, judge in (("readinessProbe", self._judge_readiness), ("livenessProbe", self._judge_liveness)):
            thread = threading.Thread(target=self._loop, args=(self.probes[name], judge), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(10)

    def _loop(self, probe: Probe, judge) -> None:
        time.sleep(probe.initial_delay)
        successes = failures = 0
        while not self._done.is_set():
            if probe.passes():
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            judge(probe, successes, failures)
            self._done.wait(probe.period)

    def _judge_readiness(self, probe: Probe, successes: int, failures: int) -> None:
        if successes >= probe.success_threshold:
            self.ready.set()
        elif failures:
            self.readiness_failures += 1
            if failures >= probe.failure_threshold:
                self.ready.clear()

    def _judge_liveness(self, probe: Probe, successes: int, failures: int) -> None:
        if failures >= probe.failure_threshold:
            self.restart_wanted.set()


def security_options(spec: dict) -> list[str]:
    """`docker run` options for the Deployment's securityContext and limits."""
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    context = spec["securityContext"]
    options = ["--user", str(pod["securityContext"]["runAsUser"])]
    if context.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    options += [f"--cap-drop={capability}" for capability in context.get("capabilities", {}).get("drop", [])]
    memory = spec["resources"]["limits"]["memory"]
    assert memory.endswith("Mi")
    options += ["--memory", f"{memory[:-2]}m", "--cpus", spec["resources"]["limits"]["cpu"]]
    return options


def test_a_rolling_update_as_the_kubelet_plays_it_fails_no_request(images, run_container):
    spec = deployment_container()
    grace = manifest("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = {item["name"]: item["value"] for item in spec["env"]}
    running = run_container(images.hybrid, *security_options(spec), args=tuple(spec["args"]), env=env)
    ports = {"http": running.http, "control": running.control}
    kubelet = Kubelet({name: Probe.from_manifest(spec[name], ports)
                       for name in ("startupProbe", "readinessProbe", "livenessProbe")})
    kubelet.start(deadline=time.monotonic() + 120)
    assert kubelet.ready.wait(30), running.logs()

    served: list[float] = []
    failed: list[str] = []
    done = threading.Event()

    def service_traffic() -> None:
        # The Service sends new connections to the pod while it is ready.
        while not done.is_set():
            if not kubelet.ready.is_set():
                time.sleep(0.01)
                continue
            try:
                status, body = running.get(running.http, "/")
                if (status, body) == (200, b"Hello from hybrid!\n"):
                    served.append(time.monotonic())
                else:
                    failed.append(f"{status} {body!r}")
            except (OSError, http.client.HTTPException) as error:
                failed.append(repr(error))

    client = threading.Thread(target=service_traffic)
    client.start()
    wait_for(lambda: len(served) >= 20, timeout=30, message="traffic served")
    terminated = time.monotonic()
    docker("kill", "--signal", "TERM", running.id)
    exited = docker("wait", running.id, timeout=grace + 10).stdout.strip()
    exit_took = time.monotonic() - terminated
    done.set()
    client.join(10)
    kubelet.stop()

    assert failed == [], failed
    assert kubelet.readiness_failures >= 1  # the pod was seen to stop being ready ...
    assert any(moment > terminated for moment in served)  # ... while it still served
    assert not kubelet.restart_wanted.is_set()
    assert exited == "0", running.logs()
    assert exit_took < grace
