#pragma once
// Runtime dispatch: the best tuned configuration for (this device, a kernel, a
// problem size), read from the results store once and answered from memory.
// An exact problem size first, else the nearest tuned one, else the caller's
// default (an occupancy-based one, say). Plain C++.
//
//   const auto tuned = tunekit::dispatcher::open(tunekit::default_store_path(), "matmul");
//   const auto choice = tuned.best(device_name, "matmul", {{"n", 4096}},
//                                  [] { return tunekit::stored_configuration{{"TILE", std::int64_t{16}}}; });
//   launch(choice.config);  // choice.from says exact, nearest or fallback
//
// export_header() writes the same tables as a self-contained C++17 header, for
// applications that should not need the store (or tunekit) at run time.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tunekit/store.hpp"

namespace tunekit {

/// A problem size by name, as kernel_spec::problem holds it:
/// {{"image_width", 4096}, {"image_height", 4096}}. Order does not matter.
using problem_dimensions = std::vector<std::pair<std::string, double>>;

/// What the dispatcher answers for one (device, kernel, problem size).
struct tuned_choice {
  enum class source {
    exact,     ///< tuned for exactly this problem size
    nearest,   ///< tuned for the nearest problem size with the same dimensions
    fallback,  ///< nothing tuned: the caller's default
  };
  stored_configuration config;
  std::optional<double> time_ms;  ///< the tuned (best) time; empty for a fallback
  std::string problem;            ///< JSON of the problem size it was tuned for; for a fallback, the one asked for
  std::string source_hash;        ///< the kernel version it was tuned with; empty for a fallback
  source from = source::fallback;
};

/// "exact", "nearest" or "fallback".
[[nodiscard]] std::string_view to_string(tuned_choice::source from);

/// One tuned problem size of a dispatch table.
struct tuned_entry {
  std::vector<double> values;  ///< the problem size, in the table's dimension order
  std::string problem;         ///< the problem size as the store holds it (JSON object text)
  stored_configuration config;  ///< the best ok configuration
  double time_ms = 0.0;
};

/// Everything tuned for one device name, kernel name and set of problem
/// dimension names, in the one kernel version chosen (see dispatcher).
struct dispatch_table {
  std::string device;        ///< device name
  std::string architecture;  ///< empty: every architecture the store holds for the name
  std::string kernel;
  std::string source_hash;             ///< the kernel version
  std::vector<std::string> dimensions;  ///< names, sorted
  std::vector<tuned_entry> entries;     ///< sorted by values, smallest problem first
};

/// Answers best configurations from tables read once from a results store.
///
/// - Only ok results whose objective is "time" count (smaller is better);
///   problem sizes that are not a JSON object of numbers (a Kernel Tuner
///   file's "[4096,4096]") are not dispatchable and are left out.
/// - The device is matched by name, never by driver version, so a driver
///   update does not hide what was tuned. Given an architecture, results of
///   that architecture are preferred when the name has several.
/// - Where a kernel name has several versions (source hashes) on a device,
///   only the most recently recorded one answers: the version whose newest ok
///   result has the latest recorded_at (ties: the larger source hash). Older
///   versions' configurations may not even be valid for the current source.
/// - Nearest: among the problem sizes with the same dimension names, the one
///   at the smallest Euclidean distance after mapping each value v to
///   sign(v)·ln(1 + |v|), so distance follows ratios of sizes. On a tie the
///   smaller problem wins, comparing values in the order of the sorted names
///   (a configuration tuned for less work still fills the GPU with more).
///   Where one problem size was recorded under several architectures or
///   drivers, the fastest of them answers.
///
/// Immutable once built: lookups are safe from any number of threads.
class dispatcher {
 public:
  /// The caller's default, called only when nothing is tuned.
  using fallback_function = std::function<stored_configuration()>;

  /// Nothing tuned: every answer is the fallback.
  dispatcher() = default;
  /// Reads every tuned kernel of `store`, or only `kernel_name` unless empty.
  explicit dispatcher(const results_store& store, std::string_view kernel_name = {});
  /// Opens the store at `path` read-only and reads it. Throws
  /// tunekit::invalid_argument when there is no store there or it is not one.
  [[nodiscard]] static dispatcher open(const std::filesystem::path& path, std::string_view kernel_name = {});

  /// The tuned configuration, exact or nearest; nullopt when nothing with
  /// these dimension names is tuned for the device and kernel. Throws
  /// tunekit::invalid_argument when `problem` names a dimension twice.
  [[nodiscard]] std::optional<tuned_choice> find(std::string_view device_name, std::string_view kernel_name,
                                                 const problem_dimensions& problem,
                                                 std::string_view architecture = {}) const;
  /// find(), else `fallback()` marked source::fallback.
  [[nodiscard]] tuned_choice best(std::string_view device_name, std::string_view kernel_name,
                                  const problem_dimensions& problem, const fallback_function& fallback,
                                  std::string_view architecture = {}) const;
  /// find(), else `fallback` marked source::fallback.
  [[nodiscard]] tuned_choice best(std::string_view device_name, std::string_view kernel_name,
                                  const problem_dimensions& problem, stored_configuration fallback,
                                  std::string_view architecture = {}) const;

  /// The tables answering without an architecture, sorted by device, kernel
  /// and dimensions: what export_header() writes.
  [[nodiscard]] const std::vector<dispatch_table>& tables() const { return tables_; }
  [[nodiscard]] bool empty() const { return tables_.empty(); }

 private:
  [[nodiscard]] const dispatch_table* table_for(std::string_view device_name, std::string_view kernel_name,
                                                const std::vector<std::string>& dimensions,
                                                std::string_view architecture) const;

  std::vector<dispatch_table> tables_;               ///< every architecture of a name together
  std::vector<dispatch_table> architecture_tables_;  ///< per architecture, where a name has several
  std::unordered_map<std::string, std::size_t> index_;               ///< into tables_
  std::unordered_map<std::string, std::size_t> architecture_index_;  ///< into architecture_tables_
};

struct header_options {
  std::string namespace_name = "tunekit_tuned";  ///< a C++ identifier (or nested, "app::tuned")
  std::string command;  ///< how it was made, noted in the header's first comment
};

/// The dispatcher's tables as a self-contained C++17 header (standard headers
/// only): per (device, kernel) the tuned problem sizes, their best
/// configurations and times, and an inline lookup() with the same exact, then
/// nearest semantics as dispatcher::find() without an architecture, returning
/// nullptr when nothing is tuned. Sorted, so the same tables give the same bytes.
/// Throws tunekit::invalid_argument for a namespace name that is not an identifier.
[[nodiscard]] std::string export_header(const dispatcher& tuned, const header_options& options = {});

}  // namespace tunekit
