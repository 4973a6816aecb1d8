"""`jai run`: the main job, end to end, on the postings bundled with the repo (nothing is downloaded).

    jai run                       # prepare -> measure the untrained model -> train -> measure, in 9.5 min
    jai run --backend mlx         # the same with the MLX twin
    jai run --minutes 60 --out out/long      # a longer schedule, planned for the hour
    jai run --shape seed --max-steps 200     # the seed model (6 x 6 x 384), a fixed schedule

Writes <out>/data, <out>/untrained, <out>/run and <out>/eval.json, replacing a previous `jai run`'s.

1. `jai prepare` on data/jobs/postings.json, plus --varied generated postings for training: Q&A
   samples (long answers and one-value field questions) fitted to the context, --drills (field
   questions about each training posting's header alone) and --echo (each training header asked back
   whole), a BPE tokenizer, train.bin / val.bin;
2. `jai eval` of the untrained model (the weights training starts from): the baseline;
3. `jai train` of the tiny model (3 layers, 3 heads, 192 wide, context 256), batch 8, learning rate
   4e-3 after a 10% warmup, the loss on the answers and half the other targets (--prompt-loss), for as
   many steps as the minutes leave: a few steps are timed first and the cosine schedule is planned to
   end in time (a faster machine trains longer); every evaluation also scores 32 held-out answers into
   metrics.jsonl (the answer curve);
4. `jai eval` of the trained model: loss, bits per byte, and greedy answers to questions about postings
   the model never trained on (the validation split), scored per question kind against the references
   built from the postings' fields, side by side with the untrained model's; then a few of the answers.

It only calls what the other commands call, so every step can be rerun alone with its own command.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from jai.atomic import write_text_atomic
from jai.checkpoint.train_state import CKPT_DIR
from jai.cli import invocation
from jai.cli.eval import answer_probe, evaluate_checkpoint
from jai.config import GPTConfig
from jai.data.prepare import BUNDLED_SAMPLE, TOKENIZER_FILE, prepare
from jai.dataset import DatasetError
from jai.devices import BACKENDS, default_backend, twin_module
from jai.errors import JaiError
from jai.evaluation.scoring import heldout_samples
from jai.tokenizer import Tokenizer
from jai.train_config import TrainConfig
from jai.training.loop import make_trainer, train

SEED = 1337  # prepare's default split and phrasings
VAL_FRACTION = 0.1
# What `jai run` trains, and how (docs/quality.md has the measurements behind each choice):
# the tiny shape answers best of four in the same minutes on a CPU (field exact 0.35 against 0.21 for the
# small shape, 0.26 for 3 x 2 x 128 and 0.09 for the seed's): its step is 1.56x the small shape's, whose
# head (256 x 24,000) is most of the work. A higher learning rate (4e-3 beat 2e-3 and 1e-3 at 2M tokens),
# the bundled postings plus generated ones whose facts can only be copied from the posting (--varied),
# header drills (--drills: field questions about the header alone; copying appears in these minutes),
# and each header asked back whole (--echo: the copy practised on every answer token; in the same minutes,
# two seeds: all-kinds F1 0.70 and 0.68 against 0.64, field exact 0.54 and 0.42 against 0.42).
SHAPES = {
    "tiny": GPTConfig(n_layer=3, n_head=3, n_embd=192),
    "small": GPTConfig(n_layer=4, n_head=4, n_embd=256),
    "seed": GPTConfig(),  # 6 x 6 x 384: `jai train`'s default
}
LR = 4e-3
# The loss on every answer token and on half of the others (the posting, the question), the rest left
# out before the head: each step is 1.54x faster, and in the same minutes the tiny model answered better
# than with every target (field exact 0.42 against 0.35 in two seeds, all kinds F1 0.64 against
# 0.59-0.60). The loss on the answers alone (--mask-prompt) collapsed it: the model learns to read the
# posting by predicting it.
PROMPT_LOSS = 0.5
BATCH_SIZE = 8  # at the same tokens, more and smaller steps answer better (8 x 1953 beat 16 x 977)
WARMUP_SHARE = 0.1  # of max_steps
VARIED = 1000  # generated training postings: more than the minutes can read once, for little prepare time
EVAL_ANSWERS_IN_TRAINING = 32  # the answer curve in metrics.jsonl: one question per kind and language
CALIBRATION_STEPS = 6  # timed to plan the schedule: the first two are warm-up (allocation, compilation)
# How much `jai eval` measures here: enough to compare the two models on every kind, in seconds.
EVAL_ANSWERS = 30
EVAL_LOSS_TOKENS = 8192


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
        "--minutes",
        type=float,
        default=9.5,
        help="time bound of the whole job in minutes: preparing, both evaluations and training, which gets "
        "what the rest leaves (default: %(default)s)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="optimizer steps of the warmup + cosine schedule (default: as many as --minutes leaves, "
        "planned from the measured time of a step, so a faster machine trains a better model)",
    )
    p.add_argument(
        "--shape",
        choices=SHAPES,
        default="tiny",
        help="the model: tiny = 3 layers x 3 heads x 192 wide (default: answers best in a CPU's "
        "minutes), small = 4 x 4 x 256 (the default before), seed = 6 x 6 x 384 (`jai train`'s "
        "default); context 256 for all",
    )
    p.add_argument(
        "--varied",
        type=int,
        default=VARIED,
        metavar="N",
        help="generated training postings whose facts can only be copied from the posting "
        "(`jai prepare --varied`; default: %(default)s; 0: the given postings alone)",
    )
    p.add_argument(
        "--drills",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add field questions about each training posting's header alone (`jai prepare --drills`; "
        "default: on)",
    )
    p.add_argument(
        "--echo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add each training posting's header asked back whole (`jai prepare --echo`; default: on)",
    )
    p.add_argument(
        "--align-samples",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start every training window at a sample's [BOS] (default: on; see docs/quality.md)",
    )
    p.add_argument("--lr", type=float, default=LR, help="peak learning rate (default: %(default)g)")
    p.add_argument(
        "--prompt-loss",
        type=share,
        default=PROMPT_LOSS,
        metavar="S",
        help="share of the targets outside answers that count in the loss (`jai train --prompt-loss`; "
        "default: %(default)g, a faster step and better answers in the same minutes; 1: every target)",
    )
    p.add_argument(
        "--answers",
        type=int,
        default=EVAL_ANSWERS,
        help="held-out questions each model answers for `jai eval` (default: %(default)s)",
    )
    p.add_argument("--questions", type=int, default=3, help="answers to show at the end (default: 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def share(text: str) -> float:
    """A number in (0, 1], for --prompt-loss."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]")
    return value


