#pragma once
// The parts of the _ddpm module, each bound in its own file.
#include <nanobind/nanobind.h>

namespace ddpm::python {

void bind_sampler(nanobind::module_& m);     // sampler_bindings.cpp
void bind_predictors(nanobind::module_& m);  // predictors.cpp
void bind_images(nanobind::module_& m);      // image_bindings.cpp

}  // namespace ddpm::python
