// Reading and writing structures: CIF (through gemmi), extended XYZ (ASE convention), VASP
// POSCAR. Built-in names ("Fe3O4") resolve to the bundled structures/ folder.
#pragma once
#include <string>

#include "epitem/crystal.hpp"
#include "epitem/model.hpp"

namespace epitem {

/// Folder with the bundled CIFs: $EPITEM_STRUCTURES if set, else the source tree's structures/.
std::string structures_dir();

/// Loads a crystal from a CIF path, an extxyz or POSCAR path (as P1) or a built-in name ("Fe3O4",
/// "NiFe", "Si"...). Throws Error naming the file and the field at fault.
Crystal read_crystal(const std::string& path_or_name);

/// CIF reader (small-molecule/inorganic: cell, space group by H-M, Hall, number or symmetry
/// loop; sites with occupancy, U_iso or B_iso; aniso → U_eq).
Crystal read_cif(const std::string& path);

/// Extended XYZ (ASE: Lattice="ax ay az bx by bz cx cy cz" Properties=species:S:1:pos:R:3[...]
/// pbc="T T F"); optional per-atom columns `phase:S:1`, `occupancy:R:1`, `u_iso:R:1`.
AtomicModel read_extxyz(const std::string& path);
/// VASP 5 POSCAR/CONTCAR (species line; Direct or Cartesian; scaling factor or volume), as
/// written by write_poscar; periodic in x, y and z, U_iso 0.
AtomicModel read_poscar(const std::string& path);
/// True for *.vasp, *.poscar and files named POSCAR*/CONTCAR*.
bool is_poscar_path(const std::string& path);
/// A model from any structure file: extxyz as is; CIF/built-in needs orient_crystal first,
/// so this accepts only extxyz and throws for others with a hint to use --zone.
AtomicModel read_model(const std::string& path);

/// Writers pick the format from the extension (.xyz/.extxyz, .cif, POSCAR/.vasp/.poscar).
/// All write to a temporary file and rename, so a failure never leaves half a file.
void write_extxyz(const AtomicModel& model, const std::string& path);
void write_cif(const Crystal& crystal, const std::string& path);
void write_poscar(const AtomicModel& model, const std::string& path);
void write_model(const AtomicModel& model, const std::string& path);

}  // namespace epitem
