"""The CLI's option vocabulary, defined once: the shared typer options (``--data``, ``--through``,
``--split``, ``--plane``, ``--zoom``, ``--around``, ``--max-regions``, ``--memory-budget``, ``--seed``,
``--threads``, ``--out``, ...) that every command picks from, and the checks of their values, run before
any work starts.

A value that fails its check raises :class:`OptionValueError` (a ``ValueError``): the CLI prints it in
one line, ``ValueError: ...``, and exits 2 like every other usage error (an unparsable value, an unknown
option).

``--through A B C`` takes its three indices in one flag; the repeated form (``--through A --through B
--through C``) and a comma list (``--through A,B,C``) mean the same. Click has no variable ``nargs``, so
the root CLI (``netatlas.cli``) lets ``--through`` take the bare integers that follow it
(:func:`greedy_index_options`); each token is then parsed by :func:`indices`.

This module imports no typer, numpy or torch at the top: library code may use the checks.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "OptionValueError",
    "around_option",
    "around_value",
    "at_least",
    "command_data",
    "data_option",
    "disc_option",
    "disc_value",
    "greedy_index_options",
    "indices",
    "layer_option",
    "limit_message",
    "max_regions_option",
    "memory_budget_option",
    "memory_budget_value",
    "n_option",
    "number_list",
    "one_of",
    "out_option",
    "plane_option",
    "polygon_option",
    "polygon_value",
    "quick_conflicts",
    "seed_option",
    "split_option",
    "split_value",
    "square_size",
    "threads_option",
    "upto_option",
    "through_indices",
    "through_option",
    "zoom_fraction",
    "zoom_option",
    "zoomed",
]


class OptionValueError(ValueError):
    """An option's value failed its check: a usage error (the CLI exits 2)."""


def at_least(option: str, value, minimum) -> None:
    """Refuse ``value < minimum`` (None means "not given" and passes).

    >>> at_least("--threads", 0, 1)
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --threads must be an integer >= 1; got 0
    """
    if value is not None and not value >= minimum:
        raise OptionValueError(f"{option} must be an integer >= {minimum}; got {value}")


def one_of(option: str, value, choices) -> None:
    """Refuse a value outside ``choices``.

    >>> one_of("--color-by", "bogus", ("pattern", "class"))
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --color-by must be one of pattern, class; got 'bogus'
    """
    if value not in choices:
        raise OptionValueError(f"{option} must be one of {', '.join(map(str, choices))}; got {value!r}")


def number_list(option: str, text: str, *, positive: bool = False, integer: bool = False) -> list:
    """``"0.1,1,10"`` -> ``[0.1, 1.0, 10.0]``: finite numbers, at least one; optionally > 0 / whole.

    >>> number_list("--scales", "0.1,-1", positive=True)
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --scales must list finite numbers > 0, comma-separated; got '0.1,-1' (-1.0)
    """
    kind = ("integers" if integer else "finite numbers") + (" > 0" if positive else "")
    values = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise OptionValueError(f"{option} must list {kind}, comma-separated; got {text!r} ({item!r})") from None
        if not math.isfinite(value) or (positive and value <= 0) or (integer and not value.is_integer()):
            raise OptionValueError(f"{option} must list {kind}, comma-separated; got {text!r} ({value})")
        values.append(int(value) if integer else value)
    if not values:
        raise OptionValueError(f"{option} must list at least one number; got {text!r}")
    return values


def quick_conflicts(command: str, quick: bool, **given) -> None:
    """With ``--quick``, refuse options that --quick would override (those given, i.e. not None).

    >>> quick_conflicts("splines regimes", True, scales="1,2", widths=None)
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: splines regimes: --quick sets its own --scales; drop --quick or drop --scales
    """
    clash = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if quick and clash:
        raise OptionValueError(f"{command}: --quick sets its own {', '.join(clash)}; drop --quick or drop "
                               f"{', '.join(clash)}")


# -- values -------------------------------------------------------------------------------------------

_INDEX_TOKEN = re.compile(r"\d+([,\s]+\d+)*[,\s]*")


def indices(option: str, values) -> list[int]:
    """Non-negative integers from the tokens of a repeated option; each token may itself list several,
    separated by commas or spaces.

    >>> indices("--through", ["0", "5,9"]), indices("--through", ["0 5 9"])
    ([0, 5, 9], [0, 5, 9])
    >>> indices("--through", ["0", "x"])
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --through takes integers >= 0 (e.g. --through 0 5 9); got 'x'
    """
    out = []
    for token in values or ():
        text = str(token).strip()
        if not _INDEX_TOKEN.fullmatch(text):
            raise OptionValueError(f"{option} takes integers >= 0 (e.g. {option} 0 5 9); got {token!r}")
        out += [int(t) for t in re.split(r"[,\s]+", text) if t]
    return out


