"""The C API's header (csrc/rnnfast/rnnfast.h): its version is the package's, it is plain C (C99, pedantic, no
warnings; and valid C++), and every function it declares is defined by the library's C API layer (csrc/rnnfast/capi).
The API's behaviour is tested in tests/cpp/test_capi*.cpp and, against the Python layer, tests/system/test_capi.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import rnnfast

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "csrc" / "rnnfast" / "rnnfast.h"

if not HEADER.is_file():
    pytest.skip("needs a source checkout", allow_module_level=True)

TEXT = HEADER.read_text()


def test_the_version_macros_are_the_package_version():
    macros = dict(re.findall(r"#define RNNFAST_VERSION_(MAJOR|MINOR|PATCH) (\d+)", TEXT))
    string = re.search(r'#define RNNFAST_VERSION_STRING "([^"]+)"', TEXT).group(1)
    assert string == rnnfast.__version__ == f"{macros['MAJOR']}.{macros['MINOR']}.{macros['PATCH']}"


def declared_functions() -> list[str]:
    return re.findall(r"^RNNFAST_API [^(;]*?\b(rnnfast_\w+)\(", TEXT, re.MULTILINE)


def test_every_declared_function_is_defined():
    declared = declared_functions()
    assert len(declared) >= 19, declared  # the regular expression finds them all
    sources = "".join(p.read_text() for p in (ROOT / "csrc" / "rnnfast" / "capi").glob("*.cpp"))
    undefined = [f for f in declared if not re.search(rf"^\S[^;(]*\b{f}\([^;]*\)\s*{{", sources, re.MULTILINE)]
    assert not undefined, f"declared in rnnfast.h but not defined in csrc/rnnfast/capi: {undefined}"


@pytest.mark.parametrize("compiler, flags", [
    ("cc", ["-x", "c", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"]),
    ("c++", ["-x", "c++", "-std=c++11", "-pedantic", "-Wall", "-Wextra", "-Werror"]),
])
def test_the_header_compiles_alone(tmp_path, compiler, flags):
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler}")
    source = tmp_path / "use.c"
    source.write_text('#include "rnnfast/rnnfast.h"\n'
                      "int use(void) { rnnfast_config c; rnnfast_config_init(&c, RNNFAST_CELL_LSTM, 3, 4);\n"
                      "  return (int)c.struct_size + RNNFAST_VERSION_NUMBER; }\n")
    proc = subprocess.run([compiler, *flags, "-I", str(ROOT / "csrc"), "-c", str(source), "-o", str(tmp_path / "use.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
