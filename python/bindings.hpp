// Shared pieces of the Python module `epitem` (pybind11): numpy arrays that own C++ buffers,
// the progress hook that lets Ctrl-C and Python callbacks reach library loops running with the
// GIL released, and keyword-argument helpers. Each bind_*() adds one group of functions.
#pragma once
#include <boost/program_options.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "epitem/lattice.hpp"
#include "epitem/progress.hpp"

namespace py = pybind11;

namespace epitem::python {

void bind_structures(py::module_& m);  // Crystal, Model, reflections, read_image
void bind_simulation(py::module_& m);  // multislice, image, saed, interface
void bind_analysis(py::module_& m);    // fft_peaks, index
void bind_track(py::module_& m);       // track (spot lifespans in a SAED movie)

/// A numpy array over `values` without copying: the vector moves to the heap and a capsule
/// frees it when the array dies.
template <class T>
py::array_t<T> owned_array(std::vector<T>&& values, const std::vector<py::ssize_t>& shape) {
  auto* heap = new std::vector<T>(std::move(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, heap->data(), owner);
}

/// The ProgressFn handed to library code that runs with the GIL released: each call takes the
/// GIL, runs pending signal handlers (Ctrl-C → KeyboardInterrupt) and `callback(done, total,
/// stage)` if it is not None; a Python exception leaves the library as py::error_already_set
/// and is re-raised. `callback` must outlive the call (it is borrowed, not reference counted,
/// so copies made without the GIL are safe).
ProgressFn progress_hook(py::handle callback);

/// The WarnFn for library warnings: warnings.warn(message) (GIL taken).
WarnFn warn_hook();

/// Keyword arguments → option texts keyed by CLI name (underscores become dashes): str as is,
/// bool "true"/"false", numbers by repr (documented bare unit), sequences joined by commas.
/// None values are dropped.
std::map<std::string, std::string> option_texts(const py::kwargs& kwargs);

/// argv {"epitem", "--name=value", ...} for a boost::program_options description from the
/// same texts (switches given only when true).
std::vector<std::string> option_argv(const std::map<std::string, std::string>& texts,
                                     const std::vector<std::string>& switches);

/// Keyword arguments checked against a CLI option description (unknown names: TypeError listing
/// the valid ones, '-' written '_') and parsed by it; extra_args ("--phase=Fe3O4", ...) are
/// appended to the command line as they are.
boost::program_options::variables_map parse_options(const boost::program_options::options_description& opts,
                                                    const py::kwargs& kwargs, const char* function,
                                                    const std::vector<std::string>& extra_args = {});

/// A zone or direction from "1,1,0" or a 3-sequence; ValueError naming `what` otherwise.
Vec3 to_triple(const py::object& o, const char* what);

}  // namespace epitem::python
