"""The serving backends are named once, in qatflow.core.backends: everything that lists them
(settings, CLI choices, the registry of implementations, extras, images) offers exactly those."""

from __future__ import annotations

import argparse
import tomllib
import typing
from pathlib import Path

from qatflow import local
from qatflow.core.backends import DEFAULT_SERVING_BACKEND, SERVING_BACKENDS
from qatflow.serving import cli
from qatflow.serving.backends import BACKENDS, backend_class
from qatflow.serving.settings import ServeSettings

REPO = Path(__file__).resolve().parents[2]


def _backend_choices(
    add_arguments: typing.Callable[[argparse.ArgumentParser], None],
) -> tuple[tuple[object, ...], object]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "backend")
    return tuple(action.choices or ()), action.default


def test_settings_and_flags_offer_the_core_backends() -> None:
    field = ServeSettings.model_fields["backend"]
    assert typing.get_args(field.annotation) == SERVING_BACKENDS
    assert field.default == DEFAULT_SERVING_BACKEND
    assert _backend_choices(cli.add_arguments) == (SERVING_BACKENDS, None)
    assert _backend_choices(local.add_arguments) == (SERVING_BACKENDS, DEFAULT_SERVING_BACKEND)


def test_every_backend_has_its_implementation_extra_and_image() -> None:
    assert tuple(BACKENDS) == SERVING_BACKENDS
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for backend in SERVING_BACKENDS:
        # The class is named by the registry, not imported: its runtime may be absent here.
        module, _, name = BACKENDS[backend].partition(":")
        assert module == f"qatflow.serving.backends.{backend}" and name, backend
        assert "qatflow[serving]" in extras[backend]
        image = (REPO / "dockerfiles" / f"{backend}.Dockerfile").read_text(encoding="utf-8")
        assert f'"./[{backend}]"' in image, f"the {backend} image installs its extra"


def test_each_implementation_names_itself_by_its_registry_key() -> None:
    for backend in SERVING_BACKENDS:
        assert backend_class(backend).name == backend
