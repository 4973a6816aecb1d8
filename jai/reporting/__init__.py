"""Run reporting: what metrics.jsonl holds, shown in TensorBoard or W&B as a run trains, and `jai plot`'s
figures and tables of finished runs. The training loop never imports this: `jai train` hands a reporter
to the loop, which passes it every record it writes (jai/training/metrics_log.py)."""
