//! reeve's sandbox engine: an OCI runtime library and the `reevec` CLI.
//!
//! One module per kernel mechanism: [`namespaces`], [`process`] (clone3, pidfd),
//! [`capabilities`], [`rlimits`], [`seccomp`], [`cgroups`]; the root filesystem is the
//! `reeve_rootfs` crate. [`container`] composes them into the OCI lifecycle, [`state`] keeps it
//! on disk, [`sync`] carries failures from the sandbox's init back to the caller, and [`cli`] is
//! the command line.

pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod container;
pub mod exe_seal;
pub mod hooks;
pub mod logging;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod seccomp;
pub mod state;
pub mod sync;
