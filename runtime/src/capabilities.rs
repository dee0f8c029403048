//! Capabilities: the five sets of `process.capabilities`, applied in the order that keeps the
//! process able to finish its own setup (bounding first, then the identity switch with
//! keep-caps, then effective/permitted/inheritable, then ambient).

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Errors of capability planning and application.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("capset {set}: {source}")]
    Set {
        set: &'static str,
        source: caps::errors::CapsError,
    },
    #[error("prctl(PR_CAPBSET_DROP, {cap}): {source}")]
    DropBounding {
        cap: String,
        source: caps::errors::CapsError,
    },
    #[error("prctl(PR_CAP_AMBIENT_RAISE, {cap}): {source}")]
    Ambient {
        cap: String,
        source: caps::errors::CapsError,
    },
}

/// The five capability sets, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| {
            // oci-spec's names and caps' names are both the CAP_ names.
            let name = c.to_string();
            let name = if name.starts_with("CAP_") {
                name
            } else {
                format!("CAP_{name}")
            };
            match name.parse::<Capability>() {
                Ok(cap) if caps::all().contains(&cap) => Some(cap),
                _ => {
                    tracing::warn!("capability {name} is not known to this kernel; ignored");
                    None
                }
            }
        })
        .collect()
}

impl CapPlan {
    /// From the spec. Inheritable stays empty unless the spec asks (CVE-2022-29162).
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> CapPlan {
        let Some(c) = c else {
            return CapPlan::default();
        };
        CapPlan {
            bounding: convert(c.bounding()),
            effective: convert(c.effective()),
            permitted: convert(c.permitted()),
            inheritable: convert(c.inheritable()),
            ambient: convert(c.ambient()),
        }
    }

    /// Drop everything outside the bounding set (needs CAP_SETPCAP, so before the identity switch).
    pub fn drop_bounding(&self) -> Result<(), CapsError> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap).map_err(|source| {
                    CapsError::DropBounding {
                        cap: cap.to_string(),
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Set effective, permitted and inheritable, then raise ambient.
    pub fn apply(&self) -> Result<(), CapsError> {
        // Permitted must be a superset of effective while setting: set permitted last when
        // shrinking would fail, so set effective to the final value first only if it is a subset.
        let set = |which: CapSet, name: &'static str, v: &CapsHashSet| {
            caps::set(None, which, v).map_err(|source| CapsError::Set { set: name, source })
        };
        set(CapSet::Effective, "effective", &self.effective)?;
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        // Effective may only hold permitted caps; re-set in case permitted was narrower.
        let eff: CapsHashSet = self
            .effective
            .intersection(&self.permitted)
            .copied()
            .collect();
        set(CapSet::Effective, "effective", &eff)?;
        caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::Set {
            set: "ambient",
            source,
        })?;
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|source| CapsError::Ambient {
                cap: cap.to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_converts_names_and_keeps_inheritable_empty_by_default() {
        let spec: oci_spec::runtime::Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],
            "capabilities":{"bounding":["CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_KILL"],
            "permitted":["CAP_KILL"]}}}"#,
        )
        .expect("spec");
        let plan = CapPlan::from_spec(
            spec.process()
                .as_ref()
                .and_then(|p| p.capabilities().as_ref()),
        );
        assert!(plan.bounding.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert_eq!(plan.effective.len(), 1);
        assert!(plan.inheritable.is_empty());
        assert!(plan.ambient.is_empty());
    }
}
