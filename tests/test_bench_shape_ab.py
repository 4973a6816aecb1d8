"""`python -m jai.benchmarks.shape_ab`, run small: real training steps of two shapes in alternating rounds."""

import json

import pytest

from jai.benchmarks import shape_ab


def test_shapes_are_timed_against_the_first(capsys):
    argv = ["--shapes", "1x2x64,2x2x32@0.5", "--vocab", "300", "--context", "16", "--batch", "2"]
    assert shape_ab.main([*argv, "--rounds", "2", "--warmup", "1", "--steps", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["speed_vs_first"]["1x2x64"]["samples"] == [1.0, 1.0]
    assert len(out["speed_vs_first"]["2x2x32@0.5"]["samples"]) == 2
    assert all(v > 0 for v in out["tokens_per_s"].values())
    assert len(out["loadavg"]) == 2


@pytest.mark.parametrize("text", ["3x3", "3x3x192@0", "3x3x192@1.5", "axbxc"])
def test_a_malformed_shape_is_named(text):
    with pytest.raises(SystemExit, match=text.replace(".", r"\.")):
        shape_ab.parse_shape(text)


def test_a_share_keeps_the_reference_shape():
    cfg, kept = shape_ab.parse_shape("3x3x192@0.55")
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, kept) == (3, 3, 192, 0.55)
