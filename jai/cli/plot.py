"""`jai plot`: runs side by side, as a PNG (loss against steps and seconds, answer scores, and the
difference between two runs) or as a Markdown table of their final figures."""

from __future__ import annotations

import argparse
import sys

from jai.atomic import write_text_atomic
from jai.errors import InputError
from jai.reporting import plot, runs, table

EPILOG = """\
examples:
  jai plot out/mlx out/torch --out compare.png   # one figure; the difference beneath, for two runs
  jai plot out/run-* --out runs.png              # any number of runs
  jai plot out/mlx out/torch --format md         # a table of final figures, to stdout
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai plot",
        description="Compare training runs (folders from `jai train`, read from their metrics.jsonl).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or their metrics.jsonl)")
    p.add_argument("--out", metavar="FILE", help="where to write (png: required; md: default stdout)")
    p.add_argument("--format", choices=("png", "md"), default="png", help="png (default) or md")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    loaded = [runs.load(path) for path in args.runs]
    if args.format == "md":
        text = table.markdown(loaded)
        if args.out:
            write_text_atomic(args.out, text)
        else:
            sys.stdout.write(text)
        return 0
    if not args.out:
        raise InputError("--out FILE.png is needed for a figure (or --format md for a table)")
    plot.save(loaded, args.out)
    print(f"wrote {args.out}")
    return 0
