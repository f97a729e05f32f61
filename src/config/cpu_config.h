#pragma once
// Firecracker's /cpu-config: a custom CPU template (CPUID and MSR modifiers), applied over the
// machine's built-in template.
#include <string_view>

#include <nlohmann/json.hpp>

#include "arch/x86/cpu_template.h"
#include "base/error.h"

namespace kiln {

// Kept as given (for GET /vm/config) and as parsed (once, when it is set).
struct CpuConfig {
  nlohmann::json source;
  x86::CpuTemplate parsed;
};

// Firecracker's custom CPU template JSON (cpuid_modifiers, msr_modifiers); errors name the field.
Result<x86::CpuTemplate> cpu_template_from_json(const nlohmann::json& j, std::string_view where);

}  // namespace kiln
