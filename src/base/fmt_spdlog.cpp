// fmt and spdlog, compiled into kiln from Debian's headers.
//
// Debian ships both only as shared libraries, and each of those needs libstdc++'s shared library:
// loading them (with libgcc_s and libm) cost about a millisecond of every exec on this host, more
// than the rest of kiln's start-up before the API socket listens. So kiln_base compiles every file
// with their "compiled library" settings (SPDLOG_COMPILED_LIB, no FMT_HEADER_ONLY: headers that
// declare and do not define), links libstdc++ statically (src/cli), and this file is the one place
// the definitions are compiled: the same headers' implementation parts, plus the explicit
// instantiations of the templates that those headers declare `extern`. What to instantiate is
// what kiln uses; the linker names anything missing.
#include <mutex>

#include <fmt/format-inl.h>

namespace fmt {
inline namespace v9 {
namespace detail {
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;
}  // namespace detail
}  // namespace v9
}  // namespace fmt

#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_color_sinks-inl.h>
#include <spdlog/spdlog-inl.h>

template class spdlog::sinks::base_sink<std::mutex>;
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stderr_sink<spdlog::details::console_mutex>;
