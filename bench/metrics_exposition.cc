// How long a scrape of the controller's /metrics takes, and what it costs in memory, for a fleet
// of simulated hosts (controller/metrics/fake_node_samples.h: 115 node_exporter-like samples
// each), against the named peer: the same fleet held as one prometheus-cpp Gauge per series in a
// prometheus::Registry, the way prometheus-cpp is meant to be used.
//
// Each side runs in a forked child, so that one's heap does not inflate the other's figures.
//
//   ./build/bench/metrics_exposition [--hosts=1000] [--scrapes=20]
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controller/metrics/fake_node_samples.h"
#include "controller/metrics/fleet_collector.h"
#include "controller/metrics/host_samples.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace kfleet::controller {
namespace {

struct Options {
  int hosts = 1000;
  int scrapes = 20;
};

// What one side measured; sent from the child through a pipe.
struct Figures {
  double fill_ms = 0;    // first batch of every host
  double update_ms = 0;  // the next batch of every host: one sampling round of the fleet
  double scrape_ms = 0;  // Collect() + text serialization, median
  double scrape_min_ms = 0;
  double scrape_max_ms = 0;
  double collect_ms = 0;  // the Collect() part, median
  size_t bytes = 0;       // exposition size
  size_t series = 0;      // sample lines
  long held_kib = 0;      // RSS growth once the fleet is held
  long peak_kib = 0;      // peak RSS growth, scrapes included
};

// CPU time (user + system, page faults included) of this single-threaded process: steadier than
// wall time on a machine shared with other work.
struct Clock {
  using time_point = double;  // ms
  static time_point now() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }
};

double MsSince(Clock::time_point start) { return Clock::now() - start; }

// VmRSS or VmHWM of this process, in KiB.
long StatusKib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, field))
      return std::strtol(line.c_str() + strlen(field), nullptr, 10);
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so that the peak is this side's own.
bool ResetPeak() {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

size_t CountSeries(const std::string& text) {
  size_t n = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (text[pos] != '#') ++n;
    pos = end + 1;
  }
  return n;
}

double Median(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Times `collect` followed by the text serialization that the HTTP handler does.
template <typename Collect>
void TimeScrapes(const Options& options, Collect collect, Figures& figures) {
  std::vector<double> totals;
  std::vector<double> collects;
  std::string text;
  for (int i = 0; i < options.scrapes; ++i) {
    Clock::time_point start = Clock::now();
    std::vector<prometheus::MetricFamily> families = collect();
    collects.push_back(MsSince(start));
    text = prometheus::TextSerializer().Serialize(families);
    totals.push_back(MsSince(start));
  }
  figures.scrape_ms = Median(totals);
  figures.scrape_min_ms = *std::min_element(totals.begin(), totals.end());
  figures.scrape_max_ms = *std::max_element(totals.begin(), totals.end());
  figures.collect_ms = Median(collects);
  figures.bytes = text.size();
  figures.series = CountSeries(text);
}

// kfleet: HostSampleTable + FleetCollector.
Figures RunTable(const Options& options) {
  Figures figures;
  const long base = StatusKib("VmRSS:");
  auto table = std::make_unique<HostSampleTable>();
  std::vector<std::vector<v1::MetricSample>> batches(options.hosts);
  auto update_all = [&](int64_t round) {
    for (int host = 0; host < options.hosts; ++host) batches[host] = FakeNodeSamples(host, round);
    Clock::time_point start = Clock::now();
    for (int host = 0; host < options.hosts; ++host) {
      table->Update(absl::StrCat("id-", host), FakeHostName(host), FakeHostLabels(host),
                    round * 10'000, std::move(batches[host]));
    }
    return MsSince(start);
  };
  figures.fill_ms = update_all(1);
  figures.update_ms = update_all(2);
  batches = {};
  figures.held_kib = StatusKib("VmRSS:") - base;
  FleetCollector collector(*table);
  TimeScrapes(
      options, [&] { return collector.Collect(); }, figures);
  figures.peak_kib = StatusKib("VmHWM:") - base;
  return figures;
}

// The peer: one Family<Gauge> per name, one Gauge per series, labels as prometheus-cpp holds them.
Figures RunRegistry(const Options& options) {
  Figures figures;
  const long base = StatusKib("VmRSS:");
  auto registry = std::make_shared<prometheus::Registry>();
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> families;
  std::vector<std::vector<v1::MetricSample>> batches(options.hosts);
  auto update_all = [&](int64_t round) {
    for (int host = 0; host < options.hosts; ++host) batches[host] = FakeNodeSamples(host, round);
    Clock::time_point start = Clock::now();
    for (int host = 0; host < options.hosts; ++host) {
      std::map<std::string, std::string> host_labels = FakeHostLabels(host);
      host_labels["instance"] = FakeHostName(host);
      host_labels["host"] = FakeHostName(host);
      for (const v1::MetricSample& sample : batches[host]) {
        auto [it, inserted] = families.try_emplace(sample.name(), nullptr);
        if (inserted) {
          it->second = &prometheus::BuildGauge().Name(sample.name()).Register(*registry);
        }
        prometheus::Labels labels = host_labels;
        labels.insert(sample.labels().begin(), sample.labels().end());
        it->second->Add(labels).Set(sample.value());
      }
    }
    return MsSince(start);
  };
  figures.fill_ms = update_all(1);
  figures.update_ms = update_all(2);
  batches = {};
  figures.held_kib = StatusKib("VmRSS:") - base;
  TimeScrapes(
      options, [&] { return registry->Collect(); }, figures);
  figures.peak_kib = StatusKib("VmHWM:") - base;
  return figures;
}

// Runs `side` in a child process and returns its figures; exits on failure.
template <typename Side>
Figures InChild(const char* name, Side side, const Options& options) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (!ResetPeak()) fprintf(stderr, "warning: cannot reset VmHWM; peak figures include more\n");
    Figures figures = side(options);
    bool ok = write(fds[1], &figures, sizeof(figures)) == sizeof(figures);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  Figures figures;
  bool ok = read(fds[0], &figures, sizeof(figures)) == sizeof(figures);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s: the measuring child failed\n", name);
    exit(1);
  }
  return figures;
}

