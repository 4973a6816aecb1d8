"""`jai sample`: generate text from a checkpoint with either twin, streamed to stdout as it comes.

    jai sample out/run --question "What are the requirements?" --doc-file posting.txt
    jai sample out/run/ckpt --prompt "[QUESTION] 연봉은? [/QUESTION]" --temperature 0    # greedy
    jai sample --ckpt out/run --prompt "Backend" --prompt "Data" --top-k 50 --seed 1     # a batch

A generation ends at [EOS] or [/ANSWER] (`jai.inference.twins.default_stop_ids`), or after --max-new-tokens.
Only the generated text goes to stdout; notes and the token count go to stderr, so `> answer.txt` works.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jai.checkpoint.folder import resolve_checkpoint
from jai.checkpoint.weights import TOKENIZER_FILE, CheckpointError
from jai.devices import BACKENDS, default_backend
from jai.errors import InputError
from jai.inference.sampling import SamplingConfig, SamplingError, crop_left, room
from jai.inference.twins import default_stop_ids, load_twin
from jai.prompt import fit_prompt

EPILOG = """\
examples:
  jai sample out/run --question "What does the job require?" --doc-file posting.txt
  jai sample out/run --prompt "[QUESTION] 근무지는 어디인가요? [/QUESTION]" --temperature 0
  jai sample out/run --prompt "Backend engineer" --prompt "Data" --max-new-tokens 50   # a batch

The checkpoint is a directory from `jai train` (<out>/ckpt; the run dir <out> is accepted too) or from
`jai convert`, holding config.json, model.safetensors and tokenizer.json. The model was trained on
  [DOC] posting [/DOC] [QUESTION] q [/QUESTION] [ANSWER] a [/ANSWER]
so --question (with --doc/--doc-file) builds that prompt up to [ANSWER] (after [BOS], as in training) and
the model writes the answer. A document too long for the context is shortened from its end (the question
never is), and a note says so; a --prompt too long for it loses its start.
--temperature 0 is greedy: the same tokens every time, and the same with --backend mlx and torch.
"""

SAMPLING_FLAGS = ("temperature", "top_k", "top_p", "max_new_tokens", "seed")
PENALTY_FLAGS = ("repetition_penalty", "no_repeat_ngram_size")
# A --question's penalties when no flag sets them: the best `jai eval` answer scores of the settings
# measured (docs/quality.md, "Decoding"); a raw --prompt gets none, as transformers' defaults.
QUESTION_PENALTIES = {"repetition_penalty": 1.2, "no_repeat_ngram_size": 4}


class UsageError(InputError):
    """A problem with the command line that argparse cannot see (exit 2, like argparse's own)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai sample",
        description="Generate text from a JAI checkpoint with the MLX or PyTorch twin, streaming.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)

    prompt = p.add_argument_group("prompt (give --prompt, or --question with an optional document)")
    prompt.add_argument(
        "--prompt",
        action="append",
        metavar="TEXT",
        help="raw text to continue, as is; repeat for a batch",
    )
    prompt.add_argument(
        "--question",
        action="append",
        metavar="TEXT",
        help="a question, wrapped into the training format up to [ANSWER]; repeat for a batch (one --doc)",
    )
    docs = prompt.add_mutually_exclusive_group()
    docs.add_argument("--doc", metavar="TEXT", help="the document (job posting) the question is about")
    docs.add_argument("--doc-file", metavar="PATH", help="read the document from a file (- for stdin)")

    defaults = SamplingConfig()
    sampling = p.add_argument_group("sampling")
    sampling.add_argument(
        "--temperature",
        type=float,
        default=defaults.temperature,
        metavar="T",
        help="divide the logits by T; 0 is greedy, lower is safer, higher is wilder (default: %(default)s)",
    )
    sampling.add_argument(
        "--top-k", type=int, metavar="K", help="sample only among the K most likely tokens (default: all)"
    )
    sampling.add_argument(
        "--top-p",
        type=float,
        metavar="P",
        help="nucleus: sample among the fewest top tokens holding probability P, in (0, 1] (default: all)",
    )
    sampling.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.max_new_tokens,
        metavar="N",
        help="stop after N new tokens if no [EOS] or [/ANSWER] came first (default: %(default)s)",
    )
    sampling.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed the random draws, for a repeatable sample (default: a fresh one)",
    )

    penalties = p.add_argument_group("penalties (transformers' semantics, over the generated tokens)")
    penalties.add_argument(
        "--repetition-penalty",
        type=float,
        metavar="X",
        help="divide a positive logit of a token already generated by X, multiply a negative one "
        f"(default: {QUESTION_PENALTIES['repetition_penalty']:g} for --question, else 1: none)",
    )
    penalties.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        metavar="N",
        help="never generate an N-token sequence twice "
        f"(default: {QUESTION_PENALTIES['no_repeat_ngram_size']} for --question, else 0: off)",
    )

    out = p.add_argument_group("output")
    out.add_argument(
        "--no-stream", action="store_true", help="print the text once it is complete (a batch always does)"
    )
    return p


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The checkpoint, backend and device flags `jai sample` and `jai serve` share."""
    model = p.add_argument_group("model")
    model.add_argument(
        "ckpt_pos",
        nargs="?",
        metavar="CKPT",
        help="checkpoint dir, or a `jai train` run dir holding ckpt/ (default: out/run)",
    )
    model.add_argument("--ckpt", metavar="DIR", help="the same, as a flag")
    model.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="tokenizer.json to use (default: the one in the checkpoint dir)",
    )
    model.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default_backend(),
        help="which twin runs the model (default here: %(default)s; MLX on Apple silicon, PyTorch elsewhere)",
    )
    model.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "gpu", "cuda", "mps"),
        help="auto (default): the GPU if there is one, else the CPU. MLX: cpu|gpu; PyTorch: cpu|gpu|cuda|mps",
    )


def checkpoint_arg(args: argparse.Namespace) -> str:
    if args.ckpt_pos and args.ckpt and Path(args.ckpt_pos) != Path(args.ckpt):
        raise UsageError(f"two checkpoints given: {args.ckpt_pos} and --ckpt {args.ckpt}; give one")
    return args.ckpt or args.ckpt_pos or "out/run"


def load_tokenizer(ckpt: Path, path: str | None = None) -> Any:
    """The checkpoint's tokenizer.json, or the one given; CheckpointError naming the missing file."""
    from jai.tokenizer import Tokenizer

    file = Path(path) if path else ckpt / TOKENIZER_FILE
    if not file.is_file():
        if path:
            raise CheckpointError(f"{file}: no such tokenizer file")
        raise CheckpointError(
            f"{ckpt}: the checkpoint has no {TOKENIZER_FILE}; pass --tokenizer PATH "
            "(e.g. the data dir's tokenizer.json from `jai prepare`)"
        )
    try:
        return Tokenizer.load(file)
    except ValueError as e:  # malformed JSON, or not a JAI tokenizer (control tokens elsewhere)
        raise CheckpointError(f"{file}: {e}") from None


