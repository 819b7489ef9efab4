#include "largedet/solver/agvm.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "largedet/core/error.h"

namespace largedet::solver {

namespace {
// The authors' constants: the ratio's bounds and the guard against a zero variance.
constexpr double kMinRatio = 0.5, kMaxRatio = 10.0, kEps = 1e-6;
}  // namespace

double agvm_target_factor(double phi_backbone, double phi) {
  return std::sqrt(std::clamp((phi_backbone + kEps) / (phi + kEps), kMinRatio, kMaxRatio));
}

Agvm::Agvm(std::vector<std::string> names, std::vector<std::vector<torch::Tensor>> params,
           AgvmOptions options)
    : names_(std::move(names)), factors_(names_.size(), 1.0), options_(options) {
  LARGEDET_CHECK(names_.size() == params.size() && names_.size() >= 2,
                 "AGVM needs two or more named parts, got ", names_.size(), " names and ",
                 params.size(), " parameter lists");
  LARGEDET_CHECK(options_.interval() >= 1, "SOLVER.AGVM.INTERVAL must be at least 1, got ",
                 options_.interval());
  LARGEDET_CHECK(options_.momentum() >= 0 && options_.momentum() < 1,
                 "SOLVER.AGVM.MOMENTUM must be in [0, 1), got ", options_.momentum());
  for (size_t i = 0; i < params.size(); ++i) {
    for (const auto& p : params[i]) {
      const auto [at, added] =
          part_by_tensor_.emplace(p.unsafeGetTensorImpl(), static_cast<int>(i));
      LARGEDET_CHECK(added, "AGVM: a parameter of part '", names_[i], "' is also in part '",
                     names_[static_cast<size_t>(at->second)], "'");
      flat_.push_back(p);
      part_.push_back(static_cast<int>(i));
    }
  }
}

bool Agvm::estimates_at(int64_t iteration) const {
  return iteration >= options_.start_iter() &&
         (iteration - options_.start_iter()) % options_.interval() == 0;
}

int Agvm::part_of(const torch::Tensor& param) const {
  const auto it = part_by_tensor_.find(param.unsafeGetTensorImpl());
  return it == part_by_tensor_.end() ? -1 : it->second;
}

torch::Tensor Agvm::agreement(const std::vector<torch::Tensor>& half_a) const {
  LARGEDET_CHECK(half_a.size() == flat_.size(), "AGVM: ", half_a.size(),
                 " half-batch gradients for ", flat_.size(), " parameters");
  torch::NoGradGuard no_grad;
  const auto device = flat_.front().device();
  std::vector<torch::Tensor> dot(names_.size()), aa(names_.size()), bb(names_.size());
  auto add = [](torch::Tensor& sum, const torch::Tensor& v) { sum = sum.defined() ? sum + v : v; };
  for (size_t i = 0; i < flat_.size(); ++i) {
    const torch::Tensor& whole = flat_[i].grad();
    if (!whole.defined()) continue;
    auto w = whole.detach().to(torch::kDouble).reshape(-1);
    auto a = half_a[i].defined() ? half_a[i].detach().to(device, torch::kDouble).reshape(-1)
                                 : torch::zeros_like(w);
    auto b = w - a;
    const int part = part_[i];
    add(dot[part], (a * b).sum());
    add(aa[part], (a * a).sum());
    add(bb[part], (b * b).sum());
  }
  std::vector<torch::Tensor> stacked;
  auto zero = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device));
  for (size_t k = 0; k < names_.size(); ++k)
    for (auto* t : {&dot[k], &aa[k], &bb[k]}) stacked.push_back(t->defined() ? *t : zero);
  return torch::stack(stacked);
}

std::vector<double> Agvm::variances(const torch::Tensor& agreement_on_host) const {
  LARGEDET_CHECK(agreement_on_host.device().is_cpu() &&
                     agreement_on_host.scalar_type() == torch::kDouble &&
                     agreement_on_host.numel() == static_cast<int64_t>(3 * names_.size()),
                 "AGVM: variances() takes agreement() read to the host");
  const auto host = agreement_on_host.contiguous();
  const double* v = host.data_ptr<double>();
  std::vector<double> out(names_.size());
  for (size_t k = 0; k < names_.size(); ++k) {
    const double norms = std::sqrt(v[3 * k + 1] * v[3 * k + 2]);
    // A part without gradient in either half has no measurable agreement: the largest variance.
    out[k] = norms > 0 ? 1.0 - v[3 * k] / norms : 1.0;
  }
  return out;
}

void Agvm::update(const std::vector<double>& variances) {
  LARGEDET_CHECK(variances.size() == factors_.size(), "AGVM: ", variances.size(), " variances for ",
                 factors_.size(), " parts");
  for (double phi : variances)
    if (!std::isfinite(phi)) return;  // a non-finite step is skipped by the trainer anyway
  const double m = options_.momentum();
  for (size_t k = 0; k < factors_.size(); ++k)
    factors_[k] = m * factors_[k] + (1 - m) * agvm_target_factor(variances[0], variances[k]);
}

std::string Agvm::state() const {
  std::ostringstream out;
  out.precision(17);
  for (size_t k = 0; k < factors_.size(); ++k) out << names_[k] << " " << factors_[k] << "\n";
  return out.str();
}

void Agvm::load_state(const std::string& bytes) {
  std::istringstream in(bytes);
  std::vector<double> factors;
  std::string name;
  double factor = 0;
  for (size_t k = 0; in >> name >> factor; ++k) {
    if (k >= names_.size() || name != names_[k])
      throw Error("the checkpoint's AGVM state names part '" + name + "' where this model has " +
                      (k < names_.size() ? "'" + names_[k] + "'" : "no more parts"),
                  "AGVM state", "resume with the same MODEL.META_ARCHITECTURE and mask setting");
    factors.push_back(factor);
  }
  if (factors.size() != names_.size())
    throw Error("the checkpoint's AGVM state holds " + std::to_string(factors.size()) +
                    " parts, this model " + std::to_string(names_.size()),
                "AGVM state", "resume with the same model");
  factors_ = std::move(factors);
}

}  // namespace largedet::solver
