"""Markdown tables for run reports and result files."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def write_markdown_table(
    rows: Sequence[Mapping[str, Any] | Sequence[Any]],
    columns: Sequence[str],
    *,
    float_format: str = "{:.1f}",
) -> str:
    """A GitHub-flavoured pipes table.

    Args:
        rows: dicts (looked up by column name; missing keys give an empty cell) or sequences
            (taken in column order).
        columns: the header names.
        float_format: format of floats; ``(mean, std)`` pairs become ``"mean ± std"``;
            ``None`` / NaN become ``"–"``.

    Returns:
        The table, one line per row, ending with a newline. ``|`` inside cells is escaped.

    Example::

        >>> rows = [{"model": "CoMM", "synergy": 71.4}]
        >>> print(write_markdown_table(rows, ["model", "synergy"]), end="")
        | model | synergy |
        |---|---|
        | CoMM | 71.4 |
    """

    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, tuple) and len(v) == 2 and all(_is_number(u) for u in v):
            return f"{cell(v[0])} ± {cell(v[1])}"
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return float_format.format(float(v)) if math.isfinite(v) else "–"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if isinstance(row, Mapping):
            values = [row.get(c, "") for c in columns]
        else:
            values = list(row)
            if len(values) != len(columns):
                raise ValueError(
                    f"rows: a row has {len(values)} values but there are {len(columns)} columns"
                )
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines) + "\n"
