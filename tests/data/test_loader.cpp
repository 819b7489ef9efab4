// Loader on a synthetic dataset: identical batches whatever the worker count, full epochs, and
// bad images (missing, corrupt) skipped, counted and replaced, or errors in strict mode.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <set>
#include <thread>

#include "data_test_util.h"
#include "largedet/core/error.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/data/loader.h"
#include "largedet/data/mapper.h"
#include "largedet/data/synthetic.h"

namespace largedet::data {
namespace {

using testing::TempDir;

struct Synth {
  TempDir dir;
  SynthResult files;
  explicit Synth(int images = 12) {
    SynthOptions o;
    o.out_dir = dir.path();
    o.images = images;
    o.size = 96;
    o.seed = 5;
    o.val_fraction = 0.0;
    files = write_synthetic_coco(o);
  }
  std::shared_ptr<Dataset> dataset(bool strict = false) const {
    CocoDatasetOptions o;
    o.image_root = files.train_dir;
    o.strict = strict;
    return std::make_shared<Dataset>(load_coco_dataset(files.train_json, o));
  }
};

LoaderOptions loader_options(int workers) {
  LoaderOptions o;
  o.num_workers = workers;
  o.prefetch = 2;
  o.seed = 11;
  o.mapper.min_sizes = {64, 80, 96};
  o.mapper.max_size = 200;
  o.mapper.target.masks = true;
  return o;
}

std::vector<Batch> run(const std::shared_ptr<Dataset>& d, int workers, int batches,
                       bool infinite = true) {
  BatchSamplerOptions so;
  so.batch_size = 3;
  so.infinite = infinite;
  DataLoader loader(d, BatchSampler(DistributedSampler(d->size(), 0, 1, true, 4), *d, so),
                    loader_options(workers));
  std::vector<Batch> out;
  for (int k = 0; k < batches; ++k) {
    auto b = loader.next();
    if (!b) break;
    out.push_back(std::move(*b));
  }
  return out;
}

TEST(Loader, BatchesAreIdenticalWhateverTheWorkerCount) {
  Synth synth;
  const auto d = synth.dataset();
  const auto reference = run(d, 0, 10);  // 10 batches of 3 over 12 images: crosses epochs
  ASSERT_EQ(reference.size(), 10u);
  bool any_flip = false, any_size_change = false;
  for (const auto& b : reference) {
    for (bool f : b.flipped) any_flip |= f;
    any_size_change |= b.image_sizes[0] != reference[0].image_sizes[0];
  }
  EXPECT_TRUE(any_flip);
  EXPECT_TRUE(any_size_change);
  for (int workers : {1, 3}) {
    const auto batches = run(d, workers, 10);
    ASSERT_EQ(batches.size(), reference.size());
    for (size_t k = 0; k < batches.size(); ++k) {
      EXPECT_EQ(batches[k].image_ids, reference[k].image_ids) << workers << " workers";
      EXPECT_EQ(batches[k].flipped, reference[k].flipped);
      EXPECT_TRUE(at::equal(batches[k].images, reference[k].images));
      for (size_t j = 0; j < batches[k].targets.size(); ++j) {
        EXPECT_TRUE(at::equal(batches[k].targets[j].boxes, reference[k].targets[j].boxes));
        EXPECT_TRUE(
            at::equal(batches[k].targets[j].mask_edges, reference[k].targets[j].mask_edges));
      }
    }
  }
}

TEST(Loader, FiniteEpochCoversTheDatasetAndTargetsAreValid) {
  Synth synth;
  const auto d = synth.dataset();
  const auto batches = run(d, 2, 100, false);
  std::set<int64_t> ids;
  for (const auto& b : batches) {
    EXPECT_EQ(b.images.scalar_type(), at::kByte);
    for (size_t j = 0; j < b.targets.size(); ++j) {
      ids.insert(b.image_ids[j]);
      EXPECT_LE(b.decoded_sizes[j][0], b.images.size(2));
      EXPECT_LE(b.decoded_sizes[j][1], b.images.size(3));
      const auto& t = b.targets[j];
      ASSERT_GT(t.size(), 0);
      EXPECT_GE(t.labels.min().item<int64_t>(), 1);
      EXPECT_LE(t.labels.max().item<int64_t>(), 4);
      EXPECT_GE(t.boxes.min().item<float>(), 0.f);
      EXPECT_LE(t.boxes.select(1, 2).max().item<float>(), b.image_sizes[j][1] + 1e-3);
      EXPECT_LE(t.boxes.select(1, 3).max().item<float>(), b.image_sizes[j][0] + 1e-3);
      ASSERT_EQ(t.mask_edges.size(0), t.size());
      // Every edge lies inside the resized image.
      EXPECT_LE(t.mask_edges.select(2, 0).max().item<float>(), b.image_sizes[j][1] + 1e-3);
      EXPECT_LE(t.mask_edges.select(2, 2).max().item<float>(), b.image_sizes[j][0] + 1e-3);
    }
  }
  EXPECT_EQ(ids.size(), d->size());
}

TEST(Loader, MissingAndCorruptImagesAreSkippedCountedAndReplaced) {
  Synth synth;
  const auto d = synth.dataset();
  std::remove(d->records[0].path.c_str());
  testing::write_text(d->records[1].path, "this is not a JPEG");
  testing::write_text(d->records[2].path, std::string("\xFF\xD8\xFF\xE0", 4) + "truncated");
  const auto batches = run(d, 2, 100, false);
  size_t images = 0;
  for (const auto& b : batches) {
    images += b.image_ids.size();
    for (auto id : b.image_ids) {
      EXPECT_NE(id, d->records[0].image_id);
      EXPECT_NE(id, d->records[1].image_id);
    }
  }
  EXPECT_EQ(images, d->size());  // every slot filled by a readable image
  EXPECT_EQ(d->bad_input->count(BadInput::kMissingImage), 1);
  EXPECT_EQ(d->bad_input->count(BadInput::kCorruptImage), 2);
  // A second epoch does not count them again.
  run(d, 1, 100, false);
  EXPECT_EQ(d->bad_input->total(), 3);
}

// Issue 18, item 2: an image path that is a directory aborted training (a string resized to the
// directory's "size"); it is a missing image like any other unreadable path.
TEST(Loader, ADirectoryForAnImageIsSkippedAndCounted) {
  Synth synth;
  const auto d = synth.dataset();
  std::remove(d->records[0].path.c_str());
  ASSERT_EQ(::mkdir(d->records[0].path.c_str(), 0755), 0);
  std::string bytes;
  EXPECT_FALSE(largedet::data::read_bytes(d->records[0].path, &bytes));
  const auto batches = run(d, 1, 100, false);
  for (const auto& b : batches)
    for (auto id : b.image_ids) EXPECT_NE(id, d->records[0].image_id);
  EXPECT_EQ(d->bad_input->count(BadInput::kMissingImage), 1);
  ::rmdir(d->records[0].path.c_str());
}

TEST(Loader, StrictModeSurfacesABadImageAsAnError) {
  Synth synth;
  const auto d = synth.dataset(true);
  const std::string path = d->records[3].path;
  std::remove(path.c_str());
  for (int workers : {0, 2}) {
    try {
      run(d, workers, 100, false);
      FAIL() << "strict mode read past a missing image";
    } catch (const Error& e) {
      EXPECT_NE(e.where().find(path), std::string::npos) << e.where();
    }
  }
}

std::set<int64_t> delivered_ids(const std::vector<Batch>& batches) {
  std::set<int64_t> ids;
  for (const auto& b : batches) ids.insert(b.image_ids.begin(), b.image_ids.end());
  return ids;
}

// Issue 18, item 4: the image size in the annotation file was never checked against the file, so
// an image annotated as 20000x20000 trained on boxes far outside it (and rasterised its masks at
// that size). An image of another size than annotated is bad input: skipped, counted and replaced,
// an error in strict mode; the header is checked before decoding, so a file too short to decode
// still counts as of the wrong size.
TEST(Loader, ImagesOfAnotherSizeThanAnnotatedAreSkippedAndCounted) {
  Synth synth;
  const auto d = synth.dataset();
  d->records[0].width = d->records[0].height = 2000;
  Record& cut = d->records[1];
  testing::write_text(cut.path, testing::truncate_jpeg_scan(testing::read_text(cut.path)));
  cut.width += 1;
  const auto batches = run(d, 2, 100, false);
  const auto ids = delivered_ids(batches);
  EXPECT_EQ(ids.count(d->records[0].image_id), 0u);
  EXPECT_EQ(ids.count(cut.image_id), 0u);
  EXPECT_EQ(ids.size(), d->size() - 2);
  EXPECT_EQ(d->bad_input->count(BadInput::kWrongImageSize), 2);
  EXPECT_EQ(d->bad_input->total(), 2);
  EXPECT_NE(d->bad_input->summary().find("2 images of another size"), std::string::npos)
      << d->bad_input->summary();

  const auto strict = synth.dataset(true);
  strict->records[2].height = 2000;
  try {
    run(strict, 1, 100, false);
    FAIL() << "strict mode trained on an image of another size than annotated";
  } catch (const Error& e) {
    EXPECT_NE(e.where().find(strict->records[2].path), std::string::npos) << e.where();
    EXPECT_NE(e.message().find("2000"), std::string::npos) << e.message();
  }
}

// Issue 18, item 4, the exception: an annotated size that is the file's turned by 90 degrees is
// what an annotation tool that applies the EXIF orientation writes. When the file's EXIF
// orientation explains it, the image is turned as EXIF says and the case is noted (counted, not
// bad input, never an error); without such an orientation it is of the wrong size.
TEST(Loader, ImagesTurnedByTheirExifOrientationAreTurnedAndNoted) {
  Synth synth;
  for (bool strict : {false, true}) {
    const auto d = synth.dataset(strict);
    for (size_t i : {0, 1}) std::swap(d->records[i].width, d->records[i].height);
    const std::string jpeg = testing::read_text(d->records[0].path);
    testing::write_text(d->records[0].path, testing::with_exif_orientation(jpeg, 6));
    if (strict) {
      EXPECT_THROW(run(d, 1, 100, false), Error);  // the turned size without EXIF
      continue;
    }
    const Sample turned = map_record(d->records[0], loader_options(0).mapper, 3);
    EXPECT_EQ(turned.image.width, d->records[0].width);
    EXPECT_EQ(turned.image.height, d->records[0].height);
    const auto batches = run(d, 1, 100, false);
    const auto ids = delivered_ids(batches);
    EXPECT_EQ(ids.count(d->records[0].image_id), 1u);
    EXPECT_EQ(ids.count(d->records[1].image_id), 0u);
    for (const auto& b : batches) {
      for (size_t j = 0; j < b.image_ids.size(); ++j) {
        if (b.image_ids[j] != d->records[0].image_id) continue;
        EXPECT_EQ(b.original_sizes[j][0], d->records[0].height);  // the annotated frame
        EXPECT_EQ(b.original_sizes[j][1], d->records[0].width);
      }
    }
    EXPECT_EQ(d->bad_input->count(BadInput::kTurnedImage), 1);
    EXPECT_EQ(d->bad_input->count(BadInput::kWrongImageSize), 1);
    EXPECT_EQ(d->bad_input->total(), 1);  // the turned image is not bad input
  }
  // Strict mode accepts the turned image on its own.
  const auto d = synth.dataset(true);
  std::swap(d->records[0].width, d->records[0].height);
  const std::string jpeg = testing::read_text(d->records[0].path);
  testing::write_text(d->records[0].path, testing::with_exif_orientation(jpeg, 8, true));
  EXPECT_NO_THROW(run(d, 1, 100, false));
  EXPECT_EQ(d->bad_input->count(BadInput::kTurnedImage), 1);
}

// Issue 18, item 5: a truncated JPEG decoded with its bottom half grey and was neither counted
// nor reported, even in strict mode. It is kept (as PIL's LOAD_TRUNCATED_IMAGES) and counted; an
// error in strict mode.
TEST(Loader, TruncatedImagesAreKeptAndCounted) {
  Synth synth;
  for (bool strict : {false, true}) {
    const auto d = synth.dataset(strict);
    const Record& r = d->records[4];
    testing::write_text(r.path, testing::truncate_jpeg_scan(testing::read_text(r.path)));
    if (strict) {
      try {
        run(d, 2, 100, false);
        FAIL() << "strict mode trained on a truncated image";
      } catch (const Error& e) {
        EXPECT_NE(e.where().find(r.path), std::string::npos) << e.where();
      }
      continue;
    }
    const auto ids = delivered_ids(run(d, 2, 100, false));
    EXPECT_EQ(ids.size(), d->size());  // kept
    EXPECT_EQ(d->bad_input->count(BadInput::kTruncatedImage), 1);
    EXPECT_EQ(d->bad_input->total(), 1);
    EXPECT_NE(d->bad_input->summary().find("1 truncated or damaged images"), std::string::npos)
        << d->bad_input->summary();
  }
}

TEST(Loader, StopsCleanlyMidEpoch) {
  Synth synth;
  const auto d = synth.dataset();
  BatchSamplerOptions so;
  so.batch_size = 2;
  so.infinite = true;
  // The loader lives on a thread of its own, so that a destructor that never returns fails this
  // test at the deadline instead of hanging the run.
  std::promise<size_t> first_batch;
  auto result = first_batch.get_future();
  std::thread owner([d, so, promise = std::move(first_batch)]() mutable {
    size_t images = 0;
    {
      DataLoader loader(d, BatchSampler(DistributedSampler(d->size()), *d, so), loader_options(3));
      auto batch = loader.next();
      images = batch ? batch->image_ids.size() : 0;
      // Time for the workers to fill the prefetch queue, so that the destructor has to wake
      // workers that wait on a full queue: the case a missed wake-up would hang.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    promise.set_value(images);
  });
  if (result.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    owner.detach();  // stuck in the destructor: nothing can end it from here
    FAIL() << "the DataLoader's destructor did not return within 60 s";
  }
  owner.join();
  EXPECT_EQ(result.get(), 2u);
  EXPECT_EQ(d.use_count(), 1) << "a worker outlived the loader and still holds the dataset";
}

}  // namespace
}  // namespace largedet::data
