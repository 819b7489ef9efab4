# ccache, with the sloppiness that lets it cache sources built with a precompiled header.
find_program(LARGEDET_CCACHE ccache)
if(LARGEDET_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # BASEDIR makes paths relative, so clones in other folders (CI) hit the same cache entries.
  set(_ccache_env CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
                  CCACHE_BASEDIR=${PROJECT_SOURCE_DIR})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env ${_ccache_env} ${LARGEDET_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env ${_ccache_env} ${LARGEDET_CCACHE})
endif()
