//! The root of a reeve sandbox: a mount plan built from `config.json` as plain data
//! ([`MountPlan::from_spec`]) and the symlink-safe layer that applies it inside the container's
//! new mount namespace ([`prepare_root`], [`pivot`], [`finalize`], [`bind_console`]).
//!
//! Every lookup in the container root is `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
//! from the root's dirfd, and every mount is attached onto the resolved fd with the new mount
//! API (open_tree / fsopen+fsmount / move_mount / mount_setattr).

mod apply;
mod dev;
pub mod error;
mod mask;
mod mount_api;
mod mountinfo;
pub mod options;
pub mod plan;
mod safe_path;
pub mod sysctl;

pub use apply::{finalize, pivot, prepare_root, RootFs};
pub use dev::bind_console;
pub use error::{MountError, PlanError};
pub use options::{MountAttrs, MountFlags, Propagation, PropagationKind};
pub use plan::{DevSymlink, DeviceKind, DeviceNode, MountKind, MountOp, MountPlan, RootOp};
pub use sysctl::Sysctl;
