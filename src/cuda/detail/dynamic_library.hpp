#pragma once
// Internal: a C library opened with dlopen and functions bound from it, so
// binaries start where the library (NVML, cuBLAS) is missing. The library
// stays loaded for the life of the process.

#include <dlfcn.h>

#include <string>
#include <type_traits>
#include <vector>

namespace tunekit::cuda::detail {

class dynamic_library {
 public:
  /// Opens the first of `names` that loads; loaded() says whether one did.
  explicit dynamic_library(const std::vector<std::string>& names) {
    for (const auto& name : names)
      if ((handle_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  }

  [[nodiscard]] bool loaded() const { return handle_ != nullptr; }
  /// False once a bind() found neither its name nor its fallback.
  [[nodiscard]] bool complete() const { return complete_; }

  /// Points `function` at the symbol `name` (else `fallback`), or null.
  template <typename Function>
  void bind(Function& function, const char* name, const char* fallback = nullptr) {
    static_assert(std::is_pointer_v<Function>);
    void* symbol = handle_ != nullptr ? dlsym(handle_, name) : nullptr;
    if (symbol == nullptr && fallback != nullptr && handle_ != nullptr) symbol = dlsym(handle_, fallback);
    complete_ = complete_ && symbol != nullptr;
    function = reinterpret_cast<Function>(symbol);
  }

 private:
  void* handle_ = nullptr;
  bool complete_ = true;
};

}  // namespace tunekit::cuda::detail