def through_indices(values, count: int = 3) -> list[int] | None:
    """The indices of ``--through`` (None when not given): exactly ``count`` of them.

    >>> through_indices(["0", "1"])
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --through needs 3 indices A B C (e.g. --through 0 5 9); got [0, 1]
    """
    if not values:
        return None
    chosen = indices("--through", values)
    if len(chosen) != count:
        raise OptionValueError(f"--through needs {count} indices A B C (e.g. --through 0 5 9); got {chosen}")
    return chosen


def square_size(plane: str | None) -> float:
    """The SIZE of ``--plane square:SIZE`` (default square:1 when the option is not given): a finite
    number > 0.

    >>> square_size(None), square_size("square:2.5")
    (1.0, 2.5)
    >>> square_size("square:")
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --plane square:SIZE needs a SIZE (e.g. square:1.5); got 'square:'
    """
    spec = "square:1" if plane is None else plane
    kind, colon, value = spec.strip().partition(":")
    if kind != "square" or not colon:
        raise OptionValueError(f"--plane must be 'square:SIZE' (e.g. square:1.5); got {spec!r}")
    if not value.strip():
        raise OptionValueError(f"--plane square:SIZE needs a SIZE (e.g. square:1.5); got {spec!r}")
    try:
        size = float(value)
    except ValueError:
        raise OptionValueError(f"--plane square:SIZE needs a number; got {spec!r}") from None
    if not (0 < size < math.inf):
        raise OptionValueError(f"--plane square:SIZE needs a finite SIZE > 0; got {spec!r}")
    return size


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
#: one or more numbers, separated by commas or spaces (a token ``--disc`` takes)
_NUMBERS_TOKEN = re.compile(rf"\s*{_NUMBER}(?:(?:\s*,\s*|\s+){_NUMBER})*[,\s]*")
#: one or more points U,V separated by spaces or semicolons (a token ``--polygon`` takes)
_POINTS_TOKEN = re.compile(rf"\s*{_NUMBER}\s*,\s*{_NUMBER}(?:(?:\s*;\s*|\s+){_NUMBER}\s*,\s*{_NUMBER})*[;\s]*")


def disc_value(values) -> tuple[tuple[float, float], float] | None:
    """The centre (CX, CY) and radius R of ``--disc CX CY R`` (also ``--disc CX,CY,R``; None when not given):
    three finite numbers, R > 0.

    >>> disc_value(["0", "0.5", "2"]), disc_value(["0,0.5,2"])
    (((0.0, 0.5), 2.0), ((0.0, 0.5), 2.0))
    >>> disc_value(["0,0,-1"])
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --disc CX CY R needs a finite radius R > 0; got -1.0
    """
    if not values:
        return None
    numbers = []
    for token in values:
        if not _NUMBERS_TOKEN.fullmatch(str(token)):
            raise OptionValueError(f"--disc takes three numbers CX CY R (centre and radius, e.g. --disc 0 0 1.5 or "
                                   f"--disc 0,0,1.5); got {token!r}")
        numbers += [float(t) for t in re.split(r"[,\s]+", str(token).strip()) if t]
    if len(numbers) != 3 or not all(math.isfinite(x) for x in numbers):
        raise OptionValueError(f"--disc takes three finite numbers CX CY R (centre and radius, e.g. --disc 0 0 1.5); "
                               f"got {numbers}")
    if not numbers[2] > 0:
        raise OptionValueError(f"--disc CX CY R needs a finite radius R > 0; got {numbers[2]}")
    return (numbers[0], numbers[1]), numbers[2]


