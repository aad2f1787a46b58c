#include "options.h"

#include <limits>
#include <string>
#include <vector>

#include <nanobind/stl/string.h>

#include "ddpm/error.h"

namespace ddpm::python {
namespace {

[[noreturn]] void wrong_type(const char* key, const char* expected, nb::handle value) {
  const std::string got = nb::type_name(value.type()).c_str();
  throw nb::type_error((std::string(key) + " must be " + expected + ", got " + got).c_str());
}

std::string text(nb::handle v, const char* key) {
  if (!nb::isinstance<nb::str>(v)) wrong_type(key, "a str", v);
  return nb::cast<std::string>(v);
}

long long integer(nb::handle v, const char* key) {
  // bool is an int to Python, never a step count; a float would be truncated.
  PyObject* index = PyBool_Check(v.ptr()) ? nullptr : PyNumber_Index(v.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    wrong_type(key, "an int", v);
  }
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
  Py_DECREF(index);
  if (overflow != 0) {
    throw Error(std::string(key) + " " + nb::str(v).c_str() + " is out of range");
  }
  return value;
}

int small_integer(nb::handle v, const char* key) {
  const long long value = integer(v, key);
  if (value < -(1LL << 31) || value >= (1LL << 31)) {
    throw Error(std::string(key) + " " + std::to_string(value) + " is out of range");
  }
  return static_cast<int>(value);
}


bool boolean(nb::handle v, const char* key) {
  // numpy.bool_ is not a bool subclass but converts exactly.
  const std::string type = nb::type_name(v.type()).c_str();
  if (!PyBool_Check(v.ptr()) && type != "numpy.bool" && type != "numpy.bool_") {
    wrong_type(key, "a bool", v);
  }
  return PyObject_IsTrue(v.ptr()) == 1;
}

std::vector<double> numbers(nb::handle v, const char* key, std::size_t min, std::size_t max,
                            const char* expected) {
  if (!nb::isinstance<nb::tuple>(v) && !nb::isinstance<nb::list>(v)) wrong_type(key, expected, v);
  const nb::sequence items = nb::borrow<nb::sequence>(v);
  const std::size_t n = nb::len(items);
  if (n < min || n > max) wrong_type(key, expected, v);
  std::vector<double> values;
  for (nb::handle item : items) values.push_back(number(item, key));
  return values;
}

// What apply_options saw besides the fields it set, for the checks that
// span several keys (the CLI makes the same ones).
struct Given {
  bool clip_x0 = false, thresholding_values = false, thresholding_on = false;
  bool threshold_fields = false, steps_offset = false;
  bool timesteps = false, inference_steps = false;
};

using Apply = void (*)(SamplerOptions&, nb::handle, const char*, Given&);

struct OptionRule {
  const char* name;
  const char* alias;  // diffusers' config name where it differs, or null
  Apply apply;
};

// One line per option.
const OptionRule kRules[] = {
    {"sampler", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.sampler = parse_sampler_kind(text(v, k));
     }},
    {"prediction_type", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.prediction_type = parse_prediction_type(text(v, k));
     }},
    {"inference_steps", "num_inference_steps",
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       o.num_inference_steps = v.is_none() ? 0 : small_integer(v, k);
       g.inference_steps = !v.is_none();
     }},
    {"timestep_spacing", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.timestep_spacing = parse_timestep_spacing(text(v, k));
     }},
    {"steps_offset", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       o.steps_offset = small_integer(v, k);
       g.steps_offset = true;
     }},
    {"timesteps", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       o.timesteps.clear();
       if (v.is_none()) return;
       if (nb::isinstance<nb::str>(v) || !nb::hasattr(v, "__iter__")) {
         wrong_type(k, "a sequence of ints", v);
       }
       for (nb::handle t : nb::iter(v)) o.timesteps.push_back(small_integer(t, k));
       // [] would read as "none given" (every step): not what was asked.
       if (o.timesteps.empty()) throw Error("timesteps is empty: give at least one timestep, or None");
       o.num_inference_steps = 0;
       g.timesteps = true;
     }},
    {"eta", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.eta = number(v, k); }},
    {"set_alpha_to_one", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.set_alpha_to_one = boolean(v, k); }},
    {"variance", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.variance = parse_variance_kind(text(v, k));
     }},
    {"clip_x0", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       if (v.is_none()) {
         o.clip_x0.reset();
         return;
       }
       const std::vector<double> range = numbers(v, k, 2, 2, "None or a pair (lo, hi)");
       o.clip_x0 = ClipRange{static_cast<float>(range[0]), static_cast<float>(range[1])};
       o.thresholding = false;
       g.clip_x0 = true;
     }},
    {"use_karras_sigmas", "karras_sigmas",
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.use_karras_sigmas = boolean(v, k); }},
    {"solver_order", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.solver_order = small_integer(v, k); }},
    {"lower_order_final", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.lower_order_final = boolean(v, k); }},
    {"euler_at_final", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.euler_at_final = boolean(v, k); }},
    {"use_lu_lambdas", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.use_lu_lambdas = boolean(v, k); }},
    {"lambda_min_clipped", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       // None, as a config may hold it: no clipping (-inf).
       o.lambda_min_clipped = v.is_none() ? -std::numeric_limits<double>::infinity() : number(v, k);
     }},
    {"final_sigmas_type", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.final_sigmas_type = parse_final_sigmas_type(text(v, k));
     }},
    {"solver_type", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.solver_type = parse_unipc_solver_type(text(v, k));
     }},
    {"disable_corrector", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       // diffusers' list of step indices (None, as a config may hold it: none).
       o.disable_corrector.clear();
       if (v.is_none()) return;
       if (nb::isinstance<nb::str>(v) || !nb::hasattr(v, "__iter__")) wrong_type(k, "a sequence of ints", v);
       for (nb::handle i : nb::iter(v)) o.disable_corrector.push_back(small_integer(i, k));
     }},
    {"thresholding", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       // True / False (diffusers' flag), RATIO or (RATIO, MAX) like --thresholding.
       if (PyBool_Check(v.ptr())) {
         o.thresholding = v.ptr() == Py_True;
       } else if (nb::isinstance<nb::tuple>(v) || nb::isinstance<nb::list>(v)) {
         const std::vector<double> values = numbers(v, k, 1, 2, "a bool, a ratio or (ratio, max)");
         o.thresholding = true;
         o.dynamic_thresholding_ratio = values[0];
         o.sample_max_value = values.size() > 1 ? values[1] : 1.0;
         g.thresholding_values = true;
       } else {
         o.thresholding = true;
         o.dynamic_thresholding_ratio = number(v, k);
         o.sample_max_value = 1.0;
         g.thresholding_values = true;
       }
       if (o.thresholding) o.clip_x0.reset();
       g.thresholding_on = o.thresholding;
     }},
    {"dynamic_thresholding_ratio", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       o.dynamic_thresholding_ratio = number(v, k);
       g.threshold_fields = true;
     }},
    {"sample_max_value", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given& g) {
       o.sample_max_value = number(v, k);
       g.threshold_fields = true;
     }},
    {"rescale_zero_snr", "rescale_betas_zero_snr",
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) {
       o.rescale_betas_zero_snr = boolean(v, k);
     }},
    {"backend", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.backend = parse_backend(text(v, k)); }},
    {"threads", nullptr,
     [](SamplerOptions& o, nb::handle v, const char* k, Given&) { o.threads = small_integer(v, k); }},
};

