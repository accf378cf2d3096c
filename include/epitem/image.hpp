// A 2-D float image with its calibration, and TIFF reading/writing (libtiff). Row-major
// [iy][ix], row 0 at the top of the TIFF. One reader, used by every subcommand.
#pragma once
#include <string>
#include <vector>

namespace epitem {

struct Image {
  int nx = 0, ny = 0;
  std::vector<float> pixels;      ///< pixels[iy * nx + ix]
  double pixel_size_A = 0;        ///< real-space pixel [Å]; 0 = unknown
  double pixel_size_invA = 0;     ///< reciprocal-space pixel [1/Å] (diffraction); 0 = unknown

  Image() = default;
  Image(int nx_, int ny_, float value = 0.f) : nx(nx_), ny(ny_), pixels(size_t(nx_) * size_t(ny_), value) {}
  float& at(int ix, int iy) { return pixels[size_t(iy) * size_t(nx) + size_t(ix)]; }
  float at(int ix, int iy) const { return pixels[size_t(iy) * size_t(nx) + size_t(ix)]; }
  size_t size() const { return pixels.size(); }
};

/// Writes float32 pages (one page per image, all the same size) with the pixel size as TIFF
/// resolution and ImageJ calibration (unit Å or 1/Å in the ImageJ description, readable by
/// Fiji). `description` (e.g. the JSON parameters) goes into the first page's
/// ImageDescription as a second tag is not portable; it is stored as Software/DocumentName.
/// Written to a temporary file and renamed.
void write_tiff(const std::string& path, const std::vector<Image>& pages,
                const std::string& description = "");

/// Reads all pages of an 8/16/32-bit integer or 32/64-bit float grayscale TIFF as float.
/// Pixel size from ImageJ's description (unit=nm|Å|µm...) or the resolution tags (cm/inch are
/// ignored as meaningless for micrographs). RGB with equal channels is read as gray; other
/// RGB is refused with the fix. Throws Error naming the file and the problem.
std::vector<Image> read_tiff(const std::string& path);

/// Throws Error if any pixel is NaN or infinite, naming `what` and the first bad pixel.
void require_finite(const Image& image, const std::string& what);

}  // namespace epitem
