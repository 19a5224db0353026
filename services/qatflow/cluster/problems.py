"""Why ``qatflow status`` stopped early: one exception per reason, each with its exit code."""

from __future__ import annotations

EXIT_READY = 0
EXIT_TRAINING_FAILED = 1
EXIT_USAGE = 2
EXIT_IMAGE_PULL = 3
EXIT_PENDING_VOLUME = 4
EXIT_TIMEOUT = 5
EXIT_CLUSTER_ERROR = 6


class ReleaseProblem(Exception):
    """A release that cannot become ready (or a cluster we cannot ask): message and exit code."""

    exit_code = EXIT_CLUSTER_ERROR


class TrainingFailed(ReleaseProblem):
    exit_code = EXIT_TRAINING_FAILED


class ImagePullFailed(ReleaseProblem):
    exit_code = EXIT_IMAGE_PULL


class VolumeClaimPending(ReleaseProblem):
    exit_code = EXIT_PENDING_VOLUME


class StatusTimeout(ReleaseProblem):
    exit_code = EXIT_TIMEOUT


class ClusterUnavailable(ReleaseProblem):
    exit_code = EXIT_CLUSTER_ERROR
