"""``qatflow local``: the whole job on one machine, no cluster.

Train (or reuse the newest published version) -> start the chosen HTTP backend -> ask it a few
held-out questions (or texts to classify, with ``--task text-classification``) from the
embedded data set -> print answers or labels and latencies -> stop it.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qatflow.core.backends import DEFAULT_SERVING_BACKEND, SERVING_BACKENDS
from qatflow.core.tasks import TASKS, TEXT_CLASSIFICATION
from qatflow.serving.launcher import ServiceStartError, free_port, start_service
from qatflow.training.cli import add_settings_arguments, settings_arguments
from qatflow.training.config import DEFAULT_MODEL_NAMES

if TYPE_CHECKING:
    from qatflow.core.artifacts import ModelVersion

log = logging.getLogger("qatflow.local")
STEPS = 4
_READY_TIMEOUT = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=SERVING_BACKENDS, default=DEFAULT_SERVING_BACKEND)
    parser.add_argument("--models-dir", default="models", help="where models are published")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default=TASKS[0],
        help="what the model does (default question-answering)",
    )
    parser.add_argument(
        "--model-name",
        help="published model name (default: bert-qa, or bert-classifier for classification)",
    )
    parser.add_argument("--retrain", action="store_true", help="train even if a version exists")
    parser.add_argument(
        "--questions", type=int, default=5, help="sample questions (or texts) to send"
    )
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from qatflow.core import artifacts
    from qatflow.core.logs import configure_logging, step

    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    models_dir = Path(args.models_dir)
    args.model_name = args.model_name or DEFAULT_MODEL_NAMES[args.task]
    with step(log, 1, STEPS, "Model"):
        version = None if args.retrain else artifacts.find_latest(models_dir, args.model_name)
        if version is not None and version.task != args.task:
            log.error(
                "%s version %d is a %s model; pass --task %s, or another --model-name",
                version.name,
                version.version,
                version.task,
                version.task,
            )
            return 2
        if version is None:
            code = _train(args, models_dir)
            if code != 0:
                log.error("training exited with %d; nothing to serve", code)
                return code
            version = artifacts.find_latest(models_dir, args.model_name)
            assert version is not None
        else:
            log.info(
                "reusing %s version %d (--retrain to train again)", version.name, version.version
            )
        _log_metrics(version)

    port = free_port()
    with step(log, 2, STEPS, f"Start the {args.backend} service on 127.0.0.1:{port}"):
        service = start_service(
            {
                "backend": args.backend,
                "models_dir": models_dir,
                "model_name": args.model_name,
                "poll_interval": 1,
                "log_level": "warning",  # the answers are the output here
            },
            port=port,
            inherit_settings=True,  # QATFLOW_SERVE_THREADS and the like still apply
        )
    try:
        url = service.url
        try:
            service.wait_ready(_READY_TIMEOUT, interval=0.5)
        except ServiceStartError as error:
            raise SystemExit(str(error)) from None
        if version.task == TEXT_CLASSIFICATION:
            with step(log, 3, STEPS, "Classify held-out texts"):
                _classify(url, version, args.questions)
        else:
            with step(log, 3, STEPS, "Ask held-out questions"):
                _ask(url, args.questions)
    finally:
        with step(log, 4, STEPS, "Stop the service"):
            service.stop(timeout=30)
    return 0


def _train(args: argparse.Namespace, models_dir: Path) -> int:
    command = [
        sys.executable,
        "-m",
        "qatflow.training",
        "--output-dir",
        str(models_dir),
        "--set",
        f"task={args.task}",
        "--set",
        f"model_name={args.model_name}",
    ]
    return subprocess.call(command + settings_arguments(args))


def _log_metrics(version: ModelVersion) -> None:
    """Held-out scores of each stage, then the hand-written transfer set's where there is one."""
    metrics = version.metrics()
    names = {"accuracy": "accuracy", "exact_match": "EM", "f1": "F1"}
    stages = (("fp32", "FP32"), ("ptq", "PTQ INT8"), ("int8", "QAT INT8"))
    for scores, where in ((metrics, "held-out"), (metrics.get("transfer", {}), "transfer")):
        for key, title in stages:
            if key in scores:
                figures = [f"{names[n]} {scores[key][n]:6.2f}" for n in names if n in scores[key]]
                log.info("%-8s %-9s %s", where, title, "  ".join(figures))


def _ask(url: str, count: int) -> None:
    import httpx

    from qatflow.training.synthetic_qa import generate

    examples = generate("validation", count, seed=7)
    with httpx.Client(base_url=url, timeout=30) as client:
        for example in examples:
            started = time.perf_counter()
            response = client.post(
                "/v1/question-answering",
                json={"question": example.question, "context": example.context},
            )
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            answer = response.json()
            mark = "ok " if answer["answer"].strip() == example.answers[0] else "   "
            print(
                f"{mark} Q: {example.question}\n"
                f"    A: {answer['answer']!r} (score {answer['score']:.2f}, "
                f"expected {example.answers[0]!r}, {len(example.context)} chars, {elapsed:.1f} ms)",
                flush=True,
            )


def _classify(url: str, version: ModelVersion, count: int) -> None:
    import httpx

    from qatflow.core.classification import takes_text_pairs
    from qatflow.training import synthetic_classification

    # The embedded set the model was trained on by default: pairs (paraphrase) or sentiment.
    if takes_text_pairs(version.manifest):
        examples = synthetic_classification.generate_paraphrase("validation", count, 7)
        names = synthetic_classification.PARAPHRASE_LABELS
    else:
        examples = synthetic_classification.generate_sentiment("validation", count, 7)
        names = synthetic_classification.SENTIMENT_LABELS
    with httpx.Client(base_url=url, timeout=30) as client:
        for example in examples:
            body = {"text": example.text}
            if example.text_pair is not None:
                body["text_pair"] = example.text_pair
            started = time.perf_counter()
            response = client.post("/v1/text-classification", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            reply = response.json()
            expected = names[example.label]
            mark = "ok " if reply["label"] == expected else "   "
            pair = f"\n    +  {example.text_pair}" if example.text_pair else ""
            print(
                f"{mark} T: {example.text}{pair}\n"
                f"    L: {reply['label']!r} (score {reply['score']:.2f}, expected {expected!r}, "
                f"{elapsed:.1f} ms)",
                flush=True,
            )
