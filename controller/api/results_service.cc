// FleetService: test results, comparisons and expunge lists (DESIGN.md, "Tests and results").
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/expunge_file.h"
#include "common/status_macros.h"
#include "controller/api/fleet_service.h"
#include "controller/results/compare.h"

namespace kfleet::controller {

namespace v1 = kfleet::v1;

namespace {

constexpr int kDefaultPassStreak = 5;
constexpr size_t kMaxExpungeFiles = 10000;

// What a job's fstests step ran on: the file system of each section.
std::map<std::string, std::string> FstypeBySection(const v1::Job& job) {
  std::map<std::string, std::string> out;
  for (const v1::Step& step : job.spec().steps()) {
    if (step.has_test() && step.test().suite() == "fstests") {
      out[step.test().section()] = step.test().fstests().fstype();
    }
  }
  return out;
}

}  // namespace

grpc::ServerUnaryReactor* FleetServiceImpl::GetResults(grpc::CallbackServerContext* ctx,
                                                       const v1::GetResultsRequest* req,
                                                       v1::GetResultsResponse* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/GetResults", "",
                    [this, req, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(*resp->mutable_job(), deps_.store->GetJob(req->job_id()));
                      ASSIGN_OR_RETURN(std::vector<v1::TestRecord> results,
                                       deps_.store->JobResults(req->job_id()));
                      ASSIGN_OR_RETURN(std::vector<v1::TestRecord> history,
                                       deps_.store->TestHistory(req->job_id(), ""));
                      for (v1::TestHistory& h : SummarizeTests(results, history))
                        *resp->add_tests() = std::move(h);
                      for (v1::TestRecord& r : results) *resp->add_results() = std::move(r);
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::CompareResults(grpc::CallbackServerContext* ctx,
                                                           const v1::CompareResultsRequest* req,
                                                           v1::CompareResultsResponse* resp) {
  return OnExecutor(
      ctx, Permission::kRead, "FleetService/CompareResults", "",
      [this, req, resp]() -> absl::Status {
        ASSIGN_OR_RETURN(v1::Job baseline, deps_.store->GetJob(req->baseline_job_id()));
        ASSIGN_OR_RETURN(v1::Job dev, deps_.store->GetJob(req->dev_job_id()));
        ASSIGN_OR_RETURN(std::vector<v1::TestRecord> base_results,
                         deps_.store->JobResults(baseline.id()));
        ASSIGN_OR_RETURN(std::vector<v1::TestRecord> dev_results,
                         deps_.store->JobResults(dev.id()));
        // History of every test of either job.
        ASSIGN_OR_RETURN(std::vector<v1::TestRecord> history,
                         deps_.store->TestHistory(dev.id(), baseline.id()));
        *resp = kfleet::controller::CompareResults(base_results, dev_results, history);
        *resp->mutable_baseline() = std::move(baseline);
        *resp->mutable_dev() = std::move(dev);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ImportExpunges(grpc::CallbackServerContext* ctx,
                                                           const v1::ImportExpungesRequest* req,
                                                           v1::ImportExpungesResponse* resp) {
  return OnExecutor(ctx, Permission::kOperate, "FleetService/ImportExpunges", "",
                    [this, req, resp]() -> absl::Status {
                      if (static_cast<size_t>(req->files_size()) > kMaxExpungeFiles) {
                        return absl::InvalidArgumentError(absl::StrCat(
                            "at most ", kMaxExpungeFiles, " expunge files per import"));
                      }
                      std::vector<v1::ExpungeFile> files(req->files().begin(), req->files().end());
                      std::vector<std::vector<v1::ExpungeEntry>> entries;
                      uint32_t tests = 0;
                      for (const v1::ExpungeFile& f : files) {
                        // The same checks as the path kctl read it from: no empty or traversing
                        // parts.
                        RETURN_IF_ERROR(CheckExpungeLocation(f.kernel(), f.fs(), f.section()));
                        std::string path = ExpungePath(f.kernel(), f.fs(), f.section());
                        ASSIGN_OR_RETURN(std::vector<v1::ExpungeEntry> parsed,
                                         ParseExpungeFile(f.content(), path));
                        tests += static_cast<uint32_t>(parsed.size());
                        entries.push_back(std::move(parsed));
                      }
                      RETURN_IF_ERROR(deps_.store->PutExpunges(files, entries, req->replace()));
                      resp->set_files(static_cast<uint32_t>(files.size()));
                      resp->set_tests(tests);
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ExportExpunges(grpc::CallbackServerContext* ctx,
                                                           const v1::ExportExpungesRequest* req,
                                                           v1::ExportExpungesResponse* resp) {
  return OnExecutor(
      ctx, Permission::kRead, "FleetService/ExportExpunges", "",
      [this, req, resp]() -> absl::Status {
        int streak =
            req->pass_streak() == 0 ? kDefaultPassStreak : static_cast<int>(req->pass_streak());
        ASSIGN_OR_RETURN(std::vector<v1::RemovalCandidate> candidates,
                         deps_.store->RemovalCandidates(req->kernel(), req->fs(), streak));
        for (v1::RemovalCandidate& c : candidates) *resp->add_candidates() = std::move(c);
        if (req->job_id().empty()) {
          ASSIGN_OR_RETURN(std::vector<v1::ExpungeFile> files,
                           deps_.store->ExpungeFiles(req->kernel(), req->fs()));
          for (v1::ExpungeFile& f : files) *resp->add_files() = std::move(f);
          return absl::OkStatus();
        }
        // A job's failing fstests, as the expunge lists of its kernel, each with its failure rate.
        ASSIGN_OR_RETURN(v1::Job job, deps_.store->GetJob(req->job_id()));
        ASSIGN_OR_RETURN(std::vector<v1::TestRecord> results, deps_.store->JobResults(job.id()));
        ASSIGN_OR_RETURN(std::vector<v1::TestRecord> history,
                         deps_.store->TestHistory(job.id(), ""));
        std::map<std::string, std::string> fstype = FstypeBySection(job);
        std::map<std::tuple<std::string, std::string, std::string>, std::vector<v1::ExpungeEntry>>
            lists;
        std::map<std::string, std::string> release_of;  // section -> kernel release
        for (const v1::TestRecord& r : results) {
          if (r.result().suite() == "fstests" && !r.kernel_release().empty()) {
            release_of.emplace(r.result().section(), r.kernel_release());
          }
        }
        for (const v1::TestHistory& t : SummarizeTests(results, history)) {
          if (t.suite() != "fstests" || t.job().failed() == 0) continue;
          std::string kernel =
              !job.build().release().empty() ? job.build().release() : release_of[t.section()];
          std::string fs = fstype[t.section()];
          if (kernel.empty() || fs.empty()) continue;
          if ((!req->kernel().empty() && req->kernel() != kernel) ||
              (!req->fs().empty() && req->fs() != fs)) {
            continue;
          }
          v1::ExpungeEntry e;
          e.set_test(t.name());
          e.set_comment(absl::StrFormat("failure rate %d/%d (job %s)", t.job().failed(),
                                        t.job().runs(), job.id()));
          lists[{kernel, fs, t.section()}].push_back(std::move(e));
        }
        for (const auto& [key, entries] : lists) {
          v1::ExpungeFile* f = resp->add_files();
          f->set_kernel(std::get<0>(key));
          f->set_fs(std::get<1>(key));
          f->set_section(std::get<2>(key));
          f->set_content(FormatExpungeFile(entries));
        }
        return absl::OkStatus();
      });
}

}  // namespace kfleet::controller
