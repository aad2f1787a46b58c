// The _ddpm extension module: exceptions, the sampler and the predictors.
// The public package is ddpm (python/ddpm), which re-exports these and adds
// the array handling of ddpm.Sampler.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "module.h"

namespace nb = nanobind;

NB_MODULE(_ddpm, m) {
  m.doc() = "ddpm's C++ engine (use the ddpm package, which wraps it)";

  // The most derived C++ type is translated first: nanobind tries the
  // translators registered last first.
  nb::exception<ddpm::Error> error(m, "Error", PyExc_ValueError);
  error.attr("__doc__") = "Bad input: a wrong shape, a NaN, an impossible schedule, a broken file.";
  nb::exception<ddpm::CudaError> cuda_error(m, "CudaError", PyExc_RuntimeError);
  cuda_error.attr("__doc__") = "A failed CUDA call or launch (file, line and CUDA's message).";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ddpm::Cancelled& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    }
  });

  m.def("cuda_available", &ddpm::cuda_available,
        "True when the CUDA backend is compiled in and a device is usable.");
  m.def("cuda_unavailable_reason", &ddpm::cuda_unavailable_reason,
        "Why cuda_available() is False, in one line (empty when it is True).");

  ddpm::python::bind_sampler(m);
  ddpm::python::bind_predictors(m);
  ddpm::python::bind_images(m);
}
