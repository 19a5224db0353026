"""A short bounded load on each backend: no error, no refused request, no changed answer.

CI runs 4 clients x 5 s; ``make load-test`` runs 16 x 60 s through ``tests/reliability/load.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.serving.conftest import ServiceProcess

from .conftest import BACKENDS, SLOTS
from .load import run_load, write_report

pytestmark = pytest.mark.slow

CLIENTS = int(os.environ.get("QATFLOW_LOAD_CLIENTS", "4"))
SECONDS = float(os.environ.get("QATFLOW_LOAD_SECONDS", "5"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_clients_get_correct_answers_and_no_errors(
    hardened_services: dict[str, ServiceProcess], backend: str, tmp_path: Path
) -> None:
    service = hardened_services[backend]
    report = run_load(service.url, backend, CLIENTS, SECONDS, SLOTS)
    path = write_report(report, tmp_path)
    print(report.describe(), path)
    assert report.requests > CLIENTS
    assert report.status == {"200": report.requests}, report.describe()
    assert report.transport_errors == 0 and report.wrong_answers == 0
    assert report.errors == 0
    assert 0 < report.p50_ms <= report.p99_ms
    # Every inference slot was given back.
    assert re.search(r"qatflow_inferences_in_flight\{[^}]*\} 0\.0", service.metrics())
