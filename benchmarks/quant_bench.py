"""`jai bench`'s quantization part: the float model, 8-bit and 4-bit side by side, per twin and device.

For each: the weight file's size, decode tokens/s at batch 1 and 8 with the peak memory of that job
(the allocator's on MLX and CUDA, the process's RSS for PyTorch on the CPU), and validation perplexity.
The quantized files are written once by `jai quantize`'s own code (NumPy, in this process); every timing
runs in its own worker process through the ordinary `infer` job, so the three models are timed by the
same code. Perplexity is measured in one process per twin: `python -m jai.benchmarks.quant_bench
SPEC.json OUT.json`.

Perplexity means something only for a trained model on its own validation tokens: give `--quant-ckpt`
(e.g. out/run/ckpt) and `--data` (its prepared data dir, for val.bin). Without them the part runs on the
run's untrained starting weights and random tokens, and the report says so.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jai.benchmarks.plan import TWINS, Job, Settings
from jai.checkpoint.folder import open_config
from jai.checkpoint.quant import QuantSpec
from jai.checkpoint.quant_file import quantize_checkpoint
from jai.checkpoint.weights import WEIGHTS_FILE

MODELS = {"float": None, "8-bit": QuantSpec(8), "4-bit": QuantSpec(4)}
BATCHES = (1, 8)
PPL_WINDOWS = 32  # context-length windows of validation tokens per perplexity figure
ROOT = Path(__file__).resolve().parents[1]


def val_tokens(data: str | None, vocab: int, n: int, seed: int) -> tuple[np.ndarray, str]:
    """Validation tokens from a prepared data dir (val.bin), or seeded random ones; and their source."""
    if data and (Path(data) / "val.bin").is_file():
        tokens = np.fromfile(Path(data) / "val.bin", dtype=np.uint16)
        if tokens.size > n and int(tokens.max()) < vocab:
            return tokens[:n], str(Path(data) / "val.bin")
    return np.random.default_rng(seed).integers(0, vocab, n).astype(np.uint16), "random tokens (seeded)"


def run(
    base: str,
    data: str | None,
    devices: dict[str, list[str]],
    settings: Settings,
    seed: int,
    work: Path,
    run_job: Callable[..., dict[str, Any]],
    env: dict[str, str],
) -> dict[str, Any]:
    """Quantize `base`, then time and score the three models on every twin and device; the results."""
    cfg = open_config(base)
    ckpts = {"float": base}
    for name, spec in MODELS.items():
        if spec is not None:
            target = work / "quant" / name
            if not target.exists():
                quantize_checkpoint(base, target, spec)
            ckpts[name] = str(target)
    n_val = PPL_WINDOWS * cfg.block_size + 1
    tokens, source = val_tokens(data, cfg.vocab_size, n_val, seed)
    val_path = work / "quant" / "val.npy"
    np.save(val_path, tokens)
    prompt = min(settings.prompt_len, cfg.block_size - settings.new_tokens)
    out: dict[str, Any] = {
        "checkpoint": base,
        "val": source,
        "file_bytes": {name: (Path(c) / WEIGHTS_FILE).stat().st_size for name, c in ckpts.items()},
        "rows": [],
    }
    jobs = sum(len(devs) for devs in devices.values()) * len(MODELS) * len(BATCHES)
    bar = tqdm(total=jobs * settings.repeats, desc="jai bench: quantization", unit="step", disable=None)
    for fw, devs in devices.items():
        for dev in devs:
            ppl = perplexity(fw, dev, ckpts, val_path, cfg.block_size, work, env)
            for name, ckpt in ckpts.items():
                row: dict[str, Any] = {"twin": TWINS[fw], "device": dev, "model": name, **ppl.get(name, {})}
                for b in BATCHES:
                    spec = {
                        "job": "infer",
                        "runner": TWINS[fw],
                        "config": cfg.__dict__.copy(),
                        "batch": b,
                        "device": dev,
                        "dtype": "float32",
                        "ckpt": ckpt,
                        "prompt_len": prompt,
                        "new_tokens": settings.new_tokens,
                        "repeats": settings.repeats,
                        "seed": seed,
                    }
                    res = run_job(
                        Job(f"quant {name} {TWINS[fw]} b{b} {dev}", spec, settings.repeats), work, bar, env
                    )
                    if res.get("ok"):
                        r = res["result"]
                        row[f"decode_b{b}"] = r["decode_tokens_per_s"]["median"]
                        row[f"peak_b{b}"] = r.get("peak_bytes") or res.get("rss_peak_bytes")
                    else:
                        row.setdefault("errors", []).append(f"b{b}: {res.get('error')}")
                out["rows"].append(row)
    bar.close()
    return out


def perplexity(
    fw: str, dev: str, ckpts: dict[str, str], val: Path, block: int, work: Path, env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """{model: {"val_loss", "val_ppl"}} from one worker process of twin `fw` on `dev`."""
    spec_path, out_path = work / f"quant-ppl-{fw}-{dev}.json", work / f"quant-ppl-{fw}-{dev}.out.json"
    spec_path.write_text(
        json.dumps({"framework": fw, "device": dev, "ckpts": ckpts, "val": str(val), "block": block})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "jai.benchmarks.quant_bench", str(spec_path), str(out_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode or not out_path.is_file():
        error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {name: {"errors": [f"perplexity: {error}"]} for name in ckpts}
    return json.loads(out_path.read_text())


def _losses(spec: dict[str, Any]) -> dict[str, dict[str, float]]:
    """In the worker: mean next-token loss of each checkpoint over the same validation windows."""
    tokens = np.load(spec["val"]).astype(np.int64)
    block = spec["block"]
    n = (len(tokens) - 1) // block
    idx = np.arange(n)[:, None] * block + np.arange(block + 1)[None, :]
    windows = tokens[idx]
    out = {}
    for name, ckpt in spec["ckpts"].items():
        if spec["framework"] == "mlx":
            # jai_mlx first: it loads its fast BLAS before anything imports mlx.core
            from jai_mlx.checkpoint import load_model  # noqa: I001
            from jai_mlx.model import cross_entropy
            import mlx.core as mx

            mx.set_default_device(mx.gpu if spec["device"] == "gpu" else mx.cpu)
            model = load_model(ckpt, mx.float32)
            loss = sum(
                float(cross_entropy(model(mx.array(w[None, :-1])), mx.array(w[None, 1:]))) for w in windows
            )
        else:
            import torch

            from jai_torch.checkpoint import load_model
            from jai_torch.model import cross_entropy

            model = load_model(ckpt, device=spec["device"], dtype=torch.float32)
            with torch.inference_mode():
                t = torch.from_numpy(windows).to(spec["device"])
                loss = sum(float(cross_entropy(model(t[i : i + 1, :-1]), t[i : i + 1, 1:])) for i in range(n))
        out[name] = {"val_loss": loss / n, "val_ppl": math.exp(loss / n)}
    return out


def render(quant: dict[str, Any] | None) -> str:
    """The report's section (markdown), or "" when the part did not run."""
    if not quant:
        return ""
    mib = quant["file_bytes"]
    L = [
        "",
        "## Quantization: float, 8-bit and 4-bit",
        "",
        f"`jai quantize` (mlx-lm's affine format, groups of 64) of `{quant['checkpoint']}`; perplexity on "
        f"{quant['val']}. Decode: greedy tokens/s after the first token (median). Peak memory: the "
        "allocator's peak on MLX and CUDA; the whole process's RSS for PyTorch on the CPU (interpreter and "
        "framework included, so differences between models are what to read).",
        "",
        "| twin | device | model | file MiB | decode tok/s b1 | decode tok/s b8 | peak MiB b1 | peak MiB b8 "
        "| val ppl | vs float |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(r["twin"], r["device"]): r.get("val_ppl") for r in quant["rows"] if r["model"] == "float"}
    for r in quant["rows"]:
        ref, ppl = base.get((r["twin"], r["device"])), r.get("val_ppl")
        rise = f"{100 * (ppl / ref - 1):+.2f}%" if ppl and ref else "–"
        cells = [
            r["twin"],
            r["device"],
            r["model"],
            f"{mib[r['model']] / 2**20:.1f}",
            *(f"{r[k]:,.0f}" if r.get(k) else "–" for k in ("decode_b1", "decode_b8")),
            *(f"{r[k] / 2**20:,.0f}" if r.get(k) else "–" for k in ("peak_b1", "peak_b8")),
            f"{ppl:.3f}" if ppl else "–",
            rise,
        ]
        L.append("| " + " | ".join(cells) + " |")
    for r in quant["rows"]:
        for e in r.get("errors", []):
            L.append(f"\n> {r['twin']} {r['device']} {r['model']}: {e}")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    spec_path, out_path = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(_losses(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
