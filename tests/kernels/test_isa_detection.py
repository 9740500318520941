"""The instruction sets the kernels find at run time are the ones the CPU has, as Linux reports them in
/proc/cpuinfo (which lists a feature only where the kernel also saves its registers' state).

Every other kernel test runs on the instruction sets the module reports available, so a detection that
finds too little passes them all on the portable kernels alone, only slower: the wheels' toolchain's
compiler-rt (zig) answers no to every __builtin_cpu_supports, which is how this was found."""

from __future__ import annotations

import platform
import sys

import pytest

import rnnfast
from rnnfast import _core

from helpers.reduced import on_isa

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")),
    reason="reads x86-64 feature flags from Linux's /proc/cpuinfo")


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    pytest.skip("no flags line in /proc/cpuinfo")


def test_available_instruction_sets_are_the_cpus():
    flags = cpu_flags()
    avx2 = {"avx2", "fma"} <= flags
    expected = ["generic"] + (["avx2"] if avx2 else []) + (["avx512"] if avx2 and "avx512f" in flags else [])
    assert _core.testing.available_isas() == expected


@pytest.mark.parametrize("weight_dtype", ["int8", "bf16"])
def test_reduced_precision_paths_are_the_cpus(weight_dtype):
    """On the widest instruction set, with the extensions on, the int8 and bf16 products take the path the
    CPU's AVX-512 extensions allow (VNNI, BF16; BW for any AVX-512 path)."""
    flags = cpu_flags()
    widest = _core.testing.available_isas()[-1]
    if widest != "avx512":
        expected = widest
    elif "avx512bw" not in flags:
        expected = "avx2"
    elif weight_dtype == "int8":
        expected = "avx512_vnni" if "avx512_vnni" in flags else "avx512"
    else:
        expected = "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    with on_isa(widest, True):
        assert rnnfast.isa(weight_dtype) == expected
