#include "epitem/movie.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "epitem/csv.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/output.hpp"

namespace fs = std::filesystem;

namespace epitem {

namespace {

// Value of the last run of digits in a file stem ("frame_0012" → 12); -1 if none.
long long last_number(const std::string& stem) {
  long long value = -1;
  size_t i = stem.size();
  while (i > 0 && !std::isdigit(static_cast<unsigned char>(stem[i - 1])))
    --i;
  size_t end = i;
  while (i > 0 && std::isdigit(static_cast<unsigned char>(stem[i - 1])))
    --i;
  if (end > i)
    value = std::stoll(stem.substr(i, std::min<size_t>(end - i, 18)));
  return value;
}

}  // namespace

namespace {

bool is_image_file_name(const std::string& path) {
  static const char* const known[] = {"tif", "tiff", "dm3", "dm4", "ser", "emd", "h5", "hdf5", "mrc", "mrcs", "png", "jpg", "jpeg"};
  const std::string ext = file_extension(path);
  return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return ext == k; });
}

}  // namespace

Movie::Movie(const std::string& path) : path_(path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    fail("movie: file or folder not found: ", path);
  if (!fs::is_directory(path, ec)) {
    file_ = open_image_file(path);
    info_ = file_->info();
    n_frames_ = file_->frame_count();
    return;
  }
  std::vector<std::pair<long long, std::string>> files;
  for (const auto& entry : fs::directory_iterator(path, ec))
    if (entry.is_regular_file() && is_image_file_name(entry.path().string()))
      files.emplace_back(last_number(entry.path().stem().string()), entry.path().string());
  if (files.empty())
    fail("movie folder ", path, " holds no image files (.tif, .dm4, .ser, .mrc, .png ...); put one image per frame there");
  std::sort(files.begin(), files.end());
  for (size_t i = 1; i < files.size(); ++i)
    if (files[i].first == files[i - 1].first)
      fail("movie folder ", path, ": frames ", files[i - 1].second, " and ", files[i].second,
           " have the same number; name frames with distinct numbers (frame_001.tif...)");
  for (auto& f : files)
    folder_files_.push_back(std::move(f.second));
  info_ = open_image_file(folder_files_.front())->info();
  n_frames_ = folder_files_.size();
}

Image Movie::frame(std::size_t i) const {
  if (i >= n_frames_)
    fail("movie ", path_, ": frame ", i + 1, " does not exist (", n_frames_, " frames)");
  Image f;
  std::string source = path_;
  if (file_) {
    f = file_->frame(i);
  } else {
    source = folder_files_[i];
    auto reader = open_image_file(source);
    if (reader->frame_count() != 1)
      fail(source, ": holds ", reader->frame_count(), " frames; a movie folder needs one frame per file");
    f = reader->frame(0);
  }
  if (f.nx != info_.nx || f.ny != info_.ny)
    fail("movie ", source, ": frame ", i + 1, " is ", f.nx, "x", f.ny, " but frame 1 is ", info_.nx, "x",
         info_.ny, "; all frames must have the same size (crop them alike)");
  if (f.pixel_size_A > 0 && info_.pixel_size_A > 0 && std::abs(f.pixel_size_A - info_.pixel_size_A) > 1e-4 * info_.pixel_size_A)
    fail("movie ", source, ": frame ", i + 1, " has pixel size ", f.pixel_size_A, " Å but frame 1 has ",
         info_.pixel_size_A, " Å; frames must share one calibration");
  apply_calibration(info_, f);
  return f;
}

std::vector<Image> read_movie(const std::string& path) {
  const Movie movie(path);
  std::vector<Image> frames;
  frames.reserve(movie.frame_count());
  for (size_t i = 0; i < movie.frame_count(); ++i)
    frames.push_back(movie.frame(i));
  return frames;
}

void require_movie(const std::vector<Image>& frames, std::size_t min_frames, const std::string& what) {
  if (frames.size() < min_frames)
    fail(what, ": a movie needs at least ", min_frames, " frames, got ", frames.size(),
         "; give a multi-page TIFF or a folder of numbered TIFFs");
  for (size_t i = 1; i < frames.size(); ++i)
    if (frames[i].nx != frames[0].nx || frames[i].ny != frames[0].ny)
      fail(what, ": frame ", i + 1, " is ", frames[i].nx, "x", frames[i].ny, " but frame 1 is ", frames[0].nx,
           "x", frames[0].ny, "; all frames must have the same size");
}

