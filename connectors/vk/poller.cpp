// Error handling follows VK's own codes (https://dev.vk.com/reference/errors): too many
// requests and flood control wait, an internal error backs off, a bad token is fatal,
// a wall the token cannot read holds the watermark (its appeals cannot be judged).
#include "connectors/vk/poller.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <thread>

namespace replywatch::connectors::vk {

namespace {

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string cursor_key(std::int64_t wall) { return "wall/" + std::to_string(wall); }

/// The token as sent (`access_token`, percent-encoded) and as it is, out of `text`.
std::string redact_token(std::string text, const std::string& token) {
  text = http::redact_all(std::move(text), token);
  return http::redact_all(std::move(text), http::percent_encode(token));
}

}  // namespace

std::string Poller::format_counts(const std::map<std::int64_t, std::int64_t>& counts) {
  std::string out;
  for (const auto& [post, count] : counts) {
    if (!out.empty()) out += ',';
    out += std::to_string(post) + ':' + std::to_string(count);
  }
  return out;
}

std::map<std::int64_t, std::int64_t> Poller::parse_counts(std::string_view text) {
  std::map<std::int64_t, std::int64_t> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const auto colon = item.find(':');
    if (colon == std::string_view::npos) continue;
    const auto post = to_int(item.substr(0, colon));
    const auto count = to_int(item.substr(colon + 1));
    if (post && count && *post > 0 && *count >= 0) out[*post] = *count;
  }
  return out;
}

Poller::Poller(PollerOptions options, CursorMap restored)
    : options_(std::move(options)),
      client_(options_.api_base_url, options_.ca_file,
              [token = options_.token](std::string text) {
                return redact_token(std::move(text), token);
              }) {
  for (const std::int64_t wall : options_.walls) {
    if (auto it = restored.find(cursor_key(wall)); it != restored.end()) {
      counts_[wall] = parse_counts(it->second);
    }
  }
}

std::string Poller::redact(std::string text) const {
  return redact_token(std::move(text), options_.token);
}

Poller::Call Poller::call(Output& out, const std::string& method, const std::string& params,
                          const std::atomic<bool>& stop, Parsed& parsed) {
  // Pace the calls: VK answers a burst with error 6.
  const auto gap = std::chrono::microseconds(
      static_cast<std::int64_t>(1e6 / std::max(0.1, options_.requests_per_second)));
  while (!stop && std::chrono::steady_clock::now() < last_call_ + gap) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), last_call_ + gap - std::chrono::steady_clock::now()));
  }
  if (stop) return {Step::stop, PollOutcome::ok};
  last_call_ = std::chrono::steady_clock::now();
  const std::string target = "/" + method + "?" + params + "&access_token=" +
                             http::percent_encode(options_.token) + "&v=" +
                             http::percent_encode(options_.api_version);
  const std::string shown = options_.api_base_url + "/" + method;
  auto reply = client_.get(target, shown, std::chrono::seconds(30), stop);
  if (!reply) {
    if (reply.error().type == "cancelled") return {Step::stop, PollOutcome::ok};
    out.error(reply.error().type, reply.error().message);
    return {Step::stop, PollOutcome::failed};
  }
  Parsed page;
  auto ok = parser_.parse(reply->body, wall_now(), page);
  if (!ok) {
    const bool server_error = reply->status >= 500;
    out.error(server_error ? "http_5xx" : "invalid_json",
              shown + ": HTTP " + std::to_string(reply->status) + ": " +
                  redact(ok.error().message));
    return {Step::stop, PollOutcome::failed};
  }
  if (!page.errors.empty()) return on_api_error(out, method, page.errors.front());
  if (reply->status != 200) {
    out.error("http_" + std::to_string(reply->status / 100) + "xx",
              shown + ": HTTP " + std::to_string(reply->status));
    return {Step::stop, PollOutcome::failed};
  }
  parsed.events.insert(parsed.events.end(), page.events.begin(), page.events.end());
  for (const auto& [reason, n] : page.rejected) parsed.rejected[reason] += n;
  parsed.objects += page.objects;
  std::move(page.pages.begin(), page.pages.end(), std::back_inserter(parsed.pages));
  return {};
}

