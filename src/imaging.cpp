#include "epitem/imaging.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/units.hpp"

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
  if (defocus_nodes < 0 || defocus_nodes > 64)
    fail("coherence: defocus nodes must be 0 (automatic) to 64, got ", defocus_nodes);
  if (tilt_nodes < 0 || tilt_nodes > 32)
    fail("coherence: tilt nodes per axis must be 0 (automatic) to 32, got ", tilt_nodes);
  if (!(information_limit > 0 && information_limit < 0.5))
    fail("coherence: information-limit envelope threshold must be in (0, 0.5), got ",
         information_limit);
}

namespace {

// Linear envelope E_t·E_s for beam q = k + β under illumination tilt β (1/Å): the spread of
// Δχ = χ(q) − χ(β) over defocus (∝ |q|² − |β|²) and over tilts (∇χ(q) − ∇χ(β)).
struct Envelope {
  double t_coef, s_coef, bx, by, gbx, gby;
  Envelope(const Lens& lens, const AberrationPolynomial& chi, double lam, double bx_, double by_)
      : t_coef(PI * lam * lens.focal_spread_A),
        s_coef(lens.convergence_mrad * units::mrad_to_rad / (2 * lam)), bx(bx_), by(by_) {
    chi.gradient(bx, by, gbx, gby);
  }
  // e^{−104} is below half the smallest float32 denormal: the transfer function stores floats,
  // so such points are exactly 0 there. Returning 0 skips libm's slow underflow path and lets
  // callers skip the phase (most of a fine grid lies beyond the information limit).
  static constexpr double ZERO_BEYOND = 104;
  double operator()(const AberrationPolynomial& chi, double qx, double qy) const {
    const double t = t_coef * (qx * qx + qy * qy - bx * bx - by * by);
    double arg = 0.5 * t * t;
    if (arg > ZERO_BEYOND)
      return 0;
    if (s_coef > 0) {
      double gx, gy;
      chi.gradient(qx, qy, gx, gy);
      arg += s_coef * s_coef * ((gx - gbx) * (gx - gbx) + (gy - gby) * (gy - gby));
    }
    return arg > ZERO_BEYOND ? 0 : std::exp(-arg);
  }
};

// Gauss–Hermite nodes needed for ∫e^{−x²}e^{iax}dx to ~1e-3 (measured: n = 5, 9, 13, 21, 31
// reach it for a = 2, 4, 5.3, 8, 10.6).
int nodes_for_phase(double a) {
  int n = int(std::ceil(2.5 * a + 2.5));
  n += (n % 2 == 0);  // odd: keeps the central node
  return std::clamp(n, 3, 31);
}

// Pruned product rule over the tilt cone: nodes whose weight is below 1e-4 of the central one.
constexpr double TILT_PRUNE = 1e-4;

}  // namespace

CoherenceNodes coherence_nodes(const Lens& lens, const CoherenceSpec& c, const Grid& grid) {
  lens.validate();
  c.validate();
  CoherenceNodes out;
  const double lam = lens.wavelength_A();
  const double k_max = std::min(grid.band_limit_invA(), lens.aperture_invA());
  const double a_rad = lens.convergence_mrad * units::mrad_to_rad;
  const AberrationPolynomial chi(lens.aberrations, lam);
  const Envelope envelope(lens, chi, lam, 0, 0);
  const int n_azimuth = 16, n_radial = 400;
  for (int ia = 0; ia < n_azimuth; ++ia) {
    const double phi = 2 * PI * ia / n_azimuth;
    for (int ir = 0; ir <= n_radial; ++ir) {
      const double k = k_max * ir / n_radial;
      const double kx = k * std::cos(phi), ky = k * std::sin(phi);
      if (envelope(chi, kx, ky) < c.information_limit)
        break;
      out.cutoff_invA = std::max(out.cutoff_invA, k);
      double gx, gy;
      chi.gradient(kx, ky, gx, gy);
      out.max_phase_defocus_rad =
          std::max(out.max_phase_defocus_rad, std::sqrt(2.0) * PI * lam * lens.focal_spread_A * k * k);
      out.max_phase_tilt_rad = std::max(out.max_phase_tilt_rad, std::hypot(gx, gy) * a_rad / lam);
    }
  }
  if (c.model == CoherenceModel::Envelope)
    return out;
  if (lens.focal_spread_A > 0)
    out.defocus = c.defocus_nodes > 0 ? c.defocus_nodes : nodes_for_phase(out.max_phase_defocus_rad);
  if (lens.convergence_mrad > 0)
    out.tilt_per_axis = c.tilt_nodes > 0 ? c.tilt_nodes : nodes_for_phase(out.max_phase_tilt_rad);
  int tilts = 1;
  if (out.tilt_per_axis > 1) {
    std::vector<double> x, w;
    gauss_hermite(out.tilt_per_axis, x, w);
    const double wmax = *std::max_element(w.begin(), w.end());
    tilts = 0;
    for (double wi : w)
      for (double wj : w)
        tilts += wi * wj >= TILT_PRUNE * wmax * wmax;
  }
  out.total = out.defocus * tilts;
  return out;
}

