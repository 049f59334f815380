"""``netatlas dynamics``: the group of the dynamics lens (the van den Berg studies ``scale|zones|prune`` are
added from :mod:`netatlas.experiments.vandenberg2016`)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``dynamics`` command group to the root CLI."""
    group = typer.Typer(help="Training in regions (van den Berg 2016): gradient concentration, transition "
                        "zones, weight scale, training-data subsampling.", no_args_is_help=True)

    app.add_typer(group, name="dynamics")