void Print(const char* name, const Figures& f) {
  printf("%s\n", name);
  printf("  fill %.1f ms, update round %.1f ms\n", f.fill_ms, f.update_ms);
  printf("  scrape %.1f ms median (min %.1f, max %.1f), of which Collect() %.1f ms\n", f.scrape_ms,
         f.scrape_min_ms, f.scrape_max_ms, f.collect_ms);
  printf("  %zu series, %.1f MiB exposition, RSS held %.1f MiB, peak growth %.1f MiB\n", f.series,
         f.bytes / 1048576.0, f.held_kib / 1024.0, f.peak_kib / 1024.0);
}

bool ParseFlag(const char* arg, const char* name, int& value) {
  std::string prefix = absl::StrCat("--", name, "=");
  if (!absl::StartsWith(arg, prefix)) return false;
  if (!absl::SimpleAtoi(arg + prefix.size(), &value) || value <= 0) {
    fprintf(stderr, "%s: expected a positive number\n", arg);
    exit(2);
  }
  return true;
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    if (!ParseFlag(argv[i], "hosts", options.hosts) &&
        !ParseFlag(argv[i], "scrapes", options.scrapes)) {
      fprintf(stderr, "usage: %s [--hosts=1000] [--scrapes=20]\n", argv[0]);
      return 2;
    }
  }
  printf("metrics exposition: %d hosts x %zu samples, median of %d scrapes, CPU time\n",
         options.hosts, FakeNodeSamples(0, 1).size(), options.scrapes);
  Figures table = InChild("HostSampleTable", RunTable, options);
  Print("kfleet: HostSampleTable + FleetCollector (latest and previous batch held)", table);
  Figures registry = InChild("prometheus::Registry", RunRegistry, options);
  Print("peer: prometheus::Registry, one Gauge per series", registry);
  printf(
      "peer / kfleet: scrape x%.2f, Collect() x%.2f, update round x%.2f, RSS held x%.2f, "
      "peak x%.2f\n",
      registry.scrape_ms / table.scrape_ms, registry.collect_ms / table.collect_ms,
      registry.update_ms / table.update_ms,
      static_cast<double>(registry.held_kib) / std::max(1L, table.held_kib),
      static_cast<double>(registry.peak_kib) / std::max(1L, table.peak_kib));
  if (table.series != registry.series) {
    fprintf(stderr, "the two expositions differ in series: %zu vs %zu\n", table.series,
            registry.series);
    return 1;
  }
  printf("rerun: ./build/bench/metrics_exposition [--hosts=N] [--scrapes=N]\n");
  return 0;
}

}  // namespace
}  // namespace kfleet::controller

int main(int argc, char** argv) { return kfleet::controller::Main(argc, argv); }
