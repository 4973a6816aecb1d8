"""jai.devices.native_bf16_cpu: the CPU flags that say bfloat16 is native, read from a cpuinfo file."""

from __future__ import annotations

from pathlib import Path

import pytest

from jai.devices import native_bf16_cpu

ZEN5 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"
SAPPHIRE = "flags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n"


def _cpuinfo(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_avx512_bf16_and_amx_are_native(tmp_path: Path) -> None:
    assert native_bf16_cpu(_cpuinfo(tmp_path, ZEN5))
    assert native_bf16_cpu(_cpuinfo(tmp_path, SAPPHIRE))


def test_a_cpu_without_the_flags_is_not(tmp_path: Path) -> None:
    assert not native_bf16_cpu(_cpuinfo(tmp_path, ZEN3))
    # a flag's name inside another line (the model name) does not count
    assert not native_bf16_cpu(_cpuinfo(tmp_path, "model name\t: avx512_bf16 lookalike\nflags\t: sse2\n"))


def test_no_cpuinfo_is_not_native(tmp_path: Path) -> None:
    assert not native_bf16_cpu(str(tmp_path / "missing"))


def test_this_machine_agrees_with_its_own_flags() -> None:
    """On Linux the answer is the flags line's; elsewhere (no /proc/cpuinfo) False."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        assert not native_bf16_cpu()
        return
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    assert native_bf16_cpu() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_agrees_with_pytorchs_own_detection() -> None:
    """PyTorch reads the CPU itself (cpuinfo's CPUID): the same answer as the flags on this machine."""
    torch = pytest.importorskip("torch")
    if not Path("/proc/cpuinfo").is_file():
        pytest.skip("no /proc/cpuinfo here")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16_cpu() == native
