"""How training is laid out: one pod or a multi-node torchrun gang, GPUs, presets, and the task."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from qatflow.core import tasks
from qatflow.training import cli as training_cli
from qatflow.training.config import TrainingSettings

from .conftest import (
    CHART,
    FULLNAME,
    RELEASE,
    Rendered,
    chart_values,
    install_notes,
    render,
    run_helm,
)
from .test_chart_objects import annotations_of, container, env_of, hook_weight, pod_spec

pytestmark = pytest.mark.chart

JOB = f"{FULLNAME}-training"


def ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def training_job(r: Rendered) -> dict[str, Any]:
    job = r.job()
    assert job is not None
    return job


def hook_services(r: Rendered) -> list[dict[str, Any]]:
    return [s for s in r.of_kind("Service") if "helm.sh/hook" in annotations_of(s)]


def helm_error(*assignments: str) -> str:
    args = [arg for assignment in assignments for arg in ("--set", assignment)]
    result = run_helm("template", RELEASE, str(CHART), *args, check=False)
    assert result.returncode != 0, "rendering should have failed"
    return result.stderr


def train_arguments(argv: list[str]) -> argparse.Namespace:
    """argv as the real `qatflow train` / `python -m qatflow.training` parser reads it."""
    parser = argparse.ArgumentParser()
    training_cli.add_arguments(parser)
    return parser.parse_args(argv)


def as_kubelet_runs_it(item: dict[str, Any], **env: str) -> list[str]:
    """command + args with $(VAR) expanded the way the kubelet does before starting it."""
    words = item["command"] + item.get("args", [])
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), word) for word in words]


# -- one node ----------------------------------------------------------------------------------


def test_one_node_is_the_plain_job() -> None:
    default = render(None)
    explicit = render(None, "--set", "training.nodes=1", "--set", "training.processesPerNode=1")
    assert explicit.objects == default.objects
    job = training_job(default)
    spec = job["spec"]
    for indexed in ("completionMode", "completions", "parallelism"):
        assert indexed not in spec
    assert "subdomain" not in pod_spec(job)
    assert "ports" not in container(job, "training")
    assert container(job, "training")["command"] == ["python", "-m", "qatflow.training"]
    assert hook_services(default) == []
    assert [p["metadata"]["name"] for p in default.of_kind("NetworkPolicy")] == [FULLNAME]
    rules = spec["podFailurePolicy"]["rules"]
    assert any(rule["action"] == "Ignore" for rule in rules), "a drained node is retried"


def test_processes_on_one_node_use_a_standalone_torchrun() -> None:
    r = render(None, "--set", "training.processesPerNode=2")
    job = training_job(r)
    assert "completionMode" not in job["spec"] and hook_services(r) == []
    assert container(job, "training")["command"] == [
        "torchrun",
        "--nnodes=1",
        "--nproc-per-node=2",
        "--standalone",
        "--no-python",
        "qatflow",
        "train",
    ]


# -- several nodes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gang() -> Rendered:
    return render(ci("multinode"))


def test_multinode_is_an_indexed_job_of_one_pod_per_node(gang: Rendered) -> None:
    training = gang.values["training"]
    job = training_job(gang)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == training["nodes"] == 3
    # A gang: one failed or evicted pod fails the Job instead of waiting for a lone retry.
    assert spec["backoffLimit"] == 0
    assert [rule["action"] for rule in spec["podFailurePolicy"]["rules"]] == ["FailJob"]
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_multinode_headless_service_comes_before_the_job(gang: Rendered) -> None:
    job = training_job(gang)
    (service,) = hook_services(gang)
    assert service["metadata"]["name"] == pod_spec(job)["subdomain"] == JOB
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "training"
    port = gang.values["training"]["rendezvousPort"]
    ((service_port),) = service["spec"]["ports"]
    (container_port,) = container(job, "training")["ports"]
    assert service_port["port"] == container_port["containerPort"] == port
    assert service_port["targetPort"] == container_port["name"]
    notes, job_notes = annotations_of(service), annotations_of(job)
    assert notes["helm.sh/hook"] == job_notes["helm.sh/hook"]
    assert hook_weight(service) < hook_weight(job), "the Service exists when the pods start"
    assert "before-hook-creation" in notes["helm.sh/hook-delete-policy"].split(",")
    # The inference Service is still the only ordinary one.
    assert gang.service()["metadata"]["name"] == f"{FULLNAME}-optimum"


def test_multinode_command_is_a_static_torchrun_rendezvous(gang: Rendered) -> None:
    job = training_job(gang)
    train = container(job, "training")
    port = gang.values["training"]["rendezvousPort"]
    assert train["command"] == [
        "torchrun",
        "--nnodes=3",
        "--nproc-per-node=2",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={JOB}-0.{JOB}",
        f"--master-port={port}",
        "--no-python",
        "qatflow",
        "train",
    ]
    assert train["args"] == ["--log-format", "text", "--outcome-file", "/dev/termination-log"]
    # What torchrun itself makes of the line pod 2 runs (the Job controller sets the index).
    run = pytest.importorskip("torch.distributed.run")
    argv = as_kubelet_runs_it(train, JOB_COMPLETION_INDEX="2")
    parsed = run.get_args_parser().parse_args(argv[1:])
    assert (parsed.nnodes, parsed.nproc_per_node, parsed.node_rank) == ("3", "2", 2)
    assert (parsed.master_addr, parsed.master_port) == (f"{JOB}-0.{JOB}", port)
    assert parsed.no_python and parsed.rdzv_backend == "static"
    assert [parsed.training_script, *parsed.training_script_args] == [
        "qatflow",
        "train",
        "--log-format",
        "text",
        "--outcome-file",
        "/dev/termination-log",
    ]
    arguments = train_arguments(parsed.training_script_args[1:])
    assert (arguments.log_format, arguments.outcome_file) == ("text", "/dev/termination-log")


def test_multinode_pods_share_a_read_write_many_volume(gang: Rendered) -> None:
    job = training_job(gang)
    volume = next(v for v in pod_spec(job)["volumes"] if v["name"] == "models")
    (claim,) = gang.of_kind("PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_multinode_pods_may_reach_each_other(gang: Rendered) -> None:
    """The release's NetworkPolicy opens only the inference ports; the gang needs any port
    between its own pods (rendezvous, then gloo)."""
    pod_labels = training_job(gang)["spec"]["template"]["metadata"]["labels"]
    policy = gang.named("NetworkPolicy", JOB)
    assert policy is not None
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ((rule),) = policy["spec"]["ingress"]
    assert "ports" not in rule, "any port"
    ((peer),) = rule["from"]
    assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(peer) == {"podSelector"}, "only this release's training pods"


def test_multinode_notes_follow_the_first_pod() -> None:
    notes = install_notes("--values", str(ci("multinode")))
    assert (
        f"logs -f -l batch.kubernetes.io/job-name={JOB},batch.kubernetes.io/job-completion-index=0"
        in notes
    )


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (
            ["training.nodes=2"],
            "training.nodes=2: every training pod mounts the model volume read-write from its own "
            'node, so persistence.accessModes must include ReadWriteMany (got ["ReadWriteOnce"])',
        ),
        (
            ["training.nodes=2", "persistence.accessModes={ReadWriteOncePod}"],
            "must include ReadWriteMany",
        ),
        (
            ["training.nodes=3", "persistence.hostPath.path=/var/lib/qatflow"],
            "persistence.hostPath.path is a different directory on each node",
        ),
        (
            [
                "training.nodes=2",
                "persistence.accessModes={ReadWriteMany}",
                "fullnameOverride=" + "q" * 55,
            ],
            "longer than 63 characters",
        ),
    ],
)
def test_multinode_layouts_that_cannot_work_fail_clearly(
    assignments: list[str], message: str
) -> None:
    assert message in helm_error(*assignments)


def test_multinode_on_an_existing_claim_renders() -> None:
    """The chart cannot see an existing claim's access modes; the docs say it must be RWX."""
    r = render(None, "--set", "training.nodes=2", "--set", "persistence.existingClaim=shared")
    assert training_job(r)["spec"]["completions"] == 2