Image bin_image(const Image& image, int factor) {
  if (factor < 1)
    fail("binning factor must be >= 1, got ", factor);
  if (image.nx / factor < 1 || image.ny / factor < 1)
    fail("binning factor ", factor, " is larger than the ", image.nx, "x", image.ny, " image");
  if (factor == 1)
    return image;
  Image out(image.nx / factor, image.ny / factor);
  for (int y = 0; y < out.ny; ++y)
    for (int x = 0; x < out.nx; ++x) {
      double sum = 0;
      for (int j = 0; j < factor; ++j)
        for (int i = 0; i < factor; ++i)
          sum += image.at(x * factor + i, y * factor + j);
      out.at(x, y) = float(sum / (factor * factor));
    }
  out.pixel_size_A = image.pixel_size_A * factor;
  out.pixel_size_invA = image.pixel_size_invA * factor;
  return out;
}

FrameTimes frame_times_from_fps(std::size_t n_frames, double fps_Hz) {
  if (!(fps_Hz > 0) || !std::isfinite(fps_Hz))
    fail("--fps must be a positive frame rate in frames per second, got ", fps_Hz);
  FrameTimes t;
  for (size_t i = 0; i < n_frames; ++i)
    t.time_s.push_back(double(i) / fps_Hz);
  return t;
}

FrameTimes read_frame_times_csv(const std::string& path, std::size_t n_frames,
                                const std::string& covariate_column) {
  const CsvTable table = read_csv_table(path, "frame-times CSV");
  const auto& header = table.header;
  const auto& rows = table.rows;
  auto column = [&](const std::string& name) { return table.column(name); };
  int time_col = -1;
  double time_scale = 1;
  for (auto [name, scale] : {std::pair<const char*, double>{"time_s", 1.0}, {"time_ms", 1e-3}, {"time_min", 60.0}})
    if (time_col < 0 && (time_col = column(name)) >= 0)
      time_scale = scale;
  if (time_col < 0)
    fail(path, ": no time column; the header must name one of time_s, time_ms, time_min");
  int cov_col = covariate_column.empty() ? -1 : column(covariate_column);
  if (!covariate_column.empty() && cov_col < 0)
    fail(path, ": no column '", covariate_column, "' in the header; columns are the first line");
  if (rows.size() != n_frames)
    fail(path, ": has ", rows.size(), " data rows but the movie has ", n_frames, " frames; give one row per frame");
  FrameTimes times;
  times.covariate_name = covariate_column;
  for (size_t r = 0; r < rows.size(); ++r) {
    auto number = [&](int col) {
      if (col >= int(rows[r].size()))
        fail(path, ": row ", r + 1, " has too few columns");
      try {
        size_t used = 0;
        double v = std::stod(rows[r][size_t(col)], &used);
        if (used != rows[r][size_t(col)].size() || !std::isfinite(v))
          throw std::invalid_argument("");
        return v;
      } catch (const std::exception&) {
        fail(path, ": row ", r + 1, ": '", rows[r][size_t(col)], "' in column ", header[size_t(col)],
             " is not a number");
      }
    };
    times.time_s.push_back(number(time_col) * time_scale);
    if (r > 0 && !(times.time_s[r] > times.time_s[r - 1]))
      fail(path, ": row ", r + 1, ": time ", times.time_s[r], " s does not increase; frames must be in time order");
    if (cov_col >= 0)
      times.covariate.push_back(number(cov_col));
  }
  return times;
}

void apply_covariate_ramp(FrameTimes& times, const std::string& spec, const std::string& name) {
  auto bad = [&]() {
    fail("--ramp '", spec, "': expected START:RATE/UNIT with UNIT s, ms or min, e.g. 400:1/s (400 + 1 per second)");
  };
  size_t colon = spec.find(':'), slash = spec.find('/');
  if (colon == std::string::npos || slash == std::string::npos || slash < colon)
    bad();
  double start = 0, rate = 0;
  try {
    size_t used = 0;
    start = std::stod(spec.substr(0, colon), &used);
    if (used != colon)
      bad();
    std::string r = spec.substr(colon + 1, slash - colon - 1);
    rate = std::stod(r, &used);
    if (used != r.size())
      bad();
  } catch (const std::invalid_argument&) {
    bad();
  } catch (const std::out_of_range&) {
    bad();
  }
  std::string unit = trim_field(spec.substr(slash + 1));
  double per_s = unit == "s" ? 1.0 : unit == "ms" ? 1e3 : unit == "min" ? 1.0 / 60 : unit == "h" ? 1.0 / 3600 : 0;
  if (per_s == 0)
    bad();
  times.covariate_name = name;
  times.covariate.clear();
  for (double t : times.time_s)
    times.covariate.push_back(start + rate * per_s * t);
}

}  // namespace epitem
