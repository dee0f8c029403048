//! Resource limits (`process.rlimits`), validated as plain data and applied with setrlimit.

use oci_spec::runtime::PosixRlimit;

/// Errors of rlimit planning and application.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("unknown rlimit type {0:?}")]
    Unknown(String),
    #[error("rlimit {name}: soft limit {soft} exceeds hard limit {hard}")]
    SoftAboveHard { name: String, soft: u64, hard: u64 },
    #[error("setrlimit({name}): {errno}")]
    Set {
        name: String,
        errno: nix::errno::Errno,
    },
}

/// One rlimit to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    pub name: String,
    pub resource: libc::__rlimit_resource_t,
    pub soft: u64,
    pub hard: u64,
}

fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// Build the list from the spec.
pub fn plan(rlimits: &[PosixRlimit]) -> Result<Vec<Rlimit>, RlimitError> {
    rlimits
        .iter()
        .map(|r| {
            // oci-spec serializes the enum as the RLIMIT_ name.
            let name = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{:?}", r.typ()));
            let res = resource(&name).ok_or_else(|| RlimitError::Unknown(name.clone()))?;
            if r.soft() > r.hard() {
                return Err(RlimitError::SoftAboveHard {
                    name,
                    soft: r.soft(),
                    hard: r.hard(),
                });
            }
            Ok(Rlimit {
                name,
                resource: res,
                soft: r.soft(),
                hard: r.hard(),
            })
        })
        .collect()
}

/// Apply every limit to the calling process.
pub fn apply(limits: &[Rlimit]) -> Result<(), RlimitError> {
    for l in limits {
        let rl = libc::rlimit {
            rlim_cur: l.soft,
            rlim_max: l.hard,
        };
        // SAFETY: setrlimit with a valid resource and struct.
        if unsafe { libc::setrlimit(l.resource, &rl) } != 0 {
            return Err(RlimitError::Set {
                name: l.name.clone(),
                errno: nix::errno::Errno::last(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_and_validates() {
        let v: Vec<PosixRlimit> = serde_json::from_str(
            r#"[{"type":"RLIMIT_NOFILE","soft":1024,"hard":4096},{"type":"RLIMIT_NPROC","soft":10,"hard":10}]"#,
        )
        .expect("json");
        let p = plan(&v).expect("plan");
        assert_eq!(p[0].name, "RLIMIT_NOFILE");
        assert_eq!(p[0].resource, libc::RLIMIT_NOFILE);
        assert_eq!((p[1].soft, p[1].hard), (10, 10));
        let bad: Vec<PosixRlimit> =
            serde_json::from_str(r#"[{"type":"RLIMIT_NOFILE","soft":5000,"hard":10}]"#)
                .expect("json");
        assert!(matches!(plan(&bad), Err(RlimitError::SoftAboveHard { .. })));
    }
}
