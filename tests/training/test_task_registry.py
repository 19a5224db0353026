"""The training tasks are found by name in ``qatflow.training.task.TASK_CLASSES``: one entry
per task of ``qatflow.core.tasks``, each naming the class that trains it."""

from __future__ import annotations

import pytest

from qatflow.core.tasks import TASKS
from qatflow.training.task import TASK_CLASSES, task_class


def test_every_core_task_has_its_training_class() -> None:
    assert tuple(TASK_CLASSES) == TASKS
    for name in TASKS:
        assert getattr(task_class(name), "name", None) == name


def test_an_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported task 'summarization'"):
        task_class("summarization")
