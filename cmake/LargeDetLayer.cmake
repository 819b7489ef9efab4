# largedet_add_layer(NAME [NO_TORCH] [DEPENDS layer...] [LIBS target...])
# One static library per layer, from src/NAME/**/*.cpp (every subdirectory: modeling/ is laid out
# by concept) and src/NAME/cuda/*.cu when CUDA is on (and then in largedet_cuda_check, below).
# Layers only link the layers below them, so a broken layer never breaks the ones it does not use.
# NO_TORCH layers (core, evaluation) neither link LibTorch nor see its headers, so that the
# `largedet` front (tools/front_main.cpp) runs their commands without loading it: a Torch include
# there is a compile error.
set(LARGEDET_LAYERS "")
set(LARGEDET_TORCH_FREE_LAYERS "")
function(largedet_add_layer name)
  cmake_parse_arguments(ARG "NO_TORCH" "" "DEPENDS;LIBS" ${ARGN})
  file(GLOB_RECURSE _sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/*.cpp")
  if(LARGEDET_WITH_CUDA)
    file(GLOB _kernels CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/cuda/*.cu")
    list(APPEND _sources ${_kernels})
  endif()
  if(NOT _sources)
    message(STATUS "LargeDet: layer '${name}' has no sources yet, skipped")
    return()
  endif()
  set(target largedet_${name})
  add_library(${target} STATIC ${_sources})
  add_library(largedet::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  foreach(dep ${ARG_DEPENDS})
    if(TARGET largedet_${dep})
      target_link_libraries(${target} PUBLIC largedet_${dep})
    endif()
  endforeach()
  target_link_libraries(${target} PUBLIC ${ARG_LIBS})
  if(ARG_NO_TORCH)
    set(LARGEDET_TORCH_FREE_LAYERS ${LARGEDET_TORCH_FREE_LAYERS} ${name} PARENT_SCOPE)
  else()
    target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
    largedet_use_pch(${target})
  endif()
  largedet_use_unity(${target})
  if(LARGEDET_WITH_CUDA)
    target_compile_definitions(${target} PUBLIC LARGEDET_WITH_CUDA=1)
  endif()
  largedet_cuda_check(${target} ${_sources})
  set(LARGEDET_LAYERS ${LARGEDET_LAYERS} ${target} PARENT_SCOPE)
endfunction()

# largedet_cuda_check(TARGET SOURCES...): with CUDA on, adds to the target largedet_cuda_check
# (`make check-cuda`) the compile, and only the compile, of what CUDA changes among TARGET's
# SOURCES: its .cu files and the sources that test LARGEDET_WITH_CUDA.
function(largedet_cuda_check target)
  if(NOT LARGEDET_WITH_CUDA)
    return()
  endif()
  set(_checked "")
  foreach(_source ${ARGN})
    file(STRINGS "${_source}" _uses_cuda REGEX "LARGEDET_WITH_CUDA" LIMIT_COUNT 1)
    if(_source MATCHES "\\.cu$" OR _uses_cuda)
      list(APPEND _checked "${_source}")
    endif()
  endforeach()
  if(NOT _checked)
    return()
  endif()
  # TARGET's own compile settings, read through generator expressions so that compiling these
  # waits for nothing else to build.
  add_library(${target}_cuda_check OBJECT EXCLUDE_FROM_ALL ${_checked})
  foreach(_property INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS)
    set_property(TARGET ${target}_cuda_check PROPERTY ${_property}
                 "$<TARGET_PROPERTY:${target},${_property}>")
  endforeach()
  if(NOT TARGET largedet_cuda_check)
    add_custom_target(largedet_cuda_check)
  endif()
  add_dependencies(largedet_cuda_check ${target}_cuda_check)
endfunction()

# LARGEDET_UNITY (CMakeLists.txt): batches of LARGEDET_UNITY_BATCH sources per compile. The .cu
# files are never batched (CMake's unity builds cover C and C++ only).
function(largedet_use_unity target)
  if(LARGEDET_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON
                                               UNITY_BUILD_BATCH_SIZE ${LARGEDET_UNITY_BATCH})
  endif()
endfunction()

# The Torch headers cost ~15 s per source: every Torch-heavy target shares one precompiled header.
function(largedet_use_pch target)
  if(NOT LARGEDET_PCH)
    return()
  endif()
  if(NOT TARGET largedet_pch)
    add_library(largedet_pch OBJECT "${PROJECT_SOURCE_DIR}/cmake/pch.cpp")
    target_link_libraries(largedet_pch PRIVATE ${TORCH_LIBRARIES})
    target_precompile_headers(largedet_pch PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:${PROJECT_SOURCE_DIR}/cmake/pch.h>")
  endif()
  target_precompile_headers(${target} REUSE_FROM largedet_pch)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    # The header was compiled with -fPIC; -fPIE would make GCC ignore it.
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()
