#pragma once
// Internal: a spec's arguments made real, for every backend. The inputs are
// generated the same way for the reference and for every variant (a seeded
// splitmix64 stream, a sequence, a constant or a file), outputs are poisoned
// before a run, and outputs are compared with the reference's element by
// element within the spec's tolerance.

#include <cstddef>
#include <string>
#include <vector>

#include "tunekit/expression.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace tunekit::detail {

/// The problem size and configuration `index`'s parameter values, by name:
/// what every expression of the spec reads.
void name_configuration(variable_table& names, const kernel_spec& spec, const search_space& space, std::size_t index);

/// The byte every output starts as before a run: 0xA5A5A5A5 is no float,
/// integer or count a kernel writes by chance.
inline constexpr unsigned char poison_byte = 0xA5;

/// The arguments of one configuration on the host: storage and the pointer array.
struct argument_set {
  std::vector<std::vector<unsigned char>> storage;  ///< a buffer's elements or a scalar's bytes
  std::vector<void*> pointers;
  std::vector<std::size_t> output_indices;  ///< arguments that are outputs (out and inout)
  std::vector<std::size_t> counts;          ///< elements (1 for a scalar)

  /// Throws tunekit::spec_error for a count that is not a size or a short input file.
  argument_set(const kernel_spec& spec, const search_space& space, std::size_t index);

  /// Outputs (not inout: those hold inputs) get poison_byte.
  void poison(const kernel_spec& spec);
};

/// Empty when `got` matches `want` within `accuracy`, else what differs
/// ("element 17 is 3.5, the reference 3.25"); `not_a_number` is set when the
/// difference is a NaN or an infinity.
[[nodiscard]] std::string compare(element_type type, const unsigned char* got, const unsigned char* want,
                                  std::size_t count, const tolerance& accuracy, bool& not_a_number);

}  // namespace tunekit::detail
