#include "epitem/rank_collection.hpp"

#include <cstdint>
#include <vector>

namespace epitem {

void put_image(parallel::ByteWriter& w, const Image& image) {
  w.put(image.nx).put(image.ny).put(image.pixel_size_A).put(image.pixel_size_invA);
  w.put(image.pixel_size_y_A).put(image.pixel_size_y_invA);
  w.put_values(image.pixels);
}

Image get_image(parallel::ByteReader& r) {
  const int nx = r.get<int>(), ny = r.get<int>();
  Image image(nx, ny);
  image.pixel_size_A = r.get<double>();
  image.pixel_size_invA = r.get<double>();
  image.pixel_size_y_A = r.get<double>();
  image.pixel_size_y_invA = r.get<double>();
  r.get_values(image.pixels);
  return image;
}

void collect_configurations(MultisliceReport& rep, const std::function<void(int, parallel::ByteWriter&)>& pack,
                            const std::function<void(int, parallel::ByteReader&)>& unpack) {
  rep.transmission_functions_computed = int(parallel::sum(rep.transmission_functions_computed));
  rep.peak_rss_bytes = parallel::max(rep.peak_rss_bytes);
  std::vector<double>& loss = rep.band_limit_loss_by_config;
  double loss_sum = 0;
  parallel::collect_in_order(
      rep.phonon_configs,
      [&](int config) {
        parallel::ByteWriter w;
        w.put(loss[std::size_t(config)]);
        pack(config, w);
        return w.bytes;
      },
      [&](int config, const std::vector<char>& bytes) {
        parallel::ByteReader r(bytes);
        loss[std::size_t(config)] = r.get<double>();
        loss_sum += loss[std::size_t(config)];
        unpack(config, r);
      });
  rep.band_limit_loss = loss_sum / rep.phonon_configs;
}

}  // namespace epitem
