"""The KServe v2 and TF-Serving APIs of the OVMS stand-in, through the client's protocols."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from qatflow.client.errors import (
    DeadlineExceededError,
    InputMismatchError,
    ModelNotFoundError,
    ServerUnavailableError,
)
from qatflow.client.grpc_qa import GrpcQuestionAnswering
from qatflow.client.protocol import connect
from tests.conftest import compile_ir
from tests.ovms_fixture_server import FixtureServer, save_int32_model

PROTOCOLS = ["kserve", "tfs"]


def sample_inputs(dtype=np.int64) -> dict[str, np.ndarray]:
    ids = np.array([[2, 10, 11, 3, 12, 13, 3]], dtype=dtype)
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.array([[0, 0, 0, 0, 1, 1, 1]], dtype=dtype),
    }


def test_kserve_server_live_and_ready(fixture_server, published_model):
    client = grpcclient.InferenceServerClient(fixture_server.address)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(published_model.name)
        assert client.is_model_ready(published_model.name, str(published_model.version))
    finally:
        client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metadata_declares_dynamic_int64_inputs_and_float_outputs(
    protocol, fixture_server, published_model
):
    client = connect(protocol, fixture_server.address, timeout=10)
    try:
        assert client.model_ready(published_model.name)
        signature = client.model_metadata(published_model.name)
    finally:
        client.close()
    assert signature.version == str(published_model.version)
    assert sorted(s.name for s in signature.inputs) == sorted(published_model.manifest["inputs"])
    assert {(s.dtype, s.shape) for s in signature.inputs} == {("int64", (-1, -1))}
    assert {s.name for s in signature.outputs} >= {"start_logits", "end_logits"}
    assert {s.dtype for s in signature.outputs} == {"float32"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_returns_the_runtimes_logits(protocol, fixture_server, published_model):
    inputs = sample_inputs()
    expected = compile_ir(published_model)(inputs)
    client = connect(protocol, fixture_server.address, timeout=10)
    try:
        outputs = client.infer(published_model.name, inputs, ["start_logits", "end_logits"])
    finally:
        client.close()
    for name in ("start_logits", "end_logits"):
        assert outputs[name].shape == (1, 7)
        np.testing.assert_allclose(outputs[name], expected[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_is_reported_as_not_found(protocol, fixture_server):
    client = connect(protocol, fixture_server.address, timeout=10)
    try:
        with pytest.raises(ModelNotFoundError, match="not found"):
            client.model_metadata("no-such-model")
        with pytest.raises(ModelNotFoundError):
            client.infer("no-such-model", sample_inputs(), ["start_logits"])
    finally:
        client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_dtype_and_missing_input_are_input_mismatches(
    protocol, fixture_server, published_model
):
    client = connect(protocol, fixture_server.address, timeout=10)
    try:
        with pytest.raises(InputMismatchError, match="precision"):
            client.infer(published_model.name, sample_inputs(np.int32), ["start_logits"])
        partial = sample_inputs()
        del partial["token_type_ids"]
        with pytest.raises(InputMismatchError, match="Missing inputs"):
            client.infer(published_model.name, partial, ["start_logits"])
    finally:
        client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_refuses_a_model_with_other_input_dtypes(protocol, published_model, tmp_path):
    save_int32_model(tmp_path / published_model.name / "1")
    with FixtureServer(tmp_path) as server:
        qa_client = GrpcQuestionAnswering(
            connect(protocol, server.address, timeout=10), published_model.name, published_model
        )
        try:
            with pytest.raises(InputMismatchError, match="int32"):
                qa_client.check()
        finally:
            qa_client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stopped_server_is_unavailable(protocol, published_model):
    server = FixtureServer(published_model.path.parent.parent).start()
    address = server.address
    server.stop()
    client = connect(protocol, address, timeout=5)
    try:
        with pytest.raises(ServerUnavailableError, match="no server answering"):
            client.model_ready(published_model.name)
    finally:
        client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_request_past_its_deadline_is_reported(protocol, fixture_server, published_model):
    client = connect(protocol, fixture_server.address, timeout=1e-6)
    try:
        with pytest.raises(DeadlineExceededError, match="deadline"):
            client.infer(published_model.name, sample_inputs(), ["start_logits"])
    finally:
        client.close()
