"""Every shell command in README.md and docs/*.md that needs no cluster, run by bash as written
on the tests' tiny models, or listed in ``NOT_HERE`` with the reason. (The ``helm``,
``kubectl`` and ``qatflow status`` ones run in tests/cluster/test_documented_commands.py.)

What the runs change, and only this:

- cwd is a scratch directory whose ``.venv`` is this Python's environment; the docs' bare
  ``qatflow``, ``torchrun`` and ``python`` are that environment's (README: an activated venv);
- ``QATFLOW_TRAIN_*`` variables point every training at a tiny model and tiny data sizes
  (``tiny_environment``); a command's own ``--set``, ``--preset`` and ``--config`` apply over
  them or under them exactly as the docs say (``--set`` beats the environment, which beats
  presets and files). The environment also sets ``student_layers: 1`` (the tiny models have 2);
- documented ports (``DOCUMENTED_PORTS``) become free loopback ports, since other test runs
  share this machine; a service started without ``--port`` gets its port from
  ``QATFLOW_SERVE_PORT``;
- a placeholder is replaced where the docs use one (each ``Step.substitute`` says which).

Simulated: OpenVINO Model Server, by the gRPC stand-in tests/ovms_fixture_server.py (OVMS
cannot be installed here), started on the documented gRPC port when a command needs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qatflow.serving.launcher import ServiceProcess, free_port
from qatflow.training.config import TrainingSettings
from tests.conftest import tiny_classifier_overrides, tiny_training_overrides
from tests.documented import CLUSTER_COMMAND, CLUSTER_DOCUMENTS, REPO, Documented, as_written
from tests.documented import documented_commands as commands_in
from tests.ovms_fixture_server import FixtureServer

DOCUMENTS = ("README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")))
_ANY = re.compile(r"\S")
# The ports the docs give services (8082: one more service started without --port).
DOCUMENTED_PORTS = (8080, 8081, 8082, 9000)
_PORTS = re.compile(r"\b({})\b".format("|".join(map(str, DOCUMENTED_PORTS))))


def documented_commands() -> list[Documented]:
    """Every command of the bash fences that needs no cluster."""
    every = commands_in(DOCUMENTS, _ANY, languages=("bash", "sh"))
    return [command for command in every if not CLUSTER_COMMAND.search(command.text)]


@dataclass(frozen=True)
class Step:
    command: str
    # A text the output (or ``then``'s) must hold.
    expect: str
    # Shell run right after the command in the same bash, to show what it wrote.
    then: str = ""
    # Which tiny model the trainings of this step start from: "qa" or "classifier".
    model: str = "qa"
    # A service: started in the background, waited for on this documented port, stopped with
    # SIGTERM at the end of the scenario (and must exit 0).
    serves: int | None = None
    # (documented, run instead): where the docs use a placeholder.
    substitute: tuple[tuple[str, str], ...] = ()
    env: dict[str, str] = field(default_factory=dict)


# The README's "Use it" list in order, on models it trains itself, with training.md's and the
# clients of docs/kubernetes.md and docs/docker.md that ask those models (bert-qa).
USE: tuple[Step | tuple[Step, ...], ...] = (
    # The trainings two at a time (a tuple runs together), as a user with two terminals would:
    # one core each.
    (
        Step(
            ".venv/bin/qatflow train --config my.yaml --set epochs=2 --output-dir models",
            "published bert-qa version 1",
        ),
        Step(
            ".venv/bin/qatflow train --set task=text-classification --output-dir models",
            "published bert-classifier version 1",
            model="classifier",
        ),
    ),
    (
        # Distils from the FP32 model the first run left in models/.work.
        Step(
            "qatflow train --preset distillation --set teacher_model=models/.work/bert-qa-fp32",
            "published bert-qa version 2",
        ),
        Step(
            "qatflow train --set task=text-classification "
            "--set dataset=embedded:synthetic-paraphrase --set model_name=bert-paraphrase",
            "published bert-paraphrase version 1",
            model="classifier",
        ),
    ),
    # Versions 3 and 4, in the order they finish.
    (
        Step(
            ".venv/bin/qatflow train --preset distillation_qat --output-dir models",
            "published bert-qa version ",
        ),
        Step(
            ".venv/bin/torchrun --standalone --nproc-per-node=2 --no-python "
            ".venv/bin/qatflow train",
            "[rank 0/2] published bert-qa version ",
        ),
    ),
    # The services and the commands that need none of them, then every client at once.
    (
        Step(
            ".venv/bin/qatflow serve --backend optimum --models-dir models --model-name bert-qa "
            "--port 8080",
            "",
            serves=8080,
        ),
        Step(
            ".venv/bin/qatflow serve --backend optimum --models-dir models "
            "--model-name bert-classifier --port 8081",
            "",
            serves=8081,
        ),
        Step(
            ".venv/bin/qatflow ovms-config --models-dir models --model bert-qa",
            '"base_path": "/models/bert-qa"',
        ),
    ),
    (
        Step(
            '.venv/bin/qatflow ask --url http://127.0.0.1:8080 --question "Who?" --context "..."',
            "Who?",
        ),
        Step(
            'qatflow ask --url http://127.0.0.1:8080 --question "Where was Alma Bergmann born?" '
            '--context "Alma Bergmann was born in Velmora. '
            'Bruno Kessler works as a florist in Tarnow."',
            "Where was Alma Bergmann born?",
        ),
        Step('qatflow ask --url http://127.0.0.1:8080 --question "..." --context "..."', "span"),
        Step(
            '.venv/bin/qatflow ask --url http://127.0.0.1:8081 --text "The blender is wonderful."',
            "The blender is wonderful.",
        ),
        Step(
            ".venv/bin/qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model bert-qa "
            "--models-dir models ...",
            "Who?",
            substitute=(("...", '--question "Who?" --context "..."'),),
        ),
        Step(
            "qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model bert-qa "
            '--models-dir ./models --question "Where was Alma Bergmann born?" '
            '--context "Alma Bergmann was born in Velmora."',
            "Where was Alma Bergmann born?",
        ),
        Step(
            "qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model bert-qa "
            '--models-dir ./models --question "..." --context "..."',
            "span",
        ),
    ),
)

# docs/serving.md and docs/ovms.md on the tests' published question-answering model (tiny-qa).
QA_REFERENCE: tuple[Step | tuple[Step, ...], ...] = (
    (
        # Without --port: the default, 8080.
        Step("qatflow serve --backend optimum --models-dir models", "", serves=8080),
        Step(
            "qatflow serve --backend onnxruntime --models-dir models --model-name tiny-qa "
            "--port 8081",
            "",
            serves=8081,
        ),
        # The container's settings: /models is the volume's path in the container. The
        # default port 8080 is the first service's here, so this one takes 8082.
        Step(
            "QATFLOW_SERVE_BACKEND=onnxruntime QATFLOW_SERVE_MODELS_DIR=/models "
            "QATFLOW_SERVE_PERFORMANCE_HINT=THROUGHPUT "
            "QATFLOW_SERVE_ORT_PROVIDER_OPTIONS='{\"num_streams\": 2}' python -m qatflow.serving",
            "",
            serves=8082,
            substitute=(("=/models", "=models"),),
        ),
        Step("qatflow ovms-config --model tiny-qa", '"base_path": "/models/tiny-qa"'),
        Step(
            "qatflow ovms-config --model tiny-qa --models-dir models --output config.json",
            '"base_path": "/models/tiny-qa"',
            then="cat config.json",
        ),
    ),
    (
        Step(
            "curl -s localhost:8080/v1/question-answering -H 'content-type: application/json' "
            '-d \'{"question": "Where does Thea Eckhart live?", '
            '"context": "Thea Eckhart, a botanist, lives in Velmora."}\'',
            '"answer":',
        ),
        Step("qatflow ask --url http://127.0.0.1:8080 --input questions.csv --json", '"answer":'),
        # docs/docker.md's ONNX Runtime service on 8081: this scenario's too.
        Step('qatflow ask --url http://127.0.0.1:8081 --question "..." --context "..."', "span"),
        Step(
            "qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model tiny-qa "
            '--models-dir models --question "Who is the employer of Ulla Fromberg?" '
            '--context "Ulla Fromberg works for Velmora Shipping. '
            'Felix Abendroth works for Castell Glass."',
            "Who is the employer of Ulla Fromberg?",
        ),
        Step(
            "qatflow ask --grpc 127.0.0.1:9000 --models-dir models --input questions.jsonl "
            "--iterations 200",
            "200 requests: p50",
        ),
    ),
)

# docs/serving.md and docs/ovms.md on the tests' published classifier (tiny-classifier).
CLASSIFIER_REFERENCE: tuple[Step | tuple[Step, ...], ...] = (
    # The containers' entry point: its settings from QATFLOW_SERVE_* (here: the models dir).
    Step("python -m qatflow.serving", "", serves=8080, env={"QATFLOW_SERVE_MODELS_DIR": "models"}),
    (
        Step(
            "curl -s localhost:8080/v1/text-classification -H 'content-type: application/json' "
            '-d \'{"text": "The blender is wonderful."}\'',
            '"label":',
        ),
        Step(
            "curl -s localhost:8080/v1/text-classification -H 'content-type: application/json' "
            '-d \'{"text": "The blender is wonderful.", "top_k": 2}\'',
            '"labels":[{"label":',
        ),
        Step(
            "curl -s localhost:8080/v1/text-classification -H 'content-type: application/json' "
            '-d \'{"inputs": [{"text": "The kettle broke after a week."}, '
            '{"text": "I love this lamp."}]}\'',
            '"outputs":[{"label":',
        ),
        # docs/ovms.md's classifier service at 8081: the same service here.
        Step(
            'qatflow ask --url http://127.0.0.1:8081 --text "The blender is wonderful."',
            "The blender is wonderful.",
        ),
        Step(
            "qatflow ask --grpc 127.0.0.1:9000 --protocol tfs --model tiny-classifier "
            '--models-dir models --text "The blender is wonderful." --top-k 2',
            "The blender is wonderful.",
        ),
    ),
)

SCENARIOS: dict[str, tuple[Step | tuple[Step, ...], ...]] = {
    "use": USE,
    "qa-reference": QA_REFERENCE,
    "classifier-reference": CLASSIFIER_REFERENCE,
}

_TEST_TIER = "a test tier of its own: `make test` (or the tier's make target) runs it"
_DOCKER = "needs a Docker engine and the images: the e2e tier (tests/docker, `make e2e`) runs it"
# Documented commands that cannot run here, or not in seconds, and why.
NOT_HERE = {
    "make run": "trains the pretrained MiniLM on 2,000 examples: about 3 minutes, not seconds; "
    "the use scenario runs the same train -> serve -> ask on the tiny model",
    "make test": "the whole test suite, of which this test is one",
    "make images": _DOCKER,
    "make image-optimum": _DOCKER,
    "make local-images": _DOCKER + " (and root, for debootstrap)",
    "make load-test": "16 clients x 60 s per backend: minutes by design; tests/reliability runs "
    "the load module in its short form",
    "make cluster-test": "the cluster tier (tests/cluster); " + _TEST_TIER,
    "make e2e-cluster": "the full cluster tier (tests/cluster/e2e): root, containerd and the "
    "images; " + _TEST_TIER,
    ".venv/bin/python -m tests.reliability.load --models-dir models --clients 16 --seconds 60": (
        "60 s per backend by design; tests/reliability runs the load module in its short form"
    ),
    "KUBEBUILDER_ASSETS=/path/to/k8s-bin .venv/bin/pytest tests/cluster": _TEST_TIER,
    ".venv/bin/pytest tests/chart -m chart": _TEST_TIER,
    ".venv/bin/pytest tests/ovms tests/client -q": _TEST_TIER,
    ".venv/bin/pytest tests/reliability -q": _TEST_TIER,
    "helm/install-tools.sh": "downloads helm, kubectl and the linters (network); `make tools` "
    "runs it before every test that needs them",
    "qatflow train --set task=text-classification --set dataset=glue --set dataset_config=sst2": (
        "GLUE SST-2 from the Hugging Face hub: no network here"
    ),
    "qatflow train --preset sparsity --preset sst2 --set sparsity=0.7": (
        "the sst2 preset loads GLUE SST-2 from the Hugging Face hub: no network here"
    ),
    "qatflow train --set task=text-classification": (
        "README's `.venv/bin/qatflow train --set task=text-classification --output-dir models` "
        "(output_dir's default spelt out) runs in the use scenario"
    ),
    "qatflow train --preset distillation_qat": (
        "README's `.venv/bin/qatflow train --preset distillation_qat --output-dir models` "
        "(output_dir's default spelt out) runs in the use scenario"
    ),
    "torchrun --standalone --nproc-per-node=2 --no-python qatflow train --preset qat": (
        "README's two-process torchrun runs in the use scenario; --preset qat spells out the "
        "defaults, and another 2-process run would double this module's time"
    ),
    "torchrun --nnodes=N --nproc-per-node=1 --node-rank=k --master-addr=HOST0 "
    "--master-port=29500 --no-python qatflow train": (
        "one command per machine of N (placeholders N, k, HOST0); the cluster tier's multinode "
        "scenario renders it for training.nodes > 1"
    ),
    "docker build -f dockerfiles/training.Dockerfile -t qatflow-training:0.1.0 "
    '--build-arg EXTRA_CA_CERTS="$(cat proxy.crt)" .': _DOCKER,
    "docker compose --profile optimum --profile onnxruntime --profile ovms build": _DOCKER,
    "docker volume create qatflow-models": _DOCKER,
    "docker run --rm --cap-drop ALL -v qatflow-models:/models qatflow-training:0.1.0 "
    "--set epochs=0.5": _DOCKER,
    "docker run --rm -p 8080:8080 -v qatflow-models:/models:ro --read-only --tmpfs /tmp "
    "--cap-drop ALL --security-opt no-new-privileges:true qatflow-optimum:0.1.0": _DOCKER,
    "docker run --rm --network host qatflow-client:0.1.0 --url http://127.0.0.1:8080 "
    '--question "What does QAT stand for?" '
    '--context "QAT stands for quantization aware training."': _DOCKER,
    "docker compose --profile optimum up": _DOCKER,
    "docker compose --profile onnxruntime up": _DOCKER,
    "docker compose --profile ovms up": _DOCKER,
    "docker compose up training": _DOCKER,
    "docker compose cp training:/models ./models": _DOCKER,
}


def test_every_documented_command_is_run_or_says_why_not() -> None:
    documented = {command.key: command for command in documented_commands()}
    run = {" ".join(step.command.split()) for steps in SCENARIOS.values() for step in _each(steps)}
    unaccounted = set(documented) - run - set(NOT_HERE)
    assert not unaccounted, "documented but neither run nor excused: " + "; ".join(
        f"{documented[key].document}:{documented[key].line} {key}" for key in sorted(unaccounted)
    )
    # And nothing is run or excused that the docs no longer say.
    assert (run | set(NOT_HERE)) <= set(documented), sorted((run | set(NOT_HERE)) - set(documented))
    assert not run & set(NOT_HERE), sorted(run & set(NOT_HERE))


def _each(steps: tuple[Step | tuple[Step, ...], ...]) -> list[Step]:
    return [step for item in steps for step in (item if isinstance(item, tuple) else (item,))]


def test_cluster_commands_are_where_the_cluster_tier_reads() -> None:
    """A helm or kubectl command in another document would escape both tests."""
    elsewhere = [
        f"{command.document}:{command.line}"
        for command in commands_in(DOCUMENTS, CLUSTER_COMMAND)
        if command.document not in CLUSTER_DOCUMENTS
    ]
    assert not elsewhere


def tiny_environment(model: str, model_dir: Path) -> dict[str, str]:
    """The tests' tiny run as ``QATFLOW_TRAIN_*`` variables, smaller still: data for a few
    batches (enough for two ranks), one student layer, no transfer-set evaluation. The published
    name and the models directory are left to the commands."""
    if model == "qa":
        settings = tiny_training_overrides(model_dir, Path("unused"))
    else:
        settings = tiny_classifier_overrides(model_dir, Path("unused"))
    settings = {key: value for key, value in settings.items() if key not in _LEFT_TO_COMMANDS}
    settings.update(
        max_train_samples=64,
        max_eval_samples=16,
        batch_size=8,
        epochs=1.0,
        qat_epochs=0.25,
        calibration_samples=8,
        student_layers=1,
        transfer_eval=False,
    )
    return {TrainingSettings.env_name(key): str(value) for key, value in settings.items()}


_LEFT_TO_COMMANDS = {"model_name", "output_dir"}


@pytest.mark.slow  # it trains (the commands do)
def test_use_commands_run(tmp_path: Path, tiny_model_dir: Path, tiny_classifier_dir: Path) -> None:
    (tmp_path / "my.yaml").write_text("dataset: embedded:synthetic-qa\n", encoding="utf-8")
    models = {"qa": tiny_model_dir, "classifier": tiny_classifier_dir}
    with Scenario(tmp_path, models) as scenario:
        scenario.run(USE)


def test_qa_reference_commands_run(tmp_path: Path, published_model, tiny_model_dir: Path) -> None:
    _models_of(tmp_path, published_model)
    # questions.csv, questions.jsonl: the user's files the docs name.
    pair = {
        "question": "Where does Thea Eckhart live?",
        "context": "Thea Eckhart lives in Velmora.",
    }
    (tmp_path / "questions.csv").write_text(
        f"question,context\n{pair['question']},{pair['context']}\n", encoding="utf-8"
    )
    (tmp_path / "questions.jsonl").write_text(json.dumps(pair) + "\n", encoding="utf-8")
    with Scenario(tmp_path, {"qa": tiny_model_dir}) as scenario:
        scenario.run(QA_REFERENCE)


def test_classifier_reference_commands_run(
    tmp_path: Path, published_classifier, tiny_classifier_dir: Path
) -> None:
    _models_of(tmp_path, published_classifier)
    with Scenario(
        tmp_path, {"classifier": tiny_classifier_dir}, same_port={8081: 8080}
    ) as scenario:
        scenario.run(CLASSIFIER_REFERENCE)


def _models_of(scratch: Path, version) -> None:
    """``models/<name>``: the published model's folder (the tests only read it)."""
    (scratch / "models").mkdir()
    (scratch / "models" / version.name).symlink_to(Path(version.path).parent)


