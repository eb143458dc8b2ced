#pragma once
// Typed exceptions of tunekit. Expected failures of a kernel configuration are
// results, not exceptions; these are for misuse and for the platform failing.

#include <cstddef>
#include <stdexcept>
#include <string>

namespace tunekit {

/// Base of every exception tunekit throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad input from a user: a malformed argument, an unknown architecture.
/// The CLI maps it to a one-line message and exit code 2.
class invalid_argument : public error {
 public:
  using error::error;
};

/// A CUDA runtime call failed. The message names the call, the error and the
/// source location; code() is the cudaError_t value (an int, so this header
/// needs no CUDA include).
class cuda_error : public error {
 public:
  cuda_error(int code, const std::string& message) : error(message), code_(code) {}

  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

/// A pool could not get memory: even after releasing what it had cached
/// and trying once more. requested() is the allocation's size in bytes.
class out_of_memory : public error {
 public:
  out_of_memory(std::size_t requested, const std::string& message) : error(message), requested_(requested) {}

  [[nodiscard]] std::size_t requested() const noexcept { return requested_; }

 private:
  std::size_t requested_;
};

}  // namespace tunekit
