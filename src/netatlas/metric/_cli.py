"""``netatlas magnify``: the group of the metric lens (the Zavatone-Veth et al. studies ``toy|images|ssl`` are
added from :mod:`netatlas.experiments.zavatoneveth2023`)."""

from __future__ import annotations

import logging

import typer

__all__ = ["register"]

magnify = typer.Typer(
    help="Magnification near decision boundaries (Zavatone-Veth et al. 2023).", no_args_is_help=True
)


def _threads(threads):
    from netatlas._options import at_least

    at_least("--threads", threads, 1)
    if threads:
        import torch

        torch.set_num_threads(threads)  # for the whole CLI process (see netatlas._threads for a scoped one)


def register(app: typer.Typer) -> None:
    """Add the ``magnify`` command group to the root CLI."""
    logging.getLogger("netatlas.metric").addHandler(logging.NullHandler())
    app.add_typer(magnify, name="magnify")

