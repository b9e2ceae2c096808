// Metric family helpers shared by the stages.
#include "daemon/metric_families.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace replywatch::daemon {

prometheus::ClientMetric::Label label(std::string name, std::string value) {
  prometheus::ClientMetric::Label l;
  l.name = std::move(name);
  l.value = std::move(value);
  return l;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_value(prometheus::MetricFamily& f, Labels labels, double v) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

void add_histogram(prometheus::MetricFamily& f, Labels labels, const Histogram& h) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  const auto& bounds = reply_buckets();
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += h.counts[i];
    prometheus::ClientMetric::Bucket b;
    b.upper_bound = bounds[i];
    b.cumulative_count = cumulative;
    m.histogram.bucket.push_back(b);
  }
  prometheus::ClientMetric::Bucket inf;
  inf.upper_bound = std::numeric_limits<double>::infinity();
  inf.cumulative_count = h.count;
  m.histogram.bucket.push_back(inf);
  f.metric.push_back(std::move(m));
}

void merge_families(Families& into, Families&& more) {
  auto key_of = [](const prometheus::ClientMetric& m) {
    std::string k;
    for (const auto& l : m.label) {
      k += l.name;
      k += '\x1f';
      k += l.value;
      k += '\x1e';
    }
    return k;
  };
  for (auto& f : more) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const prometheus::MetricFamily& g) { return g.name == f.name; });
    if (it == into.end()) {
      into.push_back(std::move(f));
      continue;
    }
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < it->metric.size(); ++i) index.emplace(key_of(it->metric[i]), i);
    for (auto& m : f.metric) {
      const auto same = index.find(key_of(m));
      if (same == index.end()) {
        it->metric.push_back(std::move(m));
      } else if (f.type == prometheus::MetricType::Counter) {
        it->metric[same->second].counter.value += m.counter.value;
      } else if (f.type == prometheus::MetricType::Gauge) {
        it->metric[same->second].gauge.value += m.gauge.value;
      }
    }
  }
}

}  // namespace replywatch::daemon