# -- GPU ---------------------------------------------------------------------------------------


def test_gpu_training_requests_gpus_and_trains_on_cuda() -> None:
    r = render(ci("gpu"))
    job = training_job(r)
    train = container(job, "training")
    assert train["resources"]["limits"]["nvidia.com/gpu"] == r.values["training"]["gpu"]["count"]
    assert env_of(train)["QATFLOW_TRAIN_DEVICE"] == "cuda"
    assert pod_spec(job)["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod_spec(job)["tolerations"][0]["key"] == "nvidia.com/gpu"
    # Inference stays on CPU nodes.
    inference = r.deployment()
    assert not any("gpu" in name for name in container(inference)["resources"]["limits"])
    assert "nodeSelector" not in pod_spec(inference) and "tolerations" not in pod_spec(inference)


def test_gpu_count_and_resource_name() -> None:
    r = render(
        None,
        "--set",
        "training.gpu.count=2",
        "--set",
        "training.gpu.resourceName=amd.com/gpu",
        "--set",
        "training.processesPerNode=2",
    )
    train = container(training_job(r), "training")
    assert train["resources"]["limits"]["amd.com/gpu"] == 2
    assert "nvidia.com/gpu" not in train["resources"]["limits"]
    assert train["resources"]["requests"] == r.values["training"]["resources"]["requests"]


def test_no_gpu_by_default() -> None:
    train = container(training_job(render(None)), "training")
    assert "QATFLOW_TRAIN_DEVICE" not in env_of(train), "TrainingSettings' default device"
    assert set(train["resources"]["limits"]) == {"cpu", "memory"}


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_a_device_the_user_set_is_left_as_set(device: str) -> None:
    r = render(None, "--set", "training.gpu.count=1", "--set", f"training.settings.device={device}")
    assert env_of(container(training_job(r), "training"))["QATFLOW_TRAIN_DEVICE"] == device


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["training.settings.device=cuda"], "device=cuda needs a GPU on the training pod"),
        (
            ["training.gpu.count=1", "training.processesPerNode=2"],
            "training.processesPerNode=2: each process trains on its own GPU, but "
            "training.gpu.count is 1",
        ),
    ],
)
def test_gpu_layouts_that_cannot_work_fail_clearly(assignments: list[str], message: str) -> None:
    assert message in helm_error(*assignments)


