# cmake --install into a scratch prefix, then build and run a consumer that
# finds the package with find_package(ddpm).
add_test(NAME Install.FindPackageConsumerBuildsAndRuns
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR}
    -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install-test
    -DGENERATOR=${CMAKE_GENERATOR}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/install_test_steps.cmake)
set_tests_properties(Install.FindPackageConsumerBuildsAndRuns PROPERTIES LABELS install TIMEOUT 600)

# The same consumer with ddpm as a subdirectory (CPU backend only, to keep it quick).
add_test(NAME Install.AddSubdirectoryConsumerBuildsAndRuns
  COMMAND ${CMAKE_COMMAND}
    -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer
    -DDDPM_SOURCE_DIR=${PROJECT_SOURCE_DIR}
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/subdirectory-test
    -DGENERATOR=${CMAKE_GENERATOR}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/install_test_steps.cmake)
set_tests_properties(Install.AddSubdirectoryConsumerBuildsAndRuns PROPERTIES LABELS install TIMEOUT 900)
