"""`jai`: one command for the whole pipeline. Each subcommand lives in its own module, imported only
when used, so `jai prepare` never loads a framework and `jai train --backend mlx` never loads torch.

This is also the one place that turns an error a user can cause into a line on stderr and an exit code
(see jai/errors.py): the commands raise, and the same kind of mistake exits the same way in every command.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from jai.errors import JaiError

COMMANDS = {
    "run": ("jai.cli.run", "the main job: prepare the bundled postings, train, and answer a few questions"),
    "prepare": ("jai.data.prepare", "job postings JSON -> Q&A samples -> tokenizer -> train.bin / val.bin"),
    "train": ("jai.cli.train", "train a model with either twin (--backend mlx|torch), resumable"),
    "eval": ("jai.cli.eval", "measure a checkpoint: loss, bits per byte, answers to held-out questions"),
    "sample": ("jai.cli.sample", "generate text from a checkpoint (KV-cached, streaming)"),
    "index": ("jai.cli.index", "job postings -> a search index (BM25) for `jai ask` and `jai serve --index`"),
    "ask": ("jai.cli.ask", "a question across postings: find the posting, answer from it (RAG)"),
    "serve": ("jai.cli.serve", "serve a checkpoint over HTTP: OpenAI-compatible, streaming, batched"),
    "convert": ("jai.convert.cli", "move weights between JAI, Hugging Face GPT-2, nanoGPT and the twins"),
    "export": ("jai.cli.export", "a checkpoint as GGUF for llama.cpp and Ollama (+ Modelfile)"),
    "quantize": ("jai.cli.quantize", "quantize a checkpoint to 8 or 4 bits, in mlx-lm's format"),
    "fuse": ("jai.cli.fuse", "merge a LoRA adapter (jai train --lora) into its base model"),
    "plot": ("jai.cli.plot", "runs side by side: loss against steps and seconds, scores; or a table"),
    "bench": ("jai.benchmarks.cli", "compare the twins (and transformers, mlx-lm): speed, memory, loss"),
}

USAGE = "usage: jai <command> [options]   (jai <command> --help for each)\n\ncommands:\n" + "".join(
    f"  {name:<9} {help_}\n" for name, (_, help_) in COMMANDS.items()
)

# What a failed write leaves behind, for the commands that write: each of these is true because every
# file they write is replaced atomically (jai/atomic.py), so a full disk never leaves half a file.
KEPT_ON_WRITE_FAILURE = {
    "run": "no file was left half-written; a checkpoint already saved in <out>/run is intact",
    "train": "a checkpoint already saved is intact (`jai train --resume` continues from it)",
    "prepare": "the input postings are untouched and the data folder is as it was",
    "convert": "the source is untouched and no output file was left half-written",
    "export": "the checkpoint is untouched and no output file was left half-written",
    "index": "the index is as it was: an add is published by one rename (new folder or tantivy meta.json)",
    "fuse": "the adapter and its base are untouched and no output file was left half-written",
}

# Optional packages and the extra that installs each: a missing one is the install to fix, not a bug.
EXTRAS = {
    "mlx": "mlx",
    "torch": "torch",
    "fastapi": "serve",
    "uvicorn": "serve",
    "matplotlib": "bench",
    "transformers": "dev",
    "mlx_lm": "dev",
    "gguf": "gguf",
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "tantivy": "retrieval",
}

# A path the user named wrongly (not there, or a file where a folder belongs, or the reverse) is bad input
# (2, like InputError); a file system that refuses a write (full, read-only, no permission, an I/O error)
# fails a run that had good input (1, like RunFailed).
BAD_PATH = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)
BAD_PATH_ERRNOS = (errno.ENOENT, errno.EEXIST, errno.ENOTDIR, errno.EISDIR)
EXIT_FILE_SYSTEM = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
# 128 + SIGPIPE: what a shell reports for `seq 1000000 | head -1`'s seq, which the signal ends when head
# has gone. Python ignores SIGPIPE and raises BrokenPipeError instead; answering as a killed Unix tool
# does (not 0, not Python's 1) lets `set -o pipefail` scripts treat jai like any other writer.
EXIT_BROKEN_PIPE = 141


def one_line(text: str) -> str:
    return " ".join(text.split())


def missing_extra(e: ImportError) -> str | None:
    """The extra that would install what `e` found missing, or None when `e` is not about one (a bug)."""
    cause: BaseException | None = e
    while cause is not None:  # the twins re-raise a missing framework with their own message (`from e`)
        name = getattr(cause, "name", None)
        if name and name.split(".")[0] in EXTRAS:
            return EXTRAS[name.split(".")[0]]
        cause = cause.__cause__
    return None


def file_system_error(e: BaseException) -> tuple[int | None, str, str | None] | None:
    """(errno, reason, path) for a failure of the file system itself, or None when `e` is something else.

    safetensors reports a full disk as SafetensorError("... No space left on device (os error 28)"), not
    as an OSError, so both are read here."""
    if isinstance(e, OSError):
        path = None if e.filename is None else str(e.filename)
        return e.errno, e.strerror or one_line(str(e)) or type(e).__name__, path
    if type(e).__name__ == "SafetensorError":
        found = re.search(r"os error (\d+)", str(e))
        if found:
            path = re.search(r'at path "([^"]+)"', str(e))
            code = int(found.group(1))
            return code, os.strerror(code), path.group(1) if path else None
    return None


def report(command: str, e: Exception) -> int | None:
    """Print one line for an error a user can meet and return its exit code; None for a bug."""
    prefix = f"jai {command}: error:"
    if isinstance(e, JaiError):
        print(f"{prefix} {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    if isinstance(e, ImportError):
        extra = missing_extra(e)
        if extra is None:
            return None
        message = one_line(str(e))
        if "pip install" not in message:
            message += f" (pip install -e '.[{extra}]')"
        print(f"{prefix} {message}", file=sys.stderr)
        return 2  # the install is the input to fix, as for any JaiError of bad input
    failure = file_system_error(e)
    if failure is None:
        return None
    code, reason, path = failure
    line = f"{path}: {reason}" if path else reason
    if isinstance(e, BAD_PATH) or code in BAD_PATH_ERRNOS:
        if code in (errno.EEXIST, errno.ENOTDIR):  # mkdir on a path that is (or goes through) a file
            line += " (a file where a folder is needed; the file is left untouched)"
        print(f"{prefix} {line}", file=sys.stderr)
        return 2
    if command in KEPT_ON_WRITE_FAILURE:
        line += f"; {KEPT_ON_WRITE_FAILURE[command]}"
    print(f"{prefix} {line}", file=sys.stderr)
    return EXIT_FILE_SYSTEM


def invocation() -> str:
    """How to call `jai` again from here, for the commands a command suggests: `jai` where the shell finds
    this same `jai`, else the path it was started by (`make run` runs .venv/bin/jai, not on PATH)."""
    started = Path(sys.argv[0])
    if started.name != "jai":  # python -m jai.cli, or a test
        return "jai"
    on_path = shutil.which("jai")
    if on_path and Path(on_path).resolve() == started.resolve():
        return "jai"
    return shlex.quote(os.path.relpath(started) if not started.is_absolute() else str(started))


def main(argv: list[str] | None = None) -> int:
    """Run one command; a reader that closed our stdout early (`jai --help | head -1`) ends it quietly."""
    try:
        try:
            return dispatch(sys.argv[1:] if argv is None else argv)
        finally:
            # Flush here, for a return and for argparse's --help (SystemExit) alike: left to the
            # interpreter's exit, a failed flush prints "Exception ignored ... BrokenPipeError".
            sys.stdout.flush()
    except BrokenPipeError:
        # The Python docs' recipe: point stdout at /dev/null so the exit-time flush of what is still
        # buffered succeeds silently instead of raising a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("JAI: a small GPT trained on job postings, built twice (MLX and PyTorch).\n")
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"jai: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return module.main(rest) or 0
    except KeyboardInterrupt:
        print(f"\njai {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # an OSError, but no file system's failure: main's to end quietly
        raise
    except Exception as e:
        code = report(name, e)
        if code is None:
            raise  # a bug: the traceback is what its fixer needs
        return code
