#pragma once
// Recorded search spaces, for developing and scoring strategies without a
// GPU: Kernel Tuner's cache files (.json or .json.gz). The replayed space is
// exactly the set of recorded configurations.

#include <filesystem>
#include <string>
#include <vector>

#include "tunekit/evaluation.hpp"
#include "tunekit/search_space.hpp"

namespace tunekit {

/// What was recorded for one configuration; times in the file's unit (ms).
struct recorded_result {
  evaluation_status status = evaluation_status::ok;
  double time = 0.0;               ///< objective when status is ok
  double compile_time = 0.0;       ///< what evaluating it cost, charged to time budgets
  double verification_time = 0.0;
  double benchmark_time = 0.0;

  [[nodiscard]] double cost() const { return compile_time + verification_time + benchmark_time; }
};

struct recorded_space {
  std::string device_name;
  std::string kernel_name;
  std::string objective;
  search_space space;
  std::vector<recorded_result> results;  ///< results[i] belongs to space index i
};

/// Reads a Kernel Tuner cache file. Throws tunekit::invalid_argument with a
/// one-line reason for an unreadable, corrupt or foreign file.
[[nodiscard]] recorded_space load_kernel_tuner_cache(const std::filesystem::path& path);

}  // namespace tunekit
