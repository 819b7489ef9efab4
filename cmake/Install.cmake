# `cmake --install` exports a CMake package: find_package(largedet CONFIG) and link largedet::largedet.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(DIRECTORY include/largedet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ${LARGEDET_LAYERS} largedet EXPORT largedetTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS largedet_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS largedet_torch_cli RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR})
install(EXPORT largedetTargets NAMESPACE largedet::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/largedet)
configure_package_config_file(cmake/largedetConfig.cmake.in
  "${PROJECT_BINARY_DIR}/largedetConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/largedet)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/largedetConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/largedetConfig.cmake"
              "${PROJECT_BINARY_DIR}/largedetConfigVersion.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/largedet)
