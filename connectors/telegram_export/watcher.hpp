// Connector `telegram_export`: watches a directory for Telegram Desktop exports
// and ingests new and changed ones, remembering each file's size and mtime.
#pragma once

#include "connectors/connector.hpp"
#include "connectors/telegram_export/export_parser.hpp"

#include <chrono>
#include <map>
#include <string>

namespace replywatch::connectors::telegram_export {

class Watcher : public Connector {
 public:
  /// `ingested`: the cursors restored from the last snapshot (path → mark).
  /// A file is read once its size and mtime have held still for `settle`.
  Watcher(std::string name, std::string directory, ParseOptions options, CursorMap ingested,
          std::chrono::milliseconds settle = std::chrono::milliseconds(0));
  const std::string& name() const override { return name_; }
  PollOutcome poll(Output& out, const std::atomic<bool>& stop) override;
  bool pending() const override;

 private:
  std::string name_;
  std::string directory_;
  ParseOptions options_;
  CursorMap ingested_;                   // path → mark of the version ingested (or refused)
  struct Seen {
    std::string mark;
    std::chrono::steady_clock::time_point since;  // when this mark was first seen
  };
  std::chrono::milliseconds settle_;
  std::map<std::string, Seen> seen_;  // path → mark at the previous poll
};

}  // namespace replywatch::connectors::telegram_export
