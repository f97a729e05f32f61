#include "config/boot_source.h"

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

Result<BootSource> boot_source_from_json(const json& b) {
  BootSource out;
  KILN_CHECK(only_fields(b, "boot-source", {"kernel_image_path", "initrd_path", "boot_args"}));
  if (!b.contains("kernel_image_path")) return plain_error("boot-source.kernel_image_path is required");
  KILN_CHECK(get_field(b, "boot-source", "kernel_image_path", out.kernel_image_path));
  if (out.kernel_image_path.empty())
    return plain_error("boot-source.kernel_image_path: empty; give the path of a bzImage or ELF vmlinux");
  std::string s;
  if (b.contains("initrd_path") && !b.at("initrd_path").is_null()) {
    KILN_CHECK(get_field(b, "boot-source", "initrd_path", s));
    out.initrd_path = s;
  }
  if (b.contains("boot_args") && !b.at("boot_args").is_null()) {
    KILN_CHECK(get_field(b, "boot-source", "boot_args", s));
    out.boot_args = s;
  }
  return out;
}

json to_json(const BootSource& b) {
  json out = {{"kernel_image_path", b.kernel_image_path}};
  if (b.initrd_path) out["initrd_path"] = *b.initrd_path;
  if (b.boot_args) out["boot_args"] = *b.boot_args;
  return out;
}

}  // namespace kiln
