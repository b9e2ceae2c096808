// The error type carried by results at every boundary (config, parsing, I/O).
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <utility>

namespace replywatch {

/// A failure a user can act on: the message names what went wrong and where.
struct Error {
  std::string message;
};

template <class T>
using Result = boost::system::result<T, Error>;

inline Error make_error(std::string message) { return Error{std::move(message)}; }

/// Called by Result<T>::value() on an error; replywatch code checks before it reads.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace replywatch