std::string coherence_description(const Lens& lens, const CoherenceSpec& c, const Grid& grid) {
  std::ostringstream os;
  os.precision(4);
  if (c.model == CoherenceModel::Envelope) {
    os << "envelope: quasi-coherent E_t*E_s multiplied onto the wave spectrum (focal spread sigma "
       << lens.focal_spread_A << " A, convergence " << lens.convergence_mrad
       << " mrad 1/e); damps the image mean of strong objects";
  } else {
    const CoherenceNodes n = coherence_nodes(lens, c, grid);
    os << "integrate: intensities summed over " << n.total << " nodes (Gauss-Hermite "
       << n.defocus << " defocus x " << n.tilt_per_axis << "^2 tilts, cone corners pruned; sigma "
       << lens.focal_spread_A << " A, convergence " << lens.convergence_mrad
       << " mrad 1/e; beams beyond " << n.cutoff_invA << " 1/A (envelope < "
       << c.information_limit << ") add as a uniform background; tilts as chi(k+b)-chi(b) on the fixed exit wave)";
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

ImageFormer::ImageFormer(const Wave& exit_wave)
    : grid_(exit_wave.grid), energy_eV_(exit_wave.energy_eV), threads_(default_thread_count()) {
  if (grid_.nx < 1 || grid_.ny < 1 || exit_wave.psi.size() != grid_.size())
    fail("image formation: exit wave grid ", grid_.nx, "x", grid_.ny,
         " does not match its data size ", exit_wave.psi.size());
  if (!(energy_eV_ > 0))
    fail("image formation: exit wave energy must be > 0 eV, got ", energy_eV_);
  fft_ = Fft2D(grid_.nx, grid_.ny, threads_);
  fft_.prepare();
  spectrum_ = exit_wave.psi;
  work_.resize(grid_.size());
  fft_.forward(spectrum_.data());
  ++fft_count_;
}

namespace {

// H(k) = A(q)·[E(q)]·e^{−i[χ(q) − χ(β)]}, q = k + β, zero where `pass` (if given) is 0.
void fill_transfer(const Lens& lens, const Grid& grid, double defocus_shift_A, double bx,
                   double by, bool envelopes, const std::vector<unsigned char>& pass,
                   cfloat* out, int threads) {
  const double lam = lens.wavelength_A();
  Aberrations ab = lens.aberrations;
  ab.defocus_A += defocus_shift_A;
  const double k_ap = lens.aperture_invA();
  const double k_ap2 = std::isfinite(k_ap) ? k_ap * k_ap : -1;
  const AberrationPolynomial chi(ab, lam);
  const double chi_beta = chi.chi(bx, by);
  const Envelope envelope(lens, chi, lam, bx, by);
  const int nx = grid.nx;
  parallel_for(std::size_t(grid.ny), threads, [&](std::size_t y0, std::size_t y1) {
    for (std::size_t iy = y0; iy < y1; ++iy) {
      const double qy = grid.ky_invA(int(iy)) + by;
      for (int ix = 0; ix < nx; ++ix) {
        const double qx = grid.kx_invA(ix) + bx;
        const std::size_t i = iy * std::size_t(nx) + std::size_t(ix);
        if ((k_ap2 >= 0 && qx * qx + qy * qy > k_ap2) || (!pass.empty() && !pass[i])) {
          out[i] = 0;
          continue;
        }
        const double amp = envelopes ? envelope(chi, qx, qy) : 1;
        if (amp == 0) {
          out[i] = 0;
          continue;
        }
        const double phase = chi.chi(qx, qy) - chi_beta;
        out[i] = cfloat(float(amp * std::cos(phase)), float(-amp * std::sin(phase)));
      }
    }
  });
}

}  // namespace

TransferFunction::TransferFunction(const Lens& lens, const Grid& grid, double tilt_x_mrad,
                                   double tilt_y_mrad)
    : grid_(grid), values_(grid.size()) {
  lens.validate();
  const double to_invA = units::mrad_to_rad / lens.wavelength_A();
  fill_transfer(lens, grid, 0, tilt_x_mrad * to_invA, tilt_y_mrad * to_invA, true, {},
                values_.data(), default_thread_count());
}

void ImageFormer::add_image(const cfloat* transfer, double weight, std::vector<double>& acc) {
  parallel_for(work_.size(), threads_, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      work_[i] = spectrum_[i] * transfer[i];
  });
  fft_.inverse(work_.data(), false);
  ++fft_count_;
  const double norm = weight / (double(grid_.size()) * double(grid_.size()));
  parallel_for(acc.size(), threads_, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      acc[i] += norm * double(std::norm(work_[i]));
  });
}

