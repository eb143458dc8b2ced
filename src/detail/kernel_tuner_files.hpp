#pragma once
// Internal: what reading Kernel Tuner's files needs in more than one place
// (replay.cpp reads cache files into a recorded space, store.cpp imports them).

#include <filesystem>
#include <optional>
#include <string>

#include "tunekit/evaluation.hpp"

namespace tunekit::detail {

/// The bytes of a plain or gzip-compressed file. Throws tunekit::invalid_argument
/// naming the file for a missing file, a directory or a read error.
[[nodiscard]] std::string read_maybe_gzipped(const std::filesystem::path& path);

/// "CompilationFailedConfig", "RuntimeFailedConfig", "InvalidConfig" as a
/// status; nullopt for any other text.
[[nodiscard]] std::optional<evaluation_status> kernel_tuner_status(const std::string& text);

}  // namespace tunekit::detail
