"""The gRPC APIs are named once, in ``qatflow.client.protocol.PROTOCOLS``: each name resolves to
the class that speaks it, and ``qatflow ask --protocol`` offers exactly those."""

from __future__ import annotations

import argparse

import pytest

from qatflow.client import cli
from qatflow.client.protocol import DEFAULT_PROTOCOL, PROTOCOLS, connect, protocol_class


def test_every_protocol_name_resolves_to_the_class_of_that_name() -> None:
    for name in PROTOCOLS:
        assert protocol_class(name).name == name


def test_the_ask_command_offers_the_registered_protocols() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "protocol")
    assert list(action.choices or ()) == list(PROTOCOLS)
    assert action.default == DEFAULT_PROTOCOL == "kserve"


def test_an_unknown_protocol_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="use kserve or tfs"):
        connect("rest", "127.0.0.1:9000", timeout=1)
