"""The shell commands the documentation shows, as bash would get them: what the tests that run
every documented command (tests/test_documented_commands.py, tests/cluster/) read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
# helm, kubectl and `qatflow status`: what needs a cluster, and the documents that show them
# (tests/cluster/test_documented_commands.py runs those).
CLUSTER_COMMAND = re.compile(r"(^|\$\()\s*(\S*/)?(helm|kubectl|qatflow status)\s")
CLUSTER_DOCUMENTS = ("README.md", "docs/kubernetes.md", "helm/qat/README.md")


@dataclass(frozen=True)
class Documented:
    document: str
    line: int
    # As bash gets it: continuation lines joined, the trailing comment dropped.
    text: str

    @property
    def key(self) -> str:
        return " ".join(self.text.split())


def documented_commands(
    documents: Iterable[str],
    command: re.Pattern[str],
    languages: tuple[str, ...] = ("bash", "sh", ""),
) -> list[Documented]:
    """Each command matching ``command`` in the code fences of ``languages`` (``""``: fences
    without one) of ``documents`` (paths relative to the repository)."""
    commands = []
    for document in documents:
        text = (REPO / document).read_text(encoding="utf-8")
        for fence in _FENCE.finditer(text):
            if fence.group(1) not in languages:
                continue
            first = text[: fence.start(2)].count("\n") + 1
            pending, start = "", first
            for number, line in enumerate(fence.group(2).splitlines(), first):
                if not pending:
                    start = number
                code = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
                if code.endswith("\\"):
                    pending += code[:-1] + " "
                    continue
                joined = (pending + code).strip()
                pending = ""
                if joined and command.search(joined):
                    commands.append(Documented(document, start, joined))
    return commands


def as_written(commands: Iterable[Documented], key: str) -> str:
    """The command as the docs write it, found by its words."""
    for command in commands:
        if command.key == " ".join(key.split()):
            return command.text
    raise AssertionError(f"no longer documented: {key}")
