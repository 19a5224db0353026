"""``python -m bench``: benchmark the newest published model and write the report.

``make bench`` runs the default plan (under 15 minutes on 2 cores); ``--quick`` is a smoke run
with figures too short to trust; the other flags scale a run up or down.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 2
REPO = Path(__file__).resolve().parent.parent

log = logging.getLogger("bench")


def _integers(minimum: int) -> Callable[[str], tuple[int, ...]]:
    """An argparse type: comma-separated integers, each at least ``minimum``."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers, got {text!r}"
            ) from None
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(
                f"expected integers of at least {minimum}, got {text!r}"
            )
        return values

    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--models-dir",
        type=Path,
        required=True,
        help="models directory the training job published to",
    )
    p.add_argument(
        "--model", metavar="NAME", help="model to benchmark (needed if the directory holds several)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "reports",
        help="report folder (default: bench/reports)",
    )
    p.add_argument(
        "--docs",
        type=Path,
        default=REPO / "docs" / "benchmarks.md",
        help="docs page whose latest-run section is rewritten (default: docs/benchmarks.md)",
    )
    p.add_argument("--no-docs", action="store_true", help="leave the docs page alone")
    p.add_argument("--quick", action="store_true", help="smoke run: few iterations, no BERT-base")
    p.add_argument("--iterations", type=_positive, help="timed calls per latency series, at most")
    p.add_argument("--warmup", type=_positive, help="untimed calls before each latency series")
    p.add_argument(
        "--budget", type=float, dest="budget_s", help="seconds one latency series may take"
    )
    p.add_argument(
        "--seq-lengths", type=_integers(16), help="batch-1 sequence lengths, e.g. 128,384"
    )
    p.add_argument(
        "--eval-samples",
        type=_positive,
        help="eval examples per runtime (default: the training job's)",
    )
    p.add_argument("--concurrency", type=_integers(1), help="concurrency levels, e.g. 1,2,4,8")
    p.add_argument(
        "--requests",
        type=_positive,
        dest="requests_per_level",
        help="requests per concurrency level",
    )
    p.add_argument(
        "--skip-serving", action="store_true", help="skip the HTTP services and gRPC client"
    )
    p.add_argument(
        "--bert-base",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time the BERT-base-sized model (default: on, off with --quick)",
    )
    p.add_argument(
        "--service-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="service_assignments",
        help="a service setting (docs/serving.md) for the measured services instead of its "
        "default, e.g. batch_max_delay_ms=2 (repeatable)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from bench import report as reporting
    from bench import targets
    from bench.plan import make_plan
    from bench.run import run_benchmark
    from bench.sources import BenchError
    from qatflow.core.artifacts import ArtifactError
    from qatflow.core.logs import configure_logging
    from qatflow.core.settings import SettingsError

    configure_logging()
    try:
        service_settings = _service_settings(args.service_assignments)
    except SettingsError as error:
        log.error("--service-set: %s", error)
        return EXIT_BAD_INPUT
    if not args.models_dir.is_dir():
        log.error("models directory %s does not exist: run `make train` first", args.models_dir)
        return EXIT_BAD_INPUT
    plan = make_plan(
        args.quick,
        iterations=args.iterations,
        warmup=args.warmup,
        budget_s=args.budget_s,
        seq_lengths=args.seq_lengths,
        eval_samples=args.eval_samples,
        concurrency=args.concurrency,
        requests_per_level=args.requests_per_level,
        serving=False if args.skip_serving else None,
        bert_base=args.bert_base,
        service_settings=service_settings,
    )
    with tempfile.TemporaryDirectory(prefix="qatflow-bench-") as work:
        try:
            result = run_benchmark(args.models_dir, args.model, plan, Path(work))
        except (BenchError, ArtifactError) as error:
            log.error("%s", error)
            return EXIT_BAD_INPUT
    result["quick"] = args.quick
    result["targets"] = targets.evaluate(result)
    paths = reporting.write(result, args.out)
    if not args.no_docs:
        reporting.update_docs(args.docs, reporting.markdown(result))
        log.info("docs: %s", args.docs)
    for item in result["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[item["met"]]
        log.info(
            "target %-7s %s (%s, measured %s)",
            verdict,
            item["target"],
            item["limit"],
            item["measured"],
        )
    log.info("report: %s", ", ".join(str(path) for path in paths.values()))
    return EXIT_OK


# What the bench itself chooses for every service it starts: which model and backend, where it
# listens, enough slots for every client, quiet logs.
_SET_BY_THE_BENCH = frozenset(
    {
        "backend",
        "models_dir",
        "model_name",
        "model_version",
        "host",
        "port",
        "max_concurrency",
        "log_level",
    }
)


def _service_settings(assignments: list[str]) -> dict[str, Any]:
    """``key=value`` assignments as service settings, checked as the service would check them."""
    from qatflow.core.settings import SettingsError, parse_assignments
    from qatflow.serving.settings import ServeSettings

    chosen = {key.replace("-", "_"): value for key, value in parse_assignments(assignments).items()}
    fixed = sorted(_SET_BY_THE_BENCH & chosen.keys())
    if fixed:
        raise SettingsError(f"{', '.join(fixed)}: chosen by the bench for every service")
    ServeSettings.load(overrides=chosen, environ={})
    return chosen
