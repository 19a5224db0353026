import os
import threading
from pathlib import Path

import pytest

from qatflow.core import artifacts


def _stage(models_dir: Path, name: str, payload: bytes = b"weights") -> tuple:
    context = artifacts.staging_dir(models_dir, name)
    staged = context.__enter__()
    (staged / "openvino_model.xml").write_bytes(b"<net/>")
    (staged / "openvino_model.bin").write_bytes(payload)
    (staged / "onnx").mkdir()
    (staged / "onnx" / "model.onnx").write_bytes(b"onnx")
    return context, staged


def _publish(models_dir: Path, name: str = "demo", payload: bytes = b"weights"):
    context, staged = _stage(models_dir, name, payload)
    try:
        return artifacts.publish(staged, models_dir, name, {"task": "question-answering"})
    finally:
        context.__exit__(None, None, None)


def test_publish_makes_a_complete_numbered_version(tmp_path: Path):
    first = _publish(tmp_path)
    second = _publish(tmp_path, payload=b"newer")
    assert (first.version, second.version) == (1, 2)
    latest = artifacts.find_latest(tmp_path)
    assert latest is not None and latest.version == 2
    assert latest.manifest["files"]["onnx/model.onnx"]["size"] == 4
    assert set(latest.manifest["files"]) == {
        "openvino_model.xml",
        "openvino_model.bin",
        "onnx/model.onnx",
    }
    artifacts.verify(latest)
    # the staging area holds nothing once published
    assert list((tmp_path / artifacts.STAGING).iterdir()) == []


def test_unfinished_work_is_never_visible(tmp_path: Path):
    context, _staged = _stage(tmp_path, "demo")
    assert artifacts.find_latest(tmp_path) is None
    assert artifacts.list_models(tmp_path) == []
    context.__exit__(RuntimeError, RuntimeError("crash"), None)
    assert list((tmp_path / artifacts.STAGING).iterdir()) == []
    # a directory without manifest (e.g. copied by hand) is not a version either
    (tmp_path / "demo" / "7").mkdir(parents=True)
    assert artifacts.find_latest(tmp_path, "demo") is None


def test_verify_detects_corruption_and_truncation(tmp_path: Path):
    version = _publish(tmp_path)
    weights = version.path / "openvino_model.bin"
    weights.write_bytes(b"weightz")
    with pytest.raises(artifacts.ArtifactError, match="checksum mismatch"):
        artifacts.verify(version)
    weights.write_bytes(b"w")
    with pytest.raises(artifacts.ArtifactError, match="bytes"):
        artifacts.verify(version)
    weights.unlink()
    with pytest.raises(artifacts.ArtifactError, match="missing file"):
        artifacts.verify(version)


def test_concurrent_publishers_get_distinct_complete_versions(tmp_path: Path):
    results, errors = [], []

    def publish(index: int) -> None:
        try:
            results.append(_publish(tmp_path, payload=f"w{index}".encode()))
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(v.version for v in results) == [1, 2, 3, 4, 5, 6]
    for number in artifacts.list_versions(tmp_path, "demo"):
        artifacts.verify(artifacts.open_version(tmp_path, "demo", number))


def test_stale_staging_directories_are_cleared(tmp_path: Path):
    stale = tmp_path / artifacts.STAGING / "demo-old"
    stale.mkdir(parents=True)
    old = 3 * 24 * 3600
    os.utime(stale, (os.path.getatime(stale) - old, os.path.getmtime(stale) - old))
    _publish(tmp_path)
    assert not stale.exists()


def test_several_models_need_a_name(tmp_path: Path):
    _publish(tmp_path, "alpha")
    _publish(tmp_path, "beta")
    with pytest.raises(artifacts.ArtifactError, match="name the one"):
        artifacts.find_latest(tmp_path)
    assert artifacts.find_latest(tmp_path, "beta").name == "beta"
    with pytest.raises(artifacts.ArtifactError, match="no version 9"):
        artifacts.open_version(tmp_path, "beta", 9)


@pytest.mark.parametrize("name", ["Upper", "-dash", "a/b", "", "x" * 64])
def test_invalid_model_names_are_refused(name: str):
    with pytest.raises(artifacts.ArtifactError, match="invalid model name"):
        artifacts.validate_name(name)
