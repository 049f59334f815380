"""What the paper packages' report figures share (``<paper>/_figures.py`` draws them): matplotlib set-up,
the sweep records per part, the settings caption, and :func:`figures`, which never lets a figure sink a
report. Only the records of the sweep are plotted (no computation here)."""

from __future__ import annotations

__all__ = ["figures"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(6, 4)):
    """``ax``, or the axes of a new figure of ``figsize`` when it is None."""
    if ax is None:
        _, ax = _plt().subplots(figsize=figsize)
    return ax


def _extent(us, vs):
    """imshow extent of a grid of cell centres (edges half a step beyond the outer centres)."""
    du = (us.max() - us.min()) / max(us.shape[1] - 1, 1) / 2
    dv = (vs.max() - vs.min()) / max(vs.shape[0] - 1, 1) / 2
    return (us.min() - du, us.max() + du, vs.min() - dv, vs.max() + dv)


def _parts(result):
    out = {}
    for r in result.records:
        if r.get("status") == "done":
            out.setdefault(r["config"].get("part", "all"), []).append((r["config"]["seed"], r["result"]))
    return out


def figures(result, paper_figures) -> list:
    """The figures of a :class:`~netatlas.experiments.Reproduction` drawn by ``paper_figures(result, parts)``
    (its paper package's ``_figures.figures``); none where its parts failed."""
    try:
        return paper_figures(result, _parts(result))
    except (KeyError, IndexError, ValueError, TypeError) as exc:  # a figure must never sink the report
        import logging

        logging.getLogger(__name__).warning("figures for %s incomplete: %s", result.paper, exc)
        return []


def _settings(result) -> str:
    s = result.settings
    return f"seeds {s['seeds']}, {'quick' if s.get('quick') else 'full'} run"
