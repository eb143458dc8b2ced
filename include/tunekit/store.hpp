#pragma once
// Results store: every measured configuration, kept in one SQLite file (WAL)
// and written the moment its result arrives, so a killed session loses nothing
// and a resumed one measures nothing twice. Several processes may tune into
// one store at once.
//
// A result is keyed by the device (name, architecture, driver), the kernel
// (name + hash of its source and compile options), the problem size and the
// configuration (parameter names and value texts, never a space index).
//
//   auto store = tunekit::results_store::open(tunekit::default_store_path());
//   tunekit::store_key key{{"NVIDIA H100", "sm_90", "580.65"}, {"gemm", tunekit::source_hash(source, options)},
//                          "[4096,4096]"};
//   auto evaluate = tunekit::stored_evaluator(store, key, space, measure);  // store hit, else measure + record
//   auto run = tunekit::tune(*search, space, evaluate, limits, seed);
//
// Kernel Tuner cache files and T4 results files import and export exactly:
// export(import(file)) is the same JSON document (byte for byte where the file
// was written by Kernel Tuner).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tunekit/evaluation.hpp"
#include "tunekit/replay.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/strategy.hpp"
#include "tunekit/tuner.hpp"

namespace tunekit {

class results_file;
struct import_summary;
enum class results_format;

/// The GPU a result was measured on.
struct device_identity {
  std::string name;          ///< "NVIDIA H100 80GB HBM3"
  std::string architecture;  ///< "sm_90"; empty when unknown (an imported file)
  std::string driver;        ///< driver version; empty when unknown
  bool operator==(const device_identity&) const = default;
};

/// The kernel a result belongs to: a changed source or compile option is a new kernel.
struct kernel_identity {
  std::string name;
  std::string source_hash;  ///< source_hash(source, options); empty when unknown (an imported file)
  bool operator==(const kernel_identity&) const = default;
};

/// 16 hex digits: 64-bit FNV-1a of the source text and the compile options.
/// Stable across runs, platforms and tunekit versions.
[[nodiscard]] std::string source_hash(std::string_view source, std::string_view compile_options = {});

/// What every stored result is filed under.
struct store_key {
  device_identity device;
  kernel_identity kernel;
  std::string problem_size;  ///< free text; imports write the file's JSON ("[4096,4096]", "20000000")
  bool operator==(const store_key&) const = default;
};

/// "kernel 'gemm' on 'NVIDIA H100' (sm_90, driver 580.65), problem size [4096,4096]"
[[nodiscard]] std::string to_string(const store_key& key);

/// A configuration as its parameters' names and values, in the parameters'
/// order. Values read from a file keep their JSON type; a JSON boolean reads
/// as the string "True" or "False", as in Kernel Tuner.
using stored_configuration = std::vector<std::pair<std::string, parameter_value>>;

/// Configuration `index` of `space`, by parameter name and value.
[[nodiscard]] stored_configuration configuration_of(const search_space& space, std::size_t index);

/// The identity of a configuration across processes and files: its names and
/// value texts (tunekit::to_string), sorted by name, as a JSON object text.
[[nodiscard]] std::string configuration_key(const stored_configuration& configuration);

/// One measured quantity of a result: the objective, a metric such as
/// "GFLOP/s", an observer's reading. A failed result's measurement has no
/// value (NaN); formats write the failure's name in its place.
struct measurement {
  std::string name;
  double value = 0.0;
  std::string unit;  ///< "ms", "" when none was given
};

/// Everything the store keeps for one measured configuration.
struct stored_result {
  stored_configuration configuration;
  evaluation_status status = evaluation_status::ok;
  double value = 0.0;                     ///< the objective; NaN when a failed result has none
  std::vector<double> samples;            ///< every timed repetition (ms)
  std::vector<measurement> measurements;  ///< every quantity measured, the objective included
  std::string telemetry = "{}";           ///< JSON object: clocks, power, temperature per sample
  /// What evaluating it cost (ms), charged to time budgets; when absent, the
  /// sum of compile, verification and benchmark time.
  std::optional<double> cost;
  std::optional<double> compile_time;       ///< ms
  std::optional<double> verification_time;  ///< ms
  std::optional<double> benchmark_time;     ///< ms
  std::optional<double> strategy_time;      ///< ms, as a file recorded it
  std::optional<double> framework_time;     ///< ms, as a file recorded it
  std::string measured_at;  ///< "2023-01-24 01:03:17.677311+00:00"; record() fills in now when empty
  std::string recorded_at;  ///< when the store wrote it (set by record(), ignored on input)
  std::string extra = "{}";  ///< JSON object: what a foreign format carried beyond the fields above

