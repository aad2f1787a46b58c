#pragma once
// The two exception types the library throws. Messages are one line and name
// the problem so that the CLI can print them as they are.
#include <stdexcept>
#include <string>

namespace ddpm {

// Bad input: a wrong shape, a NaN, an impossible schedule, a broken file.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failed CUDA call or launch (file, line and CUDA's message in what()),
// including running out of device memory.
class CudaError : public Error {
 public:
  using Error::Error;
};

// A sampling run stopped because its request's `cancelled` hook said so
// (e.g. Ctrl-C in the Python module).
class Cancelled : public Error {
 public:
  using Error::Error;
};

}  // namespace ddpm
