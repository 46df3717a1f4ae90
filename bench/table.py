"""The one table: on the terminal (rich when it is installed) and as Markdown."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from .common import Row

COLUMNS = ("row", "what", "measured", "target", "met?")


def machine_lines(device: str, mode: str, command: str) -> list[str]:
    import torch

    lines = [
        f"date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"command: {command} (mode: {mode})",
        f"cpu: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; python {platform.python_version()}",
        f"device: {device}" + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""),
    ]
    return lines


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_line() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average: unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def cells(row: Row) -> tuple[str, str, str, str, str]:
    return (row.key, row.what, row.shown, row.target, row.met_text)


def print_table(rows: Sequence[Row], header: Sequence[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        print("\n".join(header))
        print(plain_table(rows))
        return
    console = Console(width=max(140, Console().width))
    for line in header:
        console.print(line, highlight=False)
    table = Table(*COLUMNS, show_lines=False)
    for row in rows:
        style = {"NO": "red", "yes": "green"}.get(row.met_text)
        table.add_row(*cells(row), style=style)
    console.print(table)


def plain_table(rows: Sequence[Row]) -> str:
    data = [COLUMNS] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in data) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in data]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: Sequence[Row], header: Sequence[str]) -> str:
    out = [f"- {line}" for line in header] + ["", "| " + " | ".join(COLUMNS) + " |",
                                              "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for row in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |")
    return "\n".join(out) + "\n"
