# CLI11 (header-only; Debian: libcli11-dev), the one target every program and test that parses
# flags links: ompml_cli11. Debian's package ships a CMake config; a site with only the header
# is found by its path.
find_package(CLI11 CONFIG QUIET)
add_library(ompml_cli11 INTERFACE)
if(TARGET CLI11::CLI11)
  target_link_libraries(ompml_cli11 INTERFACE CLI11::CLI11)
else()
  find_path(OMPML_CLI11_INCLUDE CLI/CLI.hpp REQUIRED)
  target_include_directories(ompml_cli11 SYSTEM INTERFACE ${OMPML_CLI11_INCLUDE})
endif()
