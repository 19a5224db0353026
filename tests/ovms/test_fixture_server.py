"""What the OVMS stand-in itself must do as OVMS does. The client's protocols against it (and
against MLServer) are tested in ``tests/client/test_protocols.py``."""

from __future__ import annotations

import urllib.error
import urllib.request

import tritonclient.grpc as grpcclient


def test_kserve_server_live_and_ready(fixture_server, published_model):
    client = grpcclient.InferenceServerClient(fixture_server.address)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(published_model.name)
        assert client.is_model_ready(published_model.name, str(published_model.version))
    finally:
        client.close()


def test_rest_port_answers_the_health_paths_over_http1(fixture_server, published_model):
    base = f"http://{fixture_server.rest_address}"
    ready = [
        "/v2/health/live",
        "/v2/health/ready",
        f"/v2/models/{published_model.name}/ready",
        f"/v2/models/{published_model.name}/versions/{published_model.version}/ready",
    ]
    for path in ready:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            assert response.status == 200, path
    for path in ["/v2/models/no-such-model/ready", "/v1/models"]:
        try:
            urllib.request.urlopen(base + path, timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 404, path
        else:
            raise AssertionError(f"{path} answered")