# -- presets -----------------------------------------------------------------------------------


def test_preset_is_passed_and_the_users_settings_override_it() -> None:
    r = render(ci("distillation"))
    train = container(training_job(r), "training")
    assert train["args"] == [
        "--log-format",
        "text",
        "--outcome-file",
        "/dev/termination-log",
        "--preset",
        "distillation",
    ]
    assert train_settings_env(train) == {
        "output_dir": "/models",
        "model_name": "bert-qa",
        "student_layers": "3",
    }


def train_settings_env(train: dict[str, Any]) -> dict[str, str]:
    """The training container's settings variables, by setting name."""
    return {
        name.removeprefix(TrainingSettings.env_prefix).lower(): value
        for name, value in env_of(train).items()
        if name.startswith(TrainingSettings.env_prefix)
    }


def test_the_job_gets_exactly_the_users_settings() -> None:
    """Every key the user sets reaches the Job, a default value too (it overrides a preset);
    no other key does."""
    settings = {"mode": "qat", "seed": 7, "epochs": 0.5, "dataset": None, "text_column": "text"}
    values = {"training": {"preset": "distillation", "settings": settings}}
    r = render(None, "--set-json", f"training={json.dumps(values['training'])}")
    train = container(training_job(r), "training")
    assert train_settings_env(train) == {
        "output_dir": "/models",
        "model_name": "bert-qa",
        "mode": "qat",
        "seed": "7",
        "epochs": "0.5",
        "dataset": "",  # null: unset, the preset's or the class default
        "text_column": "text",
    }
    args = train_arguments(train["args"])
    env = {k: v for k, v in env_of(train).items() if k.startswith(TrainingSettings.env_prefix)}
    loaded = TrainingSettings.load(yaml_files=training_cli.settings_files(args), environ=env)
    assert loaded.mode == "qat", "the user's value, though it is the default, beats the preset"
    assert (loaded.seed, loaded.epochs, loaded.text_column) == (7, 0.5, "text")


def test_empty_settings_train_on_the_class_defaults() -> None:
    """training.settings: {} (the chart's default) renders a valid Job whose training runs on
    TrainingSettings' defaults, apart from where the chart puts the model."""
    r = render(None, "--set-json", "training.settings={}")
    assert r.objects == render(None).objects
    train = container(training_job(r), "training")
    assert train_settings_env(train) == {"output_dir": "/models", "model_name": "bert-qa"}
    args = train_arguments(train["args"])
    assert args.presets == []
    env = {k: v for k, v in env_of(train).items() if k.startswith(TrainingSettings.env_prefix)}
    loaded = TrainingSettings.load(yaml_files=training_cli.settings_files(args), environ=env)
    assert loaded == TrainingSettings(output_dir=Path("/models"), model_name="bert-qa")


def test_presets_layer_in_order() -> None:
    r = render(None, "--set", "training.preset={distillation_qat,sst2}")
    assert container(training_job(r), "training")["args"] == [
        "--log-format",
        "text",
        "--outcome-file",
        "/dev/termination-log",
        "--preset",
        "distillation_qat",
        "--preset",
        "sst2",
    ]


