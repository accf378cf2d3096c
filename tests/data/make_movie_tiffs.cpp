// Generates the small TIFFs used by tests/cli/flow_phasemap.sh (8-bit, ImageJ-style calibration):
//   movie4.tif  4 frames 128×128, 0.5 Å/px (ImageJ unit=nm, XResolution 20 px/nm): crossed
//               lattice fringes drifting (+1, 0) px/frame and a fringed disk moving (+1, +1) px/frame
//   single.tif  frame 0 of the movie alone, same calibration
//   nocal.tif   a 96×96 frame with no calibration
// Build and run from this folder: g++ -std=c++17 make_movie_tiffs.cpp -ltiff && ./a.out
#include <tiffio.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

static void write(const std::string& path, int n, const std::vector<std::vector<std::uint8_t>>& frames, bool calibrated) {
  TIFF* t = TIFFOpen(path.c_str(), "w");
  for (size_t f = 0; f < frames.size(); ++f) {
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, n);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, n);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, n);
    if (calibrated && f == 0) {
      std::string d = "ImageJ=1.53t\nimages=" + std::to_string(frames.size()) + "\nunit=nm\n";
      TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, d.c_str());
      TIFFSetField(t, TIFFTAG_XRESOLUTION, 20.0f);
      TIFFSetField(t, TIFFTAG_YRESOLUTION, 20.0f);
      TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_NONE);
    }
    for (int y = 0; y < n; ++y)
      TIFFWriteScanline(t, const_cast<std::uint8_t*>(&frames[f][size_t(y * n)]), y, 0);
    TIFFWriteDirectory(t);
  }
  TIFFClose(t);
}

static std::vector<std::uint8_t> frame(int n, int t) {
  std::vector<std::uint8_t> px(size_t(n * n));
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      double u = x - 1.0 * t, v = y;
      double pu = u - 50 - t, pv = v - 60 - t;
      double bg = std::cos(0.7 * u + 0.1 * v) + std::cos(0.75 * v - 0.2 * u);
      double p = 0.5 + 1.4 * (std::cos(0.69 * pu + 0.57 * pv) + std::cos(-0.63 * pu + 0.75 * pv));
      double w = 0.5 * (1 - std::tanh((std::hypot(pu, pv) - 24) / 2));
      px[size_t(y * n + x)] = std::uint8_t(std::lround(128 + 35 * ((1 - w) * bg + w * p)));
    }
  return px;
}

int main() {
  std::vector<std::vector<std::uint8_t>> movie;
  for (int t = 0; t < 4; ++t)
    movie.push_back(frame(128, t));
  write("movie4.tif", 128, movie, true);
  write("single.tif", 128, {movie[0]}, true);
  write("nocal.tif", 96, {frame(96, 0)}, false);
}