Poller::Call Poller::on_api_error(Output& out, const std::string& method, const ApiError& e) {
  const std::string what = options_.api_base_url + "/" + method + ": error " +
                           std::to_string(e.code) + " " + redact(e.message);
  switch (e.code) {
    case 6:  // too many requests per second
      out.error("rate_limited", what);
      delay_ = std::chrono::seconds(1);
      return {Step::stop, PollOutcome::retry_later};
    case 9:  // flood control
      out.error("rate_limited", what + " (flood control: waiting 10 s)");
      delay_ = std::chrono::seconds(10);
      return {Step::stop, PollOutcome::retry_later};
    case 29:  // the method's daily quota
      out.error("rate_limited", what + " (daily limit of the method: waiting an hour)");
      delay_ = std::chrono::hours(1);
      return {Step::stop, PollOutcome::retry_later};
    case 5:  // authorization failed
      out.error("unauthorized", what + " (check the access token)");
      delay_ = std::chrono::minutes(5);
      return {Step::stop, PollOutcome::fatal};
    case 15:   // access denied
    case 18:   // page deleted or blocked
    case 30:   // private profile
    case 212:  // access to the post's comments denied
      out.error("access_denied", what);
      return {Step::skip, PollOutcome::ok};
    case 1:
    case 10:  // internal server error
      out.error("http_5xx", what);
      return {Step::stop, PollOutcome::failed};
    default:
      out.error("api_error", what);
      return {Step::stop, PollOutcome::failed};
  }
}

Poller::Call Poller::read_pages(Output& out, const std::string& params,
                                const std::atomic<bool>& stop, Parsed& parsed, Page* first_page) {
  for (std::int64_t offset = 0;;) {
    const std::size_t before = parsed.pages.size();
    const Call c = call(out, "wall.getComments",
                        params + "&offset=" + std::to_string(offset) +
                            "&count=" + std::to_string(kPageSize) + "&sort=asc&need_likes=0" +
                            "&thread_items_count=" + std::to_string(kThreadItems),
                        stop, parsed);
    if (c.step != Step::ok) return c;
    if (parsed.pages.size() == before) return {};  // a response without items: nothing more
    const Page& page = parsed.pages.back();
    if (first_page && offset == 0) *first_page = page;
    offset += static_cast<std::int64_t>(page.items);
    const std::int64_t level = page.level_count >= 0 ? page.level_count : page.count;
    if (page.items == 0 || (level >= 0 && offset >= level) ||
        (level < 0 && page.items < static_cast<std::uint64_t>(kPageSize))) {
      return {};
    }
  }
}

Poller::Call Poller::read_post(Output& out, std::int64_t wall, std::int64_t post,
                               const std::atomic<bool>& stop, Parsed& parsed) {
  const std::string base =
      "owner_id=" + std::to_string(wall) + "&post_id=" + std::to_string(post);
  const std::size_t first = parsed.pages.size();
  if (const Call c = read_pages(out, base, stop, parsed, nullptr); c.step != Step::ok) return c;
  // Threads with more replies than getComments nests: read each on its own.
  std::vector<std::int64_t> threads;
  for (std::size_t i = first; i < parsed.pages.size(); ++i) {
    for (const auto& t : parsed.pages[i].partial_threads) threads.push_back(t.comment);
  }
  for (const std::int64_t comment : threads) {
    const Call c = read_pages(out, base + "&comment_id=" + std::to_string(comment), stop, parsed,
                              nullptr);
    if (c.step != Step::ok) return c;
  }
  return {};
}

void Poller::compare(std::int64_t wall, std::int64_t post, Parsed& comments) {
  std::vector<std::int64_t> now;
  for (const auto& e : comments.events) {
    if (e.kind != pipeline::EventKind::remove) now.push_back(e.message_id);
  }
  std::sort(now.begin(), now.end());
  now.erase(std::unique(now.begin(), now.end()), now.end());
  auto [it, first_read] = seen_[wall].try_emplace(post);
  Seen& seen = it->second;
  std::vector<std::int64_t> missing;
  if (!first_read) {
    std::set_difference(seen.ids.begin(), seen.ids.end(), now.begin(), now.end(),
                        std::back_inserter(missing));
  }
  std::vector<std::int64_t> suspects;
  for (const std::int64_t id : missing) {
    if (!std::binary_search(seen.suspects.begin(), seen.suspects.end(), id)) {
      suspects.push_back(id);
      continue;
    }
    pipeline::Event e;
    e.source = pipeline::Source::vk;
    e.conversation = wall;
    e.message_id = id;
    e.kind = pipeline::EventKind::remove;
    e.time = wall_now();
    comments.events.push_back(e);
  }
  // A suspect stays in the set, so the next read compares it again.
  seen.ids = std::move(now);
  for (const std::int64_t id : suspects) {
    seen.ids.insert(std::lower_bound(seen.ids.begin(), seen.ids.end(), id), id);
  }
  seen.suspects = std::move(suspects);
}

