// An independent double-precision implementation of docs/solver.md's PMD-LAMB, which the LAMB
// tests compare the float kernels with.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "largedet/solver/lamb.h"

namespace largedet::solver::lamb_test {

struct Reference {
  LambOptions o;
  std::vector<std::vector<double>> m, v;
  std::vector<double> s1, s2;
  int64_t t = 0;

  double decay(int64_t step) const {
    int64_t T = o.decay_period();
    if (T <= 1) return 1;
    double tau = (step - 1) % T;
    return o.decay_shape() == DecayShape::kLinear ? 1 - tau / (T - 1)
                                                  : (1 + std::cos(M_PI * tau / (T - 1))) / 2;
  }

  // One step over all tensors (w updated in place).
  void step(std::vector<std::vector<double>>& w, const std::vector<std::vector<double>>& g) {
    if (m.empty()) {
      for (const auto& x : w) {
        m.emplace_back(x.size(), 0.0);
        v.emplace_back(x.size(), 0.0);
      }
      s1.assign(w.size(), 0);
      s2.assign(w.size(), 0);
    }
    ++t;
    const double d = decay(t), d2 = o.decay_second_moment() ? d : 1.0;
    const double b1 = o.beta1(), b2 = o.beta2();
    for (size_t k = 0; k < w.size(); ++k) {
      s1[k] = b1 * d * s1[k] + (1 - b1);
      s2[k] = b2 * d2 * s2[k] + (1 - b2);
      double c1 = 1, c2 = 1;
      if (o.bias_correction() == BiasCorrection::kNormalized) {
        c1 = s1[k];
        c2 = s2[k];
      } else if (o.bias_correction() == BiasCorrection::kGlobal) {
        c1 = 1 - std::pow(b1, t);
        c2 = 1 - std::pow(b2, t);
      }
      std::vector<double> u(w[k].size());
      double wn = 0, un = 0;
      for (size_t i = 0; i < w[k].size(); ++i) {
        double gi = g[k][i];
        m[k][i] = b1 * d * m[k][i] + (1 - b1) * gi;
        v[k][i] = b2 * d2 * v[k][i] + (1 - b2) * gi * gi;
        u[i] = (m[k][i] / c1) / (std::sqrt(v[k][i] / c2) + o.eps()) + o.weight_decay() * w[k][i];
        wn += w[k][i] * w[k][i];
        un += u[i] * u[i];
      }
      wn = std::sqrt(wn);
      un = std::sqrt(un);
      double r = (wn == 0 || un == 0 || !o.trust_ratio()) ? 1 : wn / un;
      if (o.trust_ratio() && o.trust_clip() > 0) r = std::min(r, o.trust_clip());
      for (size_t i = 0; i < w[k].size(); ++i) w[k][i] -= o.lr() * r * u[i];
    }
  }
};

inline std::vector<double> to_vector(const torch::Tensor& t) {
  auto d = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

}  // namespace largedet::solver::lamb_test
