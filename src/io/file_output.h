#pragma once
// Never-destroying outputs: public in ddpm/files.h; the library's code names them here too.
#include "ddpm/files.h"

namespace ddpm::detail {

using ddpm::OutputTarget;
using ddpm::inherited_descriptor;
using ddpm::resolve_output;
using ddpm::OutputSet;
using ddpm::remove_temporaries_on_signals;
using ddpm::hold_off_signals;
using ddpm::set_signal_message;

}  // namespace ddpm::detail
