# Cross-compiling for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu; the programs it builds run
# on x86-64 under qemu-aarch64 (package qemu-user). Usage:
#   cmake -B build-arm -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DRNNFAST_BUILD_PYTHON=OFF -DRNNFAST_BUILD_TESTS=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Static executables run under qemu-aarch64 without a sysroot (-L) argument.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# ctest runs the tests through qemu.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
