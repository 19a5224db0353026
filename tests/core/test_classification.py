"""The text-pair rule, one for the HTTP services and the gRPC client."""

from __future__ import annotations

import pytest

from qatflow.core.classification import takes_text_pairs, text_pair_mismatch


@pytest.mark.parametrize(
    ("manifest", "takes_pairs"),
    [({"text_pair": True}, True), ({"text_pair": False}, False), ({}, False)],
)
def test_the_manifest_says_whether_a_model_takes_pairs(manifest, takes_pairs) -> None:
    assert takes_text_pairs(manifest) is takes_pairs


def test_an_input_must_have_a_pair_exactly_when_the_model_takes_pairs() -> None:
    assert text_pair_mismatch(True, True) is None
    assert text_pair_mismatch(False, False) is None
    assert text_pair_mismatch(True, False) == "classifies text pairs; give text_pair as well"
    assert text_pair_mismatch(False, True) == "classifies single texts; leave out text_pair"
