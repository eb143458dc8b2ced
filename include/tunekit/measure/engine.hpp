#pragma once
// The measurement loop: warm up, take samples in batches, read telemetry while
// each batch runs, set aside samples taken while the chip was throttled, and
// stop when a stopping criterion is satisfied. Plain C++: what is timed (a CUDA
// kernel, a host function) and where telemetry comes from (NVML) plug in
// through two small interfaces, so the loop is tested without a GPU.
//
//   tunekit::cuda::event_timer timer(launch, {.mode = tunekit::cuda::timing_mode::hot});
//   auto telemetry = tunekit::cuda::open_nvml_telemetry(0);     // null without NVML
//   tunekit::measure::relative_noise criterion;
//   auto timing = tunekit::measure::measure(timer, criterion, telemetry.get());
//   // timing.samples_us, timing.telemetry.mean_sm_clock_mhz, ...

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tunekit/measure/stopping.hpp"

namespace tunekit::measure {

/// What is timed. Public non-virtual methods check the protocol; backends
/// implement do_*. A batch is begun, telemetry is read while it runs, then
/// it is ended: GPU timers enqueue in begin() and wait in end().
class sample_source {
 public:
  virtual ~sample_source() = default;

  /// "cold", "hot", "graph", "stream", "host": how samples are taken.
  [[nodiscard]] std::string_view mode() const { return do_mode(); }
  /// Runs the work untimed, at least once and for about `seconds`, and
  /// readies timing (a GPU timer sizes its launch groups from what it saw).
  void warm_up(double seconds);
  /// How many samples a batch should hold to last about `seconds` (>= 1).
  [[nodiscard]] std::size_t batch_size(double seconds) const;
  /// Runs of the work that one sample averages over (hot, graph and stream
  /// modes time groups of back-to-back launches); 1 otherwise.
  [[nodiscard]] std::size_t runs_per_sample() const { return do_runs_per_sample(); }
  /// Starts a batch of `count` samples (>= 1). Throws tunekit::error when a
  /// batch is already running or warm_up() was not called.
  void begin(std::size_t count);
  /// Waits for the batch and returns its samples in microseconds, `count` of them.
  [[nodiscard]] std::vector<double> end();

 protected:
  sample_source() = default;
  sample_source(const sample_source&) = default;
  sample_source& operator=(const sample_source&) = default;

  [[nodiscard]] virtual std::string_view do_mode() const = 0;
  virtual void do_warm_up(double seconds) = 0;
  [[nodiscard]] virtual std::size_t do_batch_size(double seconds) const = 0;
  [[nodiscard]] virtual std::size_t do_runs_per_sample() const { return 1; }
  virtual void do_begin(std::size_t count) = 0;
  [[nodiscard]] virtual std::vector<double> do_end() = 0;

 private:
  bool warmed_up_ = false;
  std::size_t running_ = 0;  ///< samples of the batch in flight, 0 when none
};

/// One reading of the chip's state. Fields a source cannot read are NaN.
struct telemetry_reading {
  double seconds = 0.0;  ///< since the measurement started (set by measure())
  double sm_clock_mhz = 0.0;
  double memory_clock_mhz = 0.0;
  double power_watts = 0.0;
  double temperature_celsius = 0.0;
  /// Clock-event ("throttle") reasons as NVML reports them (a bit set; see
  /// clock_event_names()); 0 when none or unknown.
  std::uint64_t clock_event_reasons = 0;
};

/// Reasons that mean the chip was slowed by power or heat, not by choice:
/// software power cap, hardware slowdown, software and hardware thermal
/// slowdown, hardware power brake. Idle, application-clock and sync-boost
/// reasons are not slowdowns.
inline constexpr std::uint64_t slowdown_reasons = 0x4 | 0x8 | 0x20 | 0x40 | 0x80;

/// Names of the set bits of an NVML clock-event reason mask, NVML's order:
/// "gpu_idle", "applications_clocks", "sw_power_cap", "hw_slowdown",
/// "sync_boost", "sw_thermal", "hw_thermal", "hw_power_brake", "display_clocks",
/// and "bit_N" for bits NVML may add later.
[[nodiscard]] std::vector<std::string> clock_event_names(std::uint64_t reasons);

/// Where telemetry comes from (NVML on a GPU machine). An observer: it may
/// be absent, and a reading that fails is skipped, never an error.
class telemetry_source {
 public:
  virtual ~telemetry_source() = default;

