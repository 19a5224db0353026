from pathlib import Path

import pytest

from qatflow.core.settings import SettingsError, parse_assignments
from qatflow.training.config import TrainingSettings


def test_defaults_without_any_source():
    settings = TrainingSettings.load(environ={})
    assert settings.max_seq_length == 192
    assert settings.doc_stride == 64
    assert settings.accuracy_tolerance == 1.0


def test_precedence_cli_over_env_over_yaml(tmp_path: Path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 3\nbatch_size: 8\nlearning_rate: 3.0e-5\nseed: 1\n")
    environ = {"QATFLOW_TRAIN_BATCH_SIZE": "4", "QATFLOW_TRAIN_SEED": "2"}
    settings = TrainingSettings.load(yaml_files=[config], environ=environ, overrides={"seed": 3})
    assert settings.epochs == 3  # YAML over default
    assert settings.learning_rate == 3e-5
    assert settings.batch_size == 4  # env over YAML
    assert settings.seed == 3  # CLI over env


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path: Path):
    with pytest.raises(SettingsError, match=r"unknown setting 'epoch'.*allowed: .*epochs"):
        TrainingSettings.load(overrides={"epoch": 1}, environ={})
    with pytest.raises(SettingsError, match="QATFLOW_TRAIN_LERNING_RATE"):
        TrainingSettings.load(environ={"QATFLOW_TRAIN_LERNING_RATE": "1"})
    config = tmp_path / "bad.yaml"
    config.write_text("bach_size: 3\n")
    with pytest.raises(SettingsError, match="bach_size"):
        TrainingSettings.load(yaml_files=[config], environ={})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "translation"}, "task"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": "many"}, "epochs"),
        ({"fine_tune": "sometimes"}, "fine_tune"),
        ({"max_seq_length": 64, "doc_stride": 60}, "doc_stride"),
    ],
)
def test_invalid_values_fail_with_the_key(overrides, message):
    with pytest.raises(SettingsError, match=message):
        TrainingSettings.load(overrides=overrides, environ={})


def test_empty_env_variable_counts_as_unset():
    settings = TrainingSettings.load(environ={"QATFLOW_TRAIN_MAX_TRAIN_SAMPLES": ""})
    assert settings.max_train_samples == 2000


def test_missing_or_malformed_config_file(tmp_path: Path):
    with pytest.raises(SettingsError, match="not found"):
        TrainingSettings.load(yaml_files=[tmp_path / "nope.yaml"], environ={})
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="mapping"):
        TrainingSettings.load(yaml_files=[listing], environ={})


def test_parse_assignments_reads_yaml_scalars():
    assert parse_assignments(["epochs=2.5", "model_name=x", "max_train_samples=null"]) == {
        "epochs": 2.5,
        "model_name": "x",
        "max_train_samples": None,
    }
    with pytest.raises(SettingsError, match="key=value"):
        parse_assignments(["epochs"])
