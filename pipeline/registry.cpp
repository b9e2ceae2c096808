// Lookup indexes over the registry; configuration guarantees ids are unique.
#include "pipeline/registry.hpp"

namespace replywatch::pipeline {

void Registry::index() {
  conversations_.clear();
  accounts_.clear();
  for (std::size_t a = 0; a < agencies.size(); ++a) {
    const auto agency = static_cast<std::int32_t>(a);
    for (const auto& c : agencies[a].conversations) {
      conversations_.try_emplace(key(c.source, c.id), agency);
    }
    for (std::size_t i = 0; i < agencies[a].accounts.size(); ++i) {
      const auto& acc = agencies[a].accounts[i];
      accounts_.try_emplace(key(acc.source, acc.id),
                            AccountLookup{agency, static_cast<std::int32_t>(i), false});
    }
  }
  for (const auto& ig : ignore_accounts) {
    accounts_.try_emplace(key(ig.source, ig.id),
                          AccountLookup{AccountLookup::kNone, AccountLookup::kNone, true});
  }
}

std::int32_t Registry::agency_of_conversation(Source source, std::int64_t conversation) const {
  const auto* found = conversations_.find(key(source, conversation));
  return found ? *found : -1;
}

AccountLookup Registry::lookup_account(Source source, std::int64_t id) const {
  const auto* found = accounts_.find(key(source, id));
  return found ? *found : AccountLookup{};
}

std::int32_t Registry::agency_index(std::string_view id) const {
  for (std::size_t i = 0; i < agencies.size(); ++i) {
    if (agencies[i].id == id) return static_cast<std::int32_t>(i);
  }
  return -1;
}

}  // namespace replywatch::pipeline