def polygon_value(values) -> list[tuple[float, float]] | None:
    """The corners of ``--polygon U1,V1 U2,V2 U3,V3 ...`` (None when not given): at least three points U,V
    of finite numbers (convexity is the library's check, ``Plane.polygon``).

    >>> polygon_value(["0,0", "2,0 0,1"]), polygon_value(["0,0;2,0;0,1"])
    ([(0.0, 0.0), (2.0, 0.0), (0.0, 1.0)], [(0.0, 0.0), (2.0, 0.0), (0.0, 1.0)])
    >>> polygon_value(["0,0", "1"])
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --polygon takes corners U,V (e.g. --polygon 0,0 2,0 0,1); got '1'
    """
    if not values:
        return None
    points = []
    for token in values:
        if not _POINTS_TOKEN.fullmatch(str(token)):
            raise OptionValueError(f"--polygon takes corners U,V (e.g. --polygon 0,0 2,0 0,1); got {token!r}")
        for pair in re.split(r"[;\s]+", str(token).strip()):
            if pair:
                u, v = (float(t) for t in pair.split(","))
                points.append((u, v))
    if len(points) < 3 or not all(math.isfinite(c) for p in points for c in p):
        raise OptionValueError(f"--polygon needs at least three corners U,V of finite numbers (e.g. --polygon 0,0 "
                               f"2,0 0,1); got {points}")
    return points


def zoom_fraction(zoom: float | None) -> float | None:
    """``--zoom``: a fraction in (0, 1] of the plane's size (None: no zoom).

    >>> zoom_fraction(0)
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --zoom must be a fraction in (0, 1] of the plane's size; got 0
    """
    if zoom is not None and not 0 < zoom <= 1:
        raise OptionValueError(f"--zoom must be a fraction in (0, 1] of the plane's size; got {zoom}")
    return zoom


def around_value(around: str) -> str:
    """``--around``: letters of ABC (the mean of those inputs) or ``boundary``.

    >>> around_value("ab"), around_value("boundary")
    ('AB', 'boundary')
    """
    if around.strip().lower() == "boundary":
        return "boundary"
    letters = around.strip().upper()
    if not letters or any(ch not in "ABC" for ch in letters):
        raise OptionValueError(f"--around must be letters of ABC (e.g. A or AB) or 'boundary'; got {around!r}")
    return letters




def memory_budget_value(text: str | None) -> int | str | None:
    """``--memory-budget``: ``auto`` (the default budget), ``none`` (no limit), or a size: bytes (``1``,
    ``2e9``) or a number with a unit (KB/MB/GB/TB = 10^3.., KiB/MiB/GiB/TiB = 2^10..), as bytes.

    >>> memory_budget_value("1"), memory_budget_value("1.5GB"), memory_budget_value("auto")
    (1, 1500000000, 'auto')
    >>> memory_budget_value("lots")
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --memory-budget must be auto, none or a size in bytes or with a unit ...
    """
    if text is None or text.strip().lower() == "auto":
        return "auto"
    if text.strip().lower() == "none":
        return None
    from netatlas._memory import parse_bytes  # the one size parser

    try:
        return parse_bytes(text, "--memory-budget")
    except ValueError:
        raise OptionValueError("--memory-budget must be auto, none or a size in bytes or with a unit (e.g. 1 or "
                               f"512MiB or 8GB); got {text!r}") from None


def limit_message(message: str) -> str:
    """A region-limit message for the CLI: the library's argument names become the command's options.

    >>> print(limit_message("use a smaller window (Plane bounds), or raise max_regions / memory_budget"))
    use a smaller window (--zoom F, or a smaller --plane square:SIZE), or raise --max-regions / --memory-budget
    """
    return (message.replace("a smaller window (Plane bounds)", "a smaller window (--zoom F, or a smaller --plane "
                            "square:SIZE)")
            .replace("split the slice into tiles", "split the slice into tiles (--tiles N)")
            .replace("max_regions / memory_budget", "--max-regions / --memory-budget")
            .replace("max_regions=", "--max-regions ").replace("memory budget ", "--memory-budget "))


def split_value(split: str) -> str:
    """``--split``: ``train`` or ``test``."""
    one_of("--split", split, ("train", "test"))
    return split


