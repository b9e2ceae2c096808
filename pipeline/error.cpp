// Bridges Result<T>::value() on an error to an exception; data paths check first.
#include "pipeline/error.hpp"

#include <stdexcept>

namespace replywatch {

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

}  // namespace replywatch
