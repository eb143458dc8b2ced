#pragma once
// Internal: NumPy .npy files (format 1.0, little-endian, C order) of one
// buffer argument, so anyone can load a workload's inputs and outputs with
// numpy.load and check them against their own implementation.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "tunekit/spec.hpp"

namespace tunekit::detail {

/// Writes `count` elements of `type` from `bytes` as a one-dimensional
/// array. Throws tunekit::error when the file cannot be written.
void write_npy(const std::filesystem::path& path, element_type type, const unsigned char* bytes, std::size_t count);

/// Writes every buffer argument of `spec` to `directory`/NAME.npy, taking
/// each buffer's bytes from `buffers` (indexed as spec.arguments; scalars
/// skipped), and each output's reference bytes, when `reference` is not
/// empty (one per output, in argument order), to NAME_reference.npy.
/// Returns the files written.
std::vector<std::filesystem::path> write_arguments_npy(const std::filesystem::path& directory, const kernel_spec& spec,
                                                       const std::vector<const unsigned char*>& buffers,
                                                       const std::vector<std::size_t>& counts,
                                                       const std::vector<std::vector<unsigned char>>& reference);

}  // namespace tunekit::detail
