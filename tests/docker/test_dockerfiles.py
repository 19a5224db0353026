"""The images' promises, read from the Dockerfiles (no Docker engine here): lint-clean,
multi-stage, pinned base, fixed non-root UID, one extra each, entry points that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from qatflow.cli import COMMANDS
from qatflow.serving.settings import ServeSettings
from qatflow.training.config import TrainingSettings

from .dockerfile import Dockerfile, parse

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "dockerfiles"
HADOLINT = REPO / ".tools" / "venv" / "bin" / "hadolint"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
IMAGES = ["training", "optimum", "onnxruntime", "client"]
TORCH_IMAGES = ["training", "optimum"]
RUNTIME_UID = "10001"


def dockerfile(image: str) -> Dockerfile:
    return parse(DOCKERFILES / f"{image}.Dockerfile")


def run_commands(stage) -> list[list[str]]:
    """Every simple command of the stage's RUN instructions, split on && and ;."""
    commands: list[list[str]] = []
    for text in stage.all("RUN"):
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in lexer:
            if token in ("&&", ";", "||"):
                commands.append(command)
                command = []
            else:
                command.append(token)
        commands.append(command)
    return [c for c in commands if c]


def pip_installs(df: Dockerfile) -> list[list[str]]:
    return [c for stage in df.stages for c in run_commands(stage) if c[:2] == ["pip", "install"]]


def test_one_dockerfile_per_deployable():
    assert sorted(p.name for p in DOCKERFILES.glob("*.Dockerfile")) == sorted(
        f"{i}.Dockerfile" for i in IMAGES
    )


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_clean(image):
    if not HADOLINT.exists():
        pytest.skip(
            "hadolint not installed: run helm/install-tools.sh to create .tools/venv/bin/hadolint"
        )
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILES / f"{image}.Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_from_a_pinned_base(image):
    df = dockerfile(image)
    assert len(df.stages) >= 2, "build tools stay in a build stage"
    for stage in df.stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", stage.base), stage.base
    assert df.final.all("COPY")[0].startswith("--from=build /opt/venv")


@pytest.mark.parametrize("image", IMAGES)
def test_runs_as_a_fixed_non_root_uid(image):
    df = dockerfile(image)
    users = df.final.all("USER")
    assert users, "the final stage must set USER"
    assert users[-1] == f"{RUNTIME_UID}:{RUNTIME_UID}", (
        "numeric UID:GID, so Kubernetes runAsNonRoot can verify it"
    )
    creation = " ".join(df.final.all("RUN"))
    assert f"--uid {RUNTIME_UID}" in creation and f"--gid {RUNTIME_UID}" in creation


@pytest.mark.parametrize("image", IMAGES)
def test_installs_only_its_own_extra(image):
    df = dockerfile(image)
    extras = [
        match.group(1)
        for command in pip_installs(df)
        for word in command
        if (match := re.fullmatch(r"\./\[([a-z,]+)\]", word))
    ]
    assert extras == [image], f"{image}.Dockerfile installs extras {extras}"
    assert image in PYPROJECT["project"]["optional-dependencies"]


@pytest.mark.parametrize("image", IMAGES)
def test_entrypoint_exists_in_the_package(image):
    entrypoint = dockerfile(image).exec_form("ENTRYPOINT")
    if entrypoint[:2] == ["python", "-m"]:
        module = entrypoint[2]
        assert module.startswith("qatflow.")
        assert importlib.util.find_spec(f"{module}.__main__") is not None, (
            f"{module} has no __main__"
        )
    else:
        assert entrypoint[0] in PYPROJECT["project"]["scripts"]
        assert entrypoint[1] in COMMANDS


def test_entrypoints_match_the_deployables():
    assert dockerfile("training").exec_form("ENTRYPOINT") == ["python", "-m", "qatflow.training"]
    assert dockerfile("optimum").exec_form("ENTRYPOINT") == ["python", "-m", "qatflow.serving"]
    assert dockerfile("onnxruntime").exec_form("ENTRYPOINT") == ["python", "-m", "qatflow.serving"]
    assert dockerfile("client").exec_form("ENTRYPOINT") == ["qatflow", "ask"]


@pytest.mark.parametrize("image", IMAGES)
def test_environment_names_are_real_settings(image):
    known = {ServeSettings.env_name(k) for k in ServeSettings.fields()}
    known |= {TrainingSettings.env_name(k) for k in TrainingSettings.fields()}
    for name in dockerfile(image).env():
        if name.startswith("QATFLOW_"):
            assert name in known, f"{image}.Dockerfile sets {name}, which no settings class reads"


@pytest.mark.parametrize("image", ["optimum", "onnxruntime"])
def test_services_expose_the_default_port(image):
    df = dockerfile(image)
    assert df.final.all("EXPOSE") == [str(ServeSettings.model_fields["port"].default)]
    assert df.env()["QATFLOW_SERVE_BACKEND"] == image


