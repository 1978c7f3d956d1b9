#include "cli/kctl.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/fake_fleet_service.h"
#include "cli/reconnector.h"
#include "google/protobuf/util/json_util.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kNow = absl::FromUnixSeconds(1714564984);

v1::LogData Chunk(const std::string& command, const std::string& host, v1::LogStream stream,
                  const std::string& data) {
  v1::LogData d;
  d.set_command_id(command);
  d.set_host_name(host);
  d.set_stream(stream);
  d.set_data(data);
  return d;
}

v1::CommandInfo Command(const std::string& id, const std::string& host) {
  v1::CommandInfo c;
  c.set_id(id);
  c.set_host_name(host);
  c.set_state(v1::COMMAND_PENDING);
  return c;
}

void Finish(v1::CommandInfo* c, v1::Verdict verdict, int exit_code, int64_t wall_ms,
            const std::string& detail) {
  c->set_state(v1::COMMAND_FINISHED);
  c->mutable_result()->set_verdict(verdict);
  c->mutable_result()->set_exit_code(exit_code);
  c->mutable_result()->set_wall_ms(wall_ms);
  c->mutable_result()->set_detail(detail);
}

class KctlTest : public ::testing::Test {
 protected:
  KctlTest() {
    service_.job.set_id("j-1");
    service_.job.set_state(v1::JOB_RUNNING);
    *service_.job.add_commands() = Command("c-a", "a");
    *service_.job.add_commands() = Command("c-b", "host-b");
  }

  // Runs kctl against the fake controller, with no environment and a fixed clock.
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    Io io{.out = out_,
          .err = err_,
          .now = [this] { return now_; },
          .sleep = [this](absl::Duration d) { now_ += d; },
          .tz = absl::UTCTimeZone()};
    args.insert(args.begin(), {"--insecure", "--controller", server_.address()});
    EnvLookup no_env = [](absl::string_view) { return std::nullopt; };
    return RunKctl(args, io, no_env, absl::Seconds(5));
  }

  v1::Job EndedJob(v1::Verdict verdict) {
    v1::Job job = service_.job;
    job.set_state(v1::JOB_DONE);
    job.set_verdict(verdict);
    Finish(job.mutable_commands(0), v1::PASS, 0, 1200, "");
    Finish(job.mutable_commands(1), v1::FAIL, 3, 400, "exited with status 3");
    return job;
  }

  v1::LogData End(v1::Verdict verdict) {
    v1::LogData end;
    end.set_end(true);
    *end.mutable_job() = EndedJob(verdict);
    return end;
  }

  absl::Time now_ = kNow;  // advanced by kctl's sleeps
  FakeFleetService service_;
  FakeFleetServer server_{service_};
  std::ostringstream out_;
  std::ostringstream err_;
};

// Validates exec end to end: the job sent, output interleaved by line with padded host prefixes,
// stderr lines on stderr, partial lines flushed at the end, a summary per host, exit code 1 on
// FAIL.
TEST_F(KctlTest, ExecStreamsPrefixedLines) {
  service_.logs = {
      Chunk("c-a", "a", v1::STDOUT, "hel"),  Chunk("c-b", "host-b", v1::STDOUT, "one\n"),
      Chunk("c-a", "a", v1::STDOUT, "lo\n"), Chunk("c-b", "host-b", v1::STDERR, "warn\n"),
      Chunk("c-a", "a", v1::STDOUT, "tail"), End(v1::FAIL)};
  EXPECT_EQ(Run({"exec", "-l", "pool=local", "--timeout", "1m", "--", "sh", "-c", "x"}), 1);
  EXPECT_EQ(out_.str(),
            "host-b | one\n"
            "a      | hello\n"
            "a      | tail\n");
  EXPECT_EQ(err_.str(),
            "job j-1: a, host-b\n"
            "host-b | warn\n"
            "a: PASS (exit 0, 1.2s)\n"
            "host-b: FAIL (exited with status 3, 0.4s)\n");

  v1::SubmitJobRequest submit = service_.last_submit();
  EXPECT_EQ(submit.spec().hosts().labels().at("pool"), "local");
  ASSERT_EQ(submit.spec().steps_size(), 1);
  EXPECT_EQ(submit.spec().steps(0).timeout(), "1m");
  EXPECT_THAT(submit.spec().steps(0).exec().argv(), ElementsAre("sh", "-c", "x"));
  EXPECT_EQ(service_.last_tail().job_id(), "j-1");
  EXPECT_TRUE(service_.last_tail().follow());
}