class Scenario:
    """Steps run in order in one scratch directory; services stopped at the end."""

    def __init__(
        self, scratch: Path, models: dict[str, Path], same_port: dict[int, int] | None = None
    ) -> None:
        self.scratch = scratch
        self.models = models
        self.ports = {port: free_port() for port in DOCUMENTED_PORTS}
        for port, other in (same_port or {}).items():
            self.ports[port] = self.ports[other]
        self.services: list[tuple[str, ServiceProcess]] = []
        self.ovms: FixtureServer | None = None
        (scratch / ".venv").symlink_to(Path(sys.prefix))
        venv_bin = str(scratch / ".venv" / "bin")
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("QATFLOW_TRAIN_", "QATFLOW_SERVE_"))
        }
        self.env = {
            **inherited,
            "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "")]),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "QATFLOW_SERVE_HOST": "127.0.0.1",
        }

    def __enter__(self) -> Scenario:
        return self

    def __exit__(self, *exc_info: object) -> None:
        stopped = [(command, service.stop()) for command, service in self.services]
        if self.ovms is not None:
            self.ovms.stop()
        if exc_info[0] is None:
            for command, code in stopped:
                assert code == 0, f"{command} exited {code} on SIGTERM"

    def run(self, steps: tuple[Step | tuple[Step, ...], ...]) -> None:
        """Each item in turn; a tuple's steps start together (so none of them may need a
        service the same tuple starts), and the next item waits until they are done and its
        services are ready."""
        for item in steps:
            together = item if isinstance(item, tuple) else (item,)
            started, services = [], []
            for step in together:
                text, env = self._prepared(step)
                if step.serves is not None:
                    services.append(self._serve(step, text, env))
                    continue
                script = "\n".join(filter(None, ("set -e", text, step.then)))
                process = subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=self.scratch,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                started.append((step, text, process))
            for service in services:
                service.wait_ready(120)
            # Every process waited for before the first assertion: none is left running.
            finished = [
                (step, text, process, process.communicate(timeout=300)[0])
                for step, text, process in started
            ]
            for step, text, process, said in finished:
                assert process.returncode == 0, f"{text}\n{said}"
                assert step.expect in said, f"{text}\n{said}"

    def _prepared(self, step: Step) -> tuple[str, dict[str, str]]:
        """The command as bash runs it here, and its environment."""
        text = as_written(documented_commands(), step.command)
        for placeholder, replacement in step.substitute:
            text = text.replace(placeholder, replacement)
        text = _PORTS.sub(lambda match: str(self.ports[int(match.group())]), text)
        model_dir = self.models.get(step.model)
        tiny = tiny_environment(step.model, model_dir) if model_dir else {}
        if "--grpc" in text:
            self._start_ovms()
        return text, {**self.env, **tiny, **step.env}

    def _serve(self, step: Step, text: str, env: dict[str, str]) -> ServiceProcess:
        assert step.serves is not None
        port = self.ports[step.serves]
        # Only a service started without --port reads it.
        env = {**env, "QATFLOW_SERVE_PORT": str(port)}
        log = self.scratch / f"service-{step.serves}.log"
        service = ServiceProcess(
            ["bash", "-c", text], env, f"http://127.0.0.1:{port}", log, cwd=self.scratch
        )
        self.services.append((text, service))
        return service

    def _start_ovms(self) -> None:
        if self.ovms is None:
            self.ovms = FixtureServer(self.scratch / "models", self.ports[9000]).start()
