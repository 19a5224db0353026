"""The client's protocols (KServe v2, TF-Serving) against each server: metadata, versions,
inference, typed contents and how each refusal maps to the client's errors."""

from __future__ import annotations

import numpy as np
import pytest

from qatflow.client.errors import (
    BatchTooLargeError,
    ClientError,
    DeadlineExceededError,
    InputMismatchError,
    ModelNotFoundError,
)
from qatflow.client.protocol import connect
from tests.conftest import compile_ir

from .conftest import BARE, BATCH_2, LIMIT_2, per_target

OUTPUTS = ["start_logits", "end_logits"]


def sample_inputs(dtype=np.int64, rows: int = 1) -> dict[str, np.ndarray]:
    ids = np.array([[2, 10, 11, 3, 12, 13, 3]] * rows, dtype=dtype)
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.array([[0, 0, 0, 0, 1, 1, 1]] * rows, dtype=dtype),
    }


@pytest.fixture()
def protocol_client(qa_server, protocol):
    client = connect(protocol, qa_server.address, timeout=10)
    yield client
    client.close()


pytestmark = per_target


def test_metadata_of_the_served_version_declares_int64_inputs_and_float_outputs(
    protocol_client, published_model
):
    version = str(published_model.version)
    assert protocol_client.model_ready(published_model.name, version)
    signature = protocol_client.model_metadata(published_model.name, version)
    assert sorted(s.name for s in signature.inputs) == sorted(published_model.manifest["inputs"])
    assert {(s.dtype, s.shape) for s in signature.inputs} == {("int64", (-1, -1))}
    assert {s.name for s in signature.outputs} >= set(OUTPUTS)
    assert {s.dtype for s in signature.outputs} == {"float32"}


def test_another_version_is_not_found(protocol_client, published_model):
    other = str(published_model.version + 1)
    with pytest.raises(ModelNotFoundError):
        protocol_client.model_metadata(published_model.name, other)
    with pytest.raises(ModelNotFoundError):
        protocol_client.infer(published_model.name, sample_inputs(), OUTPUTS, other)
    # MLServer answers ModelReady of an unknown version with UNKNOWN, not NOT_FOUND.
    with pytest.raises(ClientError):
        protocol_client.model_ready(published_model.name, other)


def test_metadata_may_list_no_tensors(protocol_client):
    signature = protocol_client.model_metadata(BARE)
    assert signature.inputs == () and signature.outputs == ()


def test_stated_batch_size_is_the_first_dimension_of_the_inputs(protocol_client):
    signature = protocol_client.model_metadata(BATCH_2)
    assert {s.shape for s in signature.inputs} == {(2, -1)}


def test_infer_returns_the_runtimes_logits(protocol_client, published_model):
    inputs = sample_inputs()
    expected = compile_ir(published_model)(inputs)
    outputs = protocol_client.infer(
        published_model.name, inputs, OUTPUTS, str(published_model.version)
    )
    for name in OUTPUTS:
        assert outputs[name].shape == (1, 7)
        np.testing.assert_allclose(outputs[name], expected[name], rtol=1e-5, atol=1e-5)


def test_a_batch_over_the_limit_is_refused_as_too_large(protocol_client):
    assert protocol_client.infer(LIMIT_2, sample_inputs(rows=2), OUTPUTS)
    with pytest.raises(BatchTooLargeError, match="batch"):
        protocol_client.infer(LIMIT_2, sample_inputs(rows=3), OUTPUTS)
    with pytest.raises(BatchTooLargeError, match="batch"):
        protocol_client.infer(BATCH_2, sample_inputs(rows=1), OUTPUTS)


def test_unknown_model_is_reported_as_not_found(protocol_client):
    with pytest.raises(ModelNotFoundError, match="not found"):
        protocol_client.model_metadata("no-such-model")
    with pytest.raises(ModelNotFoundError):
        protocol_client.infer("no-such-model", sample_inputs(), ["start_logits"])


def test_wrong_dtype_and_missing_input_are_input_mismatches(protocol_client, published_model):
    with pytest.raises(InputMismatchError, match="int32"):
        protocol_client.infer(published_model.name, sample_inputs(np.int32), ["start_logits"])
    partial = sample_inputs()
    del partial["token_type_ids"]
    with pytest.raises(InputMismatchError, match=r"(?i)missing inputs.*token_type_ids"):
        protocol_client.infer(published_model.name, partial, ["start_logits"])


def test_request_past_its_deadline_is_reported(qa_server, protocol, published_model):
    # gRPC keeps deadlines in whole milliseconds, rounded up: a one-window request can be answered
    # within one on a fast CPU. 64 windows of 256 tokens keep the server busy for tens of them.
    ids = np.full((64, 256), 10, dtype=np.int64)
    heavy = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
    client = connect(protocol, qa_server.address, timeout=1e-6)
    try:
        with pytest.raises(DeadlineExceededError, match="deadline"):
            client.infer(published_model.name, heavy, ["start_logits"])
    finally:
        client.close()