  /// "nvml 580.65.06", say: the source and its version.
  [[nodiscard]] std::string description() const { return do_description(); }
  /// The chip's highest SM clock, the reference for "under-clocked"; NaN when unknown.
  [[nodiscard]] double max_sm_clock_mhz() const { return do_max_sm_clock_mhz(); }
  /// Reads the chip now; nullopt when the reading failed.
  [[nodiscard]] std::optional<telemetry_reading> read() { return do_read(); }
  /// Energy the chip has used since some fixed moment, in joules; nullopt
  /// when the source cannot tell. Differences between two calls are what count.
  [[nodiscard]] std::optional<double> energy_joules() { return do_energy_joules(); }

 protected:
  telemetry_source() = default;
  telemetry_source(const telemetry_source&) = default;
  telemetry_source& operator=(const telemetry_source&) = default;

  [[nodiscard]] virtual std::string do_description() const = 0;
  [[nodiscard]] virtual double do_max_sm_clock_mhz() const = 0;
  [[nodiscard]] virtual std::optional<telemetry_reading> do_read() = 0;
  [[nodiscard]] virtual std::optional<double> do_energy_joules() { return std::nullopt; }
};

/// How measure() works. The defaults are justified where they are used.
struct measure_options {
  /// Warm-up before the first sample: module loading, clock ramp-up and the
  /// first touch of the data stay out of the samples.
  double warmup_seconds = 0.05;
  /// Host time a batch aims for: long enough that the synchronisation after
  /// it and the telemetry read during it cost little, short enough that a
  /// throttled stretch costs only its own batch and the criterion is checked
  /// often.
  double batch_seconds = 0.01;
  /// A batch is throttled when the SM clock read during it is under this
  /// fraction of the chip's highest SM clock, or a slowdown reason is set.
  double min_clock_fraction = 0.85;
  /// Throttled batches are set aside and taken again...
  bool discard_throttled = true;
  /// ...until they make up this fraction of all samples taken. Beyond it the
  /// chip is throttled for good (a power-capped workload): discarding more
  /// would never end, so further throttled samples are kept, and the result
  /// says so (telemetry_summary::throttled_kept).
  double max_discard_fraction = 0.5;
};

/// What telemetry said about one measurement.
struct telemetry_summary {
  bool available = false;
  std::string source;  ///< telemetry_source::description(), or why there is none
  std::size_t readings = 0;
  double max_sm_clock_mhz = 0.0;  ///< the chip's highest, the reference
  double mean_sm_clock_mhz = 0.0;  ///< over the batches whose samples were kept
  double min_sm_clock_mhz = 0.0;
  double mean_memory_clock_mhz = 0.0;
  double mean_power_watts = 0.0;
  double max_power_watts = 0.0;
  double max_temperature_celsius = 0.0;
  std::optional<double> energy_joules;  ///< over the whole measurement, warm-up excluded
  std::uint64_t clock_event_reasons = 0;  ///< every reason seen, ORed
  std::size_t throttled_batches = 0;
  std::size_t discarded_samples = 0;
  std::size_t throttled_kept = 0;  ///< throttled samples kept past max_discard_fraction
  std::vector<telemetry_reading> per_batch;  ///< one reading per batch, kept or not
};

/// One measurement: every kept sample, and how it came to be.
struct timing {
  std::string mode;  ///< sample_source::mode()
  std::vector<double> samples_us;
  std::size_t runs_per_sample = 1;
  std::string stop_reason;  ///< stopping_criterion::reason()
  std::size_t batches = 0;
  double seconds = 0.0;  ///< wall time of the sampling, warm-up excluded
  telemetry_summary telemetry;
};

/// Measures `source` until `criterion` is done (it is reset first). With
/// `telemetry` null, telemetry_summary::available is false. Throws
/// tunekit::invalid_argument for options out of range (fractions outside
/// [0, 1], non-positive seconds); errors of the source propagate.
[[nodiscard]] timing measure(sample_source& source, stopping_criterion& criterion,
                             telemetry_source* telemetry = nullptr, const measure_options& options = {});

/// The telemetry summary as a JSON object text: the figures above, reasons
/// by name, energy per run when `runs` > 0, and the per-batch readings as
/// parallel arrays ("per_batch": {"seconds": [...], "sm_clock_mhz": [...], ...}).
[[nodiscard]] std::string telemetry_json(const telemetry_summary& summary, std::size_t runs = 0);

}  // namespace tunekit::measure
