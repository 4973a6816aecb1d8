"""Prepare a training set: postings JSON -> Q&A samples -> tokenizer -> train.bin / val.bin / meta.json.

    jai prepare                                                  # the bundled sample, into out/data
    jai prepare ../shared/data/nyc-jobs data/jobs/postings.json --out out/both
    jai prepare --help

The split into train and val is made BY POSTING, before any sample exists: the several questions
asked about one posting all land on the same side, so validation loss measures postings the model
has never read, not new questions about familiar ones. The tokenizer is trained on the train split
only, for the same reason.

Every sample is made to fit the model's context whole (`--context`, the default model's 256 tokens):
its document is shortened around what the answer quotes (data/fit.py), and meta.json records how many
samples fit and how many were shortened.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jai.atomic import atomic_directory, write_json_atomic
from jai.config import GPTConfig
from jai.data.fit import FitReport, fit_samples
from jai.data.generator import varied_postings
from jai.data.postings import Posting, load_postings, posting_from_reference
from jai.data.qa import KINDS, Sample, drill_samples, echo_samples, make_samples
from jai.data.records import SkipRecord, TextReader
from jai.dataset import META_FILE, DatasetError, check_vocab, write_bins
from jai.errors import JaiError
from jai.tokenizer import DEFAULT_VOCAB_SIZE, Tokenizer

BUNDLED_SAMPLE = Path(__file__).resolve().parent / "jobs" / "postings.json"
TOKENIZER_FILE = "tokenizer.json"
DEFAULT_CONTEXT = GPTConfig().block_size  # the default model's context: samples are fitted to it


def _text_key(p: Posting) -> str:
    # Two records with the same text but different ids (a repost) must not straddle the split.
    text = " ".join(f"{p.title}\n{p.content}".lower().split())
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def split_postings(
    postings: Sequence[Posting], val_fraction: float, seed: int
) -> tuple[list[Posting], list[Posting]]:
    """Seeded split by posting (postings with identical text stay together); keeps input order."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    # Sorted before the shuffle, so the split depends on the seed and the postings, not on their order.
    keys = sorted({_text_key(p) for p in postings})
    if len(keys) < 2:
        raise ValueError(f"need at least 2 distinct postings to split into train and val, got {len(keys)}")
    random.Random(seed).shuffle(keys)
    n_val = min(len(keys) - 1, max(1, round(len(keys) * val_fraction)))
    val_keys = set(keys[:n_val])
    train = [p for p in postings if _text_key(p) not in val_keys]
    val = [p for p in postings if _text_key(p) in val_keys]
    return train, val


def generated_postings(seed: int, n: int, stream: str = "varied") -> list[Posting]:
    """`n` postings from the bundled sample's generator with independently drawn facts, read through the
    same importer as a file (data/generator.py: `varied_postings`). The generator's rarely skipped
    records (an empty title after cleaning, say) are left out, so slightly fewer than `n` may come back."""
    out = []
    for i, record in enumerate(varied_postings(seed, n, stream)):
        try:
            reader = TextReader(f"{stream} #{i}")
            out.append(posting_from_reference(record, reader, f"{stream}#{i}", "generated"))
        except SkipRecord:
            continue
    return out


DATA_FILES = frozenset({TOKENIZER_FILE, "train.bin", "val.bin", META_FILE})


def check_replaceable(out_dir: Path) -> None:
    """`out_dir` is replaced whole, so it may hold only what `jai prepare` writes (and hidden leftovers of
    an interrupted write): anything else there would be lost with it."""
    if out_dir.exists() and not out_dir.is_dir():  # what mkdir says: the dispatcher reads it as a bad path
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(out_dir))
    if not out_dir.is_dir():
        return
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in DATA_FILES and p.name[:1] != ".")
    if foreign:
        raise DatasetError(
            f"{out_dir}: holds {foreign[0]!r}, which `jai prepare` did not write; the data folder is "
            "replaced whole, so choose a new or empty --out"
        )


