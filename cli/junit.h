// A job's test results as JUnit XML, for CI systems (Jenkins, GitLab, GitHub test reporters).
#ifndef KFLEET_CLI_JUNIT_H_
#define KFLEET_CLI_JUNIT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// `text` as XML character data or attribute value: &, <, >, " and ' escaped, bytes that are not
// valid UTF-8 and characters XML 1.0 forbids (controls other than tab, newline and carriage
// return) replaced by U+FFFD.
std::string XmlEscape(absl::string_view text);

// The JUnit XML of `results` (job `results.job().id()`): <testsuites> holding one <testsuite> per
// suite and section, named SUITE or SUITE.SECTION, with its tests, failures, errors, skipped and
// time (seconds) counts; one <testcase classname="SUITE.SECTION" name="TEST" time="S"> per test,
// from its first run (the earliest when several hosts ran it), with <failure>, <error> or
// <skipped> carrying the detail's first line as its message and the whole detail as its text, and
// "re-run N times: K failed" in <system-out> when it was re-run.
std::string RenderJunit(const v1::GetResultsResponse& results);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JUNIT_H_
