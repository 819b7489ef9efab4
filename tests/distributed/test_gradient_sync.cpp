// GradientSync: data-parallel equivalence (2 ranks x batch b == 1 rank x batch 2b, with SyncBN),
// overlap of the first bucket's allreduce with backward, gradient accumulation, model mismatch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness.h"
#include "largedet/core/error.h"
#include "largedet/distributed/collectives.h"
#include "largedet/distributed/gradient_sync.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace dist = largedet::distributed;

namespace {

// A small conv net with SyncBN: conv-bn-relu twice, global pooling, a linear head.
struct NetImpl : torch::nn::Module {
  NetImpl(std::shared_ptr<dist::ProcessGroup> group, int64_t width = 8) {
    using namespace torch::nn;
    conv1 = register_module("conv1", Conv2d(Conv2dOptions(3, width, 3).padding(1).bias(false)));
    bn1 = register_module(
        "bn1", dist::SyncBatchNorm2d(dist::SyncBatchNorm2dOptions(width).process_group(group)));
    conv2 = register_module("conv2", Conv2d(Conv2dOptions(width, width, 3).padding(1).bias(false)));
    bn2 = register_module(
        "bn2", dist::SyncBatchNorm2d(dist::SyncBatchNorm2dOptions(width).process_group(group)));
    fc = register_module("fc", Linear(width, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn1(conv1(x)));
    x = torch::relu(bn2(conv2(x)));
    return fc(x.mean({2, 3}));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  dist::SyncBatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

std::shared_ptr<dist::ProcessGroup> local_group() {
  return dist::create_process_group(dist::Context{});
}

// max |a - b| / max |b| per parameter tensor, the worst over tensors.
double max_relative_difference(torch::nn::Module& a, torch::nn::Module& b) {
  double worst = 0;
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (const auto& item : pa) {
    auto x = item.value(), y = pb[item.key()];
    double d = ((x - y).abs().max() / y.abs().max()).item<double>();
    worst = std::max(worst, d);
  }
  return worst;
}

using OptimizerFactory = std::function<std::unique_ptr<torch::optim::Optimizer>(Net&)>;

// Every rank trains a reference on the whole batch (world of one) and its data-parallel copy on
// its half, three steps; parameters and BN statistics must agree.
void check_data_parallel(const OptimizerFactory& make_optimizer) {
  auto group = dist::default_group();
  const int rank = group->rank(), n = group->size();
  const int64_t b = 3;
  torch::manual_seed(11);
  Net reference(local_group());
  torch::manual_seed(11);
  Net model(group);
  dist::GradientSync sync(*model, group);
  auto opt_ref = make_optimizer(reference);
  auto opt = make_optimizer(model);
  for (int step = 0; step < 3; ++step) {
    auto x = torch::randn({n * b, 3, 6, 6});
    auto y = torch::randint(0, 4, {n * b}, torch::kLong);
    opt_ref->zero_grad();
    torch::nn::functional::cross_entropy(reference(x), y).backward();
    opt_ref->step();
    opt->zero_grad();
    torch::nn::functional::cross_entropy(model(x.narrow(0, rank * b, b)), y.narrow(0, rank * b, b))
        .backward();
    sync.finish();
    opt->step();
  }
  EXPECT_LT(max_relative_difference(*model, *reference), 1e-5);
  EXPECT_TRUE(torch::allclose(model->bn2->running_var, reference->bn2->running_var, 1e-5, 1e-7));
  EXPECT_GT(max_relative_difference(*model, *Net(local_group())), 1e-2);  // it did train
}

}  // namespace

TEST(DistWorker, DISABLED_DataParallelSgd) {
  largedet::test::init_worker();
  check_data_parallel([](Net& net) {
    return std::make_unique<torch::optim::SGD>(
        net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4));
  });
}

TEST(GradientSync, DataParallelEqualsOneRankWithSgd) {
  auto run = largedet::test::launch_workers(2, "DataParallelSgd");
  EXPECT_EQ(run.code, 0) << run.output;
}

TEST(DistWorker, DISABLED_Overlap) {
  auto group = largedet::test::init_worker();
  torch::manual_seed(1);
  Net model(group, 16);
  // One parameter per bucket: the head's gradients are ready long before conv1's.
  dist::GradientSync sync(*model, group, dist::GradientSyncOptions().bucket_size_bytes(1));
  std::vector<std::string> events;
  sync.set_observer([&](const std::string& e) { events.push_back(e); });
  auto x = torch::randn({2, 3, 8, 8});
  model(x).sum().backward();
  events.push_back("backward returned");
  sync.finish();
  auto position = [&](const std::string& e) {
    return std::find(events.begin(), events.end(), e) - events.begin();
  };
  auto last_grad = std::find_if(events.rbegin(), events.rend(),
                                [](const std::string& e) { return e.rfind("grad ", 0) == 0; });
  ASSERT_NE(last_grad, events.rend());
  std::string all;
  for (auto& e : events) all += e + "; ";
  // The first bucket (fc.bias) went out while backward still had gradients to compute.
  EXPECT_LT(position("start 0"), position(*last_grad)) << all;
  EXPECT_EQ(*last_grad, "grad conv1.weight") << all;
  // Every bucket started during backward, none waited for finish().
  EXPECT_LT(position("start " + std::to_string(sync.bucket_parameters().size() - 1)),
            position("backward returned"))
      << all;
  EXPECT_EQ(sync.bucket_parameters().front(), std::vector<std::string>{"fc.bias"});
}

TEST(GradientSync, FirstBucketStartsBeforeBackwardEnds) {
  auto run = largedet::test::launch_workers(2, "Overlap");
  EXPECT_EQ(run.code, 0) << run.output;
}

TEST(DistWorker, DISABLED_Accumulation) {
  auto group = largedet::test::init_worker();
  const int rank = group->rank(), n = group->size();
  // No BN here: micro-batches would change its statistics. Two micro-steps of 2 per rank.
  torch::manual_seed(5);
  torch::nn::Sequential model(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)),
                              torch::nn::Functional(torch::relu), torch::nn::Flatten(),
                              torch::nn::Linear(4 * 4 * 4, 2));
  torch::nn::Sequential reference =
      std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model->clone());
  dist::GradientSync sync(*model, group);
  int starts = 0;
  sync.set_observer([&](const std::string& e) { starts += e.rfind("start", 0) == 0; });
  auto x = torch::randn({n * 4, 3, 6, 6});
  torch::nn::functional::mse_loss(reference->forward(x), torch::zeros({n * 4, 2})).backward();
  for (int micro = 0; micro < 2; ++micro) {
    sync.set_sync(micro == 1);
    auto part = x.narrow(0, rank * 4 + micro * 2, 2);
    (torch::nn::functional::mse_loss(model->forward(part), torch::zeros({2, 2})) / 2).backward();
    if (micro == 0) EXPECT_EQ(starts, 0);  // nothing sent on the first micro-step
  }
  EXPECT_GT(starts, 0);
  sync.finish();
  auto p = model->parameters(), q = reference->parameters();
  for (size_t i = 0; i < p.size(); ++i)
    EXPECT_TRUE(torch::allclose(p[i].grad(), q[i].grad(), 1e-5, 1e-7)) << i;
}