def prepare(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    val_fraction: float = 0.1,
    seed: int = 1337,
    min_frequency: int = 2,
    tokenizer: str | Path | None = None,
    batch_size: int = 256,
    context: int = DEFAULT_CONTEXT,
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
    varied: int = 0,
    drills: bool = False,
    split_digits: bool = False,
    echo: bool = False,
    echo_extra: int = 0,
) -> dict[str, Any]:
    """Run the whole pipeline; returns the meta.json dict. `tokenizer` reuses a tokenizer.json;
    every sample is fitted to `context` tokens (see data/fit.py). `varied` adds that many generated
    postings to the TRAIN split only (`generated_postings`): the validation split, and so every score,
    stays the inputs' own. `drills` adds each training posting's field questions asked about its header
    alone (`drill_samples`), to the train split only as well. `echo` asks every training posting's header
    back whole (`echo_samples`); `echo_extra` does the same for that many more generated postings that
    appear nowhere else, so their values are seen once, in the header the answer copies.

    `show_progress=None` shows progress bars only on a terminal (in a log file they would print a line
    per refresh); each stage also logs a line when it is done, with the time so far.
    """
    out_dir = Path(out_dir)
    if context < 16:
        raise ValueError(f"context must be at least 16 tokens, got {context}")
    for name, n in (("--varied", varied), ("--echo-extra", echo_extra)):
        if n < 0:
            raise ValueError(f"{name} takes a number of postings, 0 or more; got {n}")
    if split_digits and tokenizer is not None:
        raise ValueError(
            f"--split-digits trains a new tokenizer, --tokenizer reuses {tokenizer}: give one of them"
        )
    started = time.perf_counter()

    def stage(text: str) -> None:
        log(f"[{time.perf_counter() - started:4.0f}s] {text}")

    check_replaceable(out_dir)  # before the work, not after it
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    if tokenizer is None:
        check_vocab(vocab_size)  # fail now, not after training

    postings, report = load_postings(inputs, log=stage)
    log(report.summary())
    train, val = split_postings(postings, val_fraction, seed)
    if varied:
        train += generated_postings(seed, varied)
        stage(f"generated {varied:,} varied postings for training (seed {seed})")
    echo_only = generated_postings(seed, echo_extra, stream="echo") if echo_extra else []
    if echo_only:
        stage(f"generated {len(echo_only):,} more postings whose headers are only echoed (seed {seed})")

    def samples(ps: list[Posting]) -> Iterator[Sample]:  # regenerated on demand: never all in memory
        yield from make_samples(ps, seed)
        if drills and ps is train:
            yield from drill_samples(ps, seed)
        if echo and ps is train:
            yield from echo_samples(ps, seed)
        if ps is train:
            yield from echo_samples(echo_only, seed)

    counts = {name: sum(1 for _ in samples(ps)) for name, ps in (("train", train), ("val", val))}
    stage(
        f"split: {len(train)} train / {len(val)} val postings -> {counts['train']} / {counts['val']} samples"
    )

    def texts(ps: list[Posting]) -> Iterator[str]:
        return (s.text for s in samples(ps))

    if tokenizer is not None:
        tok = Tokenizer.load(tokenizer)
        stage(f"tokenizer: reusing {tokenizer} (vocab {tok.vocab_size:,})")
    else:
        log(f"tokenizer: training byte-level BPE, vocab {vocab_size:,}, on the train split")
        tok = Tokenizer.train(
            texts(train), vocab_size, min_frequency, show_progress, counts["train"], split_digits
        )
        stage(f"tokenizer: trained, vocab {tok.vocab_size:,}")
        if tok.vocab_size < vocab_size:
            log(f"  the corpus only supports {tok.vocab_size:,} tokens (asked for {vocab_size:,})")
    check_vocab(tok.vocab_size)
    # All files, then one switch (as for checkpoints): an interruption or a full disk leaves the old
    # folder whole, never a new tokenizer.json beside old .bin files that it did not make.
    with atomic_directory(out_dir) as tmp:
        tok.save(tmp / TOKENIZER_FILE)

        fits = {"train": FitReport(context), "val": FitReport(context)}

        def fitted(name: str, ps: list[Posting]) -> Iterator[str]:
            return (s.text for s in fit_samples(tok, samples(ps), context, fits[name]))

        meta = write_bins(
            {"train": fitted("train", train), "val": fitted("val", val)},
            tok,
            tmp,
            batch_size=batch_size,
            totals=counts,
            meta={
                "tokenizer_file": TOKENIZER_FILE,
                "tokenizer_source": str(tokenizer) if tokenizer is not None else "trained",
                "seed": seed,
                "val_fraction": val_fraction,
                "min_frequency": min_frequency,
                "question_kinds": list(KINDS),
                "context": context,
                "sources": report.files,
                "postings": {**report.to_dict(), "train": len(train), "val": len(val), "varied": varied},
                "drills": drills,
                "split_digits": tok.splits_digits,
                "echo": echo,
                "echo_extra": len(echo_only),
            },
        )
        for name, fit in fits.items():
            log(f"{name}: {fit.summary()}")
        meta["fit"] = {name: fit.to_dict() for name, fit in fits.items()}
        write_json_atomic(tmp / META_FILE, meta)
    train_info, val_info = meta["splits"]["train"], meta["splits"]["val"]
    stage(
        f"wrote {out_dir}: train {train_info['tokens']:,} tokens ({train_info['samples']} samples), "
        f"val {val_info['tokens']:,} tokens ({val_info['samples']} samples), vocab {tok.vocab_size:,}"
    )
    return meta


