"""``creative-scoring sagemaker``: operations on a deployed environment that CloudFormation has no resource for."""

from __future__ import annotations

import typer

app = typer.Typer(help="Operate a deployed environment in AWS (needs credentials).", no_args_is_help=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def transform(ctx: typer.Context) -> None:
    """Start a SageMaker batch transform job for a deployed Model and wait for it (transform --help)."""
    from ops.cli import main

    raise typer.Exit(main(["transform", *ctx.args]))
