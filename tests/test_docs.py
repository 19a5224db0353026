"""The settings and exit-code tables in the docs are generated from the code; they must not
drift."""

from pathlib import Path

import pytest

from qatflow.core.outcome import EXIT_CODES
from qatflow.core.settings import markdown_table
from qatflow.serving.settings import ServeSettings
from qatflow.training.config import TrainingSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"
BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->"


@pytest.mark.parametrize(
    ("document", "settings"), [("training.md", TrainingSettings), ("serving.md", ServeSettings)]
)
def test_settings_table_matches_the_code(document, settings):
    text = (DOCS / document).read_text(encoding="utf-8")
    table = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert table == markdown_table(settings), (
        f"docs/{document} is out of date: paste the output of "
        f"`python -c 'from qatflow.core.settings import markdown_table; ...'`"
    )


def test_client_exit_code_table_matches_the_code():
    from qatflow.client.errors import exit_code_table

    text = (DOCS / "ovms.md").read_text(encoding="utf-8")
    table = text.split("<!-- exit-codes:begin -->\n", 1)[1].split("<!-- exit-codes:end -->", 1)[0]
    assert table == exit_code_table(), (
        "docs/ovms.md is out of date: paste the output of `python -c 'from qatflow.client.errors "
        "import exit_code_table; print(exit_code_table(), end=str())'`"
    )


def test_training_exit_code_table_matches_the_code():
    text = (DOCS / "training.md").read_text(encoding="utf-8")
    table = text.split("<!-- exit-codes:begin -->\n", 1)[1].split("<!-- exit-codes:end -->", 1)[0]
    rows = "".join(f"| {code} | {meaning} |\n" for code, meaning in EXIT_CODES.items())
    assert table == "| code | meaning |\n|---|---|\n" + rows
