"""Fail an image build whose environment holds what the image must not ship.

    python check_installed.py [--absent MODULE ...]

Always: no CUDA/NVIDIA distribution (a CUDA torch drags in GiBs of them) and, where torch is
installed, a CPU build of it. ``--absent``: modules that must not be importable at all.
"""

import argparse
import importlib.metadata
import importlib.util
import re
import sys

GPU_DISTRIBUTIONS = re.compile(r"nvidia-.*|cuda-.*|cupy.*|triton|pytorch-triton.*")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problems(absent: list[str]) -> list[str]:
    found = []
    names = sorted({normalized(d.metadata["Name"]) for d in importlib.metadata.distributions()})
    gpu = [name for name in names if GPU_DISTRIBUTIONS.fullmatch(name)]
    if gpu:
        found.append(f"CUDA/NVIDIA packages installed: {', '.join(gpu)}")
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.version.cuda is not None:
            found.append(f"torch {torch.__version__} is a CUDA {torch.version.cuda} build")
    present = [module for module in absent if importlib.util.find_spec(module) is not None]
    if present:
        found.append(f"must not be installed: {', '.join(present)}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--absent", nargs="*", default=[], metavar="MODULE")
    found = problems(parser.parse_args().absent)
    for problem in found:
        print(f"check_installed: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
