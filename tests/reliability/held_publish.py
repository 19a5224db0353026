"""``qatflow`` with a pause inside publishing: after the manifest is sealed in staging and
before the rename that makes the version visible, it prints ``MANIFEST SEALED`` and waits
until the file named by its first argument exists (forever if it never does).

  python -m tests.reliability.held_publish RELEASE_FILE train --set ...

Tests use it to kill a run at the worst moment of a publish, and to make two runs rename
onto the same version number at the same instant.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from qatflow.cli import main
from qatflow.core import artifacts


def hold_after_sealing(release: Path) -> None:
    seal = artifacts._fsync_tree

    def sealed_then_wait(root: Path) -> None:
        seal(root)
        print("MANIFEST SEALED", root, flush=True)
        while not release.exists():
            time.sleep(0.05)

    artifacts._fsync_tree = sealed_then_wait


if __name__ == "__main__":
    hold_after_sealing(Path(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
