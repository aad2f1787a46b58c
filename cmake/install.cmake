# cmake --install: the library, its public headers, the ddpm CLI (installed by
# src/cli) and a package config so that find_package(ddpm) works.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS ddpm EXPORT ddpmTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/ddpm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ddpmTargets NAMESPACE ddpm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ddpm)

configure_package_config_file(cmake/ddpmConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ddpmConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ddpm)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ddpmConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ddpmConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ddpmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ddpm)
