"""`jai export gguf`: a checkpoint as one GGUF file for llama.cpp, and a Modelfile for Ollama."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jai.errors import warnings_as_lines

PROG = "jai export"

DESCRIPTION = """\
Export a JAI checkpoint for runtimes outside Python.

  gguf    one .gguf file for llama.cpp (llama-cli, llama-server, llama-cpp-python) and Ollama:
          GPT-2 architecture, the byte-level BPE vocabulary with JAI's special tokens, the context
          length and the chat template; an Ollama Modelfile is written beside it.

transformers and mlx-lm need no export: they open the checkpoint directory itself.
"""

GGUF_EPILOG = """\
types:
  f32    every tensor in float32: llama.cpp computes what JAI computes (greedy tokens agree)
  f16    2-D weights in float16 (half the size)          [default]
  q8_0   2-D weights in llama.cpp's 8-bit blocks (about a quarter of f32; perplexity within ~1%)
  LayerNorms, biases and position embeddings stay float32 in every type.

examples:
  jai export gguf out/run/ckpt jai.gguf --type q8_0
  llama-cli -m jai.gguf -c 256 -no-cnv -p "[DOC]
  (posting)
  [/DOC]
  [QUESTION] 근무지는 어디인가요? [/QUESTION]
  [ANSWER]"                                            # llama.cpp adds [BOS] itself
  ollama create jai -f Modelfile && ollama run jai      # the Modelfile written beside jai.gguf

Pass the model's context length to llama.cpp (-c): its default is longer than the position embeddings.
The Modelfile sets it (num_ctx); its TEMPLATE takes the posting from the system message and the
question from the prompt. llama.cpp stops at [/ANSWER] by itself (the GGUF names it end-of-turn).
"""


EXAMPLES = """\
examples:
  jai export gguf out/run/ckpt jai.gguf --type q8_0   # then: ollama create jai -f Modelfile
  jai export gguf --help                              # the types, and how llama.cpp and Ollama use it
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    p = sub.add_parser(
        "gguf",
        help="checkpoint -> GGUF file for llama.cpp and Ollama (+ Modelfile)",
        description="Write a checkpoint as a GGUF file for llama.cpp and Ollama, and a Modelfile beside it.",
        epilog=GGUF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", type=Path, help="JAI checkpoint directory")
    p.add_argument("out", metavar="OUT.gguf", type=Path, help="GGUF file to write (atomically)")
    p.add_argument("--type", default="f16", choices=("f32", "f16", "q8_0"), help="tensor type (default: f16)")
    p.add_argument("--no-modelfile", action="store_true", help="do not write an Ollama Modelfile beside it")
    p.add_argument("--force", action="store_true", help="replace OUT.gguf (and the Modelfile) if they exist")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else 2
    from jai.convert.gguf import ActivationWarning, export_gguf

    with warnings_as_lines(PROG, ActivationWarning):
        done = export_gguf(args.checkpoint, args.out, args.type, args.force, not args.no_modelfile)
    for note in done.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    cfg = done.config
    size = done.path.stat().st_size / 2**20
    print(
        f"wrote {done.path} ({done.type}, {size:.1f} MiB: gpt2, {cfg.n_layer} layers, {cfg.n_embd} wide, "
        f"vocab {cfg.vocab_size}, context {cfg.block_size})"
    )
    if done.modelfile is not None:
        print(f"wrote {done.modelfile} (Ollama: ollama create NAME -f {done.modelfile})")
    return 0


if __name__ == "__main__":  # `python -m jai.cli.export` reports errors as `jai export` does
    from jai.cli import main as jai

    sys.exit(jai(["export", *sys.argv[1:]]))
