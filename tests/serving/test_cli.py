"""``qatflow serve`` refuses to start, with a clear message, when it cannot serve as asked."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator

import pytest

from qatflow.serving import cli
from qatflow.serving.backends.onnxruntime import OnnxRuntimeBackend
from qatflow.serving.settings import ServeSettings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``run`` configures the root logger (to stdout) as the service does; undo it afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_refuses_to_start_without_the_openvino_execution_provider(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    import onnxruntime

    # An ONNX Runtime build without the OpenVINO EP offers only the CPU provider.
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    code = cli.run(parse("--backend", "onnxruntime", "--models-dir", str(tmp_path)))
    assert code == cli.EXIT_BACKEND_UNAVAILABLE
    out = capsys.readouterr().out
    assert "no OpenVINOExecutionProvider" in out
    assert "install onnxruntime-openvino" in out


def test_bad_settings_exit_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QATFLOW_SERVE_MAX_CONCURRENCY", "0")
    assert cli.run(parse("--backend", "optimum")) == cli.EXIT_BAD_CONFIG
    assert "max_concurrency" in capsys.readouterr().out


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QATFLOW_SERVE_PORT", "9000")
    monkeypatch.setenv("QATFLOW_SERVE_BACKEND", "onnxruntime")
    args = parse("--port", "9001", "--model-name", "tiny-qa")
    settings = ServeSettings.load(overrides=cli.overrides(args))
    assert (settings.port, settings.backend, settings.model_name) == (
        9001,
        "onnxruntime",
        "tiny-qa",
    )


def test_provider_options_come_from_settings() -> None:
    settings = ServeSettings.load(
        overrides={
            "threads": 2,
            "ort_provider_options": {"num_streams": 2, "enable_qdq_optimizer": True},
        },
        environ={},
    )
    backend = OnnxRuntimeBackend(settings)
    options = backend.provider_options()
    assert options["device_type"] == "CPU"
    assert options["num_of_threads"] == "2"
    assert options["num_streams"] == "2"
    assert options["enable_qdq_optimizer"] == "true"
    assert json.loads(options["load_config"]) == {
        "CPU": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": backend.plugin.default}
    }
