"""`jai run`: the main job, end to end, on the postings bundled with the repo (nothing is downloaded).

    jai run                       # prepare -> train <= 6 min (default model) -> answer questions
    jai run --backend mlx         # the same with the MLX twin
    jai run --minutes 30 --max-steps 2000 --out out/long

Writes <out>/data and <out>/run, replacing a previous `jai run`'s <out>/run.

1. `jai prepare` on data/jobs/postings.json: Q&A samples, a BPE tokenizer, train.bin / val.bin;
2. `jai train` of the default model (6 layers, 6 heads, 384 wide, context 256, batch 16, lr 3e-4),
   bounded in time: the schedule is sized to finish on a 2-core CPU, and --minutes stops it early on a
   slower machine (with a checkpoint: `jai train --resume --out <out>/run` continues it);
3. the untrained and trained validation losses, side by side;
4. answers, sampled from the checkpoint, to questions about postings the model never trained on
   (the validation split), next to the answers built from those postings' fields.

It only calls what the other commands call, so every step can be rerun alone with its own command.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import shlex
import shutil
import sys
import time
from pathlib import Path

from jai.cli import invocation
from jai.config import GPTConfig
from jai.data.postings import load_postings
from jai.data.prepare import BUNDLED_SAMPLE, prepare, split_postings
from jai.data.qa import Sample, build_prompt, make_samples
from jai.dataset import DatasetError
from jai.devices import BACKENDS, default_backend
from jai.errors import JaiError
from jai.sampling import SamplingConfig
from jai.serve import default_stop_ids, load_generate_fn
from jai.tokenizer import Tokenizer
from jai.train_config import TrainConfig
from jai.train_loop import make_trainer, train
from jai.train_state import CKPT_DIR

SEED = 1337  # prepare's default: the split run.py re-creates to find the validation postings
VAL_FRACTION = 0.1
ANSWER_TOKENS = 80  # room left after a prompt for its answer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--backend", choices=BACKENDS, default=default_backend(), help="twin to train (default: %(default)s)"
    )
    p.add_argument("--device", default="auto", help="device for that twin (default: its best)")
    p.add_argument("--out", default="out", help="writes <out>/data and <out>/run (default: %(default)s)")
    p.add_argument(
        "--postings",
        nargs="+",
        default=[str(BUNDLED_SAMPLE)],
        metavar="PATH",
        help="postings JSON files or folders (default: the bundled sample)",
    )
    p.add_argument(
        "--minutes", type=float, default=6.0, help="training time bound in minutes (default: %(default)s)"
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=100,
        help="optimizer steps of the warmup + cosine schedule; 100 (400k tokens, one pass over the bundled "
        "sample) fit in --minutes on a 2-core CPU (default: %(default)s)",
    )
    p.add_argument("--questions", type=int, default=3, help="questions to answer at the end (default: 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def fit_doc(s: Sample, tok: Tokenizer, budget: int) -> Sample:
    """The sample with its document shortened (at a line break where it can) until the prompt fits.

    Most postings are longer than the default context; cropping the prompt from the left, as
    generation does, would drop the question itself.
    """
    doc = s.doc
    while len(tok.encode(build_prompt(s.question, doc))) > budget and len(doc) > 1:
        cut = doc.rfind("\n", 0, int(len(doc) * 0.9))
        doc = doc[: cut if cut > 0 else int(len(doc) * 0.9)].rstrip()
    return dataclasses.replace(s, doc=doc)


def demo_samples(args: argparse.Namespace, tok: Tokenizer, block_size: int) -> list[Sample]:
    """Questions about validation postings, each about another posting and of another kind, alternating
    between the languages, with documents shortened to leave room for an answer."""
    postings, _ = load_postings(args.postings)
    _, val = split_postings(postings, VAL_FRACTION, SEED)
    samples = list(make_samples(val, SEED))
    by_lang = [[s for s in samples if s.lang == lang] for lang in sorted({s.lang for s in samples})]
    alternating = [s for group in itertools.zip_longest(*by_lang) for s in group if s is not None]
    picked: list[Sample] = []
    for s in alternating:
        if len(picked) == args.questions:
            break
        if all(s.posting_id != p.posting_id and s.kind != p.kind for p in picked):
            picked.append(fit_doc(s, tok, block_size - ANSWER_TOKENS))
    return picked


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    data_dir, run_dir = out / "data", out / "run"
    started = time.perf_counter()
    # Errors go up to the `jai` dispatcher, which reports them the same way for every command.
    trainer = make_trainer(args.backend, args.device)  # a missing framework fails here, before any work

    print(f"== 1/3  prepare {', '.join(args.postings)} -> {data_dir}")
    try:
        prepare(args.postings, data_dir, seed=SEED, val_fraction=VAL_FRACTION, show_progress=False)
    except (FileNotFoundError, ValueError) as e:
        if isinstance(e, JaiError):
            raise
        raise DatasetError(str(e)) from None  # the tokenizer's plain errors are bad input too

    model_cfg = GPTConfig()  # the default model; its vocabulary comes from the data
    train_cfg = TrainConfig(
        max_steps=args.max_steps,
        warmup_steps=max(1, args.max_steps // 10),
        eval_interval=max(1, args.max_steps // 4),
        eval_batches=8,
        ckpt_interval=max(1, args.max_steps // 4),
    )
    print(
        f"\n== 2/3  train the default model with {args.backend}: {train_cfg.max_steps} steps of "
        f"{train_cfg.batch_size} x {model_cfg.block_size} tokens, at most {args.minutes:g} min -> {run_dir}"
    )
    if run_dir.exists():  # <out>/run belongs to `jai run`: each run starts afresh
        print(f"  replacing the previous run in {run_dir}")
        shutil.rmtree(run_dir)
    summary = train(
        trainer,
        data_dir,
        run_dir,
        model_cfg,
        train_cfg,
        max_seconds=args.minutes * 60,
        progress=not args.no_progress,
    )
    initial, final = summary["initial_val_loss"], summary["val_loss"]
    print(
        f"validation loss: untrained {initial:.3f} (perplexity {math.exp(initial):,.0f}) -> trained "
        f"{final:.3f} (perplexity {math.exp(final):,.1f}) after {summary['step']} steps, "
        f"{summary['tokens_per_sec']:,.0f} tokens/s ({summary['device']}, {summary['dtype']})"
    )
    if summary["stopped"] == "max_seconds":
        print(f"  stopped by --minutes; `jai train --resume --out {run_dir}` finishes the schedule")

    ckpt = run_dir / CKPT_DIR
    print(f"\n== 3/3  questions about postings the model never trained on ({ckpt})")
    tok = Tokenizer.load(ckpt / "tokenizer.json")
    generate_fn, cfg = load_generate_fn(ckpt, args.backend, args.device)
    sampling = SamplingConfig(
        temperature=0.7, top_k=40, max_new_tokens=ANSWER_TOKENS, seed=SEED, stop_ids=default_stop_ids(tok)
    )
    example: tuple[str, Path] | None = None
    for i, s in enumerate(demo_samples(args, tok, cfg.block_size), 1):
        prompt = build_prompt(s.question, s.doc)
        answer = tok.decode(generate_fn(tok.encode(prompt), sampling)).strip()
        title = s.doc.strip().splitlines()[0]
        print(f"\n[{i}] {title}\n  question:  {s.question}")
        print("  model:     " + answer.replace("\n", "\n             "))
        print("  reference: " + s.answer.strip().replace("\n", "\n             "))
        if i == 1:  # a posting to try `jai sample` on, named in the last line
            example = (s.question, out / "posting.txt")
            example[1].write_text(s.doc.strip() + "\n", encoding="utf-8")
    print(f"\ndone in {time.perf_counter() - started:.0f}s.")
    if example:
        question, doc, where = (shlex.quote(str(x)) for x in (*example, ckpt))
        print("Ask your own question about a posting:")
        print(f"  {invocation()} sample {where} --question {question} --doc-file {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
