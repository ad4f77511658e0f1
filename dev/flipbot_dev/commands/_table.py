"""Rendering rows as a plain-text table, Markdown or CSV (the commands' shared output)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

Row = Sequence[object]


def _cells(rows: Sequence[Row]) -> list[list[str]]:
    return [["" if v is None else str(v) for v in row] for row in rows]


def _numeric(text: str) -> bool:
    stripped = text.replace("%", "").replace("s", "").replace(",", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def text_table(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    body = _cells(rows)
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    right = [
        bool(body) and all(_numeric(r[i]) or not r[i] for r in body) for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in body]
    return "\n".join(out)


def markdown_table(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""
    body = _cells(rows)
    right = [
        bool(body) and all(_numeric(r[i]) or not r[i] for r in body) for i in range(len(headers))
    ]

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [
        "| " + " | ".join(esc(h) for h in headers) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(out)


def csv_table(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """CSV with a header line, ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(_cells(rows))
    return buffer.getvalue()