Image ImageFormer::to_image(const std::vector<double>& acc) const {
  Image img(grid_.nx, grid_.ny);
  img.pixel_size_A = grid_.sampling_x_A();
  img.pixel_size_y_A = grid_.sampling_y_A();
  for (std::size_t i = 0; i < acc.size(); ++i)
    img.pixels[i] = float(acc[i]);
  return img;
}

Image ImageFormer::intensity(const TransferFunction& transfer) {
  if (transfer.grid().nx != grid_.nx || transfer.grid().ny != grid_.ny)
    fail("image formation: transfer function grid ", transfer.grid().nx, "x", transfer.grid().ny,
         " differs from the exit wave's ", grid_.nx, "x", grid_.ny);
  // One pass in, one FFT, one pass out: no accumulator for a single coherent node.
  const cfloat* h = transfer.values().data();
  parallel_for(work_.size(), threads_, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      work_[i] = spectrum_[i] * h[i];
  });
  fft_.inverse(work_.data(), false);
  ++fft_count_;
  Image img(grid_.nx, grid_.ny);
  img.pixel_size_A = grid_.sampling_x_A();
  img.pixel_size_y_A = grid_.sampling_y_A();
  const double norm = 1.0 / (double(grid_.size()) * double(grid_.size()));
  parallel_for(work_.size(), threads_, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      img.pixels[i] = float(norm * double(std::norm(work_[i])));
  });
  return img;
}

namespace {

void check_energy(const Lens& lens, double wave_energy_eV) {
  if (std::abs(lens.energy_eV - wave_energy_eV) > 1e-9 * wave_energy_eV)
    fail("image formation: lens energy ", lens.energy_eV, " eV differs from the exit wave's ",
         wave_energy_eV, " eV");
}

}  // namespace

Image ImageFormer::intensity(const Lens& lens, const CoherenceSpec& coherence, double tilt_x_mrad,
                             double tilt_y_mrad) {
  lens.validate();
  check_energy(lens, energy_eV_);
  coherence.validate();
  const double lam = electron_wavelength_A(energy_eV_);
  const double to_invA = units::mrad_to_rad / lam;
  const double bx0 = tilt_x_mrad * to_invA, by0 = tilt_y_mrad * to_invA;
  std::vector<double> acc(grid_.size(), 0.0);
  if (coherence.model == CoherenceModel::Envelope) {
    fill_transfer(lens, grid_, 0, bx0, by0, true, {}, work_.data(), threads_);
    add_image(work_.data(), 1.0, acc);
  } else {
    const CoherenceNodes nn = coherence_nodes(lens, coherence, grid_);
    // Information-limit mask, relative to the illumination tilt of this image.
    std::vector<unsigned char> pass(grid_.size());
    const AberrationPolynomial chi(lens.aberrations, lam);
    const Envelope envelope(lens, chi, lam, bx0, by0);
    for (int iy = 0; iy < grid_.ny; ++iy)
      for (int ix = 0; ix < grid_.nx; ++ix)
        pass[std::size_t(iy) * std::size_t(grid_.nx) + std::size_t(ix)] =
            envelope(chi, grid_.kx_invA(ix) + bx0, grid_.ky_invA(iy) + by0) >=
            coherence.information_limit;
    std::vector<double> dz{0}, dw{1};
    if (nn.defocus > 1) {
      gauss_hermite(nn.defocus, dz, dw);
      for (std::size_t i = 0; i < dz.size(); ++i) {
        dz[i] *= std::sqrt(2.0) * lens.focal_spread_A;  // N(0, σ²) = e^{−x²} with δ = √2σx
        dw[i] /= std::sqrt(PI);
      }
    }
    std::vector<double> tx{0}, tw{1};
    if (nn.tilt_per_axis > 1) {
      gauss_hermite(nn.tilt_per_axis, tx, tw);
      for (std::size_t i = 0; i < tx.size(); ++i) {
        tx[i] *= lens.convergence_mrad * to_invA;  // exp(−β²/α²): β = α·x
        tw[i] /= std::sqrt(PI);
      }
    }
    const double wmax = *std::max_element(tw.begin(), tw.end());
    struct Node { double dz, bx, by, w; };
    std::vector<Node> nodes;
    double wsum = 0;
    for (std::size_t d = 0; d < dz.size(); ++d)
      for (std::size_t i = 0; i < tx.size(); ++i)
        for (std::size_t j = 0; j < tx.size(); ++j)
          if (tw[i] * tw[j] >= TILT_PRUNE * wmax * wmax) {
            nodes.push_back({dz[d], bx0 + tx[i], by0 + tx[j], dw[d] * tw[i] * tw[j]});
            wsum += nodes.back().w;
          }
    // Renormalised after pruning, so a vacuum image stays exactly 1.
    for (const Node& n : nodes) {
      fill_transfer(lens, grid_, n.dz, n.bx, n.by, false, pass, work_.data(), threads_);
      add_image(work_.data(), n.w / wsum, acc);
    }
    // Beams past the information limit keep their intensity as a uniform background: their
    // interference with the central beam averages to zero, their mutual interference is
    // neglected (incoherent limit). This keeps the image mean, unlike envelopes on the wave.
    const double k_ap = lens.aperture_invA();
    double dropped = 0;
    for (int iy = 0; iy < grid_.ny; ++iy)
      for (int ix = 0; ix < grid_.nx; ++ix) {
        const std::size_t i = std::size_t(iy) * std::size_t(grid_.nx) + std::size_t(ix);
        const double qx = grid_.kx_invA(ix) + bx0, qy = grid_.ky_invA(iy) + by0;
        if (!pass[i] && qx * qx + qy * qy <= k_ap * k_ap)
          dropped += std::norm(spectrum_[i]);
      }
    dropped /= double(grid_.size()) * double(grid_.size());
    for (double& v : acc)
      v += dropped;
  }
  return to_image(acc);
}

