#pragma once
// Throughput annotations: a measurement declares the bytes it must move and
// the operations it must do, and the report turns its median time into GB/s
// and TFLOP/s and into a fraction of what this device was measured to reach
// (its ceilings), which says how much room is left.
//
//   tunekit::measure::work triad{.bytes_read = 2.0 * n * 4, .bytes_written = n * 4.0, .flops = 2.0 * n};
//   result.throughput = tunekit::measure::throughput_json(triad, median_us, ceilings);

#include <optional>
#include <string>

namespace tunekit::measure {

/// What one run of the work must do at least: each input read once, each
/// output written once, the arithmetic the algorithm needs.
struct work {
  double bytes_read = 0.0;
  double bytes_written = 0.0;
  double flops = 0.0;
  /// Which ceiling the flops compare with: "fp32" or "bf16" (bf16 inputs,
  /// fp32 accumulation, the tensor-core rate).
  std::string flop_type = "fp32";

  bool operator==(const work&) const = default;
};

/// What this device was measured to reach. Unset: not measured.
struct ceilings {
  /// Device-to-device copy, bytes read plus bytes written per second, in GB/s (1e9).
  std::optional<double> copy_gbps;
  std::optional<double> fp32_tflops;  ///< FP32 matrix product (no TF32)
  std::optional<double> bf16_tflops;  ///< BF16 matrix product, FP32 accumulation

  bool operator==(const ceilings&) const = default;
};

/// Figures derived from one median time.
struct throughput {
  double gbps = 0.0;    ///< (bytes read + written) / time, 1e9 bytes per second
  double tflops = 0.0;  ///< flops / time, 1e12 per second
  std::optional<double> fraction_of_copy;   ///< gbps / copy ceiling
  std::optional<double> fraction_of_flops;  ///< tflops / the flop_type's ceiling
};

/// Throws tunekit::invalid_argument for a time that is not positive and
/// finite, negative work, or an unknown flop_type.
[[nodiscard]] throughput annotate(const work& declared, double median_us, const ceilings& measured);

/// The annotation as a JSON object text, for measurement_result::throughput:
/// {"bytes_read", "bytes_written", "flops", "flop_type", "gbps", "tflops",
///  "percent_of_copy", "percent_of_flops"} (the last two only when measured).
[[nodiscard]] std::string throughput_json(const work& declared, double median_us, const ceilings& measured);

}  // namespace tunekit::measure
