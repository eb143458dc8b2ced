#pragma once
// The host backend: a C++ kernel compiled by the system compiler, with the
// tunable parameters as preprocessor defines, into a shared object that is
// loaded and run in a child process (a crash or a hang takes only the child),
// its outputs checked against the reference, then timed with the host clock.
// It runs the whole pipeline (spec -> compile -> run -> verify -> measure ->
// store) on machines without a GPU.
//
// The kernel and the reference take their arguments as one array of pointers,
// in the spec's order: a buffer's data, or a scalar's value.
//
//   extern "C" void matmul(void* const* args) {
//     const float* a = static_cast<const float*>(args[0]);
//     ...
//     const int n = *static_cast<const int*>(args[3]);
//   }

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tunekit/backend.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace tunekit::host {

/// Compiles sources into shared objects, caching them on disk by a hash of
/// the source text, the defines, the options and the compiler's version.
class compiler {
 public:
  /// `command` is the C++ compiler (default $CXX, else c++).
  explicit compiler(std::filesystem::path cache_directory, std::string command = {});

  struct result {
    bool ok = false;
    std::filesystem::path library;  ///< the shared object when ok
    std::string log;                ///< the compiler's output
    double milliseconds = 0.0;      ///< 0 when taken from the cache
    bool cached = false;
  };

  /// Thread-safe: several threads may compile at once.
  [[nodiscard]] result compile(const std::filesystem::path& source,
                               const std::vector<std::pair<std::string, std::string>>& defines,
                               const std::vector<std::string>& options) const;

  [[nodiscard]] const std::string& version() const { return version_; }

 private:
  std::filesystem::path cache_;
  std::string command_;
  std::string version_;
};

/// The parameters of configuration `index` as defines (name, value text).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> defines_of(const search_space& space, std::size_t index);

/// Compiles the reference (with the baseline's parameters) and runs it once
/// in a child process; returns its outputs, one per output argument in the
/// spec's order. Throws tunekit::spec_error when the reference does not
/// compile, crashes or hangs: without it nothing can be verified. The CUDA
/// backend checks its variants against this float64-capable host reference too.
[[nodiscard]] std::vector<std::vector<unsigned char>> reference_outputs(const kernel_spec& spec,
                                                                        const search_space& space,
                                                                        const compiler& host_compiler);

/// Writes configuration `index`'s inputs and the reference's outputs as
/// NumPy files in spec.dump_directory (NAME.npy, and NAME_reference.npy
/// alike): what a workload computes, without a GPU. Returns the files.
std::vector<std::filesystem::path> dump_reference(const kernel_spec& spec, const search_space& space, std::size_t index,
                                                  const compiler& host_compiler);

class backend final : public variant_backend {
 public:
  /// Compiles and runs the reference once (see reference_outputs()).
  backend(const kernel_spec& spec, const search_space& space, std::filesystem::path cache_directory);

  [[nodiscard]] device_identity identity() const override;
  [[nodiscard]] std::string compiler_version() const override { return compiler_.version(); }
  [[nodiscard]] std::string lane_name(std::size_t /*lane*/) const override { return "host"; }
  /// Variants asking for more threads than thread_limit() are `resources`.
  [[nodiscard]] compiled_variant compile(std::size_t index) const override;
  /// The most threads a variant may use: 4 x the hardware threads.
  [[nodiscard]] static double thread_limit();

 private:
  /// Runs in a child process (a crash is a device_fault, a hang a timeout),
  /// verifies, then times with the host clock.
  [[nodiscard]] variant_outcome do_run(std::size_t lane, const compiled_variant& variant) override;

  const kernel_spec& spec_;
  const search_space& space_;
  compiler compiler_;
  std::vector<std::vector<unsigned char>> reference_outputs_;  ///< one per output argument, in order
};

}  // namespace tunekit::host
