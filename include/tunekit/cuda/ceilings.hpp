#pragma once
// The ceilings of a live device, measured on it: device-to-device copy
// bandwidth, and FP32 and BF16 matrix product rates through cuBLAS (loaded
// with dlopen; without it those two stay unmeasured). Measured once per
// device and kept in the results store, so reports quote achieved/ceiling
// without paying for the measurement again. Plain C++ header.
//
//   auto store = tunekit::results_store::open(tunekit::default_store_path());
//   const auto roof = tunekit::cuda::device_ceilings(store, 0);
//   result.throughput = tunekit::measure::throughput_json(work, median_us, roof);

#include <string>

#include "tunekit/measure/throughput.hpp"
#include "tunekit/store.hpp"

namespace tunekit::cuda {

/// The store's identity of live device `ordinal`: its name, "sm_XY", and
/// the driver version (NVML's "580.65.06", else the CUDA driver's "cuda 13.0").
[[nodiscard]] device_identity live_identity(int ordinal);

/// How the ceilings were measured, for the record.
struct ceiling_report {
  measure::ceilings values;
  std::string detail = "{}";  ///< JSON object: sizes, medians, samples, what was unavailable and why
};

/// Measures the ceilings of device `ordinal` now, with the measurement
/// engine (hot mode, relative-noise stopping; a few seconds in all):
///   copy   cudaMemcpyAsync of a buffer of min(1 GiB, free memory / 4),
///          counting bytes read plus bytes written;
///   fp32   cublasSgemm, m = n = k = 8192, TF32 off;
///   bf16   cublasGemmEx, bf16 inputs and output, fp32 accumulation, 8192³.
/// Inputs are uniform random numbers, never zeros. Throws tunekit::cuda_error
/// when CUDA fails; a missing cuBLAS leaves fp32/bf16 unset.
[[nodiscard]] ceiling_report measure_ceilings(int ordinal);

/// The ceilings of device `ordinal` from `store`; measured and recorded
/// first when the store has none for it (or `remeasure`).
[[nodiscard]] measure::ceilings device_ceilings(results_store& store, int ordinal, bool remeasure = false);

}  // namespace tunekit::cuda