def sampling_config(args: argparse.Namespace, stop_ids: tuple[int, ...]) -> SamplingConfig:
    """The flags as a SamplingConfig; its complaint is reworded to name the flag (top_p -> --top-p).

    A penalty flag not given takes QUESTION_PENALTIES for --question, no penalty for --prompt."""
    penalties = {k: getattr(args, k) for k in PENALTY_FLAGS if getattr(args, k) is not None}
    if args.question:
        penalties = {**QUESTION_PENALTIES, **penalties}
    try:
        return SamplingConfig(**{k: getattr(args, k) for k in SAMPLING_FLAGS}, **penalties, stop_ids=stop_ids)
    except SamplingError as e:
        msg = str(e).replace(" or None", "")
        for name in SAMPLING_FLAGS + PENALTY_FLAGS:
            if msg.startswith(name):
                msg = f"--{name.replace('_', '-')}{msg[len(name) :]}"
        raise UsageError(msg) from None


def prompt_texts(args: argparse.Namespace) -> list[str | tuple[str, str]]:
    """The raw --prompt texts, or a (question, document) pair per --question (made to fit later)."""
    if args.prompt and args.question:
        raise UsageError("give --prompt or --question, not both")
    if (args.doc is not None or args.doc_file) and not args.question:
        raise UsageError("--doc/--doc-file go with --question")
    if args.prompt:
        return args.prompt
    if not args.question:
        raise UsageError(
            "nothing to continue: give --prompt TEXT, or --question TEXT (with --doc or --doc-file)"
        )
    doc = args.doc or ""
    if args.doc_file == "-":
        doc = sys.stdin.read()
    elif args.doc_file:
        try:
            doc = Path(args.doc_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--doc-file {args.doc_file}: cannot read it ({e})") from None
    return [(q, doc) for q in args.question]


def question_ids(tokenizer: Any, pair: tuple[str, str], block: int, cfg: SamplingConfig, i: int) -> list[int]:
    """[BOS] + the training-format prompt, the document shortened (never the question) to leave
    room to generate; a note on stderr when it was."""
    question, doc = pair
    budget = block - room(block, cfg.max_new_tokens)
    ids, shortened = fit_prompt(tokenizer, question, doc, budget)
    if shortened:
        print(
            f"jai sample: the document of question {i + 1} was shortened to fit the model's context of "
            f"{block} tokens with room for {room(block, cfg.max_new_tokens)} new ones",
            file=sys.stderr,
        )
    return ids


def stream_text(tokenizer: Any, steps: Iterable[list[int | None]]) -> Iterator[str]:
    """Pieces of text as tokens arrive from a one-prompt `generate`.

    One token can be half of a character (byte-level BPE splits Hangul into bytes), and decoding half
    a character gives U+FFFD, so each step decodes every new id so far and hands on only the part past
    what was already given, holding back a trailing U+FFFD until the next token completes it.
    """
    ids: list[int] = []
    shown = ""
    for (token,) in steps:
        if token is None:
            continue
        ids.append(token)
        text = tokenizer.decode(ids)
        if text.endswith("\ufffd") or not text.startswith(shown):
            continue
        yield text[len(shown) :]
        shown = text
    text = tokenizer.decode(ids)
    if text != shown:  # a held-back tail: the generation ended mid-character
        yield text[len(shown) :] if text.startswith(shown) else "\n" + text


def run(args: argparse.Namespace) -> int:
    texts = prompt_texts(args)
    cfg = sampling_config(args, ())  # the flags are checked before any file is read
    ckpt = resolve_checkpoint(checkpoint_arg(args))
    tokenizer = load_tokenizer(ckpt, args.tokenizer)
    cfg = cfg.replace(stop_ids=default_stop_ids(tokenizer))
    raw = {i: tokenizer.encode(t) for i, t in enumerate(texts) if isinstance(t, str)}
    for i, ids in raw.items():
        if not ids:
            raise UsageError(f"the prompt {texts[i]!r} encodes to no tokens")

    model, twin = load_twin(ckpt, args.backend, args.device)
    block, vocab = model.config.block_size, model.config.vocab_size
    if tokenizer.vocab_size > vocab:
        raise CheckpointError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model only {vocab}: "
            "not the tokenizer this model was trained with"
        )
    prompts = [raw[i] if i in raw else question_ids(tokenizer, t, block, cfg, i) for i, t in enumerate(texts)]
    for i, ids in enumerate(prompts):
        kept = len(crop_left(ids, block, cfg.max_new_tokens))
        if kept < len(ids):  # the twins crop it the same way; say so rather than silently
            print(
                f"jai sample: prompt {i + 1} is {len(ids)} tokens; only its last {kept} fit the model's "
                f"context of {block} with room to generate",
                file=sys.stderr,
            )

    start = time.perf_counter()
    if len(prompts) == 1 and not args.no_stream:
        new = []
        for piece in stream_text(tokenizer, _collect(twin.generate(model, prompts, cfg), new)):
            print(piece, end="", flush=True)
        print()
        outputs = [new]
    else:
        outputs = twin.generate_tokens(model, prompts, cfg)
        for i, new in enumerate(outputs):
            if len(outputs) > 1:
                print(f"{'=' * 20} sample {i + 1} of {len(outputs)} {'=' * 20}")
            print(tokenizer.decode(new))
    seconds = time.perf_counter() - start
    n = sum(len(o) for o in outputs)
    ends = ["length" if len(o) >= cfg.max_new_tokens else "stop" for o in outputs]
    print(
        f"[{n} tokens in {seconds:.2f} s, {n / seconds:.1f} tokens/s; ended by: {', '.join(ends)}]",
        file=sys.stderr,
    )
    return 0


def _collect(steps: Iterable[list[int | None]], into: list[int]) -> Iterator[list[int | None]]:
    """Pass the steps through, keeping the new ids (for the summary line)."""
    for step in steps:
        into.extend(t for t in step if t is not None)
        yield step


def main(argv: list[str] | None = None) -> int:
    # Errors (JaiError, a missing extra, Ctrl-C) go up to the `jai` dispatcher, which reports them all alike.
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
