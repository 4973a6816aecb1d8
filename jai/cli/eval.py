"""`jai eval`: measure a checkpoint on its job — loss on the validation tokens, and greedy answers to
held-out questions scored against the references (what is measured and why: jai/evaluation/scoring.py).

The model runs in the chosen twin, imported only here and lazily: the loss through the twin's
`evaluate.token_losses`, the answers through its generate module. Greedy decoding picks the same tokens
in both twins, so both report the same answer scores for one checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jai.atomic import write_text_atomic
from jai.checkpoint.folder import resolve_checkpoint
from jai.checkpoint.weights import TOKENIZER_FILE, CheckpointError
from jai.cli.eval_retrieval import format_cost, retrieval_cost
from jai.data.qa import Sample
from jai.dataset import DatasetError, TokenBin
from jai.devices import BACKENDS, default_backend, twin_module
from jai.evaluation import scoring
from jai.inference.sampling import SamplingConfig, SamplingError
from jai.inference.twins import default_stop_ids, load_twin
from jai.progress import progress_bar
from jai.prompt import fit_prompt
from jai.retrieval.index import PostingIndex
from jai.tokenizer import Tokenizer
from jai.training.plan import recorded_data_dir

MIN_ANSWER_TOKENS = 32  # a prompt never takes the whole context: this much stays for the answer


def greedy_answers(
    model: Any,
    twin: Any,
    tok: Tokenizer,
    prompts: list[list[int]],
    batch_size: int,
    progress: bool,
    penalties: dict[str, Any] | None = None,
) -> list[str]:
    """Greedy answers to token prompts, batched (prompts of similar length together), as text; with
    `penalties` (SamplingConfig's penalty fields, e.g. {"repetition_penalty": 1.2}) if given.

    The one place `jai eval` decodes: `twin.generate_tokens(model, prompts, cfg)`. Each batch may
    generate up to the room its shortest prompt leaves in the context: a fitted sample's answer fits there.
    """
    block = model.config.block_size
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    bar = progress_bar(total=len(prompts), desc="answers", unit=" q", enabled=progress)
    for b in range(0, len(order), batch_size):
        rows = order[b : b + batch_size]
        room = max(MIN_ANSWER_TOKENS, block - min(len(prompts[i]) for i in rows))
        cfg = SamplingConfig(
            temperature=0.0, max_new_tokens=room, stop_ids=default_stop_ids(tok), **(penalties or {})
        )
        for i, ids in zip(rows, twin.generate_tokens(model, [prompts[i] for i in rows], cfg), strict=True):
            answers[i] = tok.decode(ids).strip()
        bar.update(len(rows))
    bar.close()
    return answers


def validation_loss(
    model: Any,
    backend: str,
    tok: Tokenizer,
    val: TokenBin,
    max_tokens: int | None,
    batch_size: int,
    progress: bool,
) -> dict[str, Any]:
    """Loss over the first `max_tokens` tokens of val.bin, in consecutive windows
    (jai.evaluation.scoring.loss_windows)."""
    token_losses = twin_module(backend, "evaluate").token_losses
    block = model.config.block_size
    n = len(val) - 1 if max_tokens is None else min(len(val) - 1, max_tokens)
    total, count = 0.0, 0
    bar = progress_bar(total=n, desc="loss", unit=" tok", enabled=progress)
    for x, y in scoring.loss_windows(val.data, block, max_tokens, batch_size):
        losses = token_losses(model, x, y)
        total += float(losses.astype("float64").sum())
        count += y.size
        bar.update(y.size)
    bar.close()
    text = tok.decode(val.data[1 : 1 + count])  # what the targets spell; [BOS]/[EOS] carry no bytes
    return scoring.loss_report(total, count, len(text.encode("utf-8")))


def answer_results(
    model: Any,
    twin: Any,
    tok: Tokenizer,
    samples: list[Sample],
    batch_size: int,
    progress: bool,
    penalties: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy answers to `samples`' questions about their documents (with `penalties`, if given), scored
    (jai.evaluation.scoring): the scores, and one row per question with its answer, the reference and
    both scores."""
    budget = model.config.block_size - MIN_ANSWER_TOKENS
    prompts = [fit_prompt(tok, s.question, s.doc, budget)[0] for s in samples]
    predictions = greedy_answers(model, twin, tok, prompts, batch_size, progress, penalties)
    answers = [scoring.Answer(s.kind, s.lang, p, s.answer) for s, p in zip(samples, predictions, strict=True)]
    rows = [
        {
            "posting_id": s.posting_id,
            "kind": s.kind,
            "lang": s.lang,
            "question": s.question,
            "prediction": a.prediction,
            "reference": a.reference,
            "exact": scoring.exact_match(a.prediction, a.reference),
            "f1": scoring.char_f1(a.prediction, a.reference),
        }
        for s, a in zip(samples, answers, strict=True)
    ]
    return scoring.score_answers(answers), rows


def answer_probe(data_dir: str | Path, backend: str, n: int, batch_size: int = 16) -> Callable[[Any], dict]:
    """What `jai train --eval-answers N` runs at every evaluation: greedy answers to the same N held-out
    questions (spread over kinds and languages), as the figures metrics.jsonl records: answers_fields_exact,
    answers_fields_f1, answers_all_exact, answers_all_f1 and answers_repeated."""
    meta = scoring.read_meta(data_dir)
    tok = Tokenizer.load(Path(data_dir) / TOKENIZER_FILE)
    samples = scoring.spread(scoring.heldout_samples(meta, tok), n)
    twin = twin_module(backend, "generate")

    def probe(model: Any) -> dict[str, float]:
        scores, _ = answer_results(model, twin, tok, samples, batch_size, progress=False)
        figures = {
            f"answers_{part}_{score}": round(scores[part][score], 4)
            for part in ("fields", "all")
            for score in ("exact", "f1")
            if scores[part]["n"]
        }
        return {**figures, "answers_repeated": round(scores["repeated"], 4)}

    return probe


def evaluate_checkpoint(
    ckpt: str | Path,
    data_dir: str | Path | None = None,
    backend: str = "torch",
    device: str = "auto",
    max_answers: int | None = 200,
    loss_tokens: int | None = 65_536,
    batch_size: int = 16,
    progress: bool = True,
    log: Any = print,
    postings: Sequence[str | Path] | None = None,
    penalties: dict[str, Any] | None = None,
    retrieval: str | Path | None = None,
) -> dict[str, Any]:
    """Everything `jai eval` reports, as a dict (the JSON it writes). `max_answers` / `loss_tokens` None:
    all of them; 0: skip that part. `postings` asks about those postings instead of the held-out ones
    (no validation loss then: there are no validation tokens for them). `penalties`: SamplingConfig's
    penalty fields for the answers (default: none). `retrieval`: an index of the postings, to answer the
    same questions from the posting it finds as well (jai/cli/eval_retrieval.py)."""
    if penalties:
        SamplingConfig(**penalties)  # checked before the model is loaded
    index = PostingIndex.open(retrieval) if retrieval is not None else None  # a bad index fails first, too
    ckpt = resolve_checkpoint(ckpt)
    tok_file = ckpt / TOKENIZER_FILE
    if not tok_file.is_file():
        raise CheckpointError(f"{ckpt}: the checkpoint has no {TOKENIZER_FILE}")
    tok = Tokenizer.load(tok_file)
    started = time.perf_counter()
    model, twin = load_twin(ckpt, backend, device)
    if tok.vocab_size > model.config.vocab_size:
        raise CheckpointError(
            f"{ckpt}: the tokenizer has more tokens than the model ({model.config.vocab_size})"
        )
    if postings:
        samples = scoring.postings_samples(postings, tok, model.config.block_size)
        samples = scoring.spread(samples, max_answers) if max_answers != 0 else []
        result: dict[str, Any] = {"checkpoint": str(ckpt), "postings": [str(p) for p in postings]}
        sources = list(postings)
        result["backend"] = backend
        loss_tokens = 0
    else:
        data_dir = Path(data_dir if data_dir is not None else recorded_data_dir(ckpt, resume=True))
        meta = scoring.read_meta(data_dir)
        if meta.get("tokenizer_sha256") not in (None, tok.sha256):
            raise DatasetError(
                f"{data_dir}: made with another tokenizer than {tok_file}; evaluate on the data the model "
                "was trained on (--data)"
            )
        val = TokenBin(data_dir / "val.bin", vocab_size=meta.get("vocab_size"))
        val.check_ids(model.config.vocab_size)  # the model's own table bounds the ids it may be given
        samples = scoring.spread(scoring.heldout_samples(meta, tok), max_answers) if max_answers != 0 else []
        result = {"checkpoint": str(ckpt), "data": str(data_dir), "backend": backend}
        sources = meta.get("sources") or []
    if loss_tokens != 0:
        result["loss"] = validation_loss(model, backend, tok, val, loss_tokens, batch_size, progress)
    if max_answers != 0:
        result["answers"], result["samples"] = answer_results(
            model, twin, tok, samples, batch_size, progress, penalties
        )
        result["decoding"] = {"greedy": True, **(penalties or {})}
    if index is not None and max_answers != 0:
        budget = model.config.block_size - MIN_ANSWER_TOKENS

        def decode(prompts: list[list[int]]) -> list[str]:
            return greedy_answers(model, twin, tok, prompts, batch_size, progress, penalties)

        result["retrieval"] = retrieval_cost(tok, samples, sources, index, budget, decode)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


EPILOG = """\
what it reports:
  validation loss   mean cross-entropy per token on val.bin, its perplexity, and bits per byte (the
                    loss in bits per UTF-8 byte of the text: comparable across tokenizers)
  answers           greedy answers to the held-out postings' questions (the validation split that
                    `jai prepare` made), per question kind and language: exact match after
                    normalisation, and character-bigram F1 (works for Korean; see jai/evaluation/scoring.py)

examples:
  jai eval out/run                              # the run's checkpoint, on the data it was trained on
  jai eval out/run/ckpt --data out/data --backend mlx
  jai eval out/run --json out/eval.json         # also write every score and answer as JSON
  jai eval out/run --answers 40 --loss-tokens 8192   # a quick look
  jai eval out/run --postings ../shared/data/nyc-jobs   # postings written by someone else
  jai eval out/run --retrieval out/index       # also answer from the posting the index finds"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai eval",
        description="Measure a checkpoint: validation loss, perplexity, bits per byte, and the quality of "
        "its greedy answers to questions about postings it never trained on.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "checkpoint", nargs="?", default="out/run", help="checkpoint or run dir (default: out/run)"
    )
    p.add_argument(
        "--data", default=None, help="the prepared data (default: the one the run recorded, else out/data)"
    )
    p.add_argument(
        "--backend", choices=BACKENDS, default=default_backend(), help="twin (default: %(default)s)"
    )
    p.add_argument("--device", default="auto", help="device for that twin (default: its best)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results here")
    p.add_argument(
        "--answers",
        type=int,
        default=200,
        metavar="N",
        help="held-out questions to answer, spread over kinds and languages; 0 skips (default: 200)",
    )
    p.add_argument(
        "--loss-tokens",
        type=int,
        default=65_536,
        metavar="N",
        help="validation tokens to compute the loss on; 0 skips (default: 65,536)",
    )
    p.add_argument(
        "--postings",
        nargs="+",
        type=Path,
        default=None,
        metavar="PATH",
        help="ask about these postings instead (.json files or folders, either schema `jai prepare` reads): "
        "postings written by someone else, which the model never trained on; answers only, no loss",
    )
    p.add_argument(
        "--retrieval",
        metavar="INDEX",
        help="an index of these postings (`jai index`): also answer each question from the posting it finds "
        "when the question names the posting's title and company or place, to see what retrieval costs",
    )
    p.add_argument("--batch-size", type=int, default=16, help="rows per forward pass (default: 16)")
    decoding = p.add_argument_group("decoding (greedy; penalties as in transformers, default none)")
    decoding.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        metavar="X",
        help="divide a positive logit of a token the answer already holds by X, multiply a negative one",
    )
    decoding.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        default=0,
        metavar="N",
        help="never complete an N-token sequence the answer already holds (0: off)",
    )
    decoding.add_argument(
        "--penalize-prompt",
        action="store_true",
        help="count the prompt's tokens as held too, as transformers does (default: the answer's only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars or lines")
    return p


def penalty_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The penalty flags as SamplingConfig fields; a bad value is one line naming the flag (exit 2)."""
    flags = {
        "repetition_penalty": args.repetition_penalty,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "penalize_prompt": args.penalize_prompt,
    }
    try:
        SamplingConfig(**flags)
    except SamplingError as e:
        name = str(e).split(" ", 1)[0]
        raise SamplingError(f"--{name.replace('_', '-')} {str(e).split(' ', 1)[1]}") from None
    return flags


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("answers", "loss_tokens", "batch_size"):
        if getattr(args, name) < (1 if name == "batch_size" else 0):
            raise DatasetError(
                f"--{name.replace('_', '-')} must be {'positive' if name == 'batch_size' else '>= 0'}"
            )
    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.backend,
        args.device,
        max_answers=args.answers,
        loss_tokens=args.loss_tokens,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        postings=args.postings,
        penalties=penalty_flags(args),
        retrieval=args.retrieval,
    )
    source = result.get("data") or ", ".join(result["postings"])
    print(f"{result['checkpoint']} on {source} ({args.backend}, {result['seconds']:.0f}s)")
    print(scoring.format_table(result))
    if "retrieval" in result:
        print(format_cost(result["retrieval"]))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, ensure_ascii=False, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
