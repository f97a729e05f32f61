#pragma once
// The metadata service for one VM: kiln's HTTP server (api::HttpServer, answering with
// mmds::Service) on a Unix socket in a private directory (mode 0700, removed when the VM ends),
// which the guest's TCP connections to the service's address reach through each chosen
// interface's service stack (virtio::MmdsRouter). The data store is the API's: PUT and PATCH
// /mmds change what the guest reads next.
#include <memory>
#include <string>

#include "api/http_server.h"
#include "base/error.h"
#include "config/mmds.h"
#include "mmds/service.h"
#include "virtio/net/backend.h"

namespace kiln {

class MmdsEndpoint {
 public:
  static Result<std::unique_ptr<MmdsEndpoint>> start(std::shared_ptr<const mmds::DataStore> store,
                                                     const MmdsConfig& config);
  ~MmdsEndpoint();
  MmdsEndpoint(const MmdsEndpoint&) = delete;
  MmdsEndpoint& operator=(const MmdsEndpoint&) = delete;

  // `inner` (an interface's back end) with the service in front of it.
  Result<std::unique_ptr<virtio::NetBackend>> attach(std::unique_ptr<virtio::NetBackend> inner);
  [[nodiscard]] const std::string& socket_path() const { return socket_; }

 private:
  MmdsEndpoint() = default;
  std::shared_ptr<const mmds::DataStore> store_;
  std::unique_ptr<mmds::Service> service_;
  std::unique_ptr<api::HttpServer> server_;
  std::uint32_t addr_ = 0;  // network order
  std::string dir_, socket_;
};

}  // namespace kiln
