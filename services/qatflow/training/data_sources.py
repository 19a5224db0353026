"""What both tasks' data loaders share: the embedded splits, local split files and the hub."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

EMBEDDED_PREFIX = "embedded:"
# Sizes of the generated splits; max_train_samples / max_eval_samples cap what is used.
EMBEDDED_SIZES = {"train": 8000, "validation": 1000}


class DataError(RuntimeError):
    """A data set that cannot be found, read or understood."""


def split_file(directory: Path, split: str, extensions: Sequence[str]) -> Path:
    """``<directory>/<split>.<ext>`` for the first extension that exists."""
    for extension in extensions:
        candidate = directory / f"{split}.{extension}"
        if candidate.is_file():
            return candidate
    names = " / ".join(f"{split}.{extension}" for extension in extensions)
    raise DataError(f"no {names} in {directory}")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None


def load_hub(dataset: str, split: str, config: str | None) -> Any:
    """One split of a Hugging Face hub data set (a ``datasets.Dataset``)."""
    try:
        import datasets  # optional, and slow to import: only for hub data sets
    except ImportError:
        raise DataError(
            f"{dataset!r} is not a local path; loading hub data sets needs the 'datasets' "
            "package (pip install datasets)"
        ) from None
    try:
        return datasets.load_dataset(dataset, config, split=split)
    except Exception as error:  # hub, network and format errors all end the same way
        raise DataError(f"cannot load {dataset!r} split {split!r} from the hub: {error}") from None