Wave ImageFormer::image_wave(const Lens& lens) {
  lens.validate();
  check_energy(lens, energy_eV_);
  const double lam = electron_wavelength_A(energy_eV_);
  const double k_ap = lens.aperture_invA();
  const AberrationPolynomial poly(lens.aberrations, lam);
  Wave out(grid_, energy_eV_);
  for (int iy = 0; iy < grid_.ny; ++iy)
    for (int ix = 0; ix < grid_.nx; ++ix) {
      const double kx = grid_.kx_invA(ix), ky = grid_.ky_invA(iy);
      const std::size_t i = std::size_t(iy) * std::size_t(grid_.nx) + std::size_t(ix);
      if (kx * kx + ky * ky > k_ap * k_ap) {
        out.psi[i] = 0;
        continue;
      }
      const double chi = poly.chi(kx, ky);
      out.psi[i] = spectrum_[i] * cfloat(float(std::cos(chi)), float(-std::sin(chi)));
    }
  fft_.inverse(out.psi.data(), false);
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
    shape_.pixel_size_y_A = image.pixel_size_y_A;
    shape_.pixel_size_y_invA = image.pixel_size_y_invA;
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

std::vector<Wave> waves_from_pages(const std::vector<Image>& pages, double energy_eV,
                                   double sampling_A, const std::string& what) {
  if (pages.empty() || pages.size() % 2 != 0)
    fail(what, ": an exit wave TIFF holds pairs of float32 pages (real, imaginary), one pair per "
         "thickness; this one has ", pages.size(), " (write it with 'epitem multislice --out exit.tif')");
  const Image& first = pages[0];
  for (std::size_t p = 0; p < pages.size(); ++p) {
    const Image& page = pages[p];
    const char* part = p % 2 == 0 ? "real" : "imaginary";
    if (page.nx != first.nx || page.ny != first.ny)
      fail(what, ": page ", p, " (", part, ") is ", page.nx, "x", page.ny, " but page 0 is ",
           first.nx, "x", first.ny);
    for (std::size_t i = 0; i < page.size(); ++i)
      if (!std::isfinite(page.pixels[i]))
        fail(what, ": page ", p, " (", part, ") has a non-finite value at pixel (",
             i % std::size_t(page.nx), ", ", i / std::size_t(page.nx),
             "): the exit wave is broken (rerun the multislice with a finer slicing or sampling)");
  }
  const double dx = sampling_A > 0 ? sampling_A : first.pixel_size_A;
  if (!(dx > 0))
    fail(what, ": pixel size unknown (no calibration in the TIFF): give --sampling, e.g. 0.05A");
  const double dy = sampling_A > 0 ? sampling_A : first.pixel_y_A();
  const Grid g{first.nx, first.ny, dx * first.nx, dy * first.ny};
  std::vector<Wave> waves;
  for (std::size_t p = 0; p < pages.size(); p += 2) {
    Wave w(g, energy_eV);
    // The file has row 0 = top = largest y; the model frame has index iy growing with +y.
    const Image re = flipped_rows(pages[p]), im = flipped_rows(pages[p + 1]);
    for (std::size_t i = 0; i < w.psi.size(); ++i)
      w.psi[i] = cfloat(re.pixels[i], im.pixels[i]);
    waves.push_back(std::move(w));
  }
  return waves;
}

}  // namespace epitem