TEST(GradientSync, AccumulationSyncsOnlyTheLastMicroStep) {
  auto run = largedet::test::launch_workers(2, "Accumulation");
  EXPECT_EQ(run.code, 0) << run.output;
}

TEST(DistWorker, DISABLED_Mismatch) {
  auto group = largedet::test::init_worker();
  torch::manual_seed(group->rank());
  Net model(group, group->rank() == 0 ? 8 : 6);
  try {
    dist::GradientSync sync(*model, group);
    ADD_FAILURE() << "different models accepted";
  } catch (const largedet::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("rank 1 holds a different model than rank 0"), std::string::npos) << what;
    EXPECT_NE(what.find("conv1.weight [6, 3, 3, 3]"), std::string::npos) << what;
  }
}

TEST(GradientSync, DifferentModelsAreAClearError) {
  auto run = largedet::test::launch_workers(2, "Mismatch");
  EXPECT_EQ(run.code, 0) << run.output;
}

TEST(DistWorker, DISABLED_Broadcast) {
  auto group = largedet::test::init_worker();
  torch::manual_seed(100 + group->rank());  // different initialisations
  Net model(group);
  dist::GradientSync sync(*model, group);
  auto flat = torch::cat({model->conv1->weight.detach().reshape(-1), model->bn1->running_var});
  auto copy = flat.clone();
  dist::broadcast(copy, 0);
  EXPECT_TRUE(flat.equal(copy));
}

TEST(GradientSync, StartsFromRankZerosParameters) {
  auto run = largedet::test::launch_workers(2, "Broadcast");
  EXPECT_EQ(run.code, 0) << run.output;
}

// PMD-LAMB needs the solver layer: CMake links it and defines LARGEDET_TEST_WITH_SOLVER.
#ifdef LARGEDET_TEST_WITH_SOLVER
#include "largedet/solver/lamb.h"

TEST(DistWorker, DISABLED_DataParallelPmdLamb) {
  largedet::test::init_worker();
  check_data_parallel([](Net& net) {
    // Period 3: the moments decay to zero within the three steps.
    return std::make_unique<largedet::solver::Lamb>(
        net->parameters(), largedet::solver::LambOptions(1e-2).decay_period(3).weight_decay(1e-4));
  });
}

TEST(GradientSync, DataParallelEqualsOneRankWithPmdLamb) {
  auto run = largedet::test::launch_workers(2, "DataParallelPmdLamb");
  EXPECT_EQ(run.code, 0) << run.output;
}
#endif
