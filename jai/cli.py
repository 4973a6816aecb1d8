"""`jai`: one command for the whole pipeline. Each subcommand lives in its own module, imported only
when used, so `jai prepare` never loads a framework and `jai train --backend mlx` never loads torch."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "run": ("jai.run", "the main job: prepare the bundled postings, train, and answer a few questions"),
    "prepare": ("jai.data.prepare", "job postings JSON -> Q&A samples -> tokenizer -> train.bin / val.bin"),
    "train": ("jai.train_cli", "train a model with either twin (--backend mlx|torch), resumable"),
    "sample": ("jai.sample_cli", "generate text from a checkpoint (KV-cached, streaming)"),
    "serve": ("jai.serve_cli", "serve a checkpoint over HTTP (FastAPI, bounded concurrency)"),
    "convert": ("jai.convert.cli", "move weights between JAI, Hugging Face GPT-2, nanoGPT and the twins"),
    "bench": ("jai.benchmarks.cli", "compare the twins (and transformers, mlx-lm): speed, memory, loss"),
}

USAGE = "usage: jai <command> [options]   (jai <command> --help for each)\n\ncommands:\n" + "".join(
    f"  {name:<9} {help_}\n" for name, (_, help_) in COMMANDS.items()
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("JAI: a small GPT trained on job postings, built twice (MLX and PyTorch).\n")
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"jai: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
