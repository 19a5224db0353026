"""A loopback HTTP server answering the few Kubernetes API paths ``qatflow status`` reads.

A test fixture, not a cluster: it serves the objects a test puts in it (see k8s_objects.py),
filters lists by real label and field selectors, answers unknown paths with a 404 Status like
the API server, and streams pod logs chunked as ``follow=true`` does. Tests change the state
between polls through hooks, the way controllers would.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

Hook = Callable[["KubernetesApiFixture"], None]

_ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs$"), "list", "Job"),
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)$"), "get", "Job"),
    (re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments$"), "list", "Deployment"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/pods$"), "list", "Pod"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$"), "log", "Pod"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/services$"), "list", "Service"),
    (
        re.compile(r"^/api/v1/namespaces/([^/]+)/persistentvolumeclaims/([^/]+)$"),
        "get",
        "PersistentVolumeClaim",
    ),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/events$"), "list", "Event"),
]
_LIST_VERSIONS = {"Job": "batch/v1", "Deployment": "apps/v1"}
_RESOURCES = {
    "Job": "jobs",
    "Deployment": "deployments",
    "Pod": "pods",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Event": "events",
}


class KubernetesApiFixture:
    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _RESOURCES}
        self.logs: dict[str, list[str]] = {}
        self.log_line_delay = 0.01
        self.requests: list[str] = []
        self._after_log: dict[str, Hook] = {}
        self._after_reads: list[tuple[str, int, Hook]] = []
        self._reads: dict[str, int] = {}
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- what tests use ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, *objects: dict[str, Any]) -> None:
        with self._lock:
            for obj in objects:
                self.objects[obj["kind"]].append(obj)

    def remove(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self.objects[obj["kind"]].remove(obj)

    def after_log(self, pod: str, hook: Hook) -> None:
        """Run ``hook`` once the pod's followed log has been sent in full (the container exited)."""
        self._after_log[pod] = hook

    def after_reads(self, kind: str, count: int, hook: Hook) -> None:
        """Run ``hook`` once ``kind`` has been read (listed or fetched) ``count`` times."""
        self._after_reads.append((kind, count, hook))

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fixture", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fixture-token"}}],
            "contexts": [
                {
                    "name": "fixture",
                    "context": {"cluster": "fixture", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "fixture",
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(kubeconfig), encoding="utf-8")
        return path

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API ----------------------------------------------------------------------------

    def _read(self, kind: str) -> None:
        with self._lock:
            self._reads[kind] = self._reads.get(kind, 0) + 1
            due = [
                item
                for item in self._after_reads
                if item[0] == kind and self._reads[kind] >= item[1]
            ]
            for item in due:
                self._after_reads.remove(item)
                item[2](self)

    def _list(self, kind: str, namespace: str, query: dict[str, list[str]]) -> dict[str, Any]:
        self._read(kind)
        labels = _parse_selector(query.get("labelSelector", [""])[0])
        fields = _parse_selector(query.get("fieldSelector", [""])[0])
        with self._lock:
            items = [
                json.loads(json.dumps(obj))
                for obj in self.objects[kind]
                if obj["metadata"]["namespace"] == namespace
                and _selected(obj["metadata"].get("labels") or {}, labels)
                and _selected(_field_values(obj), fields)
            ]
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {
            "apiVersion": _LIST_VERSIONS.get(kind, "v1"),
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": "5000"},
            "items": items,
        }

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._read(kind)
        with self._lock:
            for obj in self.objects[kind]:
                if obj["metadata"]["namespace"] == namespace and obj["metadata"]["name"] == name:
                    return json.loads(json.dumps(obj))
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fixture.requests.append(self.path)
                query = parse_qs(parts.query)
                if self.headers.get("Authorization") != "Bearer fixture-token":
                    self._status(401, "Unauthorized", "Unauthorized")
                    return
                for pattern, action, kind in _ROUTES:
                    match = pattern.match(parts.path)
                    if match is None:
                        continue
                    if action == "list":
                        self._json(200, fixture._list(kind, match.group(1), query))
                    elif action == "get":
                        obj = fixture._get(kind, match.group(1), match.group(2))
                        if obj is None:
                            resource = _RESOURCES[kind].split("/")[0]
                            self._status(
                                404, "NotFound", f'{resource} "{match.group(2)}" not found'
                            )
                        else:
                            self._json(200, obj)
                    else:
                        self._log(match.group(1), match.group(2), query)
                    return
                self._status(404, "NotFound", "the server could not find the requested resource")

            def _log(self, namespace: str, name: str, query: dict[str, list[str]]) -> None:
                pod = fixture._get("Pod", namespace, name)
                if pod is None:
                    self._status(404, "NotFound", f'pods "{name}" not found')
                    return
                container = query.get("container", [pod["spec"]["containers"][0]["name"]])[0]
                state = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {})
                if "waiting" in state or not state:
                    reason = state.get("waiting", {}).get("reason", "ContainerCreating")
                    self._status(
                        400,
                        "BadRequest",
                        f'container "{container}" in pod "{name}" is waiting to start: {reason}',
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line in fixture.logs.get(name, []):
                    self._chunk((line + "\n").encode())
                    time.sleep(fixture.log_line_delay)
                hook = fixture._after_log.pop(name, None)
                if hook is not None and query.get("follow") == ["true"]:
                    with fixture._lock:
                        hook(fixture)
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._json(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": message,
                        "reason": reason,
                        "code": code,
                    },
                )

        return Handler


def _parse_selector(text: str) -> list[tuple[str, str, str]]:
    """``a=b,c!=d`` -> [(a, '=', b), (c, '!=', d)] (equality-based selectors only)."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", term)
        if match is None:
            raise ValueError(f"unsupported selector term {term!r}")
        key, op, value = match.groups()
        terms.append((key, "!=" if op == "!=" else "=", value))
    return terms


def _selected(values: dict[str, str], terms: list[tuple[str, str, str]]) -> bool:
    return all((values.get(key) == value) == (op == "=") for key, op, value in terms)


def _field_values(obj: dict[str, Any]) -> dict[str, str]:
    values = {
        "metadata.name": obj["metadata"]["name"],
        "metadata.namespace": obj["metadata"]["namespace"],
    }
    for key, value in (obj.get("involvedObject") or {}).items():
        values[f"involvedObject.{key}"] = str(value)
    return values
