#include "cli/junit.h"

#include <expat.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The elements of a document parsed with expat, each as "path attr=value..." in document order,
// and the text of each element name.
struct Parsed {
  bool ok = false;
  std::string error;
  std::vector<std::string> elements;
  std::map<std::string, std::string> texts;
  std::vector<std::string> path;
};

Parsed ParseXml(const std::string& xml) {
  Parsed p;
  XML_Parser parser = XML_ParserCreate(nullptr);
  XML_SetUserData(parser, &p);
  XML_SetElementHandler(
      parser,
      [](void* data, const XML_Char* name, const XML_Char** attrs) {
        auto* p = static_cast<Parsed*>(data);
        p->path.push_back(name);
        std::string line = absl::StrJoin(p->path, ">");
        for (int i = 0; attrs[i] != nullptr; i += 2)
          absl::StrAppend(&line, " ", attrs[i], "=", attrs[i + 1]);
        p->elements.push_back(line);
      },
      [](void* data, const XML_Char*) { static_cast<Parsed*>(data)->path.pop_back(); });
  XML_SetCharacterDataHandler(parser, [](void* data, const XML_Char* text, int len) {
    auto* p = static_cast<Parsed*>(data);
    if (!p->path.empty()) p->texts[p->path.back()].append(text, len);
  });
  p.ok = XML_Parse(parser, xml.data(), static_cast<int>(xml.size()), 1) == XML_STATUS_OK;
  if (!p.ok) {
    p.error = absl::StrCat("line ", XML_GetCurrentLineNumber(parser), ": ",
                           XML_ErrorString(XML_GetErrorCode(parser)));
  }
  XML_ParserFree(parser);
  return p;
}

void Add(v1::GetResultsResponse& results, const std::string& suite, const std::string& section,
         const std::string& name, v1::TestStatus status, int64_t ms, const std::string& detail,
         uint32_t run = 1) {
  v1::TestRecord* r = results.add_results();
  r->set_job_id("j-1");
  r->set_host_name("guest-1");
  r->mutable_result()->set_suite(suite);
  r->mutable_result()->set_section(section);
  r->mutable_result()->set_name(name);
  r->mutable_result()->set_status(status);
  r->mutable_result()->set_duration_ms(ms);
  r->mutable_result()->set_detail(detail);
  r->mutable_result()->set_run(run);
}

// Validates that the XML parses back with the counts, classnames, times, failure elements with
// escaped messages, and the re-run summary.
TEST(JunitTest, ParsesBackWithCountsAndFailures) {
  v1::GetResultsResponse results;
  results.mutable_job()->set_id("j-1");
  results.mutable_job()->mutable_spec()->set_name("xfs <smoke> & more");
  Add(results, "fstests", "xfs_crc", "generic/001", v1::TEST_PASS, 1500, "");
  Add(results, "fstests", "xfs_crc", "generic/475", v1::TEST_FAIL, 2000,
      "output mismatch \"<x>\" & 'y'\n--- expected\n+++ got");
  Add(results, "fstests", "xfs_crc", "generic/475", v1::TEST_FAIL, 2100, "again", 2);
  Add(results, "fstests", "xfs_crc", "generic/475", v1::TEST_PASS, 1900, "", 3);
  Add(results, "fstests", "xfs_crc", "xfs/168", v1::TEST_SKIP, 0, "not supported");
  Add(results, "kselftest", "", "size:get_size", v1::TEST_ERROR, 300, "host went away");

  std::string xml = RenderJunit(results);
  Parsed recorder = ParseXml(xml);
  ASSERT_TRUE(recorder.ok) << recorder.error << "\n" << xml;
  EXPECT_THAT(
      recorder.elements,
      ElementsAre(
          "testsuites name=j-1 xfs <smoke> & more tests=4 failures=1 errors=1 skipped=1 "
          "time=3.800",
          "testsuites>testsuite name=fstests.xfs_crc tests=3 failures=1 errors=0 skipped=1 "
          "time=3.500",
          "testsuites>testsuite>testcase classname=fstests.xfs_crc name=generic/001 time=1.500",
          "testsuites>testsuite>testcase classname=fstests.xfs_crc name=generic/475 time=2.000",
          "testsuites>testsuite>testcase>failure message=output mismatch \"<x>\" & 'y'",
          "testsuites>testsuite>testcase>system-out",
          "testsuites>testsuite>testcase classname=fstests.xfs_crc name=xfs/168 time=0.000",
          "testsuites>testsuite>testcase>skipped message=not supported",
          "testsuites>testsuite name=kselftest tests=1 failures=0 errors=1 skipped=0 time=0.300",
          "testsuites>testsuite>testcase classname=kselftest name=size:get_size time=0.300",
          "testsuites>testsuite>testcase>error message=host went away"));
  EXPECT_EQ(recorder.texts["failure"], "output mismatch \"<x>\" & 'y'\n--- expected\n+++ got");
  EXPECT_EQ(recorder.texts["system-out"], "re-run 2 times: 1 failed");
}

// Validates that bytes a test printed which are not valid UTF-8, or are controls XML forbids,
// still give a well-formed document.
TEST(JunitTest, BadBytesStayWellFormed) {
  v1::GetResultsResponse results;
  results.mutable_job()->set_id("j-2");
  Add(results, "exec", "", "bin\x01\xff", v1::TEST_FAIL, -1,
      std::string("nul\0 esc\x1b bad\xc3\x28 cut\xe2\x82 \xef\xbf\xbf ok \xe2\x82\xac\r\n", 34));
  std::string xml = RenderJunit(results);
  Parsed recorder = ParseXml(xml);
  ASSERT_TRUE(recorder.ok) << recorder.error << "\n" << xml;
  EXPECT_THAT(recorder.texts["failure"], HasSubstr("ok \xe2\x82\xac\r\n"));
  EXPECT_THAT(recorder.elements[2], HasSubstr("time=0.000"));
  EXPECT_EQ(XmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(XmlEscape("\x01"), "\xEF\xBF\xBD");
}

// Validates an empty job: a document with no suites.
TEST(JunitTest, NoResults) {
  v1::GetResultsResponse results;
  results.mutable_job()->set_id("j-3");
  EXPECT_EQ(RenderJunit(results),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"j-3\" tests=\"0\" "
            "failures=\"0\" errors=\"0\" skipped=\"0\" time=\"0.000\">\n</testsuites>\n");
}

}  // namespace
}  // namespace kfleet::cli
