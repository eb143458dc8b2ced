#include "detail/includes.hpp"

#include <set>
#include <sstream>

#include "detail/kernel_tuner_files.hpp"

namespace tunekit::detail {

namespace {

void append_includes(const std::string& source, const std::vector<std::filesystem::path>& directories,
                     std::set<std::filesystem::path>& seen, std::string& texts) {
  std::istringstream lines(source);
  for (std::string line; std::getline(lines, line);) {
    const auto hash = line.find_first_not_of(" \t");
    if (hash == std::string::npos || line[hash] != '#') continue;
    const auto directive = line.find_first_not_of(" \t", hash + 1);
    if (directive == std::string::npos || line.compare(directive, 7, "include") != 0) continue;
    const auto open = line.find('"', directive + 7);
    const auto close = open == std::string::npos ? open : line.find('"', open + 1);
    if (close == std::string::npos) continue;
    const std::string name = line.substr(open + 1, close - open - 1);
    for (const auto& directory : directories) {
      std::error_code missing;
      const auto path = std::filesystem::weakly_canonical(directory / name, missing);
      if (missing || !std::filesystem::is_regular_file(path, missing)) continue;
      if (seen.insert(path).second) {
        const auto text = read_maybe_gzipped(path);
        texts += "\n#file " + name + "\n" + text;
        auto nested = directories;
        nested.insert(nested.begin(), path.parent_path());
        append_includes(text, nested, seen, texts);
      }
      break;
    }
  }
}

}  // namespace

std::string quoted_include_texts(const std::string& source, const std::vector<std::filesystem::path>& directories) {
  std::set<std::filesystem::path> seen;
  std::string texts;
  append_includes(source, directories, seen, texts);
  return texts;
}

}  // namespace tunekit::detail
