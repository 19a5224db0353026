"""``qatflow status RELEASE``: follow a Helm release until its service answers, or say why not.

Exit codes: 0 service available, 1 training failed, 2 bad arguments or kubeconfig,
3 image pull error, 4 PersistentVolumeClaim still pending, 5 timeout, 6 Kubernetes API error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from qatflow.cluster.problems import EXIT_READY, EXIT_USAGE, ReleaseProblem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "exit codes: 0 service available, 1 training failed, 2 bad arguments or kubeconfig, "
        "3 image pull error, 4 PersistentVolumeClaim pending, 5 timeout, 6 Kubernetes API error"
    )
    parser.add_argument("release", help="Helm release name (the app.kubernetes.io/instance label)")
    parser.add_argument(
        "-n", "--namespace", help="namespace of the release (default: the context's)"
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument("--context", help="kubeconfig context to use")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="give up after this long (default: 1800, the chart's recommended helm --timeout)",
    )
    parser.add_argument(
        "--volume-grace",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long a pod may wait on a Pending PersistentVolumeClaim (default: 120)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, metavar="SECONDS", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="do not print the training pod's logs, only the outcome",
    )


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.volume_grace < 0 or args.poll_interval <= 0:
        print("qatflow status: --timeout and --poll-interval must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        api_client, namespace = _connect(args)
    except ValueError as error:
        print(f"qatflow status: {error}", file=sys.stderr)
        return EXIT_USAGE

    from qatflow.cluster.release import ReleaseFollower, query_instructions

    namespace = args.namespace or namespace
    follower = ReleaseFollower(
        api_client,
        args.release,
        namespace,
        timeout=args.timeout,
        poll_interval=args.poll_interval,
        volume_grace=args.volume_grace,
        show_logs=not args.quiet,
        say=lambda text: print(f"==> {text}", flush=True),
        echo=lambda line: print(line, flush=True),
    )
    print(f"==> following release {args.release} in namespace {namespace}", flush=True)
    try:
        training = follower.follow_training()
        endpoint = follower.wait_for_service()
    except ReleaseProblem as problem:
        print(f"qatflow status: {problem}", file=sys.stderr, flush=True)
        return problem.exit_code
    finally:
        api_client.close()
    print("==> query it:")
    task = training.outcome.task if training.outcome is not None else None
    for command in query_instructions(endpoint, namespace, task):
        print(f"    {command}")
    return EXIT_READY


def _connect(args: argparse.Namespace) -> tuple[Any, str]:
    """An API client for the kubeconfig (or the in-cluster account) and its default namespace."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if args.kubeconfig is None and config.incluster_config.SERVICE_HOST_ENV_NAME in os.environ:
            config.load_incluster_config(client_configuration=configuration)
            namespace = _incluster_namespace()
        else:
            config.load_kube_config(
                config_file=args.kubeconfig,
                context=args.context,
                client_configuration=configuration,
            )
            contexts, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
            if args.context:
                active = next(c for c in contexts if c["name"] == args.context)
            namespace = active.get("context", {}).get("namespace") or "default"
    except (ConfigException, FileNotFoundError, StopIteration) as error:
        where = args.kubeconfig or "$KUBECONFIG / ~/.kube/config"
        raise ValueError(
            f"cannot load the Kubernetes configuration from {where}: {error or 'no such context'}"
        ) from None
    return client.ApiClient(configuration), namespace


def _incluster_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else "default"
