// One image-file layer for every command: the reader is chosen by the file's content (magic
// bytes), not its extension. A file is opened once (header, calibration, metadata) and its
// frames are read one at a time, so movies stream instead of filling memory.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "epitem/image.hpp"

namespace epitem {

/// Calibration of one axis exactly as the file stores it: physical = scale · (index − origin_px).
struct AxisCalibration {
  double scale = 0;        ///< step per pixel, in `unit`; 0 = not calibrated
  double origin_px = 0;    ///< pixel index of the physical zero
  std::string unit;        ///< as stored ("nm", "1/nm", "m", "µm", "A", "n_m", "" ...)
};

/// What a file says about its data and acquisition; 0 / empty = not in the file.
struct ImageFileInfo {
  std::string path;
  std::string format;             ///< "DM4", "TIA SER v0x220", "Velox EMD", "MRC 2014", "TIFF (ImageJ)"...
  std::string dtype;              ///< stored type: "uint16", "float32", "complex64", "rgba8"...
  int nx = 0, ny = 0;             ///< columns, rows of one frame
  std::size_t n_frames = 0;
  std::vector<AxisCalibration> axes;  ///< x (columns), y (rows)[, frames] as stored
  double pixel_size_A = 0;        ///< x step [Å] when the x unit is a length, else 0
  double pixel_size_y_A = 0;      ///< y step [Å] when the y unit is a length, else 0
  double pixel_size_invA = 0;     ///< x step [1/Å] when the unit is reciprocal, else 0
  double pixel_size_y_invA = 0;   ///< y step [1/Å] when the unit is reciprocal, else 0
  double energy_eV = 0;           ///< accelerating voltage × e
  double camera_length_m = 0;
  double exposure_s = 0;          ///< per frame
  double frame_time_s = 0;        ///< interval between frames of a series/movie
  std::vector<std::string> notes;    ///< what was read from where (metadata source, orientation ...)
  std::vector<std::string> warnings; ///< changes to the data a user must know (RGB → luminance,
                                     ///< complex → one part, units or byte order assumed)
};

/// Which part of complex data a frame returns (real data ignore this).
enum class ComplexPart { Modulus, Real, Imaginary };

/// An open image file: header read, frames on demand. Implementations keep only the header and
/// offsets in memory; frame() reads one frame from disk and is safe to call from several threads.
class ImageFileReader {
public:
  virtual ~ImageFileReader() = default;
  const ImageFileInfo& info() const { return info_; }
  std::size_t frame_count() const { return info_.n_frames; }
  /// Frame i (0-based) as float, row 0 = top of the displayed image, calibration filled in
  /// from info(). Throws Error naming the file when i is out of range or the data are short.
  virtual Image frame(std::size_t i, ComplexPart part = ComplexPart::Modulus) const = 0;

protected:
  ImageFileInfo info_;
};

/// Opens any supported image file (TIFF, DM3/DM4, TIA SER/EMI, Velox/Berkeley EMD, MRC,
/// PNG/JPEG). Throws Error with one line naming the file and what is wrong (unknown format,
/// truncated header, a declared size larger than the file ...); never allocates a declared size
/// before checking it against the file size.
std::unique_ptr<ImageFileReader> open_image_file(const std::string& path);

/// The reader a file's first bytes call for: "tiff", "dm", "ser", "emi", "hdf5", "mrc", "stb"
/// (PNG/JPEG), or "" when none (or the file cannot be read).
std::string image_file_kind(const std::string& path);

/// Every frame of a file (convenience for small files; movies should stream with open_image_file).
std::vector<Image> read_image_frames(const std::string& path);

/// Length unit → Å per unit ("nm" → 10, "m" → 1e10, "µm"/"um" → 1e4, "A"/"Å" → 1, "pm" → 0.01,
/// ncempy's "n_m" → 10); 0 when `unit` is not a length.
double length_unit_in_A(const std::string& unit);

/// Reciprocal-length unit → 1/Å per unit ("1/nm" → 0.1, "1/m" → 1e-10, "1/A" → 1); 0 otherwise.
double reciprocal_unit_in_invA(const std::string& unit);

/// Fills info.pixel_size_* from info.axes[0..1] (length or reciprocal units).
void derive_pixel_sizes(ImageFileInfo& info);

/// Copies the pixel sizes of `info` into `image`.
void apply_calibration(const ImageFileInfo& info, Image& image);

/// Throws Error unless nx·ny·frames·bytes_per_value fits in `available_bytes` (the file's data
/// part) — call before allocating anything a header declares. `what` names the file.
void require_declared_size(const std::string& what, double nx, double ny, double n_frames,
                           double bytes_per_value, double available_bytes);

// Format back-ends (each in its own src/format_*.cpp). They assume the magic bytes were checked.
std::unique_ptr<ImageFileReader> open_tiff_file(const std::string& path);
std::unique_ptr<ImageFileReader> open_dm_file(const std::string& path);
std::unique_ptr<ImageFileReader> open_ser_file(const std::string& path);
std::unique_ptr<ImageFileReader> open_emi_file(const std::string& path);
std::unique_ptr<ImageFileReader> open_emd_file(const std::string& path);
std::unique_ptr<ImageFileReader> open_mrc_file(const std::string& path);
std::unique_ptr<ImageFileReader> open_stb_file(const std::string& path);  ///< PNG, JPEG

}  // namespace epitem
