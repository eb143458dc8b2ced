#pragma once
// Internal: what a source pulls in with #include "...", for compile caches
// keyed by text: a changed header must make a new key (NVRTC's cubins and
// the host compiler's shared objects alike).

#include <filesystem>
#include <string>
#include <vector>

namespace tunekit::detail {

/// The text of every file `source` includes with #include "NAME" that one of
/// `directories` holds (a header's own includes searched first beside it),
/// recursively, each once, prefixed by its name. Files not found (system
/// headers, NVRTC's built-ins) are skipped.
[[nodiscard]] std::string quoted_include_texts(const std::string& source,
                                               const std::vector<std::filesystem::path>& directories);

}  // namespace tunekit::detail
