// vk_parse_bench: VK objects per second of connectors::vk::Parser (parse + mapping to
// events) on generated wall.getComments pages shaped like a busy community wall.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/vk/vk_parser.hpp"

namespace replywatch::bench {
namespace {

constexpr const char* kHelp = R"(Usage: vk_parse_bench [flags]

Generates wall.getComments responses (100 top-level comments each, with up to 3
replies nested in thread.items, as VK returns them with thread_items_count=3; minified,
Cyrillic text as raw UTF-8), then times Parser::parse over all of them, --passes times
per run, --runs runs. Objects counted: every comment, top-level or nested.
Single-threaded: the figures are per core.

Flags:
  --pages N     Responses to generate (default 200)
  --passes P    Passes over all responses per run (default 20)
  --runs R      Timed runs (default 7)
  --seed S      Generator seed (default 1)
  --target OPS  Objects per second to compare the median against (default 1000000)
  -h, --help    Show this help
)";

constexpr std::int64_t kWall = -123456;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

class Generator {
 public:
  explicit Generator(std::uint32_t seed) : random_(seed) {}

  std::string page(std::int64_t post) {
    std::string body = R"({"response":{"count":100,"current_level_count":100,"can_post":true,)"
                       R"("show_reply_button":true,"groups_can_post":true,"items":[)";
    for (int i = 0; i < 100; ++i) {
      if (i) body += ',';
      const std::int64_t top = ++id_;
      const int replies = static_cast<int>(random_() % 4);
      comment(body, top, post, 0, replies);
    }
    body += "]}}";
    return body;
  }

 private:
  std::string text() {
    static const char* const kWords[] = {
        "когда",  "откроют",   "дорогу", "по",     "улице",   "Абая",     "почему", "нет", "света",
        "ремонт", "остановка", "мусор",  "заявка", "спасибо", "ответьте", "2026",   "?"};
    std::string out;
    const std::size_t target = 60 + random_() % 240;
    while (out.size() < target) {
      if (!out.empty()) out += ' ';
      out += kWords[random_() % std::size(kWords)];
    }
    return out;
  }

  void comment(std::string& out, std::int64_t id, std::int64_t post, std::int64_t parent,
               int replies) {
    const bool official = parent != 0 && random_() % 3 == 0;
    const std::int64_t from =
        official ? kWall : 100000 + static_cast<std::int64_t>(random_() % 900000);
    out += R"({"id":)" + std::to_string(id) + R"(,"from_id":)" + std::to_string(from) +
           R"(,"date":)" + std::to_string(1780000000 + id * 7) + R"(,"text":")" + text() +
           R"(","post_id":)" + std::to_string(post) + R"(,"owner_id":)" + std::to_string(kWall) +
           R"(,"parents_stack":[)" + (parent ? std::to_string(parent) : "") + "]";
    if (parent) {
      out += R"(,"reply_to_user":)" + std::to_string(100001) + R"(,"reply_to_comment":)" +
             std::to_string(parent) + "}";
      return;
    }
    out += R"(,"thread":{"count":)" + std::to_string(replies) + R"(,"items":[)";
    for (int r = 0; r < replies; ++r) {
      if (r) out += ',';
      comment(out, ++id_, post, id, 0);
    }
    out += R"(],"can_post":true,"show_reply_button":true,"groups_can_post":true}})";
  }

  std::mt19937_64 random_;
  std::int64_t id_ = 1000;
};

int main_impl(int argc, char** argv) {
  std::size_t pages = 200, passes = 20, runs = 7;
  std::uint32_t seed = 1;
  double target = 1e6;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vk_parse_bench: %s needs a value\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--pages") {
      pages = std::strtoull(next(), nullptr, 10);
    } else if (a == "--passes") {
      passes = std::strtoull(next(), nullptr, 10);
    } else if (a == "--runs") {
      runs = std::strtoull(next(), nullptr, 10);
    } else if (a == "--seed") {
      seed = static_cast<std::uint32_t>(std::strtoul(next(), nullptr, 10));
    } else if (a == "--target") {
      target = std::strtod(next(), nullptr);
    } else {
      std::fprintf(stderr, "vk_parse_bench: unknown flag %s (see --help)\n", a.c_str());
      return 1;
    }
  }
  Generator generator(seed);
  std::vector<std::string> bodies;
  std::size_t bytes = 0;
  for (std::size_t p = 0; p < pages; ++p) {
    bodies.push_back(generator.page(static_cast<std::int64_t>(p + 1)));
    bytes += bodies.back().size();
  }
  connectors::vk::Parser parser;
  std::size_t objects = 0;
  {
    connectors::vk::Parsed check;
    for (const auto& b : bodies) {
      if (!parser.parse(b, 0, check)) {
        std::fprintf(stderr, "vk_parse_bench: a generated page does not parse\n");
        return 1;
      }
    }
    objects = check.objects;
    if (!check.rejected.empty() || check.events.size() != objects) {
      std::fprintf(stderr, "vk_parse_bench: %zu rejected of %zu\n", objects - check.events.size(),
                   objects);
      return 1;
    }
  }
  std::vector<double> rates;
  for (std::size_t r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    std::size_t events = 0;
    for (std::size_t pass = 0; pass < passes; ++pass) {
      for (const auto& b : bodies) {
        connectors::vk::Parsed out;
        out.events.reserve(512);
        (void)parser.parse(b, 0, out);
        events += out.events.size();
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(events) / secs);
    std::printf("run %zu: %zu objects in %.3f s = %.0f objects/s\n", r + 1, events, secs,
                rates.back());
  }
  const double m = median(rates);
  std::printf(
      "vk_parse_bench: %zu pages, %zu objects, %.1f MB; median %.0f objects/s (%.0f MB/s); "
      "target %.0f: %s\n",
      pages, objects, static_cast<double>(bytes) / 1e6, m,
      m * static_cast<double>(bytes) / static_cast<double>(objects) / 1e6, target,
      m >= target ? "met" : "missed");
  return 0;
}

}  // namespace
}  // namespace replywatch::bench

int main(int argc, char** argv) { return replywatch::bench::main_impl(argc, argv); }
