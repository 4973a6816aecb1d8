"""`jai ask`: a question across postings. The index finds the postings; the model answers from the best.

    jai ask "What does K-Style Fashion pay its Merchandiser?" --index out/index --checkpoint out/run
    jai ask "투아스 창고 직원 급여는?" --index out/index --k 5 --json

The answer goes through the same prompt as `jai sample --question Q --doc-file POSTING` (the posting
shortened from its end to fit, the question never), streamed, with either twin; it ends by naming the
posting it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from jai.checkpoint.folder import resolve_checkpoint
from jai.checkpoint.weights import CheckpointError
from jai.cli.sample import UsageError, load_tokenizer, sampling_config, stream_text
from jai.devices import BACKENDS, default_backend
from jai.inference.sampling import SamplingConfig, room
from jai.inference.twins import default_stop_ids, load_twin
from jai.prompt import fit_prompt
from jai.retrieval.index import Hit, PostingIndex, SearchIndexError

EPILOG = """\
examples:
  jai index data/jobs/postings.json --out out/index
  jai ask "What does K-Style Fashion pay its Merchandiser?" --index out/index --checkpoint out/run
  jai ask "부기스 머천다이저 자격 요건은?" --index out/index --k 5 --temperature 0
  jai ask "Which jobs are in Tuas?" --index out/index --no-answer     # the sources only, no model
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai ask",
        description="Find the postings a question is about and answer it from the best one.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("question", metavar="QUESTION")
    p.add_argument("--index", required=True, metavar="INDEX", help="an index from `jai index`")
    p.add_argument("--k", type=int, default=3, metavar="N", help="postings to show (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout, for scripts")
    p.add_argument("--no-answer", action="store_true", help="show the postings found; load no model")
    model = p.add_argument_group("model")
    model.add_argument(
        "--checkpoint", "--ckpt", default="out/run", metavar="DIR", help="(default: %(default)s)"
    )
    model.add_argument("--tokenizer", metavar="PATH", help="default: the checkpoint's tokenizer.json")
    model.add_argument("--backend", choices=BACKENDS, default=default_backend())
    model.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu", "cuda", "mps"))
    defaults = SamplingConfig()
    sampling = p.add_argument_group("sampling (as in `jai sample`)")
    sampling.add_argument("--temperature", type=float, default=defaults.temperature, metavar="T")
    sampling.add_argument("--top-k", type=int, metavar="K")
    sampling.add_argument("--top-p", type=float, metavar="P")
    sampling.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens, metavar="N")
    sampling.add_argument("--seed", type=int, metavar="N")
    sampling.add_argument(
        "--repetition-penalty", type=float, metavar="X", help="default: as `jai sample --question`"
    )
    sampling.add_argument(
        "--no-repeat-ngram-size", type=int, metavar="N", help="default: as `jai sample --question`"
    )
    return p


def retrieve(args: argparse.Namespace) -> list[Hit]:
    if not args.question.strip():
        raise UsageError("the question is empty")
    if args.k < 1:
        raise UsageError(f"--k must be at least 1, got {args.k}")
    index = PostingIndex.open(args.index)
    hits = index.search(args.question, args.k)
    if not hits:
        raise SearchIndexError(
            f"{args.index}: no posting matches the question ({index.size} searched); name a title, "
            "company or place"
        )
    return hits


def show_sources(hits: list[Hit]) -> None:
    print("sources:")
    for i, h in enumerate(hits, 1):
        where = ", ".join(x for x in (h.company, h.location) if x)
        print(f"  {i}. [{h.id}] {h.title}" + (f" — {where}" if where else "") + f"  (score {h.score:.2f})")


def answer(args: argparse.Namespace, best: Hit, stream: bool) -> dict[str, Any]:
    """The model's answer from `best`, printed as it comes when `stream`."""
    cfg = sampling_config(args, ())
    ckpt = resolve_checkpoint(args.checkpoint)
    tokenizer = load_tokenizer(ckpt, args.tokenizer)
    cfg = cfg.replace(stop_ids=default_stop_ids(tokenizer))
    model, twin = load_twin(ckpt, args.backend, args.device)
    block = model.config.block_size
    if tokenizer.vocab_size > model.config.vocab_size:
        raise CheckpointError(f"{ckpt}: the tokenizer has more tokens than the model: not its tokenizer")
    ids, shortened = fit_prompt(tokenizer, args.question, best.doc, block - room(block, cfg.max_new_tokens))
    pieces: list[str] = []
    if stream:
        print(f"answer (from {best.id}):")
    for piece in stream_text(tokenizer, twin.generate(model, [ids], cfg)):
        pieces.append(piece)
        if stream:
            print(piece, end="", flush=True)
    if stream:
        print(f"\n[from posting {best.id}: {best.title}{', ' + best.company if best.company else ''}]")
    return {"answer": "".join(pieces).strip(), "posting_shortened": shortened}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sampling_config(args, ())  # a bad flag fails before any file is read
    hits = retrieve(args)
    if not args.json:
        show_sources(hits)
    result: dict[str, Any] = {}
    if not args.no_answer:
        result = answer(args, hits[0], stream=not args.json)
    if args.json:
        body = {"question": args.question, "sources": [h.source() for h in hits]}
        if not args.no_answer:
            body |= {"posting_id": hits[0].id, **result}
        print(json.dumps(body, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
