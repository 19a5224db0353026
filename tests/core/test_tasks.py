from typing import get_args

from qatflow.core.tasks import TASKS, Task
from qatflow.training.config import DEFAULT_DATASETS, DEFAULT_MODEL_NAMES, TrainingSettings


def test_the_task_type_names_exactly_the_tasks():
    assert get_args(Task) == TASKS


def test_training_knows_every_task_and_defaults_to_the_first():
    assert set(DEFAULT_MODEL_NAMES) == set(DEFAULT_DATASETS) == set(TASKS)
    assert TrainingSettings.load(environ={}).task == TASKS[0]
