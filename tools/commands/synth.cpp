// largedet synth: write a synthetic COCO-format detection dataset (largedet/data/synthetic.h) or,
// with --task classify, an ImageFolder classification dataset (largedet/data/synthetic_classify.h).
#include <filesystem>
#include <iostream>
#include <memory>

#include "command_registry.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/run_lock.h"
#include "largedet/data/synthetic.h"
#include "largedet/data/synthetic_classify.h"
#include "largedet/engine/progress.h"

namespace {

namespace fs = std::filesystem;

// Marks a directory as synth's; written before the set, rewritten with "complete" after it.
constexpr const char* kManifest = "synth.json";

void write_manifest(const std::string& out, const std::string& task, bool complete) {
  largedet::write_file_atomic((fs::path(out) / kManifest).string(),
                              std::string("{\"written_by\": \"largedet synth\", \"task\": \"") +
                                  task + "\", \"complete\": " + (complete ? "true" : "false") +
                                  "}\n");
}

// Refuses a non-empty `out` that an earlier `largedet synth` did not write (no synth.json): synth
// never deletes what it did not write.
void check_out_is_ours(const std::string& out) {
  if (fs::is_regular_file(fs::symlink_status(fs::path(out) / kManifest))) return;
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    if (name != ".largedet.lock")
      throw largedet::Error("--out " + out + " is not empty (it holds " + name +
                                ") and was not written by largedet synth (no " + kManifest + ")",
                            "--out",
                            "choose a new or empty directory (a set written before synth.json "
                            "existed: remove it and write it again)");
  }
}

// The earlier set removed, so that two sets never mix (`largedet pretrain` trains on every image
// under train/: a smaller set would keep a larger one's extra files), and the directory marked
// as synth's before anything of the new set is written.
void clear_earlier_set(const std::string& out, const std::string& task) {
  for (const char* name : {"train", "val", "annotations"}) fs::remove_all(fs::path(out) / name);
  write_manifest(out, task, false);
}

struct SynthArgs {
  largedet::data::SynthOptions detect;
  std::string task = "detect";
  // Options whose default depends on the task: -1 takes the task's.
  int images = -1, size = -1, classes = -1, clutter = -1;
  bool occlusion = false;
};

