#include "epitem/imaging.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/units.hpp"
#include "fft_plan.hpp"

namespace epitem {

CoherenceModel parse_coherence_model(const std::string& name) {
  if (name == "envelope")
    return CoherenceModel::Envelope;
  if (name == "integrate")
    return CoherenceModel::Integrate;
  fail("unknown coherence model '", name, "' (use envelope or integrate)");
}

const char* coherence_model_name(CoherenceModel model) {
  return model == CoherenceModel::Envelope ? "envelope" : "integrate";
}

void CoherenceSpec::validate() const {
  if (defocus_nodes < 1 || defocus_nodes > 64)
    fail("coherence: defocus nodes must be 1-64, got ", defocus_nodes);
  if (tilt_nodes < 1 || tilt_nodes > 32)
    fail("coherence: tilt nodes per axis must be 1-32, got ", tilt_nodes);
}

std::string coherence_description(const Lens& lens, const CoherenceSpec& c) {
  std::ostringstream os;
  os.precision(6);
  if (c.model == CoherenceModel::Envelope) {
    os << "envelope: quasi-coherent E_t*E_s multiplied onto the wave spectrum (focal spread sigma "
       << lens.focal_spread_A << " A, convergence " << lens.convergence_mrad
       << " mrad 1/e); damps the image mean of strong objects";
  } else {
    os << "integrate: intensities summed over " << ImageFormer::node_count(lens, c)
       << " nodes (Gauss-Hermite, " << (lens.focal_spread_A > 0 ? c.defocus_nodes : 1)
       << " defocus x " << (lens.convergence_mrad > 0 ? c.tilt_nodes : 1)
       << "^2 tilts pruned below 1e-3 weight; focal spread sigma " << lens.focal_spread_A
       << " A, convergence " << lens.convergence_mrad
       << " mrad 1/e; tilts via chi(k+b)-chi(b) on a fixed exit wave)";
  }
  return os.str();
}

void gauss_hermite(int n, std::vector<double>& nodes, std::vector<double>& weights) {
  if (n < 1)
    fail("Gauss-Hermite rule needs n >= 1, got ", n);
  // Golub–Welsch: Jacobi matrix of the Hermite recurrence, off-diagonal √(i/2).
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(n, n);
  for (int i = 1; i < n; ++i)
    J(i, i - 1) = J(i - 1, i) = std::sqrt(i / 2.0);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(J);
  nodes.resize(std::size_t(n));
  weights.resize(std::size_t(n));
  for (int i = 0; i < n; ++i) {
    nodes[std::size_t(i)] = es.eigenvalues()(i);
    const double v0 = es.eigenvectors()(0, i);
    weights[std::size_t(i)] = std::sqrt(PI) * v0 * v0;
  }
}

struct ImageFormer::Plan {
  detail::FftPlan2D fft;
  Plan(int nx, int ny) : fft(nx, ny) {}
};

ImageFormer::ImageFormer(const Wave& exit_wave)
    : grid_(exit_wave.grid), energy_eV_(exit_wave.energy_eV) {
  if (grid_.nx < 1 || grid_.ny < 1 || exit_wave.psi.size() != grid_.size())
    fail("image formation: exit wave grid ", grid_.nx, "x", grid_.ny,
         " does not match its data size ", exit_wave.psi.size());
  if (!(energy_eV_ > 0))
    fail("image formation: exit wave energy must be > 0 eV, got ", energy_eV_);
  plan_ = std::make_unique<Plan>(grid_.nx, grid_.ny);
  spectrum_ = exit_wave.psi;
  work_.resize(grid_.size());
  plan_->fft.forward(spectrum_.data());
  ++fft_count_;
}

ImageFormer::~ImageFormer() = default;

int ImageFormer::node_count(const Lens& lens, const CoherenceSpec& c) {
  if (c.model == CoherenceModel::Envelope)
    return 1;
  const int nd = lens.focal_spread_A > 0 ? c.defocus_nodes : 1;
  if (!(lens.convergence_mrad > 0))
    return nd;
  std::vector<double> x, w;
  gauss_hermite(c.tilt_nodes, x, w);
  const double wmax = *std::max_element(w.begin(), w.end());
  int nt = 0;
  for (double wi : w)
    for (double wj : w)
      nt += wi * wj >= 1e-3 * wmax * wmax;
  return nd * nt;
}

void ImageFormer::add_node(const Lens& lens, double defocus_shift_A, double bx, double by,
                           double weight, bool envelopes, std::vector<double>& acc) {
  const double lam = electron_wavelength_A(energy_eV_);
  Aberrations ab = lens.aberrations;
  ab.defocus_A += defocus_shift_A;
  const double k_ap = lens.aperture_invA();
  const double k_ap2 = std::isfinite(k_ap) ? k_ap * k_ap : -1;
  const double chi_beta = chi_rad(ab, lam, bx, by);
  const int nx = grid_.nx, ny = grid_.ny;
  for (int iy = 0; iy < ny; ++iy) {
    const double ky = grid_.ky_invA(iy);
    for (int ix = 0; ix < nx; ++ix) {
      const double kx = grid_.kx_invA(ix);
      const double qx = kx + bx, qy = ky + by;
      const double q2 = qx * qx + qy * qy;
      const std::size_t i = std::size_t(iy) * std::size_t(nx) + std::size_t(ix);
      if (k_ap2 >= 0 && q2 > k_ap2) {
        work_[i] = 0;
        continue;
      }
      const double chi = chi_rad(ab, lam, qx, qy) - chi_beta;
      double amp = 1;
      if (envelopes)
        amp = temporal_envelope(lam, lens.focal_spread_A, std::sqrt(q2)) *
              spatial_envelope(ab, lam, lens.convergence_mrad, qx, qy);
      const cfloat factor(float(amp * std::cos(chi)), float(-amp * std::sin(chi)));
      work_[i] = spectrum_[i] * factor;
    }
  }
  plan_->fft.inverse(work_.data());
  ++fft_count_;
  const double norm = weight / (double(grid_.size()) * double(grid_.size()));
  for (std::size_t i = 0; i < acc.size(); ++i)
    acc[i] += norm * double(std::norm(work_[i]));
}

Image ImageFormer::intensity(const Lens& lens, const CoherenceSpec& coherence, double tilt_x_mrad,
                             double tilt_y_mrad) {
  lens.validate();
  coherence.validate();
  const double lam = electron_wavelength_A(energy_eV_);
  const double to_invA = units::mrad_to_rad / lam;
  const double bx0 = tilt_x_mrad * to_invA, by0 = tilt_y_mrad * to_invA;
  std::vector<double> acc(grid_.size(), 0.0);
  if (coherence.model == CoherenceModel::Envelope) {
    add_node(lens, 0, bx0, by0, 1.0, true, acc);
  } else {
    std::vector<double> dz{0}, dw{1};
    if (lens.focal_spread_A > 0) {
      gauss_hermite(coherence.defocus_nodes, dz, dw);
      for (std::size_t i = 0; i < dz.size(); ++i) {
        dz[i] *= std::sqrt(2.0) * lens.focal_spread_A;  // N(0, σ²) = e^{−x²} with δ = √2σx
        dw[i] /= std::sqrt(PI);
      }
    }
    std::vector<double> tx{0}, tw{1};
    if (lens.convergence_mrad > 0) {
      gauss_hermite(coherence.tilt_nodes, tx, tw);
      for (std::size_t i = 0; i < tx.size(); ++i) {
        tx[i] *= lens.convergence_mrad * to_invA;  // exp(−β²/α²): β = α·x
        tw[i] /= std::sqrt(PI);
      }
    }
    const double wmax = *std::max_element(tw.begin(), tw.end());
    double wsum = 0;
    struct Node { double dz, bx, by, w; };
    std::vector<Node> nodes;
    for (std::size_t d = 0; d < dz.size(); ++d)
      for (std::size_t i = 0; i < tx.size(); ++i)
        for (std::size_t j = 0; j < tx.size(); ++j)
          if (tw[i] * tw[j] >= 1e-3 * wmax * wmax) {
            nodes.push_back({dz[d], bx0 + tx[i], by0 + tx[j], dw[d] * tw[i] * tw[j]});
            wsum += dw[d] * tw[i] * tw[j];
          }
    // Renormalise after pruning so a vacuum image stays exactly 1.
    for (const Node& n : nodes)
      add_node(lens, n.dz, n.bx, n.by, n.w / wsum, false, acc);
  }
  Image img(grid_.nx, grid_.ny);
  img.pixel_size_A = grid_.sampling_x_A();
  for (std::size_t i = 0; i < acc.size(); ++i)
    img.pixels[i] = float(acc[i]);
  return img;
}

Wave ImageFormer::image_wave(const Lens& lens) {
  lens.validate();
  const double lam = electron_wavelength_A(energy_eV_);
  const double k_ap = lens.aperture_invA();
  Wave out(grid_, energy_eV_);
  for (int iy = 0; iy < grid_.ny; ++iy)
    for (int ix = 0; ix < grid_.nx; ++ix) {
      const double kx = grid_.kx_invA(ix), ky = grid_.ky_invA(iy);
      const std::size_t i = std::size_t(iy) * std::size_t(grid_.nx) + std::size_t(ix);
      if (kx * kx + ky * ky > k_ap * k_ap) {
        out.psi[i] = 0;
        continue;
      }
      const double chi = chi_rad(lens.aberrations, lam, kx, ky);
      out.psi[i] = spectrum_[i] * cfloat(float(std::cos(chi)), float(-std::sin(chi)));
    }
  plan_->fft.inverse(out.psi.data());
  ++fft_count_;
  const float norm = 1.0f / float(grid_.size());
  for (auto& v : out.psi)
    v *= norm;
  return out;
}

Image form_image(const Wave& exit_wave, const Lens& lens, const CoherenceSpec& coherence) {
  ImageFormer former(exit_wave);
  return former.intensity(lens, coherence);
}

void check_lens_against_grid(const Lens& lens, const Grid& grid, const WarnFn& warn) {
  if (!warn)
    return;
  const double k_band = grid.band_limit_invA();
  const double lam = lens.wavelength_A();
  std::ostringstream os;
  os.precision(4);
  if (lens.aperture_mrad > 0 && lens.aperture_invA() > k_band) {
    os << "objective aperture " << lens.aperture_mrad << " mrad (" << lens.aperture_invA()
       << " 1/A) lies beyond the grid's 2/3 band limit " << k_band << " 1/A ("
       << k_band * lam / units::mrad_to_rad
       << " mrad): it has no effect; use a finer sampling to image those angles";
    warn(os.str());
  } else if (lens.aperture_mrad <= 0) {
    const double env = temporal_envelope(lam, lens.focal_spread_A, k_band) *
                       spatial_envelope(lens.aberrations, lam, lens.convergence_mrad, k_band, 0);
    if (env > 0.1) {
      os << "no objective aperture and the coherence envelope is still " << env
         << " at the grid's band limit " << k_band
         << " 1/A: the image resolution is set by the sampling, not by the microscope";
      warn(os.str());
    }
  }
}

void ImageAverage::add(const Image& image) {
  if (count_ == 0) {
    shape_ = Image(image.nx, image.ny);
    shape_.pixel_size_A = image.pixel_size_A;
    shape_.pixel_size_invA = image.pixel_size_invA;
    sum_.assign(image.size(), 0.0);
  } else if (image.nx != shape_.nx || image.ny != shape_.ny) {
    fail("image average: image ", image.nx, "x", image.ny, " differs from the first ", shape_.nx,
         "x", shape_.ny);
  }
  for (std::size_t i = 0; i < sum_.size(); ++i)
    sum_[i] += image.pixels[i];
  ++count_;
}

Image ImageAverage::mean() const {
  if (count_ == 0)
    fail("image average: no image was added");
  Image out = shape_;
  for (std::size_t i = 0; i < sum_.size(); ++i)
    out.pixels[i] = float(sum_[i] / count_);
  return out;
}

Wave wave_from_pages(const std::vector<Image>& pages, double energy_eV, double sampling_A,
                     const std::string& what) {
  if (pages.size() != 2)
    fail(what, ": an exit wave TIFF has 2 float32 pages (real, imaginary), this one has ",
         pages.size(), " (write it with 'epitem multislice --out exit.tif')");
  const Image& re = pages[0];
  const Image& im = pages[1];
  if (re.nx != im.nx || re.ny != im.ny)
    fail(what, ": real page is ", re.nx, "x", re.ny, " but imaginary page is ", im.nx, "x", im.ny);
  for (int p = 0; p < 2; ++p)
    for (std::size_t i = 0; i < pages[std::size_t(p)].size(); ++i)
      if (!std::isfinite(pages[std::size_t(p)].pixels[i]))
        fail(what, ": ", p == 0 ? "real" : "imaginary", " page has a non-finite value at pixel (",
             i % std::size_t(re.nx), ", ", i / std::size_t(re.nx),
             "): the exit wave is broken (rerun the multislice with a finer slicing or sampling)");
  const double dx = sampling_A > 0 ? sampling_A : re.pixel_size_A;
  if (!(dx > 0))
    fail(what, ": pixel size unknown (no calibration in the TIFF): give --sampling, e.g. 0.05A");
  Grid g{re.nx, re.ny, dx * re.nx, dx * re.ny};
  Wave w(g, energy_eV);
  for (std::size_t i = 0; i < w.psi.size(); ++i)
    w.psi[i] = cfloat(re.pixels[i], im.pixels[i]);
  return w;
}

}  // namespace epitem