// Validates that exec exits with the code of the job's verdict.
TEST_F(KctlTest, ExecExitCodes) {
  service_.logs = {End(v1::PASS)};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 0);
  service_.logs = {End(v1::TIMEOUT)};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 5);
  service_.logs = {End(v1::CANCELLED)};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 7);
}

// Validates exec -o json: one LogData per line, unprefixed, the last with the finished job.
TEST_F(KctlTest, ExecJson) {
  service_.logs = {Chunk("c-a", "a", v1::STDOUT, "x\n"), End(v1::PASS)};
  EXPECT_EQ(Run({"exec", "--all", "-o", "json", "--", "true"}), 0);
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  v1::LogData first, last;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &first).ok());
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[1], &last).ok());
  EXPECT_EQ(first.data(), "x\n");
  EXPECT_THAT(lines[0], HasSubstr("\"command_id\":\"c-a\""));
  EXPECT_TRUE(last.end());
  EXPECT_EQ(last.job().verdict(), v1::PASS);
  EXPECT_EQ(err_.str(), "");
}

// Validates that a log stream ending without its end message is an error, not a silent pass.
TEST_F(KctlTest, ExecStreamEndsEarly) {
  service_.logs = {Chunk("c-a", "a", v1::STDOUT, "x\n")};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 3);
  EXPECT_THAT(err_.str(), HasSubstr("kctl: the log stream of job j-1 ended before the job did"));
}

// Validates that exec waits out a controller restart and prints each byte once, although the
// logs are sent again from their beginning.
TEST_F(KctlTest, ExecReconnects) {
  grpc::Status gone(grpc::StatusCode::UNAVAILABLE, "Socket closed");
  service_.tail_scripts = {{{Chunk("c-a", "a", v1::STDOUT, "line 0\nli")}, gone},
                           {{}, gone},
                           {{Chunk("c-a", "a", v1::STDOUT, "line 0\nline 1\nline"),
                             Chunk("c-a", "a", v1::STDOUT, " 2\n"), End(v1::PASS)},
                            grpc::Status::OK}};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 0);
  EXPECT_EQ(out_.str(),
            "a      | line 0\n"
            "a      | line 1\n"
            "a      | line 2\n");
  EXPECT_THAT(err_.str(), HasSubstr(absl::StrCat("kctl: lost the controller at ", server_.address(),
                                                 "; reconnecting for up to 2m\n")));
  EXPECT_THAT(err_.str(), HasSubstr("kctl: reconnected to the controller at "));
}

