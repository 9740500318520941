# The wheels' toolchain (docs/design.md, "10. Wheels and toolchains"): zig's clang, targeting an old glibc
# (2.28: RHEL 8, Debian 10, Ubuntu 18.10 and later) with zig's libc++ linked statically, so that the module
# needs nothing newer than glibc 2.28 and no C++ runtime from the system; the manylinux_2_28 tag follows.
# zig is a compiler and a set of libc headers and stubs for each glibc version, so the same toolchain
# cross-builds the aarch64 wheel on x86-64. Usage (zig from PyPI: `pip install ziglang`):
#   cmake -B build -DCMAKE_TOOLCHAIN_FILE=cmake/zig-toolchain.cmake \
#         [-DRNNFAST_ZIG_TARGET=aarch64-linux-gnu.2.28] [-DRNNFAST_ZIG=/path/to/zig]
# or through scikit-build-core, as .ci/wheel does: -C cmake.define.CMAKE_TOOLCHAIN_FILE=... .
# The compiler is given as a list (zig, its subcommand, the target), which needs CMake 3.19.
cmake_minimum_required(VERSION 3.19)

set(RNNFAST_ZIG_TARGET "x86_64-linux-gnu.2.28" CACHE STRING "zig's target: <arch>-linux-gnu.<glibc version>")
# The zig executable: -DRNNFAST_ZIG, else $RNNFAST_ZIG, else zig on PATH, else the one in the PyPI package
# ziglang of the python3 on PATH.
if(NOT RNNFAST_ZIG AND DEFINED ENV{RNNFAST_ZIG})
  set(RNNFAST_ZIG "$ENV{RNNFAST_ZIG}")
endif()
if(NOT RNNFAST_ZIG)
  find_program(RNNFAST_ZIG_ON_PATH zig)
  if(RNNFAST_ZIG_ON_PATH)
    set(RNNFAST_ZIG "${RNNFAST_ZIG_ON_PATH}")
  else()
    execute_process(COMMAND python3 -c "import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), 'zig'))"
                    OUTPUT_VARIABLE RNNFAST_ZIG OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
endif()
if(NOT RNNFAST_ZIG OR NOT EXISTS "${RNNFAST_ZIG}")
  message(FATAL_ERROR "zig-toolchain.cmake: no zig found: pip install ziglang, or pass -DRNNFAST_ZIG=/path/to/zig")
endif()
set(RNNFAST_ZIG "${RNNFAST_ZIG}" CACHE FILEPATH "The zig executable" FORCE)
# try_compile projects (CMake's compiler checks, FindThreads) read this file again: give them the same zig.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES RNNFAST_ZIG RNNFAST_ZIG_TARGET)

string(REGEX MATCH "^[^-]+" rnnfast_zig_arch "${RNNFAST_ZIG_TARGET}")
if(NOT rnnfast_zig_arch STREQUAL CMAKE_HOST_SYSTEM_PROCESSOR)
  # Cross-building (CMakeLists.txt chooses the kernels' files by CMAKE_SYSTEM_PROCESSOR).
  set(CMAKE_SYSTEM_NAME Linux)
  set(CMAKE_SYSTEM_PROCESSOR "${rnnfast_zig_arch}")
endif()

# An explicit target also means zig's baseline CPU for that architecture (x86-64 without AVX, ARMv8-A),
# not the build machine's: the instruction-set flags stay on the per-ISA kernel files alone.
set(CMAKE_C_COMPILER "${RNNFAST_ZIG}" cc -target "${RNNFAST_ZIG_TARGET}")
set(CMAKE_CXX_COMPILER "${RNNFAST_ZIG}" c++ -target "${RNNFAST_ZIG_TARGET}")
# zig's llvm-ar and ranlib, which read objects of any architecture (the build machine's binutils may not).
foreach(lang C CXX)
  set(CMAKE_${lang}_ARCHIVE_CREATE "\"${RNNFAST_ZIG}\" ar qc <TARGET> <LINK_FLAGS> <OBJECTS>")
  set(CMAKE_${lang}_ARCHIVE_APPEND "\"${RNNFAST_ZIG}\" ar q <TARGET> <LINK_FLAGS> <OBJECTS>")
  set(CMAKE_${lang}_ARCHIVE_FINISH "\"${RNNFAST_ZIG}\" ranlib <TARGET>")
endforeach()
# The unwinder: the system's libgcc_s.so.1, linked dynamically, in place of the libunwind zig links
# statically with libc++. glibc unwinds a thread ended by pthread_exit with libgcc_s, and CPython (up to 3.13)
# ends its daemon threads so at exit, from inside the module's frames (taking the GIL back after a kernel):
# libc++abi's personality routine over zig's libunwind then reads libgcc_s's frame state as its own and jumps
# to garbage (a crash at exit: 1 in 40 runs of test_concurrency.py's fork test under load; a pthread_exit
# through a frame with a destructor crashes every time). Over libgcc_s it runs the destructors, as a g++ build
# does. libgcc_s.so.1 is on every glibc system (glibc loads it itself for pthread_exit), and the manylinux
# policies allow it (the symbols are GCC_3.0). For a cross build, pass the target's (-DRNNFAST_ZIG_LIBGCC_S).
if(rnnfast_zig_arch STREQUAL CMAKE_HOST_SYSTEM_PROCESSOR)
  set(rnnfast_zig_lib_dirs /lib/${rnnfast_zig_arch}-linux-gnu /usr/lib/${rnnfast_zig_arch}-linux-gnu /lib64 /usr/lib64)
else()  # Debian's cross-compilers' libraries (g++-aarch64-linux-gnu)
  set(rnnfast_zig_lib_dirs /usr/${rnnfast_zig_arch}-linux-gnu/lib)
endif()
find_file(RNNFAST_ZIG_LIBGCC_S libgcc_s.so.1 PATHS ${rnnfast_zig_lib_dirs} NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
if(NOT RNNFAST_ZIG_LIBGCC_S)
  message(FATAL_ERROR "zig-toolchain.cmake: no libgcc_s.so.1 for ${rnnfast_zig_arch} in ${rnnfast_zig_lib_dirs}: "
                      "pass -DRNNFAST_ZIG_LIBGCC_S=/path/to/libgcc_s.so.1")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES RNNFAST_ZIG_LIBGCC_S)

# The module exports its init function alone (cmake/python-module.map): the static libc++ and the kernels'
# archive stay inside. Without it their symbols would be exported, and another library of the process
# defining the same std::__1 names (a libc++ of another version) could interpose on them. (zig's linker
# takes no --exclude-libs.) MODULE libraries are the Python extension only.
set(CMAKE_MODULE_LINKER_FLAGS_INIT
    "\"${RNNFAST_ZIG_LIBGCC_S}\" -Wl,--version-script=${CMAKE_CURRENT_LIST_DIR}/python-module.map")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "\"${RNNFAST_ZIG_LIBGCC_S}\"")
# Not for programs: linking one checks the libraries' own needs, and the build machine's libgcc_s may need a
# newer glibc than the target's (Debian 12's needs 2.35); a shared library or module uses the one of the
# system it runs on.
