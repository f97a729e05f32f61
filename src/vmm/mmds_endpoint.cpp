#include "vmm/mmds_endpoint.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/log.h"
#include "virtio/net/mmds_router.h"
#include "virtio/net/user_net.h"

namespace kiln {

Result<std::unique_ptr<MmdsEndpoint>> MmdsEndpoint::start(std::shared_ptr<const mmds::DataStore> store,
                                                          const MmdsConfig& config) {
  std::unique_ptr<MmdsEndpoint> e(new MmdsEndpoint());
  e->store_ = std::move(store);
  in_addr a{};
  ::inet_pton(AF_INET, config.ipv4_address.c_str(), &a);  // checked with the config
  e->addr_ = a.s_addr;
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string tmpl = (runtime != nullptr && *runtime != '\0' && ::access(runtime, W_OK | X_OK) == 0)
                         ? std::string(runtime) + "/kiln-mmds-XXXXXX"
                         : "/tmp/kiln-mmds-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return errno_error("metadata service: cannot make a directory {}", tmpl);
  e->dir_ = tmpl;
  e->socket_ = e->dir_ + "/mmds.sock";
  e->service_ = std::make_unique<mmds::Service>(*e->store_, config.version == "V2" ? mmds::Version::kV2 : mmds::Version::kV1);
  auto server = api::HttpServer::start(
      e->socket_, [svc = e->service_.get()](const api::HttpRequest& r) { return svc->handle(r); },
      {.what = "metadata service"});
  if (!server) return std::unexpected(server.error());
  e->server_ = std::move(*server);
  SPDLOG_INFO("metadata service ({}) at {}:80 on {}", config.version, config.ipv4_address,
              fmt::join(config.network_interfaces, ", "));
  return e;
}

MmdsEndpoint::~MmdsEndpoint() {
  server_.reset();  // unlinks its socket
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Result<std::unique_ptr<virtio::NetBackend>> MmdsEndpoint::attach(std::unique_ptr<virtio::NetBackend> inner) {
  KILN_ASSIGN(auto stack, virtio::UserNetBackend::create_service(addr_, 80, socket_));
  KILN_ASSIGN(auto router, virtio::MmdsRouter::create(std::move(inner), std::move(stack)));
  return std::unique_ptr<virtio::NetBackend>(std::move(router));
}

}  // namespace kiln
