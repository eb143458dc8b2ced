#pragma once
// Backends: what compiles, runs, verifies and times a spec's variants. The
// runner drives one through its two halves, so that compiling overlaps
// measuring: compile() runs on worker threads, several at once; run() runs a
// compiled variant on one lane (a GPU, or the host), verifying its outputs
// against the reference before it is timed. A failure of the variant is its
// outcome's status, never an exception.
//
//   auto variant = backend.compile(index);     // any thread
//   auto outcome = backend.run(0, variant);    // lane 0
//   if (outcome.status == tunekit::evaluation_status::ok) use(outcome.median_us);

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "tunekit/evaluation.hpp"
#include "tunekit/store.hpp"

namespace tunekit {

/// A variant ready to run, or why it cannot be (compile_error, resources).
struct compiled_variant {
  std::size_t index = 0;
  evaluation_status status = evaluation_status::ok;
  std::string message;             ///< why it failed, one line
  std::filesystem::path artifact;  ///< the shared object or cubin
  std::string entry;               ///< the function to run in it
  double compile_ms = 0.0;         ///< 0 when taken from the cache
  bool cached = false;
};

/// What running one variant found.
struct variant_outcome {
  evaluation_status status = evaluation_status::ok;
  std::string message;             ///< why it failed, one line
  std::vector<double> samples_us;  ///< when ok
  double median_us = 0.0;
  double compile_ms = 0.0;
  double verification_ms = 0.0;
  double benchmark_ms = 0.0;
  std::string detail = "{}";       ///< JSON object: resources, occupancy, telemetry where the backend has them
};

class variant_backend {
 public:
  variant_backend() = default;
  virtual ~variant_backend() = default;
  variant_backend(const variant_backend&) = delete;
  variant_backend& operator=(const variant_backend&) = delete;

  /// The store's device: the GPU model and driver, or the host processor.
  [[nodiscard]] virtual device_identity identity() const = 0;
  /// The compiler's name and version: part of the kernel's identity.
  [[nodiscard]] virtual std::string compiler_version() const = 0;
  /// Variants that can run at once: one per GPU, one on the host.
  [[nodiscard]] virtual std::size_t lanes() const { return 1; }
  /// What a lane is, for progress lines: "GPU 0", "host".
  [[nodiscard]] virtual std::string lane_name(std::size_t lane) const = 0;
  /// Checks the resources a configuration asks for, then compiles it.
  /// Thread-safe: several threads compile at once.
  [[nodiscard]] virtual compiled_variant compile(std::size_t index) const = 0;
  /// Runs, verifies and times a compiled variant on `lane`; a variant that
  /// did not compile (or was refused its resources) is that outcome, run
  /// nowhere. One call per lane at a time; calls on different lanes may overlap.
  [[nodiscard]] variant_outcome run(std::size_t lane, const compiled_variant& variant) {
    variant_outcome outcome;
    if (variant.status == evaluation_status::ok) {
      outcome = do_run(lane, variant);
    } else {
      outcome.status = variant.status;
      outcome.message = variant.message;
    }
    outcome.compile_ms = variant.compile_ms;
    return outcome;
  }

  /// compile() then run() on lane 0.
  [[nodiscard]] variant_outcome evaluate(std::size_t index) { return run(0, compile(index)); }

 private:
  /// run() of a variant that compiled.
  [[nodiscard]] virtual variant_outcome do_run(std::size_t lane, const compiled_variant& variant) = 0;
};

}  // namespace tunekit
