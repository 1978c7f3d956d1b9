#include "cli/kernel_paths.h"

#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace kfleet::cli {
namespace {

namespace fs = std::filesystem;

// `name` joined to `cwd` when `name` is relative and names something `is_wanted` accepts there.
template <typename Pred>
std::string Absolute(const std::string& name, const std::string& cwd, Pred is_wanted) {
  if (name.empty() || cwd.empty() || fs::path(name).is_absolute()) return name;
  fs::path joined = (fs::path(cwd) / name).lexically_normal();
  std::error_code ec;
  if (!is_wanted(joined, ec) || ec) return name;
  std::string out = joined.string();
  // "linux/" normalizes to "/src/linux/": drop the trailing slash, as people write directories.
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace

void MakeKernelPathsAbsolute(v1::KernelSource& kernel, const std::string& cwd) {
  kernel.set_tree(Absolute(kernel.tree(), cwd, [](const fs::path& p, std::error_code& ec) {
    return fs::is_directory(p, ec);
  }));
  if (kernel.config().empty()) return;
  std::vector<std::string> parts = absl::StrSplit(kernel.config(), '+');
  for (std::string& part : parts) {
    part = Absolute(part, cwd, [](const fs::path& p, std::error_code& ec) {
      return fs::is_regular_file(p, ec);
    });
  }
  kernel.set_config(absl::StrJoin(parts, "+"));
}

std::string CurrentDirectory() {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? "" : cwd.string();
}

}  // namespace kfleet::cli
