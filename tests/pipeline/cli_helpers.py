"""Helpers for the end-to-end tests: run `nst` as a real subprocess, the way cron
or CI would (no terminal, output captured), and read what it leaves behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "manifests" / "images"
# Tiny renders: the engine resizes the samples; a job takes a second or two on a CPU.
TINY = {"size": 32, "iterations": 3}
# One plain log line: "2026-11-21T05:30:01+0000 INFO ...".
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (INFO|WARNING|ERROR) \S")


def nst_env(**extra: str) -> dict[str, str]:
    """The test's environment (NST_CACHE_DIR comes from the autouse fixture), as in CI."""
    env = dict(os.environ)
    env.update({"CI": "1", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}, **extra)
    env.pop("FORCE_COLOR", None)
    return env


def nst_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *map(str, args)]


def nst(*args: str, cwd: Path | None = None, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run `nst ARGS` to completion with no terminal attached."""
    return subprocess.run(
        nst_command(*args), cwd=cwd, env=nst_env(**env), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def nst_in_terminal(*args: str, cwd: Path, timeout: float = 120, cols: int = 160) -> tuple[int, str]:
    """Run `nst ARGS` with a pseudo-terminal as stdin, stdout and stderr, the way a
    person at a shell does; returns the exit code and everything the terminal got."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    env = nst_env()
    env.pop("CI", None)  # a person's shell, not a CI runner
    proc = subprocess.Popen(nst_command(*args), cwd=cwd, env=env, stdin=follower, stdout=follower,
                            stderr=follower, start_new_session=True)
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: every writer closed its end of the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None and not select.select([leader], [], [], 0.5)[0]:
                break
        else:
            proc.kill()
            raise AssertionError(f"nst {args} still running after {timeout} s in a terminal")
    finally:
        os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def screen_text(raw: str) -> str:
    """A terminal's output without escape codes, one line per redraw."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r\n", "\n").replace("\r", "\n")


def render(manifest: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess:
    return nst("render", manifest, "--devices", "cpu", *args, cwd=kw.pop("cwd", manifest.parent), **kw)


def explain(result: subprocess.CompletedProcess) -> str:
    """What an assertion prints when a command did not do what was expected."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def write_manifest(path: Path, contents: list, styles: list, *, output: str = "out",
                   settings: dict | None = None) -> Path:
    data = {
        "output": output,
        "settings": dict(TINY if settings is None else settings),
        "jobs": [{"contents": [str(c) for c in contents], "styles": [str(s) for s in styles]}],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def result_lines(output_dir: Path) -> list[dict]:
    path = output_dir / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pngs(output_dir: Path) -> list[Path]:
    """Rendered images (not thumbnails) in the output folder."""
    return sorted(p for p in output_dir.rglob("*.png") if "thumbs" not in p.parts)


def png_text(path: Path) -> dict[str, str]:
    """Fully decode a PNG (raises if broken) and return its text chunks."""
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return dict(image.text)


class SheetCards(HTMLParser):
    """Every card of index.html: job id, status and the visible error text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: list[dict[str, str]] = []
        self.row_names: list[str] = []
        self._in_error = False
        self._in_name = False
        self._in_row_header = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "figure" and "data-status" in attributes:
            self.cards.append({"job_id": attributes["data-job-id"], "status": attributes["data-status"],
                               "error": ""})
        elif tag == "span" and "error" in classes and self.cards:
            self._in_error = True
        elif tag == "th" and attributes.get("scope") == "row":
            self._in_row_header = True
        elif tag == "span" and "name" in classes and self._in_row_header:
            self._in_name = True
            self.row_names.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_error = self._in_name = False
        elif tag == "th":
            self._in_row_header = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.cards[-1]["error"] += data
        if self._in_name:
            self.row_names[-1] += data


def read_sheet(output_dir: Path) -> SheetCards:
    parser = SheetCards()
    parser.feed((output_dir / "index.html").read_text(encoding="utf-8"))
    return parser