def test_the_job_ends_up_with_the_preset_and_the_changed_settings() -> None:
    """The rendered arguments, read by the real `qatflow train` parser, and the rendered
    environment, resolved the way the training command resolves them (presets < environment)."""
    r = render(ci("distillation"))
    train = container(training_job(r), "training")
    args = train_arguments(train["args"])
    assert args.presets == ["distillation"] and args.log_format == "text"
    env = {k: v for k, v in env_of(train).items() if k.startswith(TrainingSettings.env_prefix)}
    settings = TrainingSettings.load(yaml_files=training_cli.settings_files(args), environ=env)
    assert settings.mode == "distillation", "the preset's, not the chart's default qat"
    assert settings.student_layers == 3
    assert settings.model_name == "bert-qa" and str(settings.output_dir) == "/models"


def test_ci_presets_are_shipped() -> None:
    from qatflow.training.presets import names

    for values_file in sorted((CHART / "ci").glob("*.yaml")):
        preset = chart_values(values_file)["training"]["preset"]
        for name in [preset] if isinstance(preset, str) else preset:
            assert not name or name in names(), f"{values_file.name}: unknown preset {name}"


@pytest.mark.parametrize("preset", ["../qat", "Distillation", "qat.yaml", "{qat,../x}"])
def test_schema_rejects_preset_paths(preset: str) -> None:
    assert "training/preset" in helm_error(f"training.preset={preset}")


# -- the task ----------------------------------------------------------------------------------


def test_classification_trains_and_serves_the_named_classifier() -> None:
    r = render(ci("classification"))
    env = env_of(container(training_job(r), "training"))
    assert env["QATFLOW_TRAIN_TASK"] == "text-classification"
    assert env["QATFLOW_TRAIN_MODEL_NAME"] == "bert-classifier"
    assert env["QATFLOW_TRAIN_TEXT_COLUMN"] == "sentence"
    assert env_of(container(r.deployment()))["QATFLOW_SERVE_MODEL_NAME"] == "bert-classifier"
    pod_env = env_of(container(r.test_pod() or {}))
    assert pod_env["TEXT"] == r.values["tests"]["text"]
    assert pod_env["EXPECTED_LABEL"] == "positive" and "TEXT_PAIR" not in pod_env
    notes = install_notes("--values", str(ci("classification")))
    assert "Ask it a question" not in notes and "--question" not in notes
    assert f'qatflow ask --url http://127.0.0.1:8080 \\\n       --text "{pod_env["TEXT"]}"' in notes
    assert 'classifies the text above, expects "positive"' in notes


def test_classification_test_pod_sends_a_pair_when_given() -> None:
    r = render(ci("classification"), "--set", "tests.textPair=A second sentence.")
    assert env_of(container(r.test_pod() or {}))["TEXT_PAIR"] == "A second sentence."


def test_the_task_defaults_to_the_settings_default() -> None:
    """With no training.settings.task the chart's NOTES and helm test pod follow the task
    TrainingSettings trains by default: qat.trainingTask's one default, checked here."""
    training = (CHART / "templates" / "_training.tpl").read_text(encoding="utf-8")
    defined = re.search(r'define "qat.trainingTask".*?default "([a-z-]+)"', training, re.DOTALL)
    assert defined is not None, "the chart's default task (qat.trainingTask) moved"
    assert defined.group(1) == TrainingSettings.model_fields["task"].default
    assert defined.group(1) == tasks.QUESTION_ANSWERING and defined.group(1) in tasks.TASKS
    r = render(None)
    assert "QATFLOW_TRAIN_TASK" not in env_of(container(training_job(r), "training"))
    pod_env = env_of(container(r.test_pod() or {}))
    assert pod_env["EXPECTED_ANSWER"] == r.values["tests"]["expectedAnswer"]
    assert "TEXT" not in pod_env
    assert "Ask it a question" in install_notes()


def test_schema_knows_the_tasks_and_modes() -> None:
    assert "training/settings/task" in helm_error("training.settings.task=translation")
    assert "training/settings/mode" in helm_error("training.settings.mode=pruning")
    for mode in ("qat", "distillation", "distillation_qat", "sparsity"):
        r = render(None, "--set", f"training.settings.mode={mode}")
        assert env_of(container(training_job(r), "training"))["QATFLOW_TRAIN_MODE"] == mode


# -- the PyTorchJob example in the docs --------------------------------------------------------