def save_untrained(backend: str, data_dir: Path, model_cfg: GPTConfig, seed: int, out: Path) -> Path:
    """The weights training starts from (the same seed), saved as a checkpoint `jai eval` can read."""
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
    cfg = model_cfg.replace(vocab_size=meta["vocab_size"])
    model = twin_module(backend, "model").GPT(cfg, seed=seed)
    if out.exists():
        shutil.rmtree(out)
    checkpoint = twin_module(backend, "checkpoint")
    checkpoint.save_model(model, out, tokenizer=data_dir / TOKENIZER_FILE)
    return out


def time_a_step(
    backend: str, device: str, data_dir: Path, model_cfg: GPTConfig, prompt_loss: float, scratch: Path
) -> float:
    """Seconds per optimizer step of this model on this machine: the median of a few timed steps of a
    throwaway run (its first two, which allocate and compile, left out), so the schedule can be planned
    to end when the minutes do."""
    if scratch.exists():
        shutil.rmtree(scratch)
    cfg = TrainConfig(
        batch_size=BATCH_SIZE,
        max_steps=CALIBRATION_STEPS,
        warmup_steps=1,
        eval_interval=CALIBRATION_STEPS,
        eval_batches=1,
        ckpt_interval=CALIBRATION_STEPS,
        prompt_loss=prompt_loss,  # the rows the head computes are most of a step's time
    )
    train(backend, data_dir, scratch, model_cfg, cfg, device=device, log=lambda _: None, progress=False)
    log = (scratch / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    elapsed = [r["elapsed"] for r in map(json.loads, log) if "loss" in r and "elapsed" in r]
    shutil.rmtree(scratch)
    return statistics.median(b - a for a, b in itertools.pairwise(elapsed[2:]))


def comparison(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The untrained and the trained model side by side: loss, bits per byte, answer scores per kind."""
    lb, la = before["loss"], after["loss"]
    lines = [
        f"{'':<22}{'untrained':>20}{'trained':>20}",
        f"{'validation loss':<22}{lb['loss']:>20.3f}{la['loss']:>20.3f}",
        f"{'bits per byte':<22}{lb['bits_per_byte']:>20.3f}{la['bits_per_byte']:>20.3f}",
        f"{'answers (n)':<22}{'exact   char F1':>20}{'exact   char F1':>20}",
    ]
    ab, aa = before["answers"], after["answers"]
    rows = [
        *((k, ab["by_kind"][k], aa["by_kind"][k]) for k in ab["by_kind"]),
        *((f"lang {k}", ab["by_lang"][k], aa["by_lang"][k]) for k in ab["by_lang"]),
        *((part, ab[part], aa[part]) for part in ("fields", "long") if part in ab),
        ("all", ab["all"], aa["all"]),
    ]
    for name, b, a in rows:
        label = f"{name} ({b['n']})"
        lines.append(f"  {label:<20}{b['exact']:>12.3f}{b['f1']:>8.3f}{a['exact']:>12.3f}{a['f1']:>8.3f}")
    if "repeated" in ab:
        lines.append(f"  {'repeated a line':<20}{ab['repeated']:>20.3f}{aa['repeated']:>20.3f}")
    return "\n".join(lines)


def show_answers(result: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """A few of the trained model's answers, of different kinds, next to the references."""
    shown: list[dict[str, Any]] = []
    samples = result.get("samples", [])
    for alternate in (True, False):  # languages taking turns where the samples allow it
        for s in samples:
            new_kind = all(s["kind"] != t["kind"] for t in shown)
            if len(shown) < n and new_kind and not (alternate and shown and s["lang"] == shown[-1]["lang"]):
                shown.append(s)
    for i, s in enumerate(shown, 1):
        print(f"\n[{i}] {s['kind']} ({s['lang']}, char F1 {s['f1']:.2f})\n  question:  {s['question']}")
        print("  model:     " + (s["prediction"] or "(nothing)").replace("\n", "\n             "))
        print("  reference: " + s["reference"].replace("\n", "\n             "))
    return shown


def try_it(shown: dict[str, Any], data_dir: Path, ckpt: Path, out: Path) -> str:
    """A `jai sample` line that works as printed: the jai this was started as (.venv/bin/jai under
    `make run`), the first question shown, and its posting saved as <out>/posting.txt."""
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
    tok = Tokenizer.load(data_dir / TOKENIZER_FILE)
    same = (shown["posting_id"], shown["question"])
    doc = next(s.doc for s in heldout_samples(meta, tok) if (s.posting_id, s.question) == same)
    write_text_atomic(out / "posting.txt", doc.strip() + "\n")
    words = [str(ckpt), "--question", shown["question"], "--doc-file", str(out / "posting.txt")]
    return f"{invocation()} sample " + " ".join(shlex.quote(w) for w in words)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    data_dir, run_dir = out / "data", out / "run"
    started = time.perf_counter()
    # Errors go up to the `jai` dispatcher, which reports them the same way for every command.
    trainer = make_trainer(args.backend, args.device)  # a missing framework fails here, before any work

    print(f"== 1/4  prepare {', '.join(args.postings)} -> {data_dir}")
    try:
        prepare(
            args.postings,
            data_dir,
            seed=SEED,
            val_fraction=VAL_FRACTION,
            show_progress=False,
            varied=args.varied,
            drills=args.drills,
            echo=args.echo,
        )
    except (FileNotFoundError, ValueError) as e:
        if isinstance(e, JaiError):
            raise
        raise DatasetError(str(e)) from None  # the tokenizer's plain errors are bad input too

    model_cfg = SHAPES[args.shape]  # its vocabulary comes from the data
    measure = {
        "data_dir": data_dir,
        "backend": args.backend,
        "device": args.device,
        "max_answers": args.answers,
        "loss_tokens": EVAL_LOSS_TOKENS,
        "progress": not args.no_progress,
    }
    print(f"\n== 2/4  jai eval: the untrained model ({args.answers} held-out questions)")
    untrained = save_untrained(args.backend, data_dir, model_cfg, TrainConfig().seed, out / "untrained")
    t_eval = time.perf_counter()
    before = evaluate_checkpoint(untrained, **measure)
    eval_seconds = time.perf_counter() - t_eval  # the trained model's evaluation will take at most as long

    if run_dir.exists():  # <out>/run belongs to `jai run`: each run starts afresh
        print(f"\n  replacing the previous run in {run_dir}")
        shutil.rmtree(run_dir)
    max_steps = args.max_steps
    if max_steps is None:
        step_seconds = time_a_step(
            args.backend, args.device, data_dir, model_cfg, args.prompt_loss, out / "calibration"
        )
        # Training gets what preparing and both evaluations leave (the trained model's evaluation taking
        # up to 1.2x the untrained one's), less its own 5 evaluations: 8 loss batches (a forward pass is
        # about a third of a step) and EVAL_ANSWERS_IN_TRAINING answers (about half of `jai eval`'s time,
        # which also answers and measures the loss) each.
        left = args.minutes * 60 - (time.perf_counter() - started) - 1.2 * eval_seconds
        left -= 5 * (8 * step_seconds / 3 + 0.5 * eval_seconds)
        max_steps = max(1, int(0.9 * left / step_seconds))
        print(
            f"\n  a step takes {step_seconds:.2f} s here: {max_steps} steps fit the {left:.0f} s "
            "--minutes leaves for training"
        )
    train_cfg = TrainConfig(
        batch_size=BATCH_SIZE,
        lr=args.lr,
        min_lr=args.lr / 10,
        max_steps=max_steps,
        warmup_steps=max(1, round(max_steps * WARMUP_SHARE)),
        eval_interval=max(1, max_steps // 4),
        eval_batches=8,
        ckpt_interval=max(1, max_steps // 4),
        align_samples=args.align_samples,
        prompt_loss=args.prompt_loss,
    )
    shape = f"{model_cfg.n_layer} layers x {model_cfg.n_head} heads x {model_cfg.n_embd} wide"
    print(
        f"\n== 3/4  train the {args.shape} model ({shape}) with {args.backend}: {max_steps} steps of "
        f"{train_cfg.batch_size} x {model_cfg.block_size} tokens, lr {train_cfg.lr:g}, loss on the answers "
        f"and {args.prompt_loss:.0%} of the other targets, "
        f"at most {args.minutes:g} min for the whole job -> {run_dir}"
    )
    summary = train(
        trainer,
        data_dir,
        run_dir,
        model_cfg,
        train_cfg,
        # --minutes bounds the whole job: training gets what is left after the final evaluation and the
        # wrap-up (the answers shown, the sample command's posting found again: a few seconds, measured)
        max_seconds=max(0.0, args.minutes * 60 - (time.perf_counter() - started) - 1.2 * eval_seconds - 5),
        progress=not args.no_progress,
        probe=answer_probe(data_dir, args.backend, EVAL_ANSWERS_IN_TRAINING),
    )
    initial, final = summary["initial_val_loss"], summary["val_loss"]
    print(
        f"validation loss: untrained {initial:.3f} -> trained {final:.3f} after {summary['step']} steps, "
        f"{summary['tokens_seen']:,} tokens seen, {summary['tokens_per_sec']:,.0f} tokens/s "
        f"({summary['device']}, {summary['dtype']}); the answer curve is in {run_dir / 'metrics.jsonl'}"
    )
    if summary["stopped"] == "max_seconds":
        print(f"  stopped by --minutes; `jai train --resume --out {run_dir}` finishes the schedule")

    ckpt = run_dir / CKPT_DIR
    print(f"\n== 4/4  jai eval: the trained model ({ckpt})")
    after = evaluate_checkpoint(ckpt, **measure)
    print("\n" + comparison(before, after))
    write_text_atomic(
        out / "eval.json",
        json.dumps(
            {"untrained": before, "trained": after, "train": summary},
            ensure_ascii=False,
            indent=1,
            default=str,
        )
        + "\n",
    )
    shown = show_answers(after, args.questions)
    print(f"\ndone in {time.perf_counter() - started:.0f}s; every score in {out / 'eval.json'}.")
    if shown:
        print(f"Ask your own question about a posting:\n  {try_it(shown[0], data_dir, ckpt, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