void setup_synth(CLI::App& cmd) {
  auto args = std::make_shared<SynthArgs>();
  auto& o = args->detect;
  cmd.add_option("--task", args->task,
                 "detect: COCO JSON with shapes (default); classify: ImageFolder "
                 "OUT/{train,val}/<class>/NNNNNN.jpg for `largedet pretrain`")
      ->check(CLI::IsMember({"detect", "classify"}));
  cmd.add_option("--out", o.out_dir, "output directory")->required();
  cmd.add_option("--images", args->images,
                 "number of images, train + val (detect: 100, classify: 8000)")
      ->check(CLI::Range(1, 10000000));
  cmd.add_option("--size", args->size,
                 "detect: long side in pixels, short side 3/4 of it (640); classify: square "
                 "side (64)")
      ->check(CLI::Range(16, 8192));
  cmd.add_option("--seed", o.seed, "random seed: same seed, same bytes");
  cmd.add_option("--val-fraction", o.val_fraction, "fraction of images in val")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--classes", args->classes,
                 "detect: shape classes 1..10, category ids 1..N (4: circle, rectangle, "
                 "triangle, hexagon; then star, ellipse, cross, ring, L-shape, arrow); classify: "
                 "2..16 (16)");
  cmd.add_option("--clutter", args->clutter,
                 "detect: unannotated distractors per image, under or over the objects (0); "
                 "classify: blobs and lines on the background, at most (3)")
      ->check(CLI::Range(0, 1000));
  auto* detect_only = cmd.add_option_group("detection only");
  auto detect_options = std::make_shared<std::vector<const CLI::Option*>>();
  detect_only
      ->add_option("--portrait-fraction", o.portrait_fraction,
                   "fraction of portrait images (0 gives only landscape, e.g. 640x480)")
      ->check(CLI::Range(0.0, 1.0));
  detect_only->add_option("--max-objects", o.max_objects, "shapes per image, at most (6)")
      ->check(CLI::Range(1, 1000));
  detect_only
      ->add_option("--min-scale", o.min_scale,
                   "smallest object size (its circle's diameter) as a fraction of the short side "
                   "(0.12)")
      ->check(CLI::Range(0.001, 0.85));
  detect_only->add_option("--max-scale", o.max_scale, "largest object size, as --min-scale (0.5)")
      ->check(CLI::Range(0.001, 0.85));
  detect_only->add_flag("--log-scale", o.log_scale,
                        "draw sizes log-uniformly (as many small as large objects per octave)");
  detect_only
      ->add_option("--min-visible", o.min_visible,
                   "drop the annotation of an object of which less than this fraction stays "
                   "visible under later objects and clutter (0: annotate all)")
      ->check(CLI::Range(0.0, 0.999));
  detect_only->add_flag("--occlusion", args->occlusion,
                        "drop the annotations of mostly hidden objects: --min-visible 0.3 unless "
                        "given");
  for (auto* option : detect_only->get_options()) detect_options->push_back(option);
  cmd.callback([args, detect_options] {
    auto& o = args->detect;
    largedet::make_directories(o.out_dir, "the output directory");
    check_out_is_ours(o.out_dir);  // before the lock: a refused directory gets no lock file
    const largedet::RunLock lock(o.out_dir, "synth");  // one writer per set
    clear_earlier_set(o.out_dir, args->task);
    if (args->task == "classify") {
      for (const auto* option : *detect_options) {
        if (option->count() > 0)
          throw largedet::Error(option->get_name() + " is an option of the detection task",
                                "--task classify", "leave it out, or use --task detect");
      }
      largedet::data::SynthClassifyOptions c;
      c.out_dir = o.out_dir;
      c.seed = o.seed;
      c.val_fraction = o.val_fraction;
      if (args->images > 0) c.images = args->images;
      if (args->size > 0) c.size = args->size;
      if (args->classes > 0) c.classes = args->classes;
      if (args->clutter >= 0) c.clutter = args->clutter;
      largedet::engine::Progress bar(0, c.images, true);
      c.on_progress = [&](int written, int) { bar.update(written, "images"); };
      const auto r = largedet::data::write_synthetic_classification(c);
      bar.clear();
      write_manifest(o.out_dir, args->task, true);
      std::cout << "wrote " << r.train_images << " train and " << r.val_images << " val images of "
                << r.classes.size() << " classes\n  " << r.train_dir << "\n  " << r.val_dir << "\n";
      return;
    }
    if (args->images > 0) o.images = args->images;
    if (args->size > 0) o.size = args->size;
    if (args->classes > 0) o.classes = args->classes;
    if (args->clutter >= 0) o.clutter = args->clutter;
    if (args->occlusion && o.min_visible == 0) o.min_visible = 0.3;
    // A bar on a terminal (stderr), nothing in logs and pipes: the 800-image demo set takes ~10 s.
    largedet::engine::Progress bar(0, o.images, true);
    o.on_progress = [&](int written, int) { bar.update(written, "images"); };
    const auto r = largedet::data::write_synthetic_coco(o);
    bar.clear();
    write_manifest(o.out_dir, args->task, true);
    std::cout << "wrote " << r.train_images << " train and " << r.val_images << " val images, "
              << r.annotations << " annotations";
    if (o.min_visible > 0) std::cout << " (" << r.dropped_occluded << " hidden objects dropped)";
    std::cout << "\n  " << r.train_json << "\n  " << r.val_json << "\n";
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("synth",
                          "Write a synthetic dataset: COCO-format shapes on textured backgrounds "
                          "(polygon masks, train/val split), or with --task classify an "
                          "ImageFolder for `largedet pretrain`; same seed, same bytes",
                          setup_synth);