  /// The result as a strategy sees it: a failed result has value 0, like a
  /// failed replayed one; the cost as documented above.
  [[nodiscard]] evaluation_result evaluation() const;
};

/// One (device, kernel, problem size) in a store and how far its tuning got.
struct problem_summary {
  store_key key;
  std::string objective;              ///< "time", or what an imported file named
  std::vector<parameter> parameters;  ///< the tunable parameters, when known
  std::size_t results = 0;
  std::size_t ok_results = 0;
  std::optional<double> best_value;   ///< smallest ok objective
  stored_configuration best_configuration;
  std::string first_recorded_at;
  std::string last_recorded_at;
};

/// One (device, kernel, problem size) with at least one ok result: its best,
/// and when an ok result of it was last written. What runtime dispatch reads.
struct tuned_problem {
  store_key key;
  std::string objective;                    ///< "time", or what an imported file named
  stored_configuration best_configuration;  ///< the ok result with the smallest objective
  double best_value = 0.0;
  std::string last_ok_recorded_at;  ///< recorded_at of its newest ok result
};

/// What a device was measured to reach, kept so it is measured once:
/// "copy_gbps" (GB/s), "fp32_tflops", "bf16_tflops" (TFLOP/s).
struct stored_ceiling {
  std::string name;
  double value = 0.0;
  std::string unit;
  std::string detail = "{}";  ///< JSON object: how it was measured
  std::string measured_at;    ///< record_ceiling() fills in now when empty
  bool operator==(const stored_ceiling&) const = default;
};

enum class store_access { read_write, read_only };

/// What record() does when the configuration already has a result.
enum class on_conflict { keep_existing, replace };

/// A results store file. Opening creates it (and its directory) when missing;
/// a file that is not a tunekit store is refused and left untouched. Safe to
/// share between threads; each process opens its own.
class results_store {
 public:
  /// Opens or creates the store at `path`. Throws tunekit::invalid_argument
  /// with a one-line reason, never modifying the file, when it is not SQLite,
  /// is SQLite but not a tunekit store, is corrupt, or is from a newer tunekit.
  /// A read_only store must exist.
  [[nodiscard]] static results_store open(const std::filesystem::path& path,
                                          store_access access = store_access::read_write);

  results_store(results_store&&) noexcept;
  results_store& operator=(results_store&&) noexcept;
  ~results_store();

  [[nodiscard]] const std::filesystem::path& path() const;

  /// Declares the tunable parameters and objective of `key` (creating its
  /// entry); parameters or values not yet known are added, in order.
  void describe(const store_key& key, const std::vector<parameter>& parameters, std::string_view objective = "time");

  /// Writes one result in its own committed transaction, waiting out other
  /// writers. Returns false when the configuration already had a result and
  /// `conflict` kept it.
  bool record(const store_key& key, const stored_result& result, on_conflict conflict = on_conflict::keep_existing);

  [[nodiscard]] std::optional<stored_result> find(const store_key& key, const stored_configuration& configuration) const;
  /// Every result of `key`, in the order they were recorded.
  [[nodiscard]] std::vector<stored_result> results(const store_key& key) const;
  /// The ok result with the smallest objective.
  [[nodiscard]] std::optional<stored_result> best(const store_key& key) const;
  [[nodiscard]] std::size_t count(const store_key& key) const;
  [[nodiscard]] std::size_t count() const;
  /// Every (device, kernel, problem size) in the store, ordered by kernel, device, problem size.
  [[nodiscard]] std::vector<problem_summary> problems() const;
  /// Every (device, kernel, problem size) with an ok result, with its best, in
  /// one read transaction; only kernels named `kernel_name` unless it is empty.
  /// Ordered by kernel name, device name, architecture, driver, source hash and
  /// problem size, byte by byte.
  [[nodiscard]] std::vector<tuned_problem> tuned_problems(std::string_view kernel_name = {}) const;

