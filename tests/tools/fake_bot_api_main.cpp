// The fake Bot API as a process, for end-to-end tests that drive the daemon
// from Python: serves queued updates with scripted faults on 127.0.0.1 and
// writes its state (confirmed offset, calls) to a status file.
#include "tests/support/fake_bot_api.hpp"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

using replywatch::testing::FakeBotApi;
using replywatch::testing::FakeBotApiOptions;

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

bool parse_fault(const std::string& spec, FakeBotApi::Fault& fault, int& count,
                 std::chrono::milliseconds& ms) {
  const std::string name = spec.substr(0, spec.find(':'));
  count = 1;
  ms = std::chrono::milliseconds(0);
  bool found = false;
  for (auto f : {FakeBotApi::Fault::none, FakeBotApi::Fault::too_many_requests, FakeBotApi::Fault::server_error,
                 FakeBotApi::Fault::slow, FakeBotApi::Fault::truncated,
                 FakeBotApi::Fault::invalid_json, FakeBotApi::Fault::duplicate,
                 FakeBotApi::Fault::conflict, FakeBotApi::Fault::unauthorized,
                 FakeBotApi::Fault::not_found, FakeBotApi::Fault::reset}) {
    if (FakeBotApi::fault_name(f) == name) {
      fault = f;
      found = true;
    }
  }
  if (!found) return false;
  const auto c1 = spec.find(':');
  if (c1 != std::string::npos) {
    const auto c2 = spec.find(':', c1 + 1);
    count = std::stoi(spec.substr(c1 + 1, c2 - c1 - 1));
    if (c2 != std::string::npos) ms = std::chrono::milliseconds(std::stol(spec.substr(c2 + 1)));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  FakeBotApiOptions options;
  std::string updates_file, status_file;
  std::vector<std::string> faults;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "fake_bot_api: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--tls") options.tls = true;
    else if (a == "--token") options.token = value();
    else if (a == "--first-update-id") options.first_update_id = std::stoll(value());
    else if (a == "--updates") updates_file = value();
    else if (a == "--fault") faults.push_back(value());
    else if (a == "--status-file") status_file = value();
    else {
      std::cerr << "usage: fake_bot_api [--tls] [--token T] [--first-update-id N] "
                   "[--updates FILE.ndjson] [--fault NAME[:COUNT[:MS]]]... --status-file F\n";
      return 2;
    }
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  FakeBotApi fake(options);
  for (const auto& spec : faults) {
    FakeBotApi::Fault f;
    int count = 1;
    std::chrono::milliseconds ms{};
    if (!parse_fault(spec, f, count, ms)) {
      std::cerr << "fake_bot_api: unknown fault '" << spec << "'\n";
      return 2;
    }
    fake.inject(f, count, ms);
  }
  if (!updates_file.empty()) {
    std::ifstream in(updates_file);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) fake.push_update(line);
    }
  }
  std::cout << "port " << fake.port() << "\n" << std::flush;
  while (!g_stop) {
    if (!status_file.empty()) {
      const std::string tmp = status_file + ".tmp";
      if (FILE* f = std::fopen(tmp.c_str(), "w")) {
        std::fprintf(f,
                     "{\"port\":%u,\"confirmed_offset\":%lld,\"get_updates_calls\":%zu,"
                     "\"pending\":%zu,\"faults_pending\":%zu,\"unauthorized_calls\":%zu}\n",
                     static_cast<unsigned>(fake.port()),
                     static_cast<long long>(fake.confirmed_offset()), fake.get_updates_count(),
                     fake.pending_updates(), fake.faults_pending(), fake.unauthorized_calls());
        std::fclose(f);
        std::rename(tmp.c_str(), status_file.c_str());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}
