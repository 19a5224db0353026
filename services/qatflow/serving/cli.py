"""``qatflow serve`` / ``python -m qatflow.serving``: serve the newest published model over HTTP.

Settings come from ``QATFLOW_SERVE_*`` variables (the containers' way); flags override them.
"""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from qatflow.core.backends import SERVING_BACKENDS
from qatflow.core.settings import SettingsError

log = logging.getLogger("qatflow.serving")

EXIT_STOPPED = 0
EXIT_BAD_CONFIG = 2
EXIT_BACKEND_UNAVAILABLE = 3

# flag dest -> setting it overrides when given
_FLAGS = ("backend", "models_dir", "model_name", "model_version", "host", "port", "log_format")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=SERVING_BACKENDS,
        help="runtime: Optimum-Intel on the IR, or ONNX Runtime's OpenVINO EP on the ONNX model",
    )
    parser.add_argument("--models-dir", metavar="DIR", help="shared models directory to watch")
    parser.add_argument(
        "--model-name", metavar="NAME", help="model to serve (needed if DIR holds several)"
    )
    parser.add_argument(
        "--model-version",
        type=int,
        metavar="N",
        help="pin one version instead of following the newest",
    )
    parser.add_argument("--host", metavar="HOST", help="interface to listen on")
    parser.add_argument("--port", type=int, metavar="PORT", help="HTTP port")
    parser.add_argument("--log-format", choices=["text", "json"], help="log line format")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line; absent ones leave env values and defaults alone."""
    return {key: getattr(args, key) for key in _FLAGS if getattr(args, key, None) is not None}


def run(args: argparse.Namespace) -> int:
    from qatflow.core.logs import configure_logging
    from qatflow.serving.settings import ServeSettings

    try:
        settings = ServeSettings.load(overrides=overrides(args))
    except SettingsError as error:
        configure_logging("info", getattr(args, "log_format", None) or "text")
        log.error("configuration error: %s", error)
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level, settings.log_format)

    from qatflow.serving.backends import backend_class
    from qatflow.serving.errors import BackendUnavailableError

    try:
        backend_class(settings.backend).check_available()
    except BackendUnavailableError as error:
        log.error("cannot start the %s backend: %s", settings.backend, error)
        return EXIT_BACKEND_UNAVAILABLE
    serve(settings)
    return EXIT_STOPPED


def serve(settings: Any) -> None:
    """Run uvicorn until SIGTERM/SIGINT; it stops accepting, then drains in-flight requests."""
    import uvicorn

    from qatflow.serving.app import create_app

    log.info(
        "serving %s on %s:%d with %s (models from %s)",
        settings.model_name or "the only published model",
        settings.host,
        settings.port,
        settings.backend,
        settings.models_dir,
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the one configuration set by configure_logging
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal once drained; a drained shutdown is a success, so exit 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    server.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qatflow.serving", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
