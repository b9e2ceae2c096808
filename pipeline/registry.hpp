// The registry: agencies, the conversations they own, their official accounts
// and calendars. Built from configuration; read by pairing and statistics.
#pragma once

#include "pipeline/calendar.hpp"
#include "pipeline/event.hpp"
#include "pipeline/flat_map.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace replywatch::pipeline {

struct Account {
  Source source = Source::telegram;
  std::int64_t id = 0;
  std::string role;
  std::string name;
  std::string branch;
};

struct ConversationRef {
  Source source = Source::telegram;
  std::int64_t id = 0;
};

struct Agency {
  std::string id;  // [a-z0-9_]+, the label in every output
  std::string name;
  std::string timezone;
  std::shared_ptr<const BusinessCalendar> calendar;
  std::optional<std::int64_t> target_business_secs;
  std::optional<std::int64_t> median_reply_threshold_secs;  // alerting threshold, exported
  std::vector<ConversationRef> conversations;
  std::vector<Account> accounts;
};

enum class CitizenReplies : std::uint8_t { ignore, appeal };

/// Where an author id stands relative to the registry.
struct AccountLookup {
  static constexpr std::int32_t kNone = -1;
  std::int32_t agency = kNone;   // owning agency of the account, or kNone
  std::int32_t account = kNone;  // index in that agency's accounts
  bool ignored = false;          // listed under ignore_accounts
};

class Registry {
 public:
  std::int64_t horizon_secs = 604800;
  CitizenReplies citizen_replies_to_citizens = CitizenReplies::ignore;
  std::vector<Agency> agencies;
  std::vector<ConversationRef> ignore_accounts;

  /// Builds the lookup indexes; call after filling the fields above.
  void index();

  /// The agency owning a conversation, or -1.
  std::int32_t agency_of_conversation(Source source, std::int64_t conversation) const;
  AccountLookup lookup_account(Source source, std::int64_t id) const;
  std::int32_t agency_index(std::string_view id) const;

 private:
  static PairKey key(Source s, std::int64_t id) { return {static_cast<std::int64_t>(s), id}; }
  FlatMap<PairKey, std::int32_t> conversations_;
  FlatMap<PairKey, AccountLookup> accounts_;
};

}  // namespace replywatch::pipeline
