"""Distributed training: a real 2-process torchrun (gloo) on this machine, and the rank maths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qatflow.core import artifacts
from qatflow.training.distributed import DistributedError, World
from tests.conftest import free_port, tiny_training_overrides


def test_each_rank_takes_every_nth_batch_and_all_take_the_same_count():
    batches = list(range(11))
    shards = [list(World(rank, 3).shard(iter(batches), len(batches))) for rank in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert World(0, 3).steps(11) == 3
    assert list(World().shard(iter(batches), len(batches))) == batches


def test_too_few_batches_for_the_ranks_is_a_clear_error():
    with pytest.raises(DistributedError, match="2 training batches cannot feed 4 ranks"):
        World(0, 4).steps(2)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RANK": "two", "WORLD_SIZE": "2"}, "must be integers"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "rank 2 is outside a world of 2"),
    ],
)
def test_bad_torchrun_environment_is_refused(environ, message):
    with pytest.raises(DistributedError, match=message):
        World.from_environment(environ)


def test_no_torchrun_is_a_world_of_one():
    world = World.from_environment({})
    assert (world.rank, world.size, world.is_main, world.distributed) == (0, 1, True, False)


@pytest.mark.slow
def test_two_process_torchrun_trains_together_and_publishes_once(tiny_model_dir, tmp_path):
    models = tmp_path / "models"
    settings = tiny_training_overrides(tiny_model_dir, models)
    settings.update(model_name="tiny-ddp", max_train_samples=160, max_eval_samples=30)
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(settings))
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun ships with torch"
    result = subprocess.run(
        [
            torchrun,
            "--nnodes=1",
            "--nproc-per-node=2",
            "--master-addr=127.0.0.1",
            f"--master-port={free_port()}",
            "--no-python",
            str(Path(sys.executable).parent / "qatflow"),
            "train",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]

    assert artifacts.list_versions(models, "tiny-ddp") == [1]  # published once, by rank 0
    assert not any((models / artifacts.STAGING).iterdir())
    metrics = json.loads((models / "tiny-ddp" / "1" / artifacts.METRICS).read_text())
    assert metrics["world_size"] == 2
    for stage in ("baseline", "fp32", "ptq", "int8"):
        assert set(metrics[stage]) == {"exact_match", "f1", "samples"}
    # Both ranks trained, stayed identical after each phase, and only rank 0 published.
    for rank in (0, 1):
        assert f"[rank {rank}/2] " in log
    assert log.count("fp32: all 2 ranks hold the same model") == 2
    assert log.count("qat: all 2 ranks hold the same model") == 2
    assert "[rank 1/2] " + "rank 1 finished training; rank 0 exports and publishes" in log
    assert log.count("published tiny-ddp version 1") == 1
