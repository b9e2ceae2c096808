// Building Prometheus metric families by hand: every stage exports its own, and the
// serving side concatenates them for /metrics.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "daemon/appeal_store.hpp"

namespace replywatch::daemon {

using Labels = std::vector<prometheus::ClientMetric::Label>;
using Families = std::vector<prometheus::MetricFamily>;

prometheus::ClientMetric::Label label(std::string name, std::string value);
prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type);
/// A counter or a gauge, as the family's type says.
void add_value(prometheus::MetricFamily& f, Labels labels, double v);
void add_histogram(prometheus::MetricFamily& f, Labels labels, const Histogram& h);
/// Adds `more` to `into`: families of the same name become one, and samples with the same
/// labels are summed (several stages that each export their share).
void merge_families(Families& into, Families&& more);

}  // namespace replywatch::daemon
