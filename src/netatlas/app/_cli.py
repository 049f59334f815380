"""``netatlas serve``: the browser playground."""

from __future__ import annotations

import typer

# The playground's server stack comes with the `app` extra (pip install 'netatlas[app]').
SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "websockets", "multipart", "python_multipart")


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the root CLI."""

    @app.command()
    def serve(
        port: int = typer.Option(8765, help="Port to listen on (0 picks a free one)"),
        host: str = typer.Option("127.0.0.1", help="Address to bind; the default is reachable from this "
                                 "machine only (use 0.0.0.0 to share on your network)"),
        workers: int = typer.Option(0, min=0, max=8, help="Processes computing the geometry beside the "
                                    "training (0: a thread of the server process, the fastest on 2 cores)"),
    ):
        """Start the browser playground: live training with exact regions, boundaries and metrics.

        Open the printed URL; Ctrl-C stops the server.

        Python: ``netatlas.app.serve(host="127.0.0.1", port=8765)``
        """
        try:
            from netatlas.app import serve as run
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in SERVER_PACKAGES:
                raise
            typer.echo(f"netatlas serve needs the playground's server packages ({exc.name} is missing): "
                       "pip install 'netatlas[app]'", err=True)
            raise typer.Exit(1) from None

        def ready(url):
            typer.echo(f"netatlas playground: {url}  (Ctrl-C to stop)")

        try:
            run(host=host, port=port, workers=workers, on_ready=ready)
        except KeyboardInterrupt:
            pass
        typer.echo("netatlas playground stopped.")
