// Snapshot framing: magic, payload length, FNV-1a checksum, payload.
#include "daemon/snapshot_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace replywatch::daemon {

namespace {

constexpr char kMagic[8] = {'R', 'W', 'S', 'N', 'A', 'P', '1', '\n'};

std::uint64_t fnv1a(const std::string& data) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint64_t get64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

Error errno_error(const std::string& what, const std::string& path) {
  return make_error(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<void> write_snapshot_file(const std::string& path, const std::string& payload) {
  std::string header(kMagic, sizeof kMagic);
  put64(header, payload.size());
  put64(header, fnv1a(payload));
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("cannot create", tmp);
  auto write_all = [&](const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    return true;
  };
  if (!write_all(header) || !write_all(payload) || ::fsync(fd) != 0) {
    auto err = errno_error("cannot write", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::close(fd) != 0) return errno_error("cannot close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("cannot rename onto", path);
  // The rename is durable only once the directory entry is.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<std::optional<std::string>> read_snapshot_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return errno_error("cannot read snapshot", path);
  }
  if (!S_ISREG(st.st_mode)) return make_error("snapshot " + path + " is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error("cannot open snapshot", path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < 24 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return make_error("snapshot " + path + " is not a replywatch snapshot");
  }
  const std::uint64_t size = get64(data.data() + 8);
  const std::uint64_t sum = get64(data.data() + 16);
  if (size != data.size() - 24) {
    return make_error("snapshot " + path + " is truncated (" + std::to_string(data.size() - 24) +
                      " of " + std::to_string(size) + " bytes)");
  }
  std::string payload = data.substr(24);
  if (fnv1a(payload) != sum) return make_error("snapshot " + path + " fails its checksum");
  return std::optional<std::string>(std::move(payload));
}

}  // namespace replywatch::daemon
