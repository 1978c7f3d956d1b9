#include "cli/boot_command.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/host_selector.h"
#include "cli/job_follow.h"
#include "cli/kernel_paths.h"
#include "common/duration.h"

namespace kfleet::cli {
namespace {

constexpr char kDefaultBootTimeout[] = "5m";
constexpr uint32_t kMaxMakeJobs = 4096;
constexpr uint32_t kMaxCount = 1000;
constexpr size_t kMaxDefaultNameBytes = 64;

absl::Status BootError(const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("boot: ", s.message()));
}

// A git URL rather than a path: scheme://..., or scp-like user@host:path (a ':' before any '/').
bool LooksLikeUrl(absl::string_view tree) {
  if (absl::StrContains(tree, "://")) return true;
  size_t colon = tree.find(':');
  return colon != absl::string_view::npos && colon < tree.find('/');
}

// "linux-source-6.1" for /usr/src/linux-source-6.1/, "linux" for https://.../linux.git.
std::string TreeName(absl::string_view tree) {
  while (tree.size() > 1 && tree.back() == '/') tree.remove_suffix(1);
  size_t slash = tree.find_last_of("/:");
  if (slash != absl::string_view::npos) tree.remove_prefix(slash + 1);
  absl::ConsumeSuffix(&tree, ".git");
  return std::string(tree);
}

absl::StatusOr<std::string> CheckDuration(const Invocation& inv, absl::string_view flag) {
  std::string text = inv.Get(flag);
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  if (!d.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("boot: --", flag, ": ", d.status().message()));
  }
  return text;
}

absl::StatusOr<int> RunBoot(const Invocation& inv, Context& ctx) {
  absl::StatusOr<v1::JobSpec> spec = BuildBootJob(inv, CurrentDirectory());
  if (!spec.ok()) return spec.status();
  return SubmitAndFollow(*spec, inv.globals.output, ctx);
}

}  // namespace

absl::StatusOr<v1::JobSpec> BuildBootJob(const Invocation& inv, const std::string& cwd) {
  v1::JobSpec spec;
  v1::KernelSource* kernel = spec.mutable_kernel();
  kernel->set_tree(inv.Get("tree"));
  if (kernel->tree().empty()) {
    return absl::InvalidArgumentError(
        "boot: missing --tree: the kernel source, a directory or a git URL, e.g. kctl boot "
        "--tree /usr/src/linux-source-6.1 -l pool=local");
  }
  kernel->set_ref(inv.Get("ref"));
  kernel->set_config(inv.Get("config"));
  kernel->set_localversion(inv.Get("localversion"));
  if (inv.Has("jobs")) {
    uint32_t jobs = 0;
    if (!absl::SimpleAtoi(inv.Get("jobs"), &jobs) || jobs == 0 || jobs > kMaxMakeJobs) {
      return absl::InvalidArgumentError(
          absl::StrCat("boot: --jobs: expected a number from 1 to ", kMaxMakeJobs));
    }
    kernel->set_jobs(jobs);
  }
  MakeKernelPathsAbsolute(*kernel, cwd);
  if (!absl::StartsWith(kernel->tree(), "/") && !LooksLikeUrl(kernel->tree())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "boot: --tree ", kernel->tree(),
        ": no such directory here; give a kernel source directory, an absolute path on the "
        "builder or a git URL"));
  }

  absl::StatusOr<v1::HostSelector> selector =
      BuildHostSelector(false, inv.GetAll("host"), inv.GetAll("label"));
  if (!selector.ok()) return BootError(selector.status());
  if (inv.Has("count")) {
    uint32_t count = 0;
    if (!absl::SimpleAtoi(inv.Get("count"), &count) || count == 0 || count > kMaxCount) {
      return absl::InvalidArgumentError(
          absl::StrCat("boot: --count: expected a number from 1 to ", kMaxCount));
    }
    if (selector->labels().empty()) {
      return absl::InvalidArgumentError(
          "boot: --count needs -l KEY=VALUE: it picks that many hosts carrying the labels");
    }
    selector->set_count(count);
  } else if (!selector->labels().empty()) {
    // One host carrying the labels, waited for (a pool grows a guest for it), rather than every
    // online host that has them: rebooting is not something to do by surprise.
    selector->set_count(1);
  }
  *spec.mutable_hosts() = *std::move(selector);

  v1::Step* build = spec.add_steps();
  build->mutable_kernel_build();
  if (inv.Has("build-timeout")) {
    absl::StatusOr<std::string> t = CheckDuration(inv, "build-timeout");
    if (!t.ok()) return t.status();
    build->set_timeout(*t);
  }
  spec.add_steps()->mutable_kernel_install();
  v1::Step* reboot = spec.add_steps();
  reboot->mutable_reboot();
  reboot->set_timeout(kDefaultBootTimeout);
  if (inv.Has("boot-timeout")) {
    absl::StatusOr<std::string> t = CheckDuration(inv, "boot-timeout");
    if (!t.ok()) return t.status();
    reboot->set_timeout(*t);
  }
  if (inv.has_argv) {
    if (inv.argv.empty()) {
      return absl::InvalidArgumentError(
          "boot: nothing after \"--\": give the command to run on the new kernel, e.g. -- "
          "uname -r, or leave \"--\" out");
    }
    v1::ExecStep* exec = spec.add_steps()->mutable_exec();
    for (const std::string& arg : inv.argv) exec->add_argv(arg);
  }

  if (inv.Has("kselftest")) {
    // Built with the kernel on the builder, run on each host after the reboot.
    v1::TestStep* test = spec.add_steps()->mutable_test();
    test->set_suite("kselftest");
    for (absl::string_view t : absl::StrSplit(inv.Get("kselftest"), ',', absl::SkipEmpty())) {
      test->mutable_kselftest()->add_targets(std::string(t));
    }
    if (test->kselftest().targets().empty()) {
      return absl::InvalidArgumentError(
          "boot: --kselftest: expected kselftest collections, e.g. --kselftest size,timers");
    }
    test->set_skips_ok(inv.Has("skips-ok"));
  } else if (inv.Has("skips-ok")) {
    return absl::InvalidArgumentError(
        "boot: --skips-ok is for the kselftests: give --kselftest TARGETS too");
  }

  std::string name = inv.Get("name");
  if (name.empty()) {
    name = absl::StrCat("boot ", TreeName(kernel->tree()));
    if (!kernel->ref().empty()) absl::StrAppend(&name, " ", kernel->ref());
    if (name.size() > kMaxDefaultNameBytes) {
      name = absl::StrCat(name.substr(0, kMaxDefaultNameBytes - 3), "...");
    }
  }
  spec.set_name(name);
  return spec;
}

