"""`python -m bench.run [--quick|--smoke] [--out FILE] [--device DEV] [--only a,b]`.

Runs the sections in turn, prints one table and writes it as Markdown. A section
that fails becomes a FAILED row, so the rest of the table still comes out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from .common import MODES, Config, Row, default_device
from .table import load_line, machine_lines, markdown, print_table

SECTIONS = {
    "a": "floor",
    "b": "peer (and e2, bf16 ÷ fp32 speed)",
    "c": "gallery",
    "d": "memory",
    "e": "bf16 check",
    "f": "gpu",
    "g": "contact sheet",
}


def section_runner(key: str) -> Callable[[Config, str], list[Row]]:
    # Imported lazily so `--only` runs import only what they use.
    if key == "a":
        from .floor import floor_rows
        return floor_rows
    if key == "b":
        from .peer import peer_rows
        return peer_rows
    if key == "c":
        from .gallery import gallery_rows
        return gallery_rows
    if key == "d":
        from .memory import memory_rows
        return memory_rows
    if key == "e":
        from .precision import precision_rows
        return precision_rows
    if key == "g":
        from .sheet import sheet_rows
        return sheet_rows
    from .gpu import gpu_rows
    return gpu_rows


def run(cfg: Config, device: str, sections: Sequence[str] = tuple(SECTIONS), log=print) -> list[Row]:
    rows: list[Row] = []
    for key in sections:
        started = time.perf_counter()
        log(f"[bench] {key}: {SECTIONS[key]} ...")
        try:
            rows += section_runner(key)(cfg, device)
        except Exception as error:  # one broken section must not hide the others
            traceback.print_exc()
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            rows.append(Row(key, f"{SECTIONS[key]}", None, f"FAILED: {reason}", met=False))
        log(f"[bench] {key}: done in {time.perf_counter() - started:.0f} s")
    return sorted(rows, key=lambda r: r.key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes on a 2-core CPU")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite; numbers mean nothing")
    parser.add_argument("--out", type=Path, default=Path("out/bench.md"), help="Markdown copy of the table")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run, e.g. a,b")
    args = parser.parse_args(argv)

    import torch

    # Engine, bare passes and child processes alike use every core (equal footing).
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    device = args.device or default_device()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {','.join(SECTIONS)}")
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    header = machine_lines(device, cfg.name, command.strip())
    header.append(f"at start: {load_line()}")
    started = time.perf_counter()
    rows = run(cfg, device, sections, log=lambda line: print(line, file=sys.stderr, flush=True))
    header.append(f"at end: {load_line()}; bench wall time {time.perf_counter() - started:.0f} s")
    print_table(rows, header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, header), encoding="utf-8")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
