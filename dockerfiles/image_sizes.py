"""Report each image's size against its budget; ``--check`` fails when one is over.

    python dockerfiles/image_sizes.py [--tag 0.1.0] [--check] [IMAGE ...]

Sizes are what ``docker image ls`` shows, in decimal units (1 GB = 10^9 bytes).
"""

import argparse
import subprocess
import sys

# Uncompressed size on the engine, in bytes.
BUDGETS = {
    "client": 0.8e9,
    "onnxruntime": 1.0e9,
    "optimum": 2.0e9,
    "training": 3.0e9,
}


def image_size(image: str, tag: str) -> int:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", f"qatflow-{image}:{tag}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", default=list(BUDGETS), metavar="IMAGE")
    parser.add_argument("--tag", default="0.1.0")
    parser.add_argument("--check", action="store_true", help="exit 1 if an image is over budget")
    args = parser.parse_args()
    over = []
    print(f"{'image':<28} {'size':>9} {'budget':>9}")
    for image in args.images:
        size, budget = image_size(image, args.tag), BUDGETS[image]
        verdict = "" if size <= budget else "  OVER BUDGET"
        name = f"qatflow-{image}:{args.tag}"
        print(f"{name:<28} {size / 1e9:>6.2f} GB {budget / 1e9:>6.2f} GB{verdict}")
        if verdict:
            over.append(image)
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
