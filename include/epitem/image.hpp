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
  double pixel_size_y_A = 0;      ///< y pixel [Å] when pixels are not square; 0 = same as x
  double pixel_size_y_invA = 0;   ///< y reciprocal pixel [1/Å] when not square; 0 = same as x

  Image() = default;
  Image(int nx_, int ny_, float value = 0.f) : nx(nx_), ny(ny_), pixels(size_t(nx_) * size_t(ny_), value) {}
  float& at(int ix, int iy) { return pixels[size_t(iy) * size_t(nx) + size_t(ix)]; }
  float at(int ix, int iy) const { return pixels[size_t(iy) * size_t(nx) + size_t(ix)]; }
  size_t size() const { return pixels.size(); }
  double pixel_y_A() const { return pixel_size_y_A > 0 ? pixel_size_y_A : pixel_size_A; }
  double pixel_y_invA() const { return pixel_size_y_invA > 0 ? pixel_size_y_invA : pixel_size_invA; }
};

/// The image upside down (row iy becomes row ny-1-iy), calibration kept. Converts between the
/// model frame (index iy grows with +y) and the file/display frame (row 0 = top = largest y,
/// +y up as ImageJ shows it); every simulated raster is flipped once, at the file boundary.
Image flipped_rows(const Image& image);

/// Writes float32 pages (one page per image, all the same size) with the pixel size as TIFF
/// resolution (XResolution from x, YResolution from the y pixel, ImageJ's pixelHeight) and ImageJ calibration (unit Å or 1/Å in the ImageJ description, readable by
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
