// largedet expand-hierarchy: writes OpenImages ground truth expanded along the class hierarchy,
// as the TF OD API's oid_hierarchical_labels_expansion.py does, for tools that expect the
// challenge's *_expanded.csv files. `largedet evaluate --hierarchy` needs no such step.
#include <iostream>

#include "command_registry.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/evaluation/openimages_hierarchy.h"

namespace {

using namespace largedet::evaluation;

struct ExpandArgs {
  std::string hierarchy, input, output, kind = "auto";
};

// Image-level label files have a Confidence column and no box coordinates.
OidCsvKind kind_of(const ExpandArgs& args, const std::string& text) {
  if (args.kind == "boxes") return OidCsvKind::kBoxes;
  if (args.kind == "labels") return OidCsvKind::kImageLabels;
  std::string header = text.substr(0, text.find('\n'));
  if (!header.empty() && header.back() == '\r') header.pop_back();
  auto has = [&](const std::string& column) {
    return ("," + header + ",").find("," + column + ",") != std::string::npos;
  };
  if (has("XMin")) return OidCsvKind::kBoxes;
  if (has("Confidence")) return OidCsvKind::kImageLabels;
  throw largedet::Error(
      "cannot tell boxes from image-level labels: the header has neither XMin "
      "nor Confidence",
      args.input + ":1", "pass --kind boxes or --kind labels");
}

void setup_expand_hierarchy(CLI::App& cmd) {
  auto args = std::make_shared<ExpandArgs>();
  cmd.add_option("--hierarchy", args->hierarchy,
                 "class hierarchy JSON (bbox_labels_600_hierarchy.json, "
                 "challenge-2019-label500-hierarchy.json)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--input,-i", args->input, "boxes or image-level labels CSV")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--output,-o", args->output, "the expanded CSV")->required();
  cmd.add_option("--kind", args->kind, "boxes, labels, or auto (from the header)")
      ->check(CLI::IsMember({"auto", "boxes", "labels"}))
      ->capture_default_str();
  cmd.callback([args] {
    if (args->output == args->input)
      throw largedet::Error("--output is the input file", args->output, "write to another path");
    const auto hierarchy = OidHierarchy::from_json_file(args->hierarchy);
    const std::string text = largedet::read_file(args->input);
    OidExpansionReport report;
    const std::string out =
        expand_oid_csv(text, kind_of(*args, text), hierarchy, args->input, &report);
    largedet::write_file_atomic(args->output, out);
    std::cout << args->input << ": " << report.summary() << "\n  wrote " << args->output << "\n";
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("expand-hierarchy",
                          "Write OpenImages boxes or image-level labels expanded along the class "
                          "hierarchy (the challenge's *_expanded.csv), as the TF OD API does",
                          setup_expand_hierarchy);
