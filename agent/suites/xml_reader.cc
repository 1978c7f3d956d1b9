#include "agent/suites/xml_reader.h"

#include <expat.h>

#include <climits>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

namespace kfleet::agent {
namespace {

struct ParserDeleter {
  void operator()(XML_ParserStruct* parser) const { XML_ParserFree(parser); }
};
using ParserPtr = std::unique_ptr<XML_ParserStruct, ParserDeleter>;

// Everything the C callbacks need; expat's user data points here.
struct Context {
  XML_Parser parser = nullptr;
  XmlHandler* handler = nullptr;
  const XmlLimits* limits = nullptr;
  std::vector<std::string> open;  // names of the open elements, outermost first
  int64_t elements = 0;
  absl::Status status;  // the first error a callback raised
  XmlAttributes attributes;
};

// Records `status` (prefixed with the current line) and stops the parser.
void Fail(Context& ctx, const absl::Status& status) {
  if (!ctx.status.ok()) return;
  ctx.status = absl::Status(
      status.code(),
      absl::StrCat("line ", XML_GetCurrentLineNumber(ctx.parser), ": ", status.message()));
  XML_StopParser(ctx.parser, XML_FALSE);
}

void XMLCALL OnStart(void* data, const XML_Char* name, const XML_Char** attrs) {
  Context& ctx = *static_cast<Context*>(data);
  if (!ctx.status.ok()) return;
  if (static_cast<int>(ctx.open.size()) >= ctx.limits->max_depth) {
    Fail(ctx, absl::ResourceExhaustedError(
                  absl::StrCat("elements nested deeper than ", ctx.limits->max_depth)));
    return;
  }
  if (++ctx.elements > ctx.limits->max_elements) {
    Fail(ctx, absl::ResourceExhaustedError(
                  absl::StrCat("more than ", ctx.limits->max_elements, " elements")));
    return;
  }
  ctx.open.emplace_back(name);
  ctx.attributes.clear();
  for (const XML_Char** a = attrs; a[0] != nullptr && a[1] != nullptr; a += 2) {
    ctx.attributes.emplace_back(a[0], a[1]);
  }
  absl::Status s = ctx.handler->StartElement(name, ctx.attributes);
  if (!s.ok()) Fail(ctx, s);
}

void XMLCALL OnEnd(void* data, const XML_Char* name) {
  Context& ctx = *static_cast<Context*>(data);
  if (!ctx.status.ok()) return;
  if (!ctx.open.empty()) ctx.open.pop_back();
  absl::Status s = ctx.handler->EndElement(name);
  if (!s.ok()) Fail(ctx, s);
}

void XMLCALL OnText(void* data, const XML_Char* text, int len) {
  Context& ctx = *static_cast<Context*>(data);
  if (!ctx.status.ok() || len <= 0) return;
  absl::Status s = ctx.handler->Text(absl::string_view(text, static_cast<size_t>(len)));
  if (!s.ok()) Fail(ctx, s);
}

// A DOCTYPE is where entities are declared; result files never carry one, so refusing it rules out
// entity expansion (billion laughs, external entities) entirely.
void XMLCALL OnDoctype(void* data, const XML_Char* name, const XML_Char*, const XML_Char*, int) {
  Fail(*static_cast<Context*>(data),
       absl::InvalidArgumentError(absl::StrCat("DOCTYPE <!DOCTYPE ", name ? name : "",
                                               "> is not allowed in a result file")));
}

bool IsTruncation(XML_Error code) {
  return code == XML_ERROR_NO_ELEMENTS || code == XML_ERROR_UNCLOSED_TOKEN ||
         code == XML_ERROR_PARTIAL_CHAR || code == XML_ERROR_UNCLOSED_CDATA_SECTION;
}

}  // namespace

absl::Status ReadXml(absl::string_view input, XmlHandler& handler, const XmlLimits& limits) {
  if (input.size() > limits.max_input_bytes || input.size() > static_cast<size_t>(INT_MAX)) {
    return absl::ResourceExhaustedError(absl::StrCat("XML input of ", input.size(),
                                                     " bytes is over the limit of ",
                                                     limits.max_input_bytes, " bytes"));
  }
  ParserPtr parser(XML_ParserCreate(nullptr));
  if (parser == nullptr) return absl::ResourceExhaustedError("cannot create an XML parser");
  Context ctx;
  ctx.parser = parser.get();
  ctx.handler = &handler;
  ctx.limits = &limits;
  XML_SetUserData(parser.get(), &ctx);
  XML_SetElementHandler(parser.get(), OnStart, OnEnd);
  XML_SetCharacterDataHandler(parser.get(), OnText);
  XML_SetStartDoctypeDeclHandler(parser.get(), OnDoctype);
  XML_SetParamEntityParsing(parser.get(), XML_PARAM_ENTITY_PARSING_NEVER);

  if (XML_Parse(parser.get(), input.data(), static_cast<int>(input.size()), XML_TRUE) ==
      XML_STATUS_OK) {
    return absl::OkStatus();
  }
  if (!ctx.status.ok()) return ctx.status;
  const XML_Error code = XML_GetErrorCode(parser.get());
  const std::string line = absl::StrCat("line ", XML_GetCurrentLineNumber(parser.get()), ": ");
  if (IsTruncation(code)) {
    if (ctx.open.empty() && ctx.elements == 0) {
      return absl::DataLossError(absl::StrCat(line, "no root element (empty or truncated input)"));
    }
    return absl::DataLossError(absl::StrCat(
        line, "input ends inside <", ctx.open.empty() ? "?" : ctx.open.back(), "> (truncated)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(line, XML_ErrorString(code)));
}

absl::string_view XmlAttribute(const XmlAttributes& attributes, absl::string_view name,
                               absl::string_view fallback) {
  for (const auto& [key, value] : attributes) {
    if (key == name) return value;
  }
  return fallback;
}

}  // namespace kfleet::agent
