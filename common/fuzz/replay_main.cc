// A driver for fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput on every file named on
// the command line (files and directories, not recursive), then on inputs mutated from them with a
// fixed seed (byte flips, insertions, deletions, splices, truncations), so a CI build exercises
// each parser on malformed input. A crash or a sanitizer report fails the test.
//
//   NAME_replay [CORPUS_DIR_OR_FILE...] [-runs=N]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  int edits = 1 + static_cast<int>(pick(8));
  for (int i = 0; i < edits; ++i) {
    switch (pick(6)) {
      case 0:  // flip a byte
        if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng());
        break;
      case 1:  // insert interesting bytes
        s.insert(pick(s.size() + 1),
                 std::string(1 + pick(4), "\0\n\r \t:=,;-\xff{}[]()\"'#\\"[pick(19)]));
        break;
      case 2:  // delete a range
        if (!s.empty()) {
          size_t at = pick(s.size());
          s.erase(at, 1 + pick(std::min<size_t>(64, s.size() - at)));
        }
        break;
      case 3:  // splice from another input
        if (!corpus.empty()) {
          const std::string& o = corpus[pick(corpus.size())];
          if (!o.empty()) {
            size_t from = pick(o.size());
            s.insert(pick(s.size() + 1), o.substr(from, 1 + pick(256)));
          }
        }
        break;
      case 4:  // truncate
        s.resize(pick(s.size() + 1));
        break;
      default:  // duplicate a range (long lines, repeated records)
        if (!s.empty()) {
          size_t at = pick(s.size());
          std::string part = s.substr(at, 1 + pick(128));
          for (int k = static_cast<int>(pick(16)); k >= 0; --k) s.insert(at, part);
        }
        break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 20000;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "-runs=", 6) == 0) {
      runs = std::strtol(argv[i] + 6, nullptr, 10);
      continue;
    }
    std::filesystem::path p(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) corpus.push_back(ReadAll(e.path()));
      }
    } else if (std::filesystem::is_regular_file(p, ec)) {
      corpus.push_back(ReadAll(p));
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  Run("");
  for (const std::string& c : corpus) Run(c);
  std::mt19937_64 rng(0x6b666c656574ULL);  // fixed: a failure reproduces
  std::vector<std::string> seeds = corpus.empty() ? std::vector<std::string>{""} : corpus;
  for (long i = 0; i < runs; ++i) Run(Mutate(seeds[rng() % seeds.size()], corpus, rng));
  std::printf("%zu corpus inputs and %ld mutated inputs ran without a crash\n", corpus.size(),
              runs);
  return 0;
}
