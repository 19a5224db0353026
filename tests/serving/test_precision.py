"""``inference_precision``: both backends ask their OpenVINO for the same precision of the ops
that are not INT8, and report the one it applies.

On a CPU without bf16 the bf16 path is covered by the compile configuration each backend passes
(the plugins below stand for an AMX Xeon and an AVX2-only EPYC); the tests on real plugins and
real services check whatever this machine's CPU does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from qatflow.core.artifacts import ModelVersion
from qatflow.core.precision import HINT, CpuPlugin, openvino_cpu_plugin, type_name
from qatflow.serving.backends.onnxruntime import OnnxRuntimeBackend, bundled_cpu_plugin
from qatflow.serving.backends.optimum import OptimumBackend
from qatflow.serving.settings import ServeSettings
from qatflow.training import synthetic_qa

from .conftest import ServiceProcess, both_backends

AMX_XEON = CpuPlugin("bf16", ("FP32", "BF16", "FP16", "INT8", "BIN", "EXPORT_IMPORT"))
AVX2_EPYC = CpuPlugin("f32", ("FP32", "INT8", "BIN", "EXPORT_IMPORT"))
# AVX512-BF16 without AMX or FP16 (measured on an AMD EPYC): bf16 is the default here too.
AVX512_BF16_EPYC = CpuPlugin("bf16", ("BF16", "WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT"))
SETTINGS = ("auto", "f32", "bf16", "f16")


def settings(inference_precision: str, **extra: Any) -> ServeSettings:
    environ = {"QATFLOW_SERVE_INFERENCE_PRECISION": inference_precision}
    environ.update({f"QATFLOW_SERVE_{key.upper()}": value for key, value in extra.items()})
    return ServeSettings.load(environ=environ)


def onnxruntime_cpu_config(backend: OnnxRuntimeBackend) -> dict[str, Any]:
    import json

    return dict(json.loads(backend.provider_options()["load_config"])["CPU"])


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (AMX_XEON, {"auto": "bf16", "f32": "f32", "bf16": "bf16", "f16": "f16"}),
        (AVX2_EPYC, {"auto": "f32", "f32": "f32", "bf16": "f32", "f16": "f32"}),
        (AVX512_BF16_EPYC, {"auto": "bf16", "f32": "f32", "bf16": "bf16", "f16": "bf16"}),
    ],
    ids=["amx-xeon", "avx2-epyc", "avx512-bf16-epyc"],
)
def test_each_setting_resolves_to_what_the_cpu_computes(plugin, expected):
    assert {requested: plugin.resolve(requested) for requested in SETTINGS} == expected


@pytest.mark.parametrize("requested", SETTINGS)
def test_optimum_asks_openvino_for_the_setting_and_nothing_at_auto(requested):
    config = OptimumBackend(settings(requested)).ov_config()
    assert config.get(HINT) == (None if requested == "auto" else requested)
    assert config["PERFORMANCE_HINT"] == "LATENCY"


@pytest.mark.parametrize(
    ("plugin", "requested", "hint"),
    [
        (AMX_XEON, "auto", "bf16"),  # the EP would force f32: auto passes the plugin's default
        (AMX_XEON, "f32", "f32"),
        (AMX_XEON, "bf16", "bf16"),
        (AVX2_EPYC, "auto", "f32"),
        (AVX2_EPYC, "bf16", "f32"),
        (AVX512_BF16_EPYC, "f16", "bf16"),
    ],
)
def test_onnxruntime_passes_the_resolved_precision_in_load_config(plugin, requested, hint):
    backend = OnnxRuntimeBackend(settings(requested))
    backend._plugin = plugin
    assert onnxruntime_cpu_config(backend) == {"PERFORMANCE_HINT": "LATENCY", HINT: hint}


def test_onnxruntime_user_load_config_is_merged_and_may_override_the_precision():
    backend = OnnxRuntimeBackend(
        settings(
            "auto",
            ort_provider_options='{"load_config": {"CPU": {"NUM_STREAMS": "2", '
            '"INFERENCE_PRECISION_HINT": "f32"}}, "num_streams": 2}',
        )
    )
    backend._plugin = AMX_XEON
    options = backend.provider_options()
    assert onnxruntime_cpu_config(backend) == {
        "PERFORMANCE_HINT": "LATENCY",
        HINT: "f32",
        "NUM_STREAMS": "2",
    }
    assert options["num_streams"] == "2"


def test_both_openvinos_agree_on_this_cpu():
    """The optimum backend's OpenVINO and the one inside onnxruntime-openvino are different
    releases: at ``auto`` they must still choose the same precision here."""
    python, bundled = openvino_cpu_plugin(), bundled_cpu_plugin()
    assert python.default == bundled.default
    assert {requested: python.resolve(requested) for requested in SETTINGS} == {
        requested: bundled.resolve(requested) for requested in SETTINGS
    }


@pytest.mark.parametrize("requested", SETTINGS)
def test_the_rule_matches_what_the_real_plugin_compiles_at(requested):
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([1, 8], np.float32)
    model = ov.Model(
        [ops.relu(ops.matmul(x, ops.constant(np.eye(8, dtype=np.float32)), False, False))], [x]
    )
    compiled = ov.Core().compile_model(
        model, "CPU", OptimumBackend(settings(requested)).ov_config()
    )
    assert type_name(compiled.get_property(HINT)) == openvino_cpu_plugin().resolve(requested)


# -- real services ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_services(
    published_model: ModelVersion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    """Both backends at the CPU's own choice, as a user runs them by default."""
    yield from both_backends(published_model, tmp_path_factory, inference_precision="auto")


@pytest.mark.slow
def test_services_report_the_pinned_precision(services, published_model):
    for service in services.values():
        metadata = service.client.get(f"/v2/models/{published_model.name}").json()
        assert metadata["inference_precision"] == "f32"
        assert "the rest in f32 (inference_precision=f32)" in service.log()


@pytest.mark.slow
def test_both_backends_at_auto_report_one_precision_and_agree_on_clear_answers(
    auto_services, published_model
):
    precisions = {
        backend: service.client.get(f"/v2/models/{published_model.name}").json()[
            "inference_precision"
        ]
        for backend, service in auto_services.items()
    }
    assert set(precisions.values()) == {openvino_cpu_plugin().default}, precisions
    examples = synthetic_qa.generate("validation", 32, 3)  # max_batch_size
    body = {
        "inputs": [{"question": e.question, "context": e.context, "top_k": 2} for e in examples]
    }
    replies = {
        backend: service.ask(body).json()["outputs"] for backend, service in auto_services.items()
    }
    pairs = list(zip(replies["optimum"], replies["onnxruntime"], strict=True))
    agree = [spans(a["answers"][0]) == spans(b["answers"][0]) for a, b in pairs]
    # bf16 moves answer scores by up to ~2 % (measured on an AMX Xeon): an answer 10 % ahead of
    # the runner-up cannot flip; a closer call rarely does (1 in 64 there).
    for (optimum, onnxruntime), same in zip(pairs, agree, strict=True):
        first, second = (answer["score"] for answer in optimum["answers"])
        assert same or first - second < 0.1 * first, (precisions, optimum, onnxruntime)
    differing = [pair for pair, same in zip(pairs, agree, strict=True) if not same]
    assert len(differing) <= 0.1 * len(agree), differing


def spans(answer: dict[str, Any]) -> tuple[str, int, int]:
    return answer["answer"], answer["start"], answer["end"]