DESCRIPTION = """\
Turn job postings into a training set:
  1. load the postings (bad records are skipped and counted, mojibake is repaired),
  2. split them BY POSTING into train and val (seeded),
  3. ask a few questions of each posting, answered from its own fields:
     [DOC] posting [/DOC] [QUESTION] ... [/QUESTION] [ANSWER] ... [/ANSWER],
     each fitted to the context (the document shortened around what the answer quotes),
  4. train a byte-level BPE tokenizer on the train split (or reuse one with --tokenizer),
  5. write both splits as uint16 token files."""

EPILOG = """\
outputs, in --out:
  tokenizer.json      the tokenizer (loads in transformers.PreTrainedTokenizerFast too)
  train.bin, val.bin  uint16 token ids; every sample is [BOS] ... [EOS]
  meta.json           tokenizer sha256, vocab size, token/sample/posting counts, seed, sources, and
                      how many samples fit the context whole ("fit")

examples:
  jai prepare                                      # the bundled sample, into out/data
  jai prepare ../shared/data/nyc-jobs data/jobs/postings.json --out out/both
  jai prepare more.json --tokenizer out/data/tokenizer.json --out out/more
  jai prepare --context 512 --out out/data512      # samples fitted to a model with a longer context
  jai prepare --varied 3000 --out out/varied       # plus 3,000 generated postings for training
  jai prepare --varied 1000 --drills               # jai run's data: plus header drills"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jai prepare",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        default=[BUNDLED_SAMPLE],
        help=(
            "postings: .json files or directories of them, in either schema - the reference list "
            '[{"id", "title", "content", "meta": {...}}, ...] or the NYC export {"value": [...]}; '
            "bad records are skipped and counted (default: the bundled sample data/jobs/postings.json)"
        ),
    )
    p.add_argument("--out", type=Path, default=Path("out/data"), help="output directory (default: out/data)")
    p.add_argument(
        "--vocab-size",
        type=int,
        default=DEFAULT_VOCAB_SIZE,
        help=f"tokenizer vocabulary when training one, at most 65,535 (default: {DEFAULT_VOCAB_SIZE})",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of POSTINGS held out for validation; a posting never straddles the split (default: 0.1)",
    )
    p.add_argument(
        "--seed", type=int, default=1337, help="seeds the split and the Q&A phrasings (default: 1337)"
    )
    p.add_argument(
        "--min-frequency", type=int, default=2, help="BPE: a merge needs this many occurrences (default: 2)"
    )
    p.add_argument(
        "--context",
        type=int,
        default=DEFAULT_CONTEXT,
        help="fit every sample (question + document + answer) into this many tokens, the context of the "
        f"model to train (default: {DEFAULT_CONTEXT}, the default model's)",
    )
    p.add_argument(
        "--varied",
        type=int,
        default=0,
        metavar="N",
        help="add N generated postings to the training split, their facts (company, pay, contacts, dates) "
        "drawn independently so they can only be learned by reading the posting (default: 0)",
    )
    p.add_argument(
        "--drills",
        action="store_true",
        help="add, for every training posting, its field questions asked about its header alone: short "
        "samples that practise copying a value several times as often per token (default: off; jai run: on)",
    )
    p.add_argument(
        "--echo",
        action="store_true",
        help="add, for every training posting, its header asked back whole: copying practised on every "
        "token of the answer (default: off)",
    )
    p.add_argument(
        "--echo-extra",
        type=int,
        default=0,
        metavar="N",
        help="add the headers of N more generated postings, each asked back whole and appearing nowhere "
        "else: copying practised on values seen only in the header being copied (default: 0)",
    )
    p.add_argument(
        "--split-digits",
        action="store_true",
        help="train the tokenizer with every digit its own token, so numbers (pay, phones, dates) are "
        "copied digit by digit (default: off)",
    )
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        metavar="PATH",
        help="reuse this tokenizer.json instead of training one (e.g. to add data to a model's training)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        prepare(
            args.inputs,
            args.out,
            vocab_size=args.vocab_size,
            val_fraction=args.val_fraction,
            seed=args.seed,
            min_frequency=args.min_frequency,
            tokenizer=args.tokenizer,
            context=args.context,
            varied=args.varied,
            drills=args.drills,
            split_digits=args.split_digits,
            echo=args.echo,
            echo_extra=args.echo_extra,
        )
    except (FileNotFoundError, ValueError) as e:  # JaiErrors go up to the `jai` dispatcher as they are
        if isinstance(e, JaiError):
            raise
        raise DatasetError(str(e)) from None  # the tokenizer's plain errors (--tokenizer, --vocab-size)
    return 0


if __name__ == "__main__":  # `python -m jai.data.prepare` reports errors as `jai prepare` does
    from jai.cli import main as jai

    sys.exit(jai(["prepare", *sys.argv[1:]]))
