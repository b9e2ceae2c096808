// Connector `ndjson`: follows normalized-event files (one file, or every *.ndjson
// and *.jsonl file of a directory), resuming at the byte offset last applied.
#pragma once

#include "connectors/connector.hpp"
#include "connectors/ndjson/ndjson_parser.hpp"

#include <map>
#include <string>

namespace replywatch::connectors::ndjson {

class Tailer : public Connector {
 public:
  Tailer(std::string name, std::string path, CursorMap restored);
  const std::string& name() const override { return name_; }
  PollOutcome poll(Output& out, const std::atomic<bool>& stop) override;
  bool pending() const override { return pending_; }

  static std::string encode(const FileCursor& c);
  static bool decode(const std::string& text, FileCursor& c);

 private:
  std::string name_;
  std::string path_;
  std::map<std::string, FileCursor> cursors_;
  bool pending_ = false;
};

}  // namespace replywatch::connectors::ndjson
