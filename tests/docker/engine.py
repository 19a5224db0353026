"""The real Docker engine driven through its CLI, as a user drives it: images, containers, volumes,
and Compose (the v2 plugin, ``docker compose``, or Debian's ``docker-compose`` v1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
TAG = os.environ.get("QATFLOW_VERSION", "0.1.0")  # the tag Compose and `make images` use
IMAGES = ["training", "optimum", "onnxruntime", "client"]
RUNTIME_USER = "10001:10001"
SERVICE_PORT = 8080  # inside the service images
# The Compose file's and the chart's hardening, as `docker run` flags.
HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges:true",
]
START_TIMEOUT = 300.0  # importing torch and compiling the model in a container on 2 busy cores


def image(name: str) -> str:
    return f"qatflow-{name}:{TAG}"


def unique(prefix: str) -> str:
    """A name no other run on this engine uses."""
    return f"qatflow-e2e-{prefix}-{uuid.uuid4().hex[:8]}"


def docker(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def engine_version() -> str | None:
    """The engine's version, or None when no engine answers."""
    if shutil.which("docker") is None:
        return None
    result = docker("version", "--format", "{{.Server.Version}}", timeout=30, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def inspect(container: str) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(docker("inspect", container).stdout)[0]
    return details


def logs(container: str) -> str:
    result = docker("logs", "--tail", "60", container, check=False)
    return result.stdout + result.stderr


def remove(*containers: str) -> None:
    if containers:
        docker("rm", "--force", "--volumes", *containers, check=False)


def wait_until(
    condition: Callable[[], bool], what: str, container: str, timeout: float = START_TIMEOUT
) -> None:
    """Poll ``condition`` until it holds; fail early, with the logs, if the container stops."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        state = inspect(container)["State"]
        if not state["Running"]:
            raise AssertionError(
                f"{container} stopped (exit {state['ExitCode']}) while waiting for {what}:\n"
                + logs(container)
            )
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} of {container}:\n{logs(container)}")


def copy_models(container: str, destination: Path) -> Path:
    """The container's ``/models`` copied to ``destination`` (a running or exited container)."""
    docker("cp", f"{container}:/models", str(destination))
    return destination


def find_not_owned_by_runtime_user(volume: str) -> list[str]:
    """Paths in the volume whose owner is not the images' runtime UID."""
    uid = RUNTIME_USER.split(":")[0]
    result = docker(
        "run", "--rm", "-v", f"{volume}:/models:ro", "--entrypoint", "find", image("client"),
        "/models", "-not", "-uid", uid,
    )  # fmt: skip
    return result.stdout.split()


def ask_with_client_image(*args: str, volume: str | None = None) -> list[dict[str, Any]]:
    """``qatflow ask ... --json`` in the client image on the host's network; one dict per line."""
    mounts = ["-v", f"{volume}:/models:ro"] if volume else []
    command = ["run", "--rm", "--network", "host", *HARDENED, *mounts, image("client")]
    result = docker(*command, *args, "--json", timeout=300)
    return [json.loads(line) for line in result.stdout.splitlines()]


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) where it exists, else ``docker-compose`` (v1), else None."""
    plugin = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


class ComposeProject:
    """``docker-compose.yaml`` under its own project name (its own containers and volume), with
    an override file and variables, as a user would add them."""

    def __init__(
        self,
        command: Sequence[str],
        override: Path,
        environ: Mapping[str, str],
        profiles: Sequence[str],
    ) -> None:
        self.name = unique("compose")
        self.files = ["--file", str(REPO / "docker-compose.yaml"), "--file", str(override)]
        self.base = [*command, "--project-name", self.name, "--project-directory", str(REPO)]
        self.profiles = list(profiles)
        self.environ = {**os.environ, **environ}

    @property
    def command(self) -> list[str]:
        return [*self.base, *self.files, *(f"--profile={profile}" for profile in self.profiles)]

    @property
    def volume(self) -> str:
        return f"{self.name}_models"

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environ,
            cwd=REPO,
            check=False,
        )

    def containers(self, service: str | None = None) -> list[str]:
        """Containers of this project (of one service), found by the labels v1 and v2 both set."""
        filters = ["--filter", f"label=com.docker.compose.project={self.name}"]
        if service is not None:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return docker("ps", "--all", "--quiet", *filters).stdout.split()

    def container(self, service: str) -> str:
        (container,) = self.containers(service)
        return container

    def volumes(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.name}"
        return docker("volume", "ls", "--quiet", "--filter", label).stdout.split()

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.run("down", "--volumes", "--remove-orphans", "--timeout", "30")


class ServiceContainer:
    """One HTTP service image run hardened, published on a free loopback port."""

    def __init__(self, backend: str, mounts: Sequence[str] = (), restart: str = "no") -> None:
        from qatflow.local import free_port

        self.backend = backend
        self.name = unique(backend)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        docker(
            "run", "--detach", "--name", self.name, *HARDENED, *mounts,
            "--restart", restart,
            "--publish", f"127.0.0.1:{self.port}:{SERVICE_PORT}",
            # One thread: the same arithmetic as the reference run on the host.
            "--env", "QATFLOW_SERVE_THREADS=1",
            "--env", "QATFLOW_SERVE_POLL_INTERVAL=1",
            image(backend),
        )  # fmt: skip
        self.http = httpx.Client(base_url=self.url, timeout=60.0)

    def status(self, path: str) -> int:
        return self.http.get(path).status_code

    def wait_live(self) -> None:
        wait_until(lambda: self.status("/v2/health/live") == 200, "liveness", self.name)

    def wait_ready(self) -> None:
        wait_until(lambda: self.status("/v2/health/ready") == 200, "readiness", self.name)

    def ask(self, question: str, context: str) -> httpx.Response:
        return self.http.post(
            "/v1/question-answering", json={"question": question, "context": context}
        )

    def stop(self) -> None:
        self.http.close()
        remove(self.name)
