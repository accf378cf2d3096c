// Catch2 v2 entry point (the only file that defines CATCH_CONFIG_MAIN).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