CommandSpec BootCommand() {
  return CommandSpec{
      .name = "boot",
      .synopsis =
          "boot --tree PATH|URL [--ref REF] [--config BASE[+FRAGMENT...]] [--localversion STR] "
          "[--jobs N] (-l KEY=VALUE... [--count N] | --host NAME...) [--boot-timeout DURATION] "
          "[--build-timeout DURATION] [--kselftest TARGETS [--skips-ok]] [--name NAME] "
          "[-- ARGV...]",
      .summary = "build (or reuse) a kernel, install it, reboot into it, verify; exit 0 on PASS",
      .description =
          "Submits a job that builds the kernel of --tree on a host labelled role=builder (the "
          "controller's own machine in the default setup), installs it on the chosen hosts, "
          "reboots them into it and checks that the kernel running afterwards is the one built "
          "(release and build identity). With \"-- ARGV...\", ARGV then runs on each host, on "
          "the new kernel. With --kselftest, those kselftest collections are built with the "
          "kernel and run on each host after ARGV; their results are stored per test (kctl "
          "results JOB). The job is the one this spec file would describe, for kctl run -f:\n\n"
          "    kernel: {tree: /usr/src/linux-source-6.1}\n"
          "    hosts: {labels: {pool: local}, count: 1}\n"
          "    steps:\n"
          "      - kernel_build: {}\n"
          "      - kernel_install: {}\n"
          "      - reboot: {timeout: 5m}\n"
          "      - exec: [uname, -r]\n"
          "      - test: {suite: kselftest, kselftest: {targets: [size]}}   # --kselftest size\n\n"
          "A build is identified by a hash of the source (commit, or content of the tree), the "
          "final .config and the compiler; a build already in the controller's artifact store is "
          "reused, not built again.\n\n"
          "Without --config, the builder uses kfleet's guest config: tinyconfig plus "
          "deploy/kernel/kfleet-guest.config, a small kernel that boots in both guest images "
          "(tiny and debian). BASE is a make target (defconfig, tinyconfig, allnoconfig, ...) "
          "or a .config file; each FRAGMENT is a Kconfig fragment file, kfleet-guest, or a "
          "fragment of the tree (kvm_guest.config), merged in order, then olddefconfig. An "
          "option a fragment asks for that the final .config does not have (olddefconfig drops "
          "an option whose dependencies are not met) fails the build, naming the option, the "
          "value asked and got, and what it depends on in Kconfig.\n\n"
          "A relative --tree, and parts of --config that name files here, are made absolute "
          "before the job is submitted: the builder does not run in your directory. The tree "
          "must be clean (make mrproper): kfleet builds out of tree.\n\n"
          "With -l and without --count, the job takes one host carrying the labels, waiting for "
          "it (a pool with those labels grows a guest for it); --count N takes N. With --host, "
          "it runs on each named host. A host that does not register again within "
          "--boot-timeout is power-cycled by its pool's provider and the verdict is BOOT_FAILED, "
          "with the serial console kept as the reboot command's console log.\n\n"
          "Progress and the report are as for kctl run: a live table on a terminal, a line per "
          "change otherwise; at the end one line per command, the kernel release and build, the "
          "build time, the boot time (from reboot to registration), the total time and the "
          "verdict, which is also the exit status.",
      .flags =
          {
              {.name = "tree",
               .value_name = "PATH|URL",
               .help = "The kernel source: a directory (a tree or a git work tree) or a git URL "
                       "(https://, git://, ssh://, file://, user@host:path)."},
              {.name = "ref",
               .value_name = "REF",
               .help = "A git branch, tag or commit. Default: the directory as it is on disk, or "
                       "the URL's default branch."},
              {.name = "config",
               .value_name = "BASE[+FRAGMENT...]",
               .help = "The kernel config, e.g. defconfig+kvm_guest.config or "
                       "tinyconfig+kfleet-guest+./debug.config. Default: tinyconfig+kfleet-guest "
                       "(kfleet's guest config, which boots in both guest images)."},
              {.name = "localversion",
               .value_name = "STR",
               .help = "Appended to the kernel release (CONFIG_LOCALVERSION), e.g. -test."},
              {.name = "jobs",
               .value_name = "N",
               .help = "make -jN on the builder. Default: the builder's CPU count."},
              {.name = "label",
               .short_name = 'l',
               .value_name = "KEY=VALUE",
               .help = "Boot on hosts carrying all the given labels: one, or --count N; "
                       "-l a=1,b=2 is -l a=1 -l b=2.",
               .repeatable = true},
              {.name = "count",
               .value_name = "N",
               .help = "With -l: boot on N distinct hosts carrying the labels (default 1)."},
              {.name = "host",
               .value_name = "NAME",
               .help = "Boot on this host (NAME or N1,N2), waiting for it if it is offline.",
               .repeatable = true},
              {.name = "boot-timeout",
               .value_name = "DURATION",
               .help = "How long a host may take from reboot to registering again (default "
                       "5m); then it is BOOT_FAILED."},
              {.name = "build-timeout",
               .value_name = "DURATION",
               .help = "End the build after this long (TIMEOUT). Default: the controller's "
                       "default for kernel_build steps."},
              {.name = "kselftest",
               .value_name = "TARGETS",
               .help = "Comma-separated kselftest collections (size,timers,...) built with the "
                       "kernel and run on the new kernel; a failing test makes the verdict "
                       "FAIL, and a host where every test was skipped NOTHING_RAN."},
              {.name = "skips-ok",
               .help = "With --kselftest: a host where every test was skipped passes (the "
                       "skips are expected) rather than ending NOTHING_RAN."},
              {.name = "name",
               .value_name = "NAME",
               .help = "The job's name in kctl jobs. Default: \"boot\", the tree's name and "
                       "REF."},
          },
      .max_args = 0,
      .takes_argv = true,
      .argv_optional = true,
      .argv_example = "--tree /usr/src/linux-source-6.1 -l pool=local -- uname -r",
      .exit_codes = {{kExitOk, "the kernel booted on every host (and ARGV passed)"},
                     {kExitFail,
                      "the build failed, or ARGV or a kselftest failed on the new kernel (FAIL)"},
                     {kExitUsage, "bad flags, or the controller refused the job (e.g. no builder)"},
                     {kExitUnreachable, ""},
                     {kExitBootFailed,
                      "a host did not come back, or came back with another kernel (BOOT_FAILED)"},
                     {kExitTimeout, "the build or ARGV ran past its timeout (TIMEOUT)"},
                     {kExitInfraError, ""},
                     {kExitCancelled, "the job was cancelled (kctl cancel)"},
                     {kExitNotFound, "a host named with --host is not known"},
                     {kExitNothingRan,
                      "every kselftest was skipped on a host (NOTHING_RAN; not with --skips-ok)"}},
      .examples =
          "kctl boot --tree /usr/src/linux-source-6.1 -l pool=local -- uname -r\n"
          "# and run kselftest's size and timers collections on it\n"
          "kctl boot --tree /usr/src/linux-source-6.1 -l pool=local --kselftest size,timers\n"
          "# a tag of a git tree, with a config of your own, on two named hosts\n"
          "kctl boot --tree https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git \\\n"
          "    --ref v6.1.158 --config defconfig+kvm_guest.config --host guest-1 --host guest-2\n"
          "# the tree here with a debug fragment, on three guests, a shorter boot deadline\n"
          "kctl boot --tree . --config tinyconfig+kfleet-guest+debug.config --localversion -dbg "
          "\\\n"
          "    -l pool=local --count 3 --boot-timeout 2m\n",
      .run = &RunBoot,
  };
}

}  // namespace kfleet::cli