  /// Records (or replaces) one ceiling of `device`. Throws
  /// tunekit::invalid_argument for an empty name, a value that is not a
  /// positive number or a detail that is not a JSON object.
  void record_ceiling(const device_identity& device, const stored_ceiling& ceiling);
  /// Every ceiling recorded for `device`, by name.
  [[nodiscard]] std::vector<stored_ceiling> ceilings(const device_identity& device) const;

  /// Reads every page (SQLite quick_check). Throws tunekit::invalid_argument when corrupt.
  void check() const;

 private:
  class impl;
  friend class results_file;
  friend import_summary import_results(results_store& store, const results_file& file);
  friend std::string export_results(const results_store& store, const store_key& key, results_format format);

  explicit results_store(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

/// Where the store lives unless told otherwise: $TUNEKIT_STORE, else
/// $XDG_DATA_HOME/tunekit/tunekit.db, else $HOME/.local/share/tunekit/tunekit.db.
/// Relative XDG_DATA_HOME is ignored, as the XDG specification asks.
[[nodiscard]] std::filesystem::path default_store_path();

/// Answers from the store when `key` already has a result for the
/// configuration; otherwise calls `inner`, records its result at once, then
/// answers. Either way the answer is the stored one, so a resumed session sees
/// exactly what the first saw. `store` and `space` must outlive the evaluator.
[[nodiscard]] evaluator stored_evaluator(results_store& store, const store_key& key, const search_space& space,
                                         evaluator inner);

// ---------------------------------------------------------------- files

enum class results_format {
  kernel_tuner,  ///< Kernel Tuner cache file (.json, .json.gz)
  t4,            ///< T4 auto-tuning results file (schema 1.0.0)
};

/// "kt" or "t4".
[[nodiscard]] std::string_view to_string(results_format format);
/// "kt", "kernel_tuner" or "t4"; throws tunekit::invalid_argument.
[[nodiscard]] results_format parse_results_format(std::string_view text);

/// Identity for an imported file: T4 files carry none, Kernel Tuner files
/// only the device and kernel names. Set fields override the file's.
struct import_identity {
  std::optional<std::string> device_name;
  std::optional<std::string> architecture;
  std::optional<std::string> driver;
  std::optional<std::string> kernel_name;
  std::optional<std::string> source_hash;
  std::optional<std::string> problem_size;
};

/// A results file read and checked completely, ready to import.
class results_file {
 public:
  /// Reads plain or gzip-compressed JSON; `format` nullopt detects it. Throws
  /// tunekit::invalid_argument with a one-line reason for an unreadable,
  /// corrupt or foreign file, or a T4 file without a kernel and device name.
  [[nodiscard]] static results_file read(const std::filesystem::path& path,
                                         std::optional<results_format> format = std::nullopt,
                                         const import_identity& identity = {});

  [[nodiscard]] results_format format() const;
  [[nodiscard]] const store_key& key() const;
  [[nodiscard]] std::size_t size() const;

 private:
  struct contents;
  friend import_summary import_results(results_store& store, const results_file& file);

  explicit results_file(std::shared_ptr<const contents> data);
  std::shared_ptr<const contents> contents_;
};

struct import_summary {
  store_key key;
  results_format format = results_format::kernel_tuner;
  std::size_t results = 0;          ///< in the file
  std::size_t added = 0;            ///< new to the store
  std::size_t already_present = 0;  ///< configurations the store had a result for (kept)
};

/// Adds every result of `file` to `store` in one transaction: all or nothing.
import_summary import_results(results_store& store, const results_file& file);

/// The results of `key` as a file's text: a Kernel Tuner cache file laid out
/// as Kernel Tuner writes it (resumable by Kernel Tuner), or a T4 results file.
/// Throws tunekit::invalid_argument when `key` has no results.
[[nodiscard]] std::string export_results(const results_store& store, const store_key& key, results_format format);

/// Writes `text` to `path` through a temporary file and a rename, gzip-compressed
/// when the name ends in ".gz". Refuses (tunekit::invalid_argument) to replace an
/// existing file unless `overwrite`.
void write_results_file(const std::filesystem::path& path, std::string_view text, bool overwrite);

/// A recorded search space for replay from a Kernel Tuner cache file or a T4
/// results file (detected from the contents). Throws tunekit::invalid_argument
/// with a one-line reason for an unreadable, corrupt or foreign file.
[[nodiscard]] recorded_space load_recorded_space(const std::filesystem::path& path);

}  // namespace tunekit
