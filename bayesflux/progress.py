"""Progress display for long steps (tqdm, shown on a terminal or when asked)."""

from __future__ import annotations

from collections.abc import Iterable

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar[T](
    items: Iterable[T], *, desc: str, disable: bool = False, **kwargs
) -> Iterable[T]:
    """Wrap an iterable in a progress bar written to stderr."""
    return tqdm(items, desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kwargs)