void Poller::deliver(Output& out, std::int64_t wall, Parsed&& parsed) {
  Batch batch;
  batch.connector = options_.name;
  batch.received_at = wall_now();
  batch.events = std::move(parsed.events);
  batch.rejected = std::move(parsed.rejected);
  batch.cursors.push_back({cursor_key(wall), format_counts(counts_[wall])});
  out.deliver(std::move(batch));
}

Poller::Call Poller::poll_wall(Output& out, std::int64_t wall, const std::atomic<bool>& stop) {
  // The newest posts_lookback posts (a pinned one first, whatever its age).
  Parsed posts;
  std::vector<Page::Post> seen;
  for (std::int64_t offset = 0; static_cast<int>(seen.size()) < options_.posts_lookback;) {
    const int want = std::min(kPageSize, options_.posts_lookback - static_cast<int>(seen.size()));
    const std::size_t before = posts.pages.size();
    const Call c = call(out, "wall.get",
                        "owner_id=" + std::to_string(wall) + "&offset=" + std::to_string(offset) +
                            "&count=" + std::to_string(want) + "&filter=all",
                        stop, posts);
    if (c.step != Step::ok) return c;
    if (posts.pages.size() == before) break;
    const Page& page = posts.pages.back();
    seen.insert(seen.end(), page.posts.begin(), page.posts.end());
    offset += static_cast<std::int64_t>(page.items);
    if (page.items == 0 || (page.count >= 0 && offset >= page.count)) break;
  }
  auto& known = counts_[wall];
  // Posts that left the lookback are forgotten: the cursor stays small.
  std::map<std::int64_t, std::int64_t> kept;
  for (const auto& p : seen) {
    if (auto it = known.find(p.id); it != known.end()) kept.emplace(p.id, it->second);
  }
  known = std::move(kept);
  std::erase_if(seen_[wall], [&](const auto& post) {
    return std::none_of(seen.begin(), seen.end(),
                        [&](const Page::Post& p) { return p.id == post.first; });
  });
  deliver(out, wall, std::move(posts));
  if (seen.empty()) return {};
  const std::size_t rotate = rotation_[wall]++ % seen.size();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const auto& p = seen[i];
    const auto it = known.find(p.id);
    const bool moved = it == known.end() || it->second != p.comments || p.comments < 0;
    if (!moved && i != rotate) continue;
    if (p.comments == 0 && it == known.end()) {  // never had a comment: nothing to read
      known[p.id] = 0;
      continue;
    }
    Parsed comments;
    const Call c = read_post(out, wall, p.id, stop, comments);
    if (c.step == Step::stop) {
      deliver(out, wall, std::move(comments));  // what was read stays read; the count does not
      return c;
    }
    if (c.step == Step::ok) {
      compare(wall, p.id, comments);
      // A comment missing once is looked for again at the next poll, count or not.
      known[p.id] = seen_[wall][p.id].suspects.empty() ? p.comments : -1;
    }
    if (c.step == Step::skip) known.erase(p.id);  // deleted or closed: nothing to read there
    deliver(out, wall, std::move(comments));
  }
  return {};
}

PollOutcome Poller::poll(Output& out, const std::atomic<bool>& stop) {
  delay_.reset();
  const std::int64_t started = wall_now();
  bool complete = true;
  for (const std::int64_t wall : options_.walls) {
    const Call c = poll_wall(out, wall, stop);
    if (c.step == Step::stop) {
      pending_ = true;
      return c.outcome;
    }
    if (c.step == Step::skip) complete = false;  // a wall we cannot read holds the watermark
  }
  pending_ = !complete;
  started_at_ = started;
  return PollOutcome::ok;
}

}  // namespace replywatch::connectors::vk