std::string known_names() {
  std::string names;
  for (const OptionRule& rule : kRules) {
    names += (names.empty() ? "" : ", ") + std::string(rule.name);
    if (rule.alias != nullptr) names += " (" + std::string(rule.alias) + ")";
  }
  return names;
}

const OptionRule* find_rule(const std::string& key) {
  for (const OptionRule& rule : kRules) {
    if (key == rule.name || (rule.alias != nullptr && key == rule.alias)) return &rule;
  }
  return nullptr;
}

}  // namespace

double number(nb::handle v, const char* key) {
  PyObject* value = PyBool_Check(v.ptr()) || nb::isinstance<nb::str>(v) ? nullptr : PyNumber_Float(v.ptr());
  if (value == nullptr) {
    PyErr_Clear();
    wrong_type(key, "a number", v);
  }
  return PyFloat_AsDouble(nb::steal(value).ptr());
}

void apply_options(const nb::dict& kwargs, SamplerOptions& options) {
  std::vector<const OptionRule*> seen;
  Given given;
  for (auto [key_object, value] : kwargs) {
    const std::string key = nb::cast<std::string>(nb::str(key_object));
    const OptionRule* rule = find_rule(key);
    if (rule == nullptr) {
      throw nb::type_error(("unknown sampler option '" + key + "' (known: " + known_names() + ")").c_str());
    }
    for (const OptionRule* other : seen) {
      if (other == rule) {
        throw nb::type_error((std::string("give ") + rule->name + " or " + rule->alias + ", not both").c_str());
      }
    }
    seen.push_back(rule);
    rule->apply(options, value, key.c_str(), given);
  }
  if (given.clip_x0 && given.thresholding_on) {
    throw Error("clip_x0 and thresholding exclude each other: give one");
  }
  if (given.thresholding_values && given.threshold_fields) {
    throw nb::type_error(
        "give the thresholding ratio once: thresholding=(ratio, max) or "
        "dynamic_thresholding_ratio= and sample_max_value=");
  }
  if (given.timesteps && given.inference_steps) {
    throw Error("timesteps and inference_steps exclude each other: give one");
  }
  if (given.inference_steps && options.num_inference_steps < 1) {
    throw Error("inference_steps " + std::to_string(options.num_inference_steps) +
                " is outside [1, T]: give at least one step");
  }
  if (given.steps_offset && options.steps_offset != 0 &&
      options.timestep_spacing.value_or(default_timestep_spacing(options.sampler)) != TimestepSpacing::leading) {
    throw Error("steps_offset applies only to timestep_spacing='leading'");
  }
}

