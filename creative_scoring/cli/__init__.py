"""``creative-scoring``: the project's one command (also ``python -m creative_scoring``).

Each group lives in its own module and imports its subsystem only when a command runs, so ``--help`` is instant.
Exit codes: 0 success, 1 the work failed (a failed job, a failed sample), 2 invalid arguments or configuration,
3 an AWS call failed, 130 interrupted.
"""

from __future__ import annotations

import typer

from creative_scoring.cli import local, models, sagemaker, train

app = typer.Typer(
    name="creative-scoring",
    help="Serve, transform, train and operate the creative-scoring models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
local.register(app)
app.add_typer(models.app, name="models")
app.command(rich_help_panel="After a deploy")(models.smoke)
app.add_typer(sagemaker.app, name="sagemaker")
app.add_typer(train.app, name="train")


def main() -> None:
    app(prog_name="creative-scoring")
