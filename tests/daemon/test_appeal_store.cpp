// The aggregate's appeal store: what awaits the clocks, and what is counted once final.
#include "daemon/appeal_store.hpp"

#include <doctest/doctest.h>

using replywatch::daemon::AppealStore;
using replywatch::pipeline::Appeal;
using replywatch::pipeline::AppealStatus;
using replywatch::pipeline::Source;

TEST_CASE("appeal store: an appeal removed and reported again awaits its clock once") {
  auto registry = std::make_shared<replywatch::pipeline::Registry>();
  replywatch::pipeline::Agency agency;
  agency.id = "akimat";
  agency.name = "Akimat";
  registry->agencies.push_back(agency);
  registry->index();
  AppealStore store(registry);
  Appeal a;
  a.source = Source::telegram;
  a.conversation = -100;
  a.thread = 5;
  a.citizen = 42;
  a.opened_message = 5;
  a.opened_at = 1000;
  a.agency = 0;
  // The pairing takes an appeal back and reports it again (a repair) before a settle.
  store.apply(nullptr, &a);
  store.apply(&a, nullptr);
  store.apply(nullptr, &a);
  const auto clock = [](Source, std::int64_t) -> std::int64_t { return 2000; };
  store.settle(clock);
  CHECK(store.unsettled() == 1);  // the open appeal, once
  store.settle(clock);
  CHECK(store.unsettled() == 1);
  Appeal answered = a;
  answered.status = AppealStatus::answered;
  answered.answer_message = 6;
  answered.answered_at = 1500;
  answered.responder = -100;
  answered.reply_seconds = 500;
  store.apply(&a, &answered);
  store.settle(clock);
  CHECK(store.unsettled() == 0);
  REQUIRE(store.counts().size() == 1);
  const auto& c = store.counts().begin()->second;
  CHECK(c.opened == 1);
  CHECK(c.answered == 1);
}
