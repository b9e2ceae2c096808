// Metric family helpers shared by the stages.
#include "daemon/metric_families.hpp"

#include <limits>

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

}  // namespace replywatch::daemon
