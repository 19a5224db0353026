"""Read a Dockerfile into (instruction, arguments) pairs, stage by stage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for text in self.all("ENV"):
            for item in text.split():
                key, _, value = item.partition("=")
                values[key] = value
        return values

    def arg_defaults(self) -> dict[str, str]:
        """The stage's build arguments and their defaults (quotes removed)."""
        defaults: dict[str, str] = {}
        for text in self.all("ARG"):
            name, _, default = text.partition("=")
            defaults[name] = default.strip('"')
        return defaults


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def exec_form(self, keyword: str) -> list[str]:
        (text,) = self.final.all(keyword)[-1:]
        value = json.loads(text)
        assert isinstance(value, list), f"{self.path.name}: {keyword} must use the JSON (exec) form"
        return [str(item) for item in value]

    def env(self) -> dict[str, str]:
        """The final stage's environment."""
        return self.final.env()


def parse(path: Path) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = words[0]
            for name, value in args.items():
                base = base.replace(f"${{{name}}}", value)
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, stage_name))
        else:
            stages[-1].instructions.append((keyword, rest))
    return Dockerfile(path, args, stages)
