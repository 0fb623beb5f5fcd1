# corpus/production: production KVM tracepoint captures and their imports (importer component).
# Included from corpus/CMakeLists.txt.
if(MSRTRACE_BUILD_TESTS)
  add_test(NAME production_captures_import_replay
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/production/check_production.sh
                   $<TARGET_FILE:msrtrace> ${CMAKE_CURRENT_SOURCE_DIR}/production
                   ${CMAKE_CURRENT_BINARY_DIR}/production)
  set_tests_properties(production_captures_import_replay PROPERTIES LABELS "e2e;corpus")
endif()