nb::dict options_dict(const SamplerOptions& o) {
  nb::dict d;
  d["sampler"] = to_string(o.sampler);
  d["prediction_type"] = to_string(o.prediction_type);
  // inference_steps (None: every step of the schedule) or timesteps, the
  // other None, so that Sampler(**sampler.options) makes the same sampler.
  d["inference_steps"] = o.timesteps.empty() && o.num_inference_steps > 0
                             ? nb::object(nb::int_(o.num_inference_steps))
                             : nb::none();
  d["timestep_spacing"] = to_string(o.timestep_spacing.value_or(default_timestep_spacing(o.sampler)));
  d["steps_offset"] = o.steps_offset;
  nb::list timesteps;
  for (int t : o.timesteps) timesteps.append(t);
  d["timesteps"] = o.timesteps.empty() ? nb::object(nb::none()) : nb::object(timesteps);
  d["eta"] = o.eta;
  d["set_alpha_to_one"] = o.set_alpha_to_one;
  d["use_karras_sigmas"] = o.use_karras_sigmas;
  d["solver_order"] = o.solver_order;
  d["lower_order_final"] = o.lower_order_final;
  d["euler_at_final"] = o.euler_at_final;
  d["use_lu_lambdas"] = o.use_lu_lambdas;
  d["lambda_min_clipped"] = o.lambda_min_clipped;
  d["final_sigmas_type"] = to_string(o.final_sigmas_type);
  d["solver_type"] = to_string(o.solver_type);
  nb::list disabled;
  for (int i : o.disable_corrector) disabled.append(i);
  d["disable_corrector"] = disabled;
  d["variance"] = to_string(o.variance);
  d["clip_x0"] = o.clip_x0 ? nb::object(nb::make_tuple(o.clip_x0->lo, o.clip_x0->hi)) : nb::none();
  d["thresholding"] = o.thresholding;
  d["dynamic_thresholding_ratio"] = o.dynamic_thresholding_ratio;
  d["sample_max_value"] = o.sample_max_value;
  d["rescale_zero_snr"] = o.rescale_betas_zero_snr;
  d["backend"] = to_string(o.backend);
  d["threads"] = o.threads;
  return d;
}

}  // namespace ddpm::python
