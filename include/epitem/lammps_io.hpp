// LAMMPS exchange for relaxing a model with the user's own potentials (docs/interface.md,
// "Relaxation in LAMMPS"): a data file (atom style atomic, one atom type per element per phase,
// the type map in comments) and, back, a dump of the relaxed positions.
#pragma once
#include <string>
#include <vector>

#include "epitem/model.hpp"

namespace epitem {

/// One LAMMPS atom type: an element of a phase.
struct LammpsType {
  int type = 0;  ///< 1-based LAMMPS type
  int Z = 0;
  int phase = 0;
  std::string phase_name;
  double u_iso_A2 = 0;  ///< carried in the comment so a read-back model keeps its U_iso
};

/// Types of a model: by phase, then atomic number.
std::vector<LammpsType> lammps_types(const AtomicModel& model);

/// Writes `model` as a LAMMPS data file (units metal: Å, g/mol): header with the type map,
/// orthogonal box, or triclinic (xy xz yz) when the cell is not orthorhombic (the cell is then
/// rotated into LAMMPS's a ∥ x, b in xy convention, stated in the header), Masses with
/// "# phase:El u_iso=…" comments, Atoms # atomic. Written atomically.
void write_lammps_data(const AtomicModel& model, const std::string& path);

/// The type map stored in a data file written by write_lammps_data (Masses comments); a data
/// file without them maps each type to the element of the nearest standard atomic mass.
std::vector<LammpsType> read_lammps_type_map(const std::string& data_path);

/// Reads a data file (atom style atomic) back into a model (phases and U_iso from the type map).
AtomicModel read_lammps_data(const std::string& path);

/// Reads the last frame of a text dump (`dump custom … id type x y z`, or xs ys zs, or xu yu
/// zu; orthogonal or triclinic box) into a model, with types mapped by `types`. Atoms are
/// ordered by id; the box lower corner becomes the origin; pbc from the boundary flags.
AtomicModel read_lammps_dump(const std::string& dump_path, const std::vector<LammpsType>& types);

}  // namespace epitem
