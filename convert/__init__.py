"""Moving weights in and out of JAI: between the twins, from Hugging Face GPT-2, to and from nanoGPT.

Importing this package loads no framework: each module imports mlx or torch inside the functions that
need it, so `jai convert from-hf` runs without either.

    convert.twins    MLX model <-> PyTorch model in memory, bit-exact (fp32, bf16, fp16)
    convert.hf       Hugging Face GPT-2 directory -> JAI checkpoint (numpy + safetensors only)
    convert.mlxlm    what mlx-lm saves for a GPT-2 (plain or quantized) -> JAI checkpoint (NumPy only)
    convert.nanogpt  nanoGPT ckpt.pt <-> JAI checkpoint, and plain PyTorch state dicts (needs torch)
    jai.convert.cli  the `jai convert` command
"""

from __future__ import annotations

from jai.errors import InputError


class ConversionError(InputError):
    """An input that cannot be converted; the message names the file and says why, on one line."""
