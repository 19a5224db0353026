"""``qatflow ovms-config``: write the OpenVINO Model Server ``config.json`` for a model."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_MODEL = 3
EXIT_MISMATCH = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="NAME", help="model name served by OVMS")
    parser.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="read input names from the newest published version under DIR and check them "
        "against its IR (without it: the artifact contract's names, for a chart rendered "
        "before any model exists)",
    )
    parser.add_argument(
        "--models-mount",
        default="/models",
        metavar="PATH",
        help="where the models volume is mounted in the OVMS container (default /models)",
    )
    parser.add_argument("--performance-hint", choices=["LATENCY", "THROUGHPUT"], default="LATENCY")
    parser.add_argument(
        "--pin-version",
        action="store_true",
        help="serve only the version found under --models-dir, not whatever is newest later",
    )
    parser.add_argument(
        "--nireq", type=int, metavar="N", help="parallel inference requests (default: OVMS's)"
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    from qatflow.core.artifacts import ArtifactError, find_latest
    from qatflow.ovms.config import (
        CONTRACT_OUTPUTS,
        OVMS_IMAGE,
        OvmsConfigError,
        check_against_ir,
        config_for_version,
        model_server_config,
        server_args,
        write_config,
    )

    if args.pin_version and args.models_dir is None:
        print("error: --pin-version needs --models-dir", file=sys.stderr)
        return EXIT_USAGE
    if args.nireq is not None and args.nireq < 1:
        print("error: --nireq must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.models_dir is None:
            config = model_server_config(
                args.model,
                models_mount=args.models_mount,
                performance_hint=args.performance_hint,
                nireq=args.nireq,
            )
        else:
            version = find_latest(args.models_dir, args.model)
            if version is None:
                print(
                    f"error: no published version of {args.model!r} under {args.models_dir}",
                    file=sys.stderr,
                )
                return EXIT_NO_MODEL
            config = config_for_version(
                version,
                models_mount=args.models_mount,
                performance_hint=args.performance_hint,
                pin_version=args.pin_version,
                nireq=args.nireq,
            )
            if importlib.util.find_spec("openvino") is None:
                print("note: openvino is not installed; the IR was not checked", file=sys.stderr)
            else:
                outputs = version.manifest.get("outputs") or CONTRACT_OUTPUTS
                check_against_ir(config, version.ir_path, outputs)
    except ArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NO_MODEL
    except OvmsConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_MISMATCH

    if args.output is None:
        json.dump(config, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_config(config, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    print(f"run with: {OVMS_IMAGE} {' '.join(server_args())}", file=sys.stderr)
    return EXIT_OK
