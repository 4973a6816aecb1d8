"""`jai index`: postings -> a search index on disk, for `jai ask` and `jai serve --index`.

    jai index data/jobs/postings.json --out out/index
    jai index ../shared/data/nyc-jobs --out out/index      # adds to it; an id seen before is kept once

Reads whatever `jai prepare` reads (files or folders of .json, the reference schema or the NYC export);
broken records are skipped and counted the same way. The index is written atomically.
"""

from __future__ import annotations

import argparse
import sys
import time

from jai.data.postings import load_postings
from jai.retrieval.index import add_postings

EPILOG = """\
examples:
  jai index data/jobs/postings.json --out out/index
  jai index ../shared/data/nyc-jobs --out out/index       # add more postings to the same index
  jai ask "What does K-Style Fashion pay its Merchandiser?" --index out/index --checkpoint out/run

A posting whose id is already in the index is stored once: unchanged, or replaced by its newer text.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai index",
        description="Build or extend a search index (BM25, tantivy) of job postings.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("postings", nargs="+", metavar="POSTINGS", help=".json files or folders of them")
    p.add_argument("--out", required=True, metavar="INDEX", help="the index folder to create or add to")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    postings, report = load_postings(args.postings)
    print(report.summary(), file=sys.stderr)
    start = time.perf_counter()
    added = add_postings(args.out, postings)
    print(
        f"{args.out}: {added.added} added, {added.replaced} replaced, {added.unchanged} already there; "
        f"{added.total} postings in the index ({time.perf_counter() - start:.1f} s)"
    )
    return 0
