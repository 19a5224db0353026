"""``qatflow train`` / ``python -m qatflow.training``: exit 0 when a version is published."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from qatflow.core.settings import SettingsError, parse_assignments

log = logging.getLogger("qatflow.training")

# Exit codes the Helm hook and scripts can tell apart.
EXIT_PUBLISHED = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_GATE_FAILED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser)
    parser.add_argument("--output-dir", metavar="DIR", help="models directory to publish into")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")


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
    from qatflow.training.config import TrainingSettings

    try:
        overrides = parse_assignments(args.assignments)
        if args.output_dir:
            overrides["output_dir"] = args.output_dir
        settings = TrainingSettings.load(yaml_files=settings_files(args), overrides=overrides)
    except SettingsError as error:
        log.error("configuration error: %s", error)
        return EXIT_BAD_CONFIG

    from qatflow.training.pipeline import AccuracyGateError, TrainingError, run_pipeline

    try:
        run_pipeline(settings)  # None on ranks other than 0 of a distributed run: they succeeded
    except AccuracyGateError as error:
        log.error("accuracy gate failed, nothing published: %s", error)
        return EXIT_GATE_FAILED
    except TrainingError as error:
        log.error("training failed, nothing published: %s", error)
        return EXIT_FAILED
    return EXIT_PUBLISHED


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m qatflow.training", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())
