# The C API (included by CMakeLists.txt when RNNFAST_BUILD_C_API is on): the library `rnnfast`, its
# install rules, the CMake package (find_package(rnnfast CONFIG) -> rnnfast::rnnfast) and rnnfast.pc.
#
# rnnfast_model: the model layer and the extern "C" functions as objects, which both the library and the
# C++ tests (which also test the model layer's internals) link. rnnfast: those objects over the kernels;
# shared (BUILD_SHARED_LIBS=ON) it exports the rnnfast_* functions only (cmake/rnnfast.map), static it
# needs the kernels' archive, installed beside it as rnnfast::kernels (also the C++ interface's library).

# The header must state the version the package has (one version for the Python package and the C API).
file(STRINGS "${CMAKE_CURRENT_SOURCE_DIR}/csrc/rnnfast/rnnfast.h" header_version REGEX "#define RNNFAST_VERSION_STRING ")
if(NOT header_version MATCHES "\"${PROJECT_VERSION}\"")
  message(FATAL_ERROR "csrc/rnnfast/rnnfast.h states ${header_version}, but the package's version is ${PROJECT_VERSION}: "
                      "update RNNFAST_VERSION_* in the header")
endif()

add_library(rnnfast_model OBJECT
    csrc/rnnfast/model/sha256.cpp csrc/rnnfast/model/zip_reader.cpp csrc/rnnfast/model/npy.cpp
    csrc/rnnfast/model/json.cpp csrc/rnnfast/model/config.cpp csrc/rnnfast/model/meta.cpp
    csrc/rnnfast/model/model.cpp csrc/rnnfast/model/model_forward.cpp csrc/rnnfast/model/model_file.cpp
    csrc/rnnfast/model/model_stepper.cpp
    csrc/rnnfast/capi/errors.cpp csrc/rnnfast/capi/capi_model.cpp csrc/rnnfast/capi/capi_stepper.cpp
    csrc/rnnfast/capi/capi_library.cpp)
target_link_libraries(rnnfast_model PUBLIC rnnfast_kernels)
set_target_properties(rnnfast_model PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_compile_options(rnnfast_model PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra>)

add_library(rnnfast $<TARGET_OBJECTS:rnnfast_model>)
add_library(rnnfast::rnnfast ALIAS rnnfast)
target_link_libraries(rnnfast PRIVATE rnnfast_kernels)
target_include_directories(rnnfast PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/csrc>
                                          $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(rnnfast PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
get_target_property(rnnfast_type rnnfast TYPE)
if(rnnfast_type STREQUAL "SHARED_LIBRARY" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  # Only the C API is exported: the kernels' and the model layer's C++ symbols stay inside.
  target_link_options(rnnfast PRIVATE "LINKER:--version-script=${CMAKE_CURRENT_SOURCE_DIR}/cmake/rnnfast.map")
  set_property(TARGET rnnfast APPEND PROPERTY LINK_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/cmake/rnnfast.map")
endif()
set_target_properties(rnnfast_kernels PROPERTIES EXPORT_NAME kernels)

# Installing: cmake --install <build> [--prefix <prefix>]. Not in a wheel (the option is off under SKBUILD).
include(CMakePackageConfigHelpers)
set(RNNFAST_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/rnnfast")
install(TARGETS rnnfast rnnfast_kernels EXPORT rnnfast-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The C API's header, and the kernel library's C++ interface (rnnfast/rnnfast.hpp and what it includes);
# not the kernels' own sources nor the C API's internals.
install(FILES csrc/rnnfast/rnnfast.h csrc/rnnfast/rnnfast.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rnnfast)
install(DIRECTORY csrc/rnnfast/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rnnfast FILES_MATCHING PATTERN "*.h"
        PATTERN "kernels" EXCLUDE PATTERN "model" EXCLUDE PATTERN "capi" EXCLUDE)
install(EXPORT rnnfast-targets NAMESPACE rnnfast:: DESTINATION ${RNNFAST_CMAKE_DIR})
configure_package_config_file(cmake/rnnfast-config.cmake.in "${CMAKE_CURRENT_BINARY_DIR}/rnnfast-config.cmake"
                              INSTALL_DESTINATION ${RNNFAST_CMAKE_DIR})
# 0.x: a new minor version may change the API, so only the same major and minor version is compatible.
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/rnnfast-config-version.cmake"
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/rnnfast-config.cmake" "${CMAKE_CURRENT_BINARY_DIR}/rnnfast-config-version.cmake"
        DESTINATION ${RNNFAST_CMAKE_DIR})
# pkg-config: a static library names what it needs beyond itself (the kernels' archive, the C++ runtime,
# threads) in Libs; a shared one carries them.
if(rnnfast_type STREQUAL "STATIC_LIBRARY")
  set(RNNFAST_PC_LIBS "-lrnnfast -lrnnfast_kernels -lstdc++ -lm -pthread")
else()
  set(RNNFAST_PC_LIBS "-lrnnfast")
endif()
# Relocatable: the prefix is found from where the file is (pkg-config's pcfiledir), so that
# `cmake --install --prefix` anywhere gives a working file.
file(RELATIVE_PATH RNNFAST_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(cmake/rnnfast.pc.in "${CMAKE_CURRENT_BINARY_DIR}/rnnfast.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/rnnfast.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
