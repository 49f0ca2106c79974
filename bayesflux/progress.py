"""Progress display for long steps: a tqdm bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar[T](items: Iterable[T], *, desc: str, disable: bool = False, **kwargs) -> tqdm:
    """Wrap an iterable in a progress bar written to stderr (``update``/``close`` as tqdm's).

    ``disable=True`` hides it; so does a stderr that is not a terminal (a pipe, a log file, a
    notebook's captured stream), where a bar's carriage returns would only add noise, and a
    ``bayesflux`` logger whose own level is set above INFO (``bayesflux -q``).
    """
    hidden = disable or not _stderr_is_terminal() or _quiet()
    return tqdm(
        items, desc=desc, disable=hidden, leave=False, dynamic_ncols=True, file=sys.stderr, **kwargs
    )


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return isatty is not None and bool(isatty())


def _quiet() -> bool:
    return logging.getLogger("bayesflux").level > logging.INFO
