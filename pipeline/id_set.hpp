// Every message id a conversation ever applied, forever: a compressed bitmap
// (CRoaring) per 32-bit high part, so dense per-chat ids cost a few bits each. The
// current run of consecutive ids is kept apart and added as a range when it ends:
// ids arrive mostly in runs, and a bitmap insert per message would cost more than
// the rest of the pairing step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/error.hpp"

namespace replywatch::pipeline {

class IdSet {
 public:
  IdSet();
  ~IdSet();
  IdSet(IdSet&&) noexcept;
  IdSet& operator=(IdSet&&) noexcept;
  IdSet(const IdSet&) = delete;
  IdSet& operator=(const IdSet&) = delete;

  /// True if `id` was not in the set.
  bool insert(std::int64_t id);
  bool contains(std::int64_t id) const;
  std::uint64_t size() const;
  bool empty() const { return parts_.empty() && !run_; }

  /// Recompresses runs of consecutive ids (cheap to call now and then).
  void optimize();
  /// Heap bytes, estimated from the containers' serialized sizes plus per-part overhead.
  std::size_t memory_bytes() const;

  /// Appends a self-delimiting encoding to `out`.
  void serialize(std::string& out) const;
  /// Reads one encoding from the front of `in` and advances it; any byte string is safe.
  static Result<IdSet> deserialize(std::string_view& in);

 private:
  struct Part;
  Part* part_for(std::uint32_t high, bool create);
  const Part* part_for(std::uint32_t high) const;
  bool in_parts(std::int64_t id) const;
  /// Moves the run into the bitmaps (logically const: the set is the same).
  void flush() const;

  mutable std::vector<std::unique_ptr<Part>> parts_;  // ascending by high part
  mutable bool run_ = false;                          // [run_lo_, run_hi_], none in parts_
  mutable std::int64_t run_lo_ = 0, run_hi_ = 0;
  mutable std::int64_t parts_max_ = -1;  // no id above it is in parts_
};

}  // namespace replywatch::pipeline
