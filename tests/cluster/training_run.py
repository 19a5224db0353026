"""What a successful training container prints and reports, for the simulated nodes to replay.

The termination message is made by the same ``TrainingOutcome`` the training command writes;
the log lines are the shapes its logger prints.
"""

from __future__ import annotations

from qatflow.core.outcome import EXIT_PUBLISHED, TrainingOutcome

from .simulated_node import Script

SUMMARY = (
    "qat | baseline f1 80.12 | fp32 80.12 | ptq 77.90 | int8 79.85 | int8 vs fp32 -0.27 | "
    "int8 vs baseline -0.27"
)
PUBLISHED = TrainingOutcome(
    EXIT_PUBLISHED,
    "published bert-qa version 1 to /models/bert-qa/1",
    model="bert-qa",
    version=1,
    task="question-answering",
    metric="f1",
    scores={"baseline": 80.12, "fp32": 80.12, "ptq": 77.9, "int8": 79.85},
    summary=SUMMARY,
)
TRAINING_LOG = (
    "01:00:05 INFO    qatflow.training.pipeline: [1/9] Load model and data",
    "01:00:41 INFO    qatflow.training.loop: qat step 40/75 loss 1.2034 11.8 samples/s ETA 0m48s",
    f"01:06:10 INFO    qatflow.training.pipeline: summary: {SUMMARY}",
    "01:06:12 INFO    qatflow.training.pipeline: published bert-qa version 1 to "
    "/models/bert-qa/1 in 6m07s",
)
# A training pod that runs two seconds, logs, and reports a published version.
TRAINS = Script(seconds=2.0, log=TRAINING_LOG, message=PUBLISHED.to_json())
