"""In-memory conversion between the twins, through the shared format's tensors (names and file layout).

`mlx_to_torch` and `torch_to_mlx` hand a model to the other framework without touching the disk and
without changing a single bit, bf16 included. The path is the checkpoint contract itself: each twin's
`to_contract` gives the tensors under the file's names in the file's layout (the four Conv1D matrices as
[in, out]), the other twin's `from_contract` takes them back to its own layout. bf16 has no NumPy dtype,
so its bits cross as 16-bit integers and are reinterpreted on the other side; nothing is ever rounded.

On disk nothing is needed: both twins save and load the same checkpoint directory.

Each function imports its frameworks when called, so `import convert.twins` loads neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import jai_mlx.model
    import jai_torch.model


def mlx_to_torch(model: jai_mlx.model.GPT) -> jai_torch.model.GPT:
    """A jai_torch GPT (on the CPU) holding exactly the MLX model's weights, dtype for dtype."""
    import mlx.core as mx
    import numpy as np
    import torch

    from jai_mlx.checkpoint import to_contract
    from jai_torch.checkpoint import from_contract
    from jai_torch.model import GPT

    tensors = {}
    for name, a in to_contract(model).items():
        if a.dtype == mx.bfloat16:
            tensors[name] = torch.from_numpy(np.array(a.view(mx.int16))).view(torch.bfloat16)
        else:
            tensors[name] = torch.from_numpy(np.array(a))
    out = GPT(model.config)
    # assign=True keeps each tensor (and so its dtype) instead of copying it into the fp32 init.
    out.load_state_dict(from_contract(tensors), strict=True, assign=True)
    return out.train(model.training)


def torch_to_mlx(model: jai_torch.model.GPT) -> jai_mlx.model.GPT:
    """A jai_mlx GPT holding exactly the PyTorch model's weights, dtype for dtype (from any device)."""
    import mlx.core as mx
    import torch

    from jai_mlx.checkpoint import from_contract
    from jai_mlx.model import GPT
    from jai_torch.checkpoint import to_contract

    tensors = {}
    for name, t in to_contract(model).items():  # detached, contiguous, on the CPU
        if t.dtype == torch.bfloat16:
            tensors[name] = mx.array(t.view(torch.int16).numpy()).view(mx.bfloat16)
        else:
            tensors[name] = mx.array(t.numpy())
    out = GPT(model.config)
    out.load_weights(list(from_contract(tensors).items()), strict=True)
    mx.eval(out.parameters())
    out.train(model.training)
    return out