// Validates that exec gives up, exit 3, when the controller stays away for the whole window.
TEST_F(KctlTest, ExecGivesUp) {
  service_.tail_scripts = {{{}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed")}};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 3);
  EXPECT_GE(now_ - kNow, kReconnectWindow);
  EXPECT_LT(now_ - kNow, kReconnectWindow + absl::Seconds(10));
  EXPECT_THAT(err_.str(), HasSubstr("kctl: cannot reach the controller at "));
}

// Validates that other errors are not retried.
TEST_F(KctlTest, ExecDoesNotRetryOtherErrors) {
  service_.tail_scripts = {{{}, grpc::Status(grpc::StatusCode::INTERNAL, "disk on fire")}};
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 3);
  EXPECT_EQ(now_, kNow);
  EXPECT_THAT(err_.str(), HasSubstr("kctl: TailLogs: disk on fire\n"));
}

// Validates that bad input is reported before the controller is contacted.
TEST_F(KctlTest, UsageErrorsDoNotConnect) {
  EXPECT_EQ(Run({"exec", "--all", "--timeout", "5x", "--", "true"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("kctl: exec: --timeout: invalid duration \"5x\""));
  EXPECT_EQ(Run({"hsots"}), 2);
  EXPECT_EQ(err_.str(),
            "kctl: unknown command \"hsots\" (did you mean \"hosts\"?); see kctl --help\n");
  EXPECT_EQ(Run({"help", "exec"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("NAME\n    kctl exec - "));
  EXPECT_EQ(Run({"logs", "--help"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("NAME\n    kctl logs - "));
  EXPECT_EQ(Run({"version"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("kctl "));
  EXPECT_THAT(service_.calls(), IsEmpty());
}

// Validates that a command's log is written byte for byte: NULs, invalid UTF-8, no final newline.
TEST_F(KctlTest, LogsCommandIsBinarySafe) {
  std::string blob;
  for (int i = 0; i < 3000; ++i) blob.push_back(static_cast<char>((i * 7) % 256));
  service_.logs = {Chunk("c-a", "a", v1::STDOUT, blob.substr(0, 1000)),
                   Chunk("c-a", "a", v1::STDOUT, blob.substr(1000))};
  EXPECT_EQ(Run({"logs", "c-a", "--stream", "stdout"}), 0);
  EXPECT_EQ(out_.str(), blob);
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(service_.last_tail().command_id(), "c-a");
  EXPECT_THAT(service_.last_tail().streams(), ElementsAre(v1::STDOUT));
  EXPECT_FALSE(service_.last_tail().follow());
}

// Validates job logs: host prefixes padded from the job's commands, stderr on stderr, -f sent.
TEST_F(KctlTest, LogsJobPrefixes) {
  service_.logs = {Chunk("c-a", "a", v1::STDOUT, "out\n"),
                   Chunk("c-b", "host-b", v1::STDERR, "err"), End(v1::PASS)};
  EXPECT_EQ(Run({"logs", "-f", "j-1"}), 0);
  EXPECT_EQ(out_.str(), "a      | out\n");
  EXPECT_EQ(err_.str(), "host-b | err\n");
  EXPECT_TRUE(service_.last_tail().follow());
  EXPECT_THAT(service_.calls(), ElementsAre("GetJob j-1", "TailLogs"));
}

// Validates the message and exit code when nothing listens at the controller's address.
TEST_F(KctlTest, ControllerUnreachable) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);  // bound, never listened: connections are refused
  std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  EXPECT_EQ(Run({"hosts", "--controller", address}), 3);
  EXPECT_THAT(err_.str(),
              StartsWith(absl::StrCat("kctl: cannot reach the controller at ", address, " (")));
  EXPECT_THAT(err_.str(), HasSubstr("): start it, or point kctl elsewhere with --controller "
                                    "HOST:PORT or KFLEET_CONTROLLER\n"));
  EXPECT_EQ(Run({"logs", "-f", "c-1", "--controller", address}), 3);
}

// Validates that NOT_FOUND exits 8 and names the call.
TEST_F(KctlTest, NotFound) {
  service_.error = grpc::Status(grpc::StatusCode::NOT_FOUND, "no job \"j-x\"");
  EXPECT_EQ(Run({"job", "j-x"}), 8);
  EXPECT_EQ(err_.str(), "kctl: GetJob: no job \"j-x\"\n");
  service_.error = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad selector");
  EXPECT_EQ(Run({"exec", "--all", "--", "true"}), 2);
  EXPECT_EQ(err_.str(), "kctl: SubmitJob: bad selector\n");
}

// Validates job --watch off a terminal: every snapshot printed, exit code from the verdict.
TEST_F(KctlTest, WatchExitsWithVerdict) {
  service_.watch = {service_.job, EndedJob(v1::TIMEOUT)};
  EXPECT_EQ(Run({"job", "-w", "j-1"}), 5);
  EXPECT_EQ(service_.calls(), std::vector<std::string>{"WatchJob j-1"});
  std::string out = out_.str();
  EXPECT_THAT(out, StartsWith("ID:        j-1\n"));
  EXPECT_THAT(out, HasSubstr("\n\nID:        j-1\n"));
  EXPECT_THAT(out, HasSubstr("Verdict:   TIMEOUT\n"));
  EXPECT_THAT(out, Not(HasSubstr("\x1b[")));

  service_.watch = {service_.job};
  EXPECT_EQ(Run({"job", "j-1", "--watch"}), 3);
  EXPECT_THAT(err_.str(), HasSubstr("the stream ended before job j-1 did"));
}

// Validates list output: a table, or one JSON document with proto field names.
TEST_F(KctlTest, HostsAndJobs) {
  v1::Host* h = service_.hosts.add_hosts();
  h->set_name("guest-1");
  h->set_state(v1::ONLINE);
  h->set_last_seen_unix_ms(absl::ToUnixMillis(kNow - absl::Seconds(3)));
  EXPECT_EQ(Run({"hosts"}), 0);
  EXPECT_EQ(out_.str(),
            "NAME      STATE    KIND   LABELS   KERNEL   LAST-SEEN\n"
            "guest-1   online   test   -        -        3s ago\n");
  EXPECT_EQ(Run({"hosts", "-o", "json"}), 0);
  v1::ListHostsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &parsed).ok());
  EXPECT_EQ(parsed.hosts(0).name(), "guest-1");
  EXPECT_THAT(out_.str(), HasSubstr("\"last_seen_unix_ms\""));
  EXPECT_THAT(out_.str(), Not(HasSubstr("\"builder\"")));

  service_.job.set_created_unix_ms(absl::ToUnixMillis(kNow - absl::Minutes(2)));
  EXPECT_EQ(Run({"jobs"}), 0);
  EXPECT_EQ(out_.str(),
            "ID    NAME   STATE     VERDICT   HOSTS   CREATED               AGE\n"
            "j-1   -      running   -         2       2024-05-01 12:01:04   2m\n");
}

// Validates that builders (role=builder) are marked in the table and in JSON.
TEST_F(KctlTest, HostsMarkBuilders) {
  v1::Host* b = service_.hosts.add_hosts();
  b->set_name("local-builder");
  b->set_state(v1::ONLINE);
  (*b->mutable_labels())["role"] = "builder";
  b->set_last_seen_unix_ms(absl::ToUnixMillis(kNow - absl::Seconds(1)));
  v1::Host* g = service_.hosts.add_hosts();
  g->set_name("guest-1");
  g->set_state(v1::ONLINE);
  (*g->mutable_labels())["role"] = "guest";
  g->set_last_seen_unix_ms(absl::ToUnixMillis(kNow - absl::Seconds(3)));
  EXPECT_EQ(Run({"hosts"}), 0);
  EXPECT_EQ(out_.str(),
            "NAME            STATE    KIND      LABELS         KERNEL   LAST-SEEN\n"
            "guest-1         online   test      role=guest     -        3s ago\n"
            "local-builder   online   builder   role=builder   -        1s ago\n");
  EXPECT_EQ(Run({"hosts", "-o", "json"}), 0);
  v1::ListHostsResponse parsed;
  google::protobuf::util::JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &parsed, lenient).ok());
  ASSERT_EQ(parsed.hosts_size(), 2);
  EXPECT_EQ(parsed.hosts(1).name(), "local-builder");
  // One "builder": true, last in the builder's object (the second, by name).
  std::string text = out_.str();
  size_t mark = text.find("\"builder\": true");
  ASSERT_NE(mark, std::string::npos) << text;
  EXPECT_EQ(text.find("\"builder\": true", mark + 1), std::string::npos) << text;
  EXPECT_GT(mark, text.find("\"local-builder\"")) << text;
  EXPECT_TRUE(absl::EndsWith(text, "\"builder\": true\n    }\n  ]\n}\n")) << text;
}

// Validates that kctl without --insecure and without TLS settings says where they come from, exit
// 2, and that a config file named by KFLEET_CONFIG must exist; neither reaches the controller.
TEST_F(KctlTest, NoTlsSettings) {
  Io io{.out = out_, .err = err_, .tz = absl::UTCTimeZone()};
  EnvLookup no_env = [](absl::string_view) { return std::nullopt; };
  EXPECT_EQ(RunKctl({"hosts", "--controller", server_.address()}, io, no_env), 2);
  EXPECT_EQ(err_.str(),
            "kctl: no TLS settings: use kctl --config STATE_DIR/kctl.yaml (the controller writes "
            "it on first start) or set KFLEET_CONFIG; --insecure only for a plaintext controller "
            "on loopback\n");

  err_.str("");
  EnvLookup env = [](absl::string_view name) -> std::optional<std::string> {
    if (name == "KFLEET_CONFIG") return "/nonexistent/kctl.yaml";
    return std::nullopt;
  };
  EXPECT_EQ(RunKctl({"whoami"}, io, env), 2);
  EXPECT_EQ(err_.str(),
            "kctl: the config file /nonexistent/kctl.yaml (from KFLEET_CONFIG) does not exist; "
            "the controller writes STATE_DIR/kctl.yaml on first start\n");
  EXPECT_THAT(service_.calls(), IsEmpty());
}

// Validates what cancel prints and that it exits 0.
TEST_F(KctlTest, Cancel) {
  service_.job.mutable_commands(0)->set_cancel_requested(true);
  service_.job.mutable_commands(0)->set_state(v1::COMMAND_RUNNING);
  EXPECT_EQ(Run({"cancel", "j-1"}), 0);
  EXPECT_EQ(out_.str(), "cancelled job j-1: 1 command\n");
  EXPECT_EQ(service_.calls(), std::vector<std::string>{"CancelJob j-1"});
}

}  // namespace
}  // namespace kfleet::cli
