"""qatflow: fine-tune, quantize (QAT), publish and serve INT8 NLP models on Intel CPUs."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module defining add_arguments(parser) and run(args) -> exit code; each
# module imports its heavy dependencies inside run(), so `--help` and the client stay fast.
COMMANDS = {
    "train": ("qatflow.training.cli", "fine-tune, quantize (QAT) and publish an INT8 model"),
    "serve": ("qatflow.serving.cli", "serve a published model over HTTP"),
    "ask": ("qatflow.client.cli", "ask a running service (HTTP or gRPC) a question"),
    "ovms-config": ("qatflow.ovms.cli", "write the OpenVINO Model Server config for a model"),
    "status": ("qatflow.cluster.cli", "follow a Helm release: training, then the service"),
    "local": (
        "qatflow.local",
        "train (or reuse), serve, ask sample questions, stop: all on this machine",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qatflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        module.add_arguments(commands.add_parser(name, help=summary, description=summary))
    args = parser.parse_args(argv)
    return int(modules[args.command].run(args))


if __name__ == "__main__":
    sys.exit(main())
