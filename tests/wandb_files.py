"""W&B's offline run files, read back: `run-<id>.wandb` decoded into W&B's own `Record` messages.

The file is W&B's transaction log: a 7-byte header (":W&B", the magic 0xBEE1, version 0), then
LevelDB's log format (32 KiB blocks of chunks, each a 7-byte header: CRC32-C, length, type; a record is
one FULL chunk or FIRST, MIDDLE..., LAST). wandb 0.31 reads it in its Go core only, so the framing is
unwrapped here and each record parsed by wandb's protobuf module, the schema `wandb sync` uploads.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[: len(HEADER)] == HEADER, f"{path}: not a W&B transaction log"
    out, pos, pending = [], len(HEADER), b""
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:  # a block's tail too short for a header is padding
            pos += left_in_block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if kind == 0 and length == 0:  # zero padding
            pos += left_in_block
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if len(chunk) < length:  # a torn tail (the process was killed mid-write)
            break
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def segments(run_dir: Path) -> list[dict[str, Any]]:
    """Each offline run folder under <run_dir>/wandb, oldest first: its run id, name, group, tags,
    config, and history rows ({"_step": step, key: value})."""
    out = []
    for folder in sorted((run_dir / "wandb").glob("offline-run-*")):
        (log,) = folder.glob("run-*.wandb")
        # the id is in the folder's name too: a segment killed before W&B flushed holds no run record
        segment: dict[str, Any] = {"folder": folder, "history": [], "config": {}, "exit": False}
        segment["id"] = folder.name.rsplit("-", 1)[1]
        for record in records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run = record.run
                assert run.run_id == segment["id"], folder
                segment |= {"name": run.display_name, "group": run.run_group}
                segment["tags"] = list(run.tags)
                segment["config"] |= {c.key: json.loads(c.value_json) for c in run.config.update}
            elif kind == "config":
                segment["config"] |= {c.key: json.loads(c.value_json) for c in record.config.update}
            elif kind == "history":
                row = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
                segment["history"].append(row)
            elif kind == "exit":
                segment["exit"] = True
        out.append(segment)
    return out
