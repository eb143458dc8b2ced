#include "detail/kernel_tuner_files.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "tunekit/error.hpp"

namespace tunekit::detail {

std::string read_maybe_gzipped(const std::filesystem::path& path) {
  std::string shown(1, '\'');
  shown += path.string();
  shown += '\'';
  std::error_code failure;
  if (!std::filesystem::exists(path, failure)) throw invalid_argument("no such file " + shown);
  if (std::filesystem::is_directory(path, failure)) throw invalid_argument(shown + " is a directory");
  // gzread passes plain files through.
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw invalid_argument("cannot open " + shown + ": " + std::strerror(errno));
  std::string bytes;
  std::vector<char> buffer(1 << 16);
  for (;;) {
    const int count = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (count < 0) {
      int code = 0;
      const std::string reason = gzerror(file, &code);
      gzclose(file);
      throw invalid_argument("cannot read " + shown + ": " + reason);
    }
    if (count == 0) break;
    bytes.append(buffer.data(), static_cast<std::size_t>(count));
  }
  gzclose(file);
  return bytes;
}

std::optional<evaluation_status> kernel_tuner_status(const std::string& text) {
  if (text == "CompilationFailedConfig") return evaluation_status::compile_error;
  if (text == "RuntimeFailedConfig") return evaluation_status::launch_error;
  if (text == "InvalidConfig") return evaluation_status::resources;
  return std::nullopt;
}

}  // namespace tunekit::detail
