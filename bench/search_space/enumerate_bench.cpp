// Enumeration figure: a GEMM-like space of ~10^8 combinations with ~10^6
// valid configurations, enumerated with constraints on one core.
//   build/bench/tunekit_enumerate_bench [--json]
#include <chrono>
#include <cstdio>
#include <cstring>

#include "tunekit/search_space.hpp"

namespace {
std::vector<tunekit::parameter_value> integers(std::initializer_list<std::int64_t> values) {
  return {values.begin(), values.end()};
}
}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  tunekit::space_definition definition;
  definition.parameters = {
      {"MWG", integers({16, 32, 64, 128, 256})},      {"NWG", integers({16, 32, 64, 128, 256})},
      {"KWG", integers({8, 16, 32, 64})},             {"MDIMC", integers({8, 16, 32})},
      {"NDIMC", integers({8, 16, 32})},               {"MDIMA", integers({8, 16, 32})},
      {"NDIMB", integers({8, 16, 32})},               {"KWI", integers({1, 2, 4, 8})},
      {"VWM", integers({1, 2, 4, 8})},                {"VWN", integers({1, 2, 4, 8})},
      {"STRM", integers({0, 1})},                     {"SA", integers({0, 1})},
      {"SB", integers({0, 1})},                       {"STRN", integers({0, 1})},
      {"KREG", integers({1, 2, 4, 8, 16})},           {"PAD", integers({0, 1, 2})}};
  definition.constraints = {
      "KWG % KWI == 0",
      "MWG % (MDIMC*VWM) == 0",
      "NWG % (NDIMC*VWN) == 0",
      "MWG % (MDIMA*VWM) == 0",
      "NWG % (NDIMB*VWN) == 0",
      "KWG % ((MDIMC*NDIMC)/MDIMA) == 0",
      "KWG % ((MDIMC*NDIMC)/NDIMB) == 0",
      "MDIMC*NDIMC <= 256",
      "KREG <= KWI && (KREG == 1 || STRN == 0)",
      "PAD <= SA + SB",
      "MWG*NWG <= 8192",
      "(SA*KWG*MWG + SB*KWG*NWG)*4 <= 49152"};
  const auto start = std::chrono::steady_clock::now();
  const auto space = tunekit::search_space::enumerate(definition);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double bytes = static_cast<double>(space.size()) * sizeof(std::uint64_t);
  if (json)
    std::printf("{\"combinations\": %.0f, \"valid\": %zu, \"seconds\": %.3f, \"index_bytes\": %.0f}\n",
                space.cartesian_size(), space.size(), seconds, bytes);
  else
    std::printf("%.3g combinations, %zu valid, enumerated in %.3f s on one core; index %.1f MB (8 B per valid)\n",
                space.cartesian_size(), space.size(), seconds, bytes / 1e6);
  return 0;
}
