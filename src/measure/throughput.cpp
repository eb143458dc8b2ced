#include "tunekit/measure/throughput.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "tunekit/error.hpp"

namespace tunekit::measure {

throughput annotate(const work& declared, double median_us, const ceilings& measured) {
  if (!(median_us > 0.0) || !std::isfinite(median_us))
    throw invalid_argument("throughput: the time must be a positive number of microseconds");
  if (!(declared.bytes_read >= 0.0) || !(declared.bytes_written >= 0.0) || !(declared.flops >= 0.0) ||
      !std::isfinite(declared.bytes_read + declared.bytes_written + declared.flops))
    throw invalid_argument("throughput: bytes and flops must be finite numbers >= 0");
  std::optional<double> flop_ceiling;
  if (declared.flop_type == "fp32") {
    flop_ceiling = measured.fp32_tflops;
  } else if (declared.flop_type == "bf16") {
    flop_ceiling = measured.bf16_tflops;
  } else {
    throw invalid_argument("throughput: unknown flop type '" + declared.flop_type + "' (fp32 or bf16)");
  }
  const double seconds = median_us * 1e-6;
  throughput out;
  out.gbps = (declared.bytes_read + declared.bytes_written) / seconds / 1e9;
  out.tflops = declared.flops / seconds / 1e12;
  if (measured.copy_gbps && *measured.copy_gbps > 0.0) out.fraction_of_copy = out.gbps / *measured.copy_gbps;
  if (flop_ceiling && *flop_ceiling > 0.0 && declared.flops > 0.0) out.fraction_of_flops = out.tflops / *flop_ceiling;
  return out;
}

std::string throughput_json(const work& declared, double median_us, const ceilings& measured) {
  const auto figures = annotate(declared, median_us, measured);
  nlohmann::ordered_json out;
  out["bytes_read"] = declared.bytes_read;
  out["bytes_written"] = declared.bytes_written;
  out["flops"] = declared.flops;
  out["flop_type"] = declared.flop_type;
  out["gbps"] = figures.gbps;
  out["tflops"] = figures.tflops;
  if (figures.fraction_of_copy) out["percent_of_copy"] = 100.0 * *figures.fraction_of_copy;
  if (figures.fraction_of_flops) out["percent_of_flops"] = 100.0 * *figures.fraction_of_flops;
  return out.dump();
}

}  // namespace tunekit::measure
