#pragma once
// Run-time compilation of CUDA C++ with NVRTC, for a given architecture, into
// a cubin kept in an on-disk cache keyed by the source, the options, the
// name expression, the architecture and NVRTC's version. Needs no GPU and no
// CUDA context: the tuner compiles on worker threads while a GPU measures.
//
//   tunekit::cuda::nvrtc_compiler compiler("/tmp/cache");
//   auto variant = compiler.compile({.source = text, .name = "conv2d.cu",
//                                    .function = "conv2d<16, 4>", .architecture = "sm_90",
//                                    .defines = {{"TILE", "4"}}});
//   if (variant.ok) load(variant.cubin, variant.lowered_name);

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace tunekit::cuda {

struct nvrtc_request {
  std::string source;             ///< the CUDA C++ text
  std::string name = "kernel.cu"; ///< the source's name in messages
  /// The __global__ function, or a template name expression such as
  /// "conv2d<16, 4>": its lowered (mangled) name is what a module exports.
  std::string function;
  std::string architecture = "sm_90";  ///< a real architecture: the output is a cubin
  std::vector<std::pair<std::string, std::string>> defines = {};  ///< -DNAME=VALUE
  std::vector<std::string> options = {};  ///< more NVRTC options
  std::vector<std::filesystem::path> include_directories = {};
};

class nvrtc_compiler {
 public:
  /// Creates the cache folder when missing.
  explicit nvrtc_compiler(std::filesystem::path cache_directory);

  struct result {
    bool ok = false;
    std::filesystem::path cubin;  ///< in the cache, when ok
    std::string lowered_name;     ///< the function's name in the cubin, when ok
    std::string log;              ///< NVRTC's log (warnings too)
    double milliseconds = 0.0;    ///< 0 when taken from the cache
    bool cached = false;
  };

  /// Thread-safe: several threads may compile at once. A failure to compile
  /// is result.ok == false with the log, never an exception; NVRTC itself
  /// missing or broken throws tunekit::error.
  [[nodiscard]] result compile(const nvrtc_request& request) const;

  /// "NVRTC 13.0": part of the cache key and of a kernel's identity.
  [[nodiscard]] static std::string version();

 private:
  std::filesystem::path cache_;
};

}  // namespace tunekit::cuda