def command_data(data: str, *, where: str, split: str = "train", n: int | None = None, seed: int = 0, **kwargs):
    """What a command's ``--data NAME|FILE --split S --n N --seed SEED`` pick: ``(dataset, x, y, description)``,
    ``x, y`` a stratified sample of N of split S (all of it without N). Read through the one resolver,
    :func:`netatlas.data.load_any` (``kwargs`` go to a built-in set's loader, with ``seed`` when it takes
    one); a warning about the sample (one class only) is printed once, in one line, on stderr.
    """
    import inspect
    import warnings
    from pathlib import Path

    import typer

    import netatlas.data

    split_value(split)
    at_least("--n", n, 1)
    loader = netatlas.data.LOADERS.get(str(data).strip().lower().replace("-", "_"))
    if loader is not None and "seed" in inspect.signature(loader).parameters and not Path(data).exists():
        kwargs.setdefault("seed", seed)  # a built-in set's own split follows --seed too
    dataset = netatlas.data.load_any(data, where=where, **kwargs)
    x, y = netatlas.data.split_of(dataset, split)
    if not len(x):
        raise OptionValueError(f"{where}: --data {data} has no {split} split; use --split "
                               f"{'test' if split == 'train' else 'train'}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = netatlas.data.stratified_sample(y, n, seed=seed)
    for message in dict.fromkeys(str(w.message) for w in caught):
        typer.echo(f"Warning: {where}: {message}", err=True)
    if n is not None and n > len(x):
        typer.echo(f"{where}: --n {n} is more than the {len(x)} samples of the {split} split; using all {len(x)}",
                   err=True)
    if len(rows) == len(x):
        return dataset, x, y, f"{dataset.name} ({split} split, all {len(x)} samples)"
    import torch

    index = torch.as_tensor(rows)
    description = f"{dataset.name} ({split} split, a stratified sample of {len(rows)} of {len(x)})"
    return dataset, x[index], y[index], description


# -- --through takes the integers that follow it --------------------------------------------------------

# parameter name -> the tokens its option also takes after it (--through 0 5 9, --disc 0 0 1, --polygon 0,0 1,0 0,1)
GREEDY_OPTIONS = {"through": _INDEX_TOKEN, "disc": _NUMBERS_TOKEN, "polygon": _POINTS_TOKEN}


def greedy_index_options(command) -> None:
    """Let each ``--through`` option of a click command (and its subcommands) also take the bare integer
    tokens that follow it, so ``--through 0 5 9`` is ``--through 0 --through 5 --through 9`` (and ``--disc``
    the numbers, ``--polygon`` the U,V points that follow it)."""
    for param in getattr(command, "params", ()):
        if param.name in GREEDY_OPTIONS and getattr(param, "multiple", False):
            _make_greedy(param, GREEDY_OPTIONS[param.name])
    for sub in getattr(command, "commands", {}).values():
        greedy_index_options(sub)


def _make_greedy(param, token) -> None:
    if getattr(param, "_netatlas_greedy", False):
        return
    add_to_parser = param.add_to_parser

    def add_greedy(parser, ctx):
        add_to_parser(parser, ctx)
        # click's parser keeps its options by name (a private table: without it, only the repeated form works)
        table = {**getattr(parser, "_short_opt", {}), **getattr(parser, "_long_opt", {})}
        for opt in param.opts:
            option = table.get(opt)
            if option is None:
                continue
            process = option.process

            def greedy_process(value, state, process=process):
                process(value, state)
                while state.rargs and token.fullmatch(state.rargs[0]):
                    process(state.rargs.pop(0), state)

            option.process = greedy_process

    param.add_to_parser = add_greedy
    param._netatlas_greedy = True


# -- the shared options (typer imported inside: this module stays light) -------------------------------

def data_option(default: str | None = None, what: str = "the inputs"):
    """``--data NAME|FILE``: a built-in data set or a data file, read by :func:`netatlas.data.load_any`."""
    import typer

    return typer.Option(default, "--data", metavar="NAME|FILE",
                        help=f"Data for {what}: a built-in data set (e.g. digits, mnist_sample, moons) or a data "
                        "file (.csv/.npz/.pt with labels or targets)")


def through_option():
    """``--through A B C``: the plane through three inputs of the ``--split`` of ``--data``."""
    import typer

    return typer.Option(None, "--through", metavar="A B C",
                        help="The plane through inputs A B C of --data (indices into the whole --split): "
                        "--through 0 5 9, or --through 0,5,9, or --through 0 --through 5 --through 9")


def disc_option():
    """``--disc CX CY R``: a disc window of the slice (``Plane.disc``)."""
    import typer

    return typer.Option(None, "--disc", metavar="CX CY R",
                        help="A disc window instead of the square: centre (CX, CY) and radius R > 0 in the slice's "
                        "coordinates (the first two input axes, or those of --through): --disc 0 0 1.5 or --disc "
                        "0,0,1.5; Python: Plane.disc((CX, CY), R)")


def polygon_option():
    """``--polygon U1,V1 U2,V2 U3,V3 ...``: a convex polygon window of the slice (``Plane.polygon``)."""
    import typer

    return typer.Option(None, "--polygon", metavar="U,V ...",
                        help="A convex polygon window instead of the square: its corners U,V in the slice's "
                        "coordinates (the first two input axes, or those of --through): --polygon 0,0 2,0 0,1; "
                        "Python: Plane.polygon([(U1, V1), ...])")


def upto_option():
    """``--upto LAYER``: the partition after a layer (``partition(net, plane, upto=LAYER)``)."""
    import typer

    return typer.Option(None, "--upto", metavar="LAYER",
                        help="The partition after this layer: a node name from 'netatlas info MODEL' or '#index' "
                        "(only the activations up to it split the slice); Python: partition(net, plane, upto=LAYER)")


def split_option(default: str = "train"):
    """``--split train|test``: which split of ``--data`` indices and samples refer to."""
    import typer

    return typer.Option(default, "--split", metavar="train|test", show_default=True,
                        help="Which split of --data the indices (--through) and samples refer to")


def n_option(default: int | None = None, what: str = "samples"):
    """``--n N``: a stratified sample of N of the split (classes in proportion)."""
    import typer

    return typer.Option(default, "--n", help=f"Use a stratified sample of N {what} of the split (every class in "
                        "proportion; a warning if it holds one class only)")


def layer_option(what: str = "The layer"):
    """``--layer NAME``: a node name from ``netatlas info MODEL``, or ``#index``."""
    import typer

    return typer.Option(None, "--layer", help=f"{what}: a node name from 'netatlas info MODEL', or '#index'")


def plane_option():
    """``--plane square:SIZE``: the square [-SIZE, SIZE]^2 in the first two input axes."""
    import typer

    return typer.Option(None, "--plane", metavar="square:SIZE",
                        help="The slice: square:SIZE, i.e. [-SIZE, SIZE]^2 in the first two input axes "
                        "(default square:1 without --through)")


def zoom_option():
    """``--zoom F``: with ``--through``, a window F of the plane's size (``Plane.zoom``)."""
    import typer

    return typer.Option(None, "--zoom", metavar="F",
                        help="With --through: a window this fraction (0, 1] of the plane's size, centred by "
                        "--around (e.g. 0.05 for a close look at a CNN); Python: plane.zoom(F, around=...)")


def around_option():
    """``--around A|AB|boundary``: the centre of the ``--zoom`` window."""
    import typer

    return typer.Option("A", "--around", show_default=True,
                        help="With --zoom: centre the window on input A, B or C, or on the mean of several (AB: "
                        "midway between A and B), or 'boundary': where the predicted class first changes from A "
                        "to B (Python: plane.around_boundary(net, 'A', 'B'))")


def max_regions_option():
    """``--max-regions N``: stop, with the estimate, above N regions."""
    import typer

    return typer.Option(None, "--max-regions", help="Stop (with the estimate) when the slice would have more "
                        "regions than this")


def memory_budget_option():
    """``--memory-budget SIZE``: see :func:`memory_budget_value`."""
    import typer

    return typer.Option("auto", "--memory-budget", show_default=True,
                        help="Memory the regions may take: bytes (e.g. 2e9) or a number with a unit (512MiB, 8GB; "
                        "KB/MB/GB are powers of 10, KiB/MiB/GiB of 2), 'auto' (NETATLAS_MEMORY_BUDGET, or half the "
                        "physical memory) or 'none'")


def seed_option(default: int = 0, what: str = "the data sample and split"):
    """``--seed S``: the one seed of a command's randomness."""
    import typer

    return typer.Option(default, "--seed", show_default=True, help=f"Seed for {what}")


def threads_option(default: int | None = None):
    """``--threads N``: torch intra-op threads (>= 1)."""
    import typer

    shown = "torch's choice" if default is None else default
    return typer.Option(default, "--threads", help=f"torch intra-op threads (>= 1; default: {shown})")


def out_option(command: str | None = None):
    """``--out DIR``: the run directory (non-empty only with ``--overwrite`` or to resume the same run)."""
    import typer

    where = f"runs/{command.replace(' ', '-')}-<time>" if command else "a new one under runs/"
    return typer.Option(None, "--out", help=f"Run directory (default: {where})")


def zoomed(plane, fraction: float, around: str = "A", net=None):
    """``--zoom F --around X``: ``plane.zoom(F, around=X)``, or around ``plane.around_boundary(net, "A", "B")``
    for ``--around boundary``."""
    zoom_fraction(fraction)
    around = around_value(around)
    if plane.anchors is None:
        raise OptionValueError("--zoom needs a plane through three inputs (--through A B C)")
    if around == "boundary":
        return plane.zoom(fraction, around=plane.around_boundary(net, "A", "B"))
    return plane.zoom(fraction, around=around)
