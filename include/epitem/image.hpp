// A 2-D float image with its calibration, and TIFF reading/writing (libtiff). Row-major
// [iy][ix], row 0 at the top of the TIFF. One reader, used by every subcommand.
#pragma once
#include <optional>
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

/// How the pages of a multi-page TIFF relate, for ImageJ/Fiji: z slices (focal or thickness
/// series, maps) or time frames (movies).
enum class TiffStack { Slices, Frames };

/// ImageJ metadata of a written stack beyond the pixel size.
struct TiffWriteOptions {
  TiffStack stack = TiffStack::Slices;  ///< ImageJ `slices=N` or `frames=N`
  double frame_interval_s = 0;          ///< ImageJ `finterval` (Frames); 0 = unknown
  double slice_spacing_A = 0;           ///< ImageJ `spacing` (Slices, real-space pixels); 0 = unknown
  std::optional<double> origin_x_px;    ///< ImageJ `xorigin`: e.g. the diffraction-pattern centre
  std::optional<double> origin_y_px;    ///< ImageJ `yorigin` (row from the top)
  bool bigtiff = false;                 ///< force BigTIFF (chosen anyway when the file passes 4 GiB)
};

/// Writes float32 pages (one page per image, all the same size), uncompressed, one strip per
/// page, all pages' pixel data one after another (ImageJ and tifffile read ImageJ stacks by
/// offset arithmetic) and the page directories after them. Pixel size as TIFF resolution
/// (XResolution from x, YResolution from the y pixel) with the ImageJ unit "A" or "1/A" in the
/// ImageJ description (readable by Fiji). `description` (e.g. the JSON parameters) is stored as
/// DocumentName, since ImageJ owns the ImageDescription. Written to a temporary file and renamed.
void write_tiff(const std::string& path, const std::vector<Image>& pages,
                const std::string& description = "", const TiffWriteOptions& options = {});

/// Reads all pages of an 8/16/32-bit integer or 16/32/64-bit float grayscale TIFF as float
/// (open_tiff_file in image_file.hpp streams them instead). Pixel size from ImageJ's
/// description (unit=nm|Å|µm...), Gatan/JEOL/FEI metadata or plausible resolution tags. RGB
/// with equal channels is read as gray; other RGB is refused with the fix. Throws Error naming
/// the file and the problem.
std::vector<Image> read_tiff(const std::string& path);

/// Throws Error if any pixel is NaN or infinite, naming `what` and the first bad pixel.
void require_finite(const Image& image, const std::string& what);

}  // namespace epitem