def torch_pin(extra: str) -> str:
    (pin,) = [
        d for d in PYPROJECT["project"]["optional-dependencies"][extra] if d.startswith("torch==")
    ]
    return pin


@pytest.mark.parametrize("image", TORCH_IMAGES)
def test_cpu_torch_first_from_the_torch_index_build_argument(image):
    df = dockerfile(image)
    first = pip_installs(df)[0]
    assert torch_pin(image) in first
    assert first[first.index("--index-url") + 1] == "${TORCH_INDEX_URL}"
    assert df.stages[0].arg_defaults()["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"


def test_the_optimum_extra_pins_the_torch_the_image_installs_first():
    """Unpinned, optimum-intel's torchvision pulls the newest (CUDA) torch over the CPU one."""
    assert torch_pin("optimum") == torch_pin("training")


def test_no_registry_only_frontend():
    """A ``# syntax=`` line makes BuildKit pull its frontend from a registry."""
    for path in DOCKERFILES.glob("*.Dockerfile"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), path.name


@pytest.mark.parametrize("image", IMAGES)
def test_build_arguments_for_the_base_and_extra_cas(image):
    df = dockerfile(image)
    assert "PYTHON_IMAGE" in df.args
    build = df.stages[0]
    assert build.arg_defaults()["EXTRA_CA_CERTS"] == ""
    assert "EXTRA_CA_CERTS" not in df.final.arg_defaults(), "trusted for the build only"
    assert build.env()["PIP_CERT"].startswith("/")
    assert any("${EXTRA_CA_CERTS}" in run and "${PIP_CERT}" in run for run in build.all("RUN"))
    assert "PIP_CERT" not in df.env()


@pytest.mark.parametrize("image", IMAGES)
def test_the_build_checks_what_the_image_must_not_hold(image):
    """No CUDA/NVIDIA package in any image, and what each image leaves out, checked after the
    last install of the build stage."""
    absent = {
        "training": ["torchvision"],
        "optimum": ["torchvision", "nncf"],
        "onnxruntime": ["torch", "nncf"],
        "client": ["torch", "nncf"],
    }[image]
    commands = run_commands(dockerfile(image).stages[0])
    last_install = max(i for i, c in enumerate(commands) if c[:2] == ["pip", "install"])
    check = ["python", "check_installed.py", "--absent", *absent]
    assert check in commands[last_install:]


def test_check_installed_refuses_gpu_packages_and_what_must_be_absent(tmp_path):
    """On an environment of the standard library plus ``tmp_path`` (``-S``: no site-packages)."""

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-S", str(DOCKERFILES / "check_installed.py"), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
            check=False,
        )

    clean = check("--absent", "torch", "nncf")
    assert clean.returncode == 0, clean.stderr
    present = check("--absent", "torch", "json")
    assert present.returncode == 1 and "must not be installed: json" in present.stderr

    dist_info = tmp_path / "nvidia_cublas_cu12-12.8.4.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: nvidia-cublas-cu12\n")
    gpu = check()
    assert (
        gpu.returncode == 1 and "CUDA/NVIDIA packages installed: nvidia-cublas-cu12" in gpu.stderr
    )


def test_training_builds_the_nncf_extension_as_the_runtime_user():
    df = dockerfile("training")
    env = df.env()
    assert env["NNCF_EXTENSION_LOAD_TIMEOUT"] == "0"
    extensions_dir = env["TORCH_EXTENSIONS_DIR"]
    order = [kw + " " + args for kw, args in df.final.instructions]
    owned = next(
        i for i, line in enumerate(order) if f"-o {RUNTIME_UID}" in line and extensions_dir in line
    )
    user = next(i for i, line in enumerate(order) if line.startswith("USER "))
    build = next(
        i
        for i, line in enumerate(order)
        if "qatflow.training.nncf_extension" in line and line.startswith("RUN")
    )
    assert owned < user < build, (
        "the extension cache must be built by, and belong to, the runtime user"
    )


def test_optimum_drops_what_optimum_intel_declares_but_serving_does_not_use():
    df = dockerfile("optimum")
    commands = [c for stage in df.stages for c in run_commands(stage)]
    assert ["pip", "uninstall", "-y", "torchvision", "nncf"] in commands
    checks = " ".join(df.stages[0].all("RUN"))
    assert "from optimum.intel import OVModelForQuestionAnswering" in checks


@pytest.mark.parametrize("image", ["onnxruntime", "client"])
def test_light_images_install_no_torch(image):
    df = dockerfile(image)
    assert not any("torch" in word for c in pip_installs(df) for word in c)


def test_dockerignore_keeps_what_the_images_copy():
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for image in IMAGES:
        for copy in dockerfile(image).final.all("COPY") + dockerfile(image).stages[0].all("COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                assert source.rstrip("/") in allowed, (
                    f"{image}.Dockerfile copies {source}, excluded by .dockerignore"
                )
                assert (REPO / source).exists() or source == "README.md", source
