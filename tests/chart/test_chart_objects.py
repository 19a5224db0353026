"""Assertions on the objects the chart renders for each values file in helm/qat/ci."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from qatflow.core import outcome
from qatflow.core.backends import (
    DEFAULT_SERVING_BACKEND,
    INFERENCE_BACKENDS,
    OVMS,
    SERVING_BACKENDS,
)
from qatflow.core.tasks import TEXT_CLASSIFICATION
from qatflow.ovms.config import OVMS_IMAGE, model_server_config, ready_path, server_args
from qatflow.serving.settings import ServeSettings
from qatflow.training.config import TrainingSettings

from .conftest import FULLNAME, NAMESPACE, RELEASE, Rendered, chart_values, render

pytestmark = pytest.mark.chart

BACKENDS = set(INFERENCE_BACKENDS)
# Set by the chart from other values, not from training.settings / inference.settings.
TRAIN_FROM_CHART = {"output_dir", "model_name"}
SERVE_FROM_CHART = {"backend", "models_dir", "model_name", "model_version", "host", "port"}
TERMINATION_LOG = "/dev/termination-log"


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def hook_weight(obj: dict[str, Any]) -> int:
    return int(annotations_of(obj).get("helm.sh/hook-weight", "0"))


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def container(obj: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = pod_spec(obj)["containers"]
    if name is None:
        (only,) = containers
        return only
    return next(c for c in containers if c["name"] == name)


def models_volume(obj: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in pod_spec(obj)["volumes"] if v["name"] == "models")


def models_mount(obj: dict[str, Any], container_name: str | None = None) -> dict[str, Any]:
    mounts = container(obj, container_name)["volumeMounts"]
    return next(m for m in mounts if m["name"] == "models")


def workloads(r: Rendered) -> list[dict[str, Any]]:
    return r.of_kind("Deployment") + r.of_kind("Job") + r.of_kind("Pod")


# -- the chosen backend ------------------------------------------------------------------------


def test_only_the_chosen_backend_renders(rendered: Rendered) -> None:
    backend = rendered.values["inference"]["backend"]
    deployment = rendered.deployment()
    assert deployment["metadata"]["name"] == f"{FULLNAME}-{backend}"
    service = rendered.service()
    assert service["metadata"]["name"] == f"{FULLNAME}-{backend}"
    names = " ".join(obj["metadata"]["name"] for obj in rendered.objects)
    for other in BACKENDS - {backend}:
        assert f"-{other}" not in names
    configmaps = rendered.of_kind("ConfigMap")
    assert [c["metadata"]["name"] for c in configmaps] == (
        [f"{FULLNAME}-ovms"] if backend == "ovms" else []
    )
    image = container(deployment)["image"]
    if backend == "ovms":
        assert image.endswith(OVMS_IMAGE), "the pinned official OVMS image"
    else:
        assert f"qatflow-{backend}:" in image
        assert env_of(container(deployment))["QATFLOW_SERVE_BACKEND"] == backend


def test_service_selects_the_deployment_and_its_ports(rendered: Rendered) -> None:
    deployment = rendered.deployment()
    service = rendered.service()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port_names = {p["name"] for p in container(deployment)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert labels["app.kubernetes.io/component"] == "inference"


@pytest.mark.parametrize("backend", ["triton", "OVMS", ""])
def test_invalid_backend_fails_with_the_charts_message(backend: str) -> None:
    from .conftest import CHART, run_helm

    result = run_helm(
        "template", RELEASE, str(CHART), "--set", f"inference.backend={backend}", check=False
    )
    assert result.returncode != 0
    assert "inference.backend must be one of optimum, onnxruntime, ovms" in result.stderr
    assert f'(got "{backend}")' in result.stderr


def test_the_chart_offers_the_backends_of_the_core_registry() -> None:
    """inference.backend takes qatflow.core.backends' names: the chart's validation list, the
    values and schema that document it, an image per serving backend, and the serving backend
    each renders into the Deployment."""
    from .conftest import CHART

    validations = (CHART / "templates" / "_validations.tpl").read_text(encoding="utf-8")
    listed = re.search(r"\$backends := list ((?:\"[a-z]+\" ?)+)", validations)
    assert listed is not None, "the chart's list of backends (qat.backend) moved"
    assert tuple(re.findall(r'"([a-z]+)"', listed.group(1))) == INFERENCE_BACKENDS

    values = chart_values(None)["inference"]
    assert values["backend"] == DEFAULT_SERVING_BACKEND
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    inference_schema = schema["properties"]["inference"]["properties"]
    documented = next(
        line
        for line in (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
        if "@param inference.backend " in line
    )
    for backend in INFERENCE_BACKENDS:
        assert backend in values and backend in inference_schema, backend
        assert backend in documented and backend in inference_schema["backend"]["description"]
    for backend in SERVING_BACKENDS:
        assert values[backend]["image"]["repository"] == f"qatflow-{backend}"
        deployment = render(None, "--set", f"inference.backend={backend}").deployment()
        assert env_of(container(deployment))["QATFLOW_SERVE_BACKEND"] == backend
    assert OVMS not in SERVING_BACKENDS


# -- the training hook -------------------------------------------------------------------------


def test_training_job_is_a_pre_install_hook(rendered: Rendered) -> None:
    job = rendered.job()
    training = rendered.values["training"]
    if not training["enabled"]:
        assert job is None, "inference-only values render no training Job"
        return
    assert job is not None
    notes = annotations_of(job)
    hooks = set(notes["helm.sh/hook"].split(","))
    expected = {"pre-install", "pre-upgrade"} if training["retrainOnUpgrade"] else {"pre-install"}
    assert hooks == expected
    assert "helm.sh/hook-weight" in notes
    assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation", (
        "no hook-succeeded: the finished Job keeps its logs for kubectl logs"
    )
    spec = job["spec"]
    assert spec["ttlSecondsAfterFinished"] == training["ttlSecondsAfterFinished"]
    assert spec["activeDeadlineSeconds"] == training["activeDeadlineSeconds"]
    train = container(job, "training")
    if training["nodes"] > 1:
        assert spec["backoffLimit"] == 0, "a gang cannot replace one lost pod"
        assert train["command"][0] == "torchrun"
    else:
        assert spec["backoffLimit"] == training["backoffLimit"]
        assert "completionMode" not in spec
        assert train["command"] == ["python", "-m", "qatflow.training"]
    presets = [training["preset"]] if isinstance(training["preset"], str) else training["preset"]
    # The outcome goes where Kubernetes keeps it in the pod's status for `qatflow status`.
    assert train["terminationMessagePath"] == TERMINATION_LOG
    assert train["terminationMessagePolicy"] == "FallbackToLogsOnError"
    expected_args = ["--log-format", training["logFormat"], "--outcome-file", TERMINATION_LOG]
    assert train["args"] == expected_args + [
        word for name in presets if name for word in ("--preset", name)
    ]


def test_failed_training_fails_the_job_at_once(rendered: Rendered) -> None:
    job = rendered.job()
    if job is None:
        assert not rendered.values["training"]["enabled"]
        return  # inference only: nothing to check
    spec = job["spec"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert spec["backoffLimit"] <= 1 and spec["activeDeadlineSeconds"] > 0
    rules = spec["podFailurePolicy"]["rules"]
    fail_job = next(rule for rule in rules if rule["action"] == "FailJob")
    assert fail_job["onExitCodes"]["containerName"] == "training"
    assert fail_job["onExitCodes"]["operator"] == "In"
    # The training command's own failure exit codes: no retry can fix them.
    assert fail_job["onExitCodes"]["values"] == list(outcome.FAILURE_EXIT_CODES)
    assert outcome.EXIT_PUBLISHED not in fail_job["onExitCodes"]["values"]


def test_everything_the_hook_uses_exists_before_it(rendered: Rendered) -> None:
    """Pre-install hooks run before ordinary objects exist: what the Job mounts or runs as must
    be a pre-install hook of lower weight that is kept, or exist before the install."""
    job = rendered.job()
    if job is None:
        assert not rendered.values["training"]["enabled"]
        return  # inference only: nothing to check
    weight = hook_weight(job)
    spec = pod_spec(job)
    needed: list[tuple[str, str]] = [("ServiceAccount", spec["serviceAccountName"])]
    for volume in spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            needed.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        if "configMap" in volume:
            needed.append(("ConfigMap", volume["configMap"]["name"]))
    for item in spec["containers"] + spec.get("initContainers", []):
        for source in item.get("envFrom", []):
            if "configMapRef" in source:
                needed.append(("ConfigMap", source["configMapRef"]["name"]))
    persistence = rendered.values["persistence"]
    for kind, name in needed:
        obj = rendered.named(kind, name)
        if obj is None:
            pre_existing = (
                kind == "PersistentVolumeClaim" and name == persistence["existingClaim"]
            ) or (kind == "ServiceAccount" and not rendered.values["serviceAccount"]["create"])
            assert pre_existing, f"the hook Job needs {kind} {name}, which nothing creates first"
            continue
        notes = annotations_of(obj)
        assert "pre-install" in notes.get("helm.sh/hook", "").split(","), f"{kind} {name}"
        assert hook_weight(obj) < weight, f"{kind} {name} must be created before the Job"
        assert notes.get("helm.sh/resource-policy") == "keep", f"{kind} {name}"


def test_the_pvc_hook_keeps_the_models(rendered: Rendered) -> None:
    persistence = rendered.values["persistence"]
    claims = rendered.of_kind("PersistentVolumeClaim")
    if persistence["hostPath"]["path"] or persistence["existingClaim"]:
        assert claims == []
        return
    (claim,) = claims
    notes = annotations_of(claim)
    assert notes["helm.sh/resource-policy"] == "keep"
    # No delete policy: any would delete the models. Helm's default (before-hook-creation)
    # would too, on a reinstall: so the chart renders no claim that exists already (`lookup`,
    # which `helm template` cannot do; tests/cluster reinstalls on a real API server).
    assert "helm.sh/hook-delete-policy" not in notes
    assert claim["spec"]["accessModes"] == persistence["accessModes"]
    assert claim["spec"]["resources"]["requests"]["storage"] == persistence["size"]


def test_no_hooks_rendering_has_no_job(rendered: Rendered) -> None:
    no_hooks = render(rendered.values_file, "--no-hooks")
    assert no_hooks.of_kind("Job") == []
    assert all("helm.sh/hook" not in annotations_of(o) for o in no_hooks.objects)
    # What inference needs is still there.
    assert len(no_hooks.of_kind("Deployment")) == 1
    assert len(no_hooks.of_kind("Service")) == 1
    sa = pod_spec(no_hooks.deployment())["serviceAccountName"]
    if rendered.values["serviceAccount"]["create"]:
        assert no_hooks.named("ServiceAccount", sa) is not None


def test_inference_only_values_serve_the_named_model() -> None:
    from .conftest import CHART

    values = CHART / "ci" / "inference-only-values.yaml"
    r = render(values, "--no-hooks")
    assert r.values["training"]["enabled"] is False
    deployment = r.deployment()
    env = env_of(container(deployment))
    assert env["QATFLOW_SERVE_MODEL_NAME"] == r.values["model"]["name"]
    assert env["QATFLOW_SERVE_MODEL_VERSION"] == str(r.values["model"]["version"])
    volume = models_volume(deployment)
    assert volume["persistentVolumeClaim"]["claimName"] == r.values["persistence"]["existingClaim"]
    assert r.of_kind("PersistentVolumeClaim") == []


def test_retrain_on_upgrade_flag() -> None:
    r = render(None, "--set", "training.retrainOnUpgrade=true")
    assert annotations_of(r.job() or {})["helm.sh/hook"] == "pre-install,pre-upgrade"


# -- the shared model volume -------------------------------------------------------------------


def test_model_volume_is_shared_read_write_for_training_only(rendered: Rendered) -> None:
    deployment = rendered.deployment()
    inference_mount = models_mount(deployment)
    assert inference_mount["readOnly"] is True
    mount_path = rendered.values["persistence"]["mountPath"]
    assert inference_mount["mountPath"] == mount_path
    job = rendered.job()
    if job is not None:
        training_mount = models_mount(job, "training")
        assert training_mount["readOnly"] is False
        assert models_volume(job) == models_volume(deployment), "the same volume"
        assert training_mount.get("subPath") == inference_mount.get("subPath")
        assert env_of(container(job, "training"))["QATFLOW_TRAIN_OUTPUT_DIR"] == mount_path
    persistence = rendered.values["persistence"]
    volume = models_volume(deployment)
    if persistence["hostPath"]["path"]:
        assert volume["hostPath"]["path"] == persistence["hostPath"]["path"]
    elif persistence["existingClaim"]:
        assert volume["persistentVolumeClaim"]["claimName"] == persistence["existingClaim"]
    else:
        assert volume["persistentVolumeClaim"]["claimName"] == f"{FULLNAME}-models"
    if rendered.values["inference"]["backend"] != "ovms":
        assert env_of(container(deployment))["QATFLOW_SERVE_MODELS_DIR"] == mount_path


# -- probes ------------------------------------------------------------------------------------


def _port_number(item: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in item["ports"] if p["name"] == port)


def test_probes_point_at_real_paths_and_ports(rendered: Rendered) -> None:
    deployment = rendered.deployment()
    server = container(deployment)
    probes = {
        kind: server[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")
    }
    ports = {kind: _port_number(server, probe["port"]) for kind, probe in probes.items()}
    values = rendered.values
    if values["inference"]["backend"] == "ovms":
        rest = values["inference"]["ovms"]["restPort"]
        args = server["args"]
        assert args[args.index("--rest_port") + 1] == str(rest)
        assert set(ports.values()) == {rest}
        assert probes["readiness"]["path"] == ready_path(values["model"]["name"])
        assert probes["liveness"]["path"] == "/v2/health/live"
    else:
        http = int(env_of(server)["QATFLOW_SERVE_PORT"])
        assert set(ports.values()) == {http}
        assert probes["readiness"]["path"] == "/v2/health/ready"
        assert probes["liveness"]["path"] == "/v2/health/live"
        assert probes["startup"]["path"] == "/v2/health/live"


# -- OpenVINO Model Server ---------------------------------------------------------------------


def test_ovms_config_mirrors_the_generated_config() -> None:
    from .conftest import CHART

    r = render(CHART / "ci" / "ovms-values.yaml")
    ovms = r.values["inference"]["ovms"]
    (configmap,) = r.of_kind("ConfigMap")
    config = json.loads(configmap["data"]["config.json"])
    expected = model_server_config(
        r.values["model"]["name"],
        inputs=ovms["inputs"],
        models_mount=r.values["persistence"]["mountPath"],
        performance_hint=ovms["performanceHint"],
    )
    expected["model_config_list"][0]["config"]["nireq"] = ovms["nireq"]
    assert config == expected
    server = container(r.deployment())
    assert server["args"][:8] == server_args(
        grpc_port=ovms["grpcPort"],
        rest_port=ovms["restPort"],
        poll_seconds=ovms["fileSystemPollWaitSeconds"],
    )
    assert {p["name"]: p["containerPort"] for p in server["ports"]} == {
        "grpc": ovms["grpcPort"],
        "rest": ovms["restPort"],
    }
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/config" and mounts["config"]["readOnly"]
    pod_annotations = r.deployment()["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/config" in pod_annotations, "pods roll when the config changes"


def test_ovms_serves_a_pinned_version_when_named() -> None:
    r = render(None, "--set", "inference.backend=ovms", "--set", "model.version=3")
    (configmap,) = r.of_kind("ConfigMap")
    config = json.loads(configmap["data"]["config.json"])["model_config_list"][0]["config"]
    assert config["model_version_policy"] == {"specific": {"versions": [3]}}
    # The client asks for that version: its tokenizer, and the one OVMS serves.
    args = container(r.test_pod())["args"]
    assert args[args.index("--model-version") + 1] == "3"


# -- settings env ------------------------------------------------------------------------------


def _prefixed(env: dict[str, str], prefix: str) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith(prefix)}


def test_training_env_is_exactly_the_users_settings(rendered: Rendered) -> None:
    """The Job gets the keys of training.settings, nothing else (the defaults live in
    TrainingSettings alone), beside what the chart sets from other values."""
    job = rendered.job()
    if job is None:
        assert not rendered.values["training"]["enabled"]
        return  # inference only: nothing to check
    env = _prefixed(env_of(container(job, "training")), TrainingSettings.env_prefix)
    by_key = {name.removeprefix(TrainingSettings.env_prefix).lower(): name for name in env}
    for key, name in by_key.items():
        assert name == TrainingSettings.env_name(key)
    training = rendered.values["training"]
    expected = dict(training["settings"])
    if training["gpu"]["count"] > 0 and expected.get("device") is None:
        expected["device"] = "cuda"
    assert set(by_key) == set(expected) | TRAIN_FROM_CHART
    # The service accepts what the chart renders; what it does not get keeps its default (a
    # preset's value instead is test_training_layouts' concern).
    settings = TrainingSettings.load(environ=env)
    assert str(settings.output_dir) == rendered.values["persistence"]["mountPath"]
    assert settings.model_name == rendered.values["model"]["name"]
    for key in set(TrainingSettings.fields()) - TRAIN_FROM_CHART:
        value = expected.get(key)
        default = TrainingSettings.model_fields[key].get_default(call_default_factory=True)
        assert getattr(settings, key) == (default if value is None else value), key


def test_serving_env_names_match_the_service_settings(rendered: Rendered) -> None:
    deployment = rendered.deployment()
    if rendered.values["inference"]["backend"] == "ovms":
        assert _prefixed(env_of(container(deployment)), "QATFLOW_") == {}
        return
    env = _prefixed(env_of(container(deployment)), ServeSettings.env_prefix)
    for name in env:
        key = name.removeprefix(ServeSettings.env_prefix).lower()
        assert key in ServeSettings.fields(), f"{name} is not a ServeSettings field"
        assert name == ServeSettings.env_name(key)
    keys = {name.removeprefix(ServeSettings.env_prefix).lower() for name in env}
    assert keys == set(ServeSettings.fields()), "every service setting is reachable from values"
    assert (
        set(rendered.values["inference"]["settings"])
        == set(ServeSettings.fields()) - SERVE_FROM_CHART
    )
    settings = ServeSettings.load(environ=env)
    assert settings.backend == rendered.values["inference"]["backend"]
    assert settings.port == rendered.values["inference"]["port"]
    assert settings.model_version == rendered.values["model"]["version"]


def test_values_defaults_equal_the_services_defaults() -> None:
    from .conftest import chart_values

    values = chart_values(None)
    assert values["training"]["settings"] == {}, "training defaults live in TrainingSettings"
    for key, value in values["inference"]["settings"].items():
        assert value == ServeSettings.model_fields[key].get_default(call_default_factory=True), key
    assert values["inference"]["port"] == ServeSettings.model_fields["port"].default


def test_proxy_env_is_passed_through() -> None:
    r = render(None, "--set", "proxy.httpsProxy=http://proxy:3128", "--set", "proxy.noProxy=.svc")
    for workload in workloads(r):
        env = env_of(container(workload, None if workload["kind"] != "Job" else "training"))
        assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy:3128"
        assert env["NO_PROXY"] == ".svc"
        assert "HTTP_PROXY" not in env


# -- security ----------------------------------------------------------------------------------


def test_pods_are_hardened(rendered: Rendered) -> None:
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        where = f"{workload['kind']} {workload['metadata']['name']}"
        assert (
            not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        ), where
        assert spec["automountServiceAccountToken"] is False, where
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] > 0, where
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", where
        for item in spec["containers"] + spec.get("initContainers", []):
            security = item["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert security["privileged"] is False, where
            assert "add" not in security["capabilities"], where
            assert item["resources"]["limits"]["memory"], where
            tmp = next(m for m in item["volumeMounts"] if m["mountPath"] == "/tmp")
            volume = next(v for v in spec["volumes"] if v["name"] == tmp["name"])
            assert "emptyDir" in volume, f"{where}: writable scratch on a read-only root"


def test_placement_per_component() -> None:
    from .conftest import CHART

    r = render(CHART / "ci" / "onnxruntime-values.yaml")
    training = pod_spec(r.job() or {})
    inference = pod_spec(r.deployment())
    assert training["nodeSelector"] == {"qatflow/role": "training"}
    assert training["tolerations"][0]["key"] == "qatflow/training"
    assert "nodeSelector" not in inference and "tolerations" not in inference
    assert training["imagePullSecrets"] == inference["imagePullSecrets"] == [{"name": "regcred"}]


# -- autoscaling -------------------------------------------------------------------------------


def test_hpa_only_when_enabled(rendered: Rendered) -> None:
    autoscaling = rendered.values["inference"]["autoscaling"]
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    deployment = rendered.deployment()
    if not autoscaling["enabled"]:
        assert hpas == []
        assert deployment["spec"]["replicas"] == rendered.values["inference"]["replicaCount"]
        return
    (hpa,) = hpas
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["minReplicas"] == autoscaling["minReplicas"]
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}


# -- helm test pod and notes -------------------------------------------------------------------


def test_helm_test_pod_asks_the_deployed_service(rendered: Rendered) -> None:
    pod = rendered.test_pod()
    assert pod is not None
    assert annotations_of(pod)["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    ask = container(pod)
    assert ask["command"][:2] == ["python", "-c"]
    assert "qatflow.cli" in ask["command"][2] and '"ask"' in ask["command"][2]
    env = env_of(ask)
    tests = rendered.values["tests"]
    if rendered.values["training"]["settings"].get("task") == TEXT_CLASSIFICATION:
        assert env["TEXT"] == tests["text"] and env["EXPECTED_LABEL"] == tests["expectedLabel"]
        assert "QUESTION" not in env
    else:
        assert env["QUESTION"] == tests["question"] and env["CONTEXT"] == tests["context"]
        assert env["EXPECTED_ANSWER"] == tests["expectedAnswer"]
        assert "TEXT" not in env
    backend = rendered.values["inference"]["backend"]
    service = f"{FULLNAME}-{backend}"
    if backend == "ovms":
        grpc = rendered.values["inference"]["ovms"]["grpcPort"]
        assert ask["args"][:4] == ["--grpc", f"{service}:{grpc}", "--protocol", "kserve"]
        assert models_mount(pod)["readOnly"] is True, "the tokenizer comes from the volume"
    else:
        assert ask["args"] == ["--url", f"http://{service}:{rendered.values['inference']['port']}"]


def test_notes_tell_how_to_watch_reach_and_query() -> None:
    from .conftest import install_notes

    for backend in sorted(BACKENDS):
        notes = install_notes("--set", f"inference.backend={backend}")
        assert f"kubectl -n {NAMESPACE} logs -f job/{FULLNAME}-training" in notes
        assert "--timeout 30m" in notes, "activeDeadlineSeconds 1500 s + 5 minutes"
        assert f"qatflow status {RELEASE}" in notes
        assert f"helm test {RELEASE}" in notes
        if backend == "ovms":
            assert "qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model bert-qa" in notes
        else:
            assert "qatflow ask --url http://127.0.0.1:8080" in notes


def test_training_gets_a_writable_copy_of_the_prebuilt_extension(tmp_path) -> None:
    """torch takes a lock file next to a compiled extension, so the image's read-only copy is
    copied to the scratch emptyDir that TORCH_EXTENSIONS_DIR then points at."""
    r = render(None)
    job = r.job()
    assert job is not None
    (init,) = pod_spec(job)["initContainers"]
    assert init["image"] == container(job, "training")["image"]
    command, (source, target) = init["command"][:3], init["command"][3:]
    assert source == r.values["training"]["torchExtensionsDir"] == "/opt/torch_extensions"
    assert env_of(container(job, "training"))["TORCH_EXTENSIONS_DIR"] == target
    assert (
        target.startswith("/tmp/") and {"name": "tmp", "mountPath": "/tmp"} in init["volumeMounts"]
    )
    # The rendered script itself, on this machine.
    built = tmp_path / "image" / "nncf" / "quantized_functions_cpu" / "2.13.0+cpu"
    built.mkdir(parents=True)
    (built / "quantized_functions_cpu.so").write_bytes(b"\x7fELF")
    python = [sys.executable, *command[1:]]
    copy = tmp_path / "scratch"
    subprocess.run([*python, str(tmp_path / "image"), str(copy)], check=True, timeout=60)
    assert (copy / built.relative_to(tmp_path / "image") / "quantized_functions_cpu.so").exists()
    missing = subprocess.run(
        [*python, str(tmp_path / "nothing"), str(copy)], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 0 and "NNCF builds them at run time" in missing.stdout
