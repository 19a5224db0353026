"""The model-artifact contract: how a published model version looks on the shared volume.

Layout (OpenVINO Model Server reads ``<models_dir>/<name>/<version>/`` as is)::

    <models_dir>/
      .staging/                  work in progress, never read by services
      <name>/
        <version>/               a positive integer, the newest is served
          openvino_model.xml     INT8 OpenVINO IR (FakeQuantize + int8 weights)
          openvino_model.bin
          config.json            Hugging Face model config
          tokenizer.json ...     tokenizer files
          onnx/model.onnx        INT8 ONNX with QuantizeLinear/DequantizeLinear pairs
          metrics.json           FP32 / PTQ / QAT accuracy and timings
          manifest.json          written last: sizes and sha256 of every other file

A version is published by renaming a finished staging directory into place, so readers
see either nothing or a complete version; ``manifest.json`` is what marks it complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
METRICS = "metrics.json"
IR_FILE = "openvino_model.xml"
ONNX_FILE = "onnx/model.onnx"
STAGING = ".staging"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_STALE_STAGING_SECONDS = 24 * 3600


class ArtifactError(RuntimeError):
    """A model version that is missing, incomplete or corrupted."""


@dataclass(frozen=True)
class ModelVersion:
    """One complete, published model version."""

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def ir_path(self) -> Path:
        return self.path / self.manifest.get("ir", IR_FILE)

    @property
    def onnx_path(self) -> Path:
        return self.path / self.manifest.get("onnx", ONNX_FILE)

    def metrics(self) -> dict[str, Any]:
        return read_json(self.path / METRICS)

    def tokenizer(self) -> Any:
        """The version's fast tokenizer, read from its ``tokenizer.json``. Loading it directly
        skips AutoTokenizer's model registry, which halves a client's start-up."""
        from transformers import PreTrainedTokenizerFast

        if not (self.path / "tokenizer.json").is_file():
            raise ArtifactError(f"{self.path} has no tokenizer.json (a fast tokenizer)")
        return PreTrainedTokenizerFast.from_pretrained(self.path)


def validate_name(name: str) -> str:
    """Model names become directory names, label values and OVMS model names."""
    if not _NAME.match(name):
        raise ArtifactError(
            f"invalid model name {name!r}: use lowercase letters, digits, '.', '_' or '-' "
            "(at most 63 characters, starting and ending with a letter or digit)"
        )
    return name


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"missing file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"unreadable file {path}: {error}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} must hold a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write through a temporary file and rename, so the file is never seen half-written."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_versions(models_dir: Path, name: str) -> list[int]:
    """Version numbers under ``<models_dir>/<name>`` that hold a manifest, oldest first."""
    root = Path(models_dir) / name
    if not root.is_dir():
        return []
    found = [
        int(entry.name)
        for entry in root.iterdir()
        if entry.name.isdigit() and int(entry.name) > 0 and (entry / MANIFEST).is_file()
    ]
    return sorted(found)


def list_models(models_dir: Path) -> list[str]:
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and list_versions(root, entry.name)
    )


def open_version(models_dir: Path, name: str, version: int | None = None) -> ModelVersion:
    """The named version, or the newest complete one; reads the manifest, checks nothing else."""
    versions = list_versions(models_dir, name)
    if not versions:
        raise ArtifactError(f"no published version of model {name!r} under {models_dir}")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise ArtifactError(f"model {name!r} has no version {chosen} (found {versions})")
    path = Path(models_dir) / name / str(chosen)
    manifest = read_json(path / MANIFEST)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path / MANIFEST}: unsupported format_version")
    return ModelVersion(name=name, version=chosen, path=path, manifest=manifest)


def find_latest(models_dir: Path, name: str | None = None) -> ModelVersion | None:
    """The newest version of ``name``; without a name, the only model under ``models_dir``."""
    if name is None:
        names = list_models(models_dir)
        if not names:
            return None
        if len(names) > 1:
            raise ArtifactError(
                f"several models under {models_dir} ({', '.join(names)}): name the one to serve"
            )
        name = names[0]
    if not list_versions(models_dir, name):
        return None
    return open_version(models_dir, name)


def verify(version: ModelVersion) -> None:
    """Check every file the manifest lists against its size and sha256."""
    for relative, expected in version.manifest["files"].items():
        path = version.path / relative
        if not path.is_file():
            raise ArtifactError(f"{version.name}/{version.version}: missing file {relative}")
        size = path.stat().st_size
        if size != expected["size"]:
            raise ArtifactError(
                f"{version.name}/{version.version}: {relative} has {size} bytes, "
                f"manifest says {expected['size']}"
            )
        if sha256_file(path) != expected["sha256"]:
            raise ArtifactError(f"{version.name}/{version.version}: {relative} checksum mismatch")


@contextlib.contextmanager
def staging_dir(models_dir: Path, name: str) -> Iterator[Path]:
    """A private directory on the same volume to build a version in; removed if left unpublished."""
    validate_name(name)
    root = Path(models_dir) / STAGING
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(root)
    path = root / f"{name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def publish(staged: Path, models_dir: Path, name: str, manifest: dict[str, Any]) -> ModelVersion:
    """Seal ``staged`` with its manifest and rename it into the next free version number.

    The rename is atomic, and renaming onto an existing non-empty directory fails, so two
    publishers racing for the same number never overwrite each other: the loser takes the next.
    """
    validate_name(name)
    files = {
        str(path.relative_to(staged)): {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(staged.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    target_root = Path(models_dir) / name
    target_root.mkdir(parents=True, exist_ok=True)
    for _attempt in range(100):
        version = _highest_entry(target_root) + 1
        sealed = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "name": name,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
        }
        write_json(staged / MANIFEST, sealed)
        _fsync_tree(staged)
        try:
            os.rename(staged, target_root / str(version))
        except OSError:
            time.sleep(0.05)
            continue
        return ModelVersion(name, version, target_root / str(version), sealed)
    raise ArtifactError(f"could not find a free version number under {target_root}")


def _highest_entry(root: Path) -> int:
    """Numbers already taken, complete or not, so a new version never reuses one."""
    return max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0)


def _fsync_tree(root: Path) -> None:
    """Data reaches the disk before the rename makes the version visible."""
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def _remove_stale_staging(root: Path) -> None:
    """Clear what crashed runs left behind; a live run's directory is younger than a day."""
    now = time.time()
    for entry in root.iterdir():
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_STAGING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