def pytorchjob_example() -> dict[str, Any]:
    docs = (CHART.parents[1] / "docs" / "kubernetes.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.DOTALL)
    (block,) = [b for b in blocks if "kind: PyTorchJob" in b]
    return yaml.safe_load(block)


def test_pytorchjob_example_runs_qatflow_train_under_torchrun(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = pytorchjob_example()
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"} and replicas["Master"]["replicas"] == 1
    assert job["spec"]["runPolicy"]["backoffLimit"] == 0
    for role in replicas.values():
        assert role["restartPolicy"] == "Never"
        (pytorch,) = role["template"]["spec"]["containers"]
        assert pytorch["name"] == "pytorch"
        assert {"name": "pytorchjob-port", "containerPort": 23456} in pytorch["ports"]
        # What the operator sets on worker 1 of 3 pods, as torchrun reads it.
        nodes = sum(r["replicas"] for r in replicas.values())
        monkeypatch.setenv("PET_NNODES", str(nodes))
        monkeypatch.setenv("PET_NODE_RANK", "2")
        monkeypatch.setenv("PET_NPROC_PER_NODE", job["spec"]["nprocPerNode"])
        run = pytest.importorskip("torch.distributed.run")
        argv = as_kubelet_runs_it(
            pytorch, MASTER_ADDR="qatflow-train-master-0", MASTER_PORT="23456"
        )
        parsed = run.get_args_parser().parse_args(argv[1:])
        assert argv[0] == "torchrun"
        assert (parsed.nnodes, parsed.node_rank, parsed.nproc_per_node) == ("3", 2, "2")
        assert (parsed.master_addr, parsed.master_port) == ("qatflow-train-master-0", 23456)
        assert parsed.no_python and parsed.training_script == "qatflow"
        assert parsed.training_script_args[0] == "train"
        # The settings variables are the training settings' own.
        env = {item["name"]: item["value"] for item in pytorch["env"]}
        train_env = {k: v for k, v in env.items() if k.startswith(TrainingSettings.env_prefix)}
        settings = TrainingSettings.load(environ=train_env)
        assert str(settings.output_dir) == "/models" and settings.num_threads == 2
        mounts = {m["mountPath"]: m["name"] for m in pytorch["volumeMounts"]}
        volumes = {v["name"]: v for v in role["template"]["spec"]["volumes"]}
        assert "persistentVolumeClaim" in volumes[mounts["/models"]]
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert pytorch["securityContext"]["readOnlyRootFilesystem"] is True


# -- the rendered gang, run on loopback ----------------------------------------------------------

# Stands in for `qatflow train` in each process: joins the process group torchrun set up.
GANG_MEMBER = """
import json, os, sys
import torch
import torch.distributed as dist
dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1])
dist.all_reduce(total)
report = {"rank": dist.get_rank(), "world": dist.get_world_size(), "total": int(total)}
with open(os.path.join(sys.argv[1], f"rank{dist.get_rank()}.json"), "w") as out:
    json.dump(report, out)
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_rendered_pods_form_one_torchrun_gang(tmp_path: Path) -> None:
    """Each pod's rendered torchrun line, run as its own process group on loopback (the DNS
    name of pod 0 pointed at 127.0.0.1, a stand-in script for `qatflow train`), joins one
    process group of nodes x processes ranks."""
    pytest.importorskip("torch.distributed.run")
    port = free_port()
    r = render(
        None,
        "--set",
        "training.nodes=2",
        "--set",
        "persistence.accessModes={ReadWriteMany}",
        "--set",
        f"training.rendezvousPort={port}",
    )
    train = container(training_job(r), "training")
    pods = []
    for index in range(2):
        argv = as_kubelet_runs_it(train, JOB_COMPLETION_INDEX=str(index))
        launcher = argv[: argv.index("--no-python") + 1]
        launcher = [a.replace(f"{JOB}-0.{JOB}", "127.0.0.1") for a in launcher]
        command = [sys.executable, "-m", "torch.distributed.run", *launcher[1:]]
        command += [sys.executable, "-c", GANG_MEMBER, str(tmp_path)]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "GLOO_SOCKET_IFNAME": "lo",
            "OMP_NUM_THREADS": "1",
        }
        pods.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    try:
        outputs = [pod.communicate(timeout=180)[0] for pod in pods]
    finally:
        for pod in pods:
            if pod.poll() is None:
                pod.kill()
    assert [pod.returncode for pod in pods] == [0, 0], "\n".join(outputs)
    reports = [yaml.safe_load((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [(rep["rank"], rep["world"], rep["total"]) for rep in reports] == [(0, 2, 3), (1, 2, 3)]
