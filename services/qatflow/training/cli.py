"""``qatflow train`` / ``python -m qatflow.training``: exit 0 when a version is published."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from qatflow.core.outcome import (
    EXIT_BAD_CONFIG,
    EXIT_FAILED,
    EXIT_GATE_FAILED,
    EXIT_PUBLISHED,
    TrainingOutcome,
)
from qatflow.core.settings import SettingsError, parse_assignments

log = logging.getLogger("qatflow.training")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser)
    parser.add_argument("--output-dir", metavar="DIR", help="models directory to publish into")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--outcome-file",
        metavar="FILE",
        help="on exit, write how the run ended here as one JSON line (exit code, message, "
        "published version, accuracy); the chart passes the container's terminationMessagePath",
    )


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset``, ``--config`` and ``--set``: how every command that trains takes settings."""
    from qatflow.training.presets import names

    parser.add_argument(
        "--preset",
        dest="presets",
        action="append",
        default=[],
        choices=names(),
        help="a shipped settings file (repeatable, later wins); --config beats it",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML file of training settings")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable); beats --config and QATFLOW_TRAIN_* variables",
    )


def settings_files(args: argparse.Namespace) -> list[Path]:
    """The presets, then the user's file: the YAML layers under environment and --set."""
    from qatflow.training.presets import path

    return [path(name) for name in args.presets] + ([Path(args.config)] if args.config else [])


def settings_arguments(args: argparse.Namespace) -> list[str]:
    """The same settings as ``qatflow train`` arguments, to hand them to a training process."""
    arguments = [item for name in args.presets for item in ("--preset", name)]
    if args.config:
        arguments += ["--config", args.config]
    return arguments + [item for assignment in args.assignments for item in ("--set", assignment)]


def run(args: argparse.Namespace) -> int:
    from qatflow.core.logs import configure_logging

    world_size = os.environ.get("WORLD_SIZE", "1")
    tag = f"[rank {os.environ.get('RANK', '?')}/{world_size}] " if world_size != "1" else ""
    configure_logging("info", args.log_format, tag)
    outcome = _train(args)
    # One process per pod reports: torchrun's first local process (rank 0 in the first pod).
    if args.outcome_file and os.environ.get("LOCAL_RANK", "0") == "0":
        try:
            outcome.write(Path(args.outcome_file))
        except OSError as error:
            log.warning("cannot write the outcome to %s: %s", args.outcome_file, error)
    return outcome.exit_code


def _train(args: argparse.Namespace) -> TrainingOutcome:
    from qatflow.training.config import TrainingSettings

    try:
        overrides = parse_assignments(args.assignments)
        if args.output_dir:
            overrides["output_dir"] = args.output_dir
        settings = TrainingSettings.load(yaml_files=settings_files(args), overrides=overrides)
    except SettingsError as error:
        return _failed(EXIT_BAD_CONFIG, f"configuration error: {error}")

    from qatflow.training.pipeline import AccuracyGateError, TrainingError, run_pipeline

    try:
        version = run_pipeline(settings)
    except AccuracyGateError as error:
        return _failed(
            EXIT_GATE_FAILED, f"accuracy gate failed, nothing published: {error}", error.metrics
        )
    except TrainingError as error:
        return _failed(EXIT_FAILED, f"training failed, nothing published: {error}")
    if version is None:  # a rank other than 0 of a distributed run: it succeeded
        return TrainingOutcome(EXIT_PUBLISHED, "finished training; rank 0 publishes")
    metrics = version.metrics()
    return TrainingOutcome(
        EXIT_PUBLISHED,
        f"published {version.name} version {version.version} to {version.path}",
        model=version.name,
        version=version.version,
        task=version.task,
        **_accuracy(metrics),
    )


def _failed(code: int, message: str, metrics: dict[str, Any] | None = None) -> TrainingOutcome:
    log.error("%s", message)
    return TrainingOutcome(code, message, **_accuracy(metrics or {}))


def _accuracy(metrics: dict[str, Any]) -> dict[str, Any]:
    """The outcome's accuracy fields, from metrics.json as the pipeline writes it."""
    metric = (metrics.get("accuracy_gate") or {}).get("metric")
    if metric is None:
        return {}
    stages = ("baseline", "fp32", "ptq", "int8")
    return {
        "metric": metric,
        "scores": {stage: metrics[stage][metric] for stage in stages if stage in metrics},
        "summary": metrics.get("summary"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m qatflow.training", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())
