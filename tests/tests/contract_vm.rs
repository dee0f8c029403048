//! The caller contract, reevec against runc 1.1.5 in the test VM (where runc can run): the
//! scenarios of `reeve_tests::contract` run under both runtimes and their reports must be
//! equal, except for the differences listed in [`DIFFERENCES`] with their reasons (a listed
//! difference that disappears fails too, so the list stays true).
//!
//! Run: `cargo build -p reeve-runtime && tests/vm/cargo-vm-test.sh -p reeve-tests --test
//! contract_vm -- --test-threads=1 --nocapture`. Outside the VM every test prints SKIPPED.

use std::collections::BTreeSet;

use reeve_tests::contract::{errors_report, failing_hook, hooks_report};
use reeve_tests::*;

/// (scenario, what differs, why). Each one is measured: the test fails if it is not seen.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "hook order",
        "create",
        "runc 1.1 runs poststart hooks inside `create` (its Start of the init), before the \
         user process is started; the spec puts them after the process started, where reevec \
         runs them (runc 1.2 moved them there too)",
    ),
    (
        "hook order",
        "start",
        "same cause: runc's poststart ran before startContainer",
    ),
    (
        "hook order",
        "delete",
        "same cause: runc's poststart ran before startContainer",
    ),
    (
        "poststart hook",
        "status",
        "same cause: runc's poststart hooks see the container still `created`; reevec's see it \
         `running`, as it is by then",
    ),
    (
        "poststop hook",
        "pid",
        "the state of a stopped container has no live pid: reevec gives 0, as `reevec state` \
         does; runc gives a stale pid that is no longer the container's",
    ),
    (
        "failing startContainer hook",
        "start",
        "the spec says a failing startContainer hook MUST generate an error: reevec's `start` \
         fails with the hook's output; runc 1.1's `start` exits 0 and the container just stops",
    ),
    (
        "failing poststart hook",
        "create",
        "runc 1.1 runs poststart inside `create`, so its create fails; reevec creates",
    ),
    (
        "failing poststart hook",
        "start",
        "the runtime spec says a failing poststart hook only logs a warning and the lifecycle \
         goes on; runc 1.1 fails instead (in `create`, see above)",
    ),
    (
        "failing poststart hook",
        "left",
        "same cause: runc kills the container, reevec leaves it running",
    ),
];

fn runtimes(name: &str) -> (Harness, Harness) {
    let runc = Harness::runc(&format!("{name}-runc"))
        .unwrap_or_else(|| panic!("runc must be in the VM (tests/vm/run.sh copies it)"));
    (runc, Harness::reevec(&format!("{name}-reevec")))
}

/// Compare one value per (scenario, field), recording every difference seen.
fn differ(
    seen: &mut Vec<(String, String, bool)>,
    scenario: &str,
    field: &str,
    runc: &str,
    reevec: &str,
) {
    let listed = DIFFERENCES
        .iter()
        .any(|(s, f, _)| *s == scenario && *f == field);
    say(&format!(
        "{scenario:<40} {field:<10} runc={runc:<28} reevec={reevec}"
    ));
    if runc != reevec {
        seen.push((scenario.to_string(), field.to_string(), listed));
    }
}

#[test]
fn hooks_and_errors_match_runc() {
    if !in_vm("hooks_and_errors_match_runc", "contract_vm") {
        return;
    }
    let (runc, reevec) = runtimes("contract");
    let mut seen = Vec::new();

    let a = hooks_report(&runc).unwrap_or_else(|e| panic!("runc: {e}"));
    let b = hooks_report(&reevec).unwrap_or_else(|e| panic!("reevec: {e}"));
    let list = |v: &[String]| v.join(",");
    differ(
        &mut seen,
        "hook order",
        "create",
        &list(&a.after_create),
        &list(&b.after_create),
    );
    differ(
        &mut seen,
        "hook order",
        "start",
        &list(&a.after_start),
        &list(&b.after_start),
    );
    differ(
        &mut seen,
        "hook order",
        "delete",
        &list(&a.after_delete),
        &list(&b.after_delete),
    );
    assert_eq!(b.after_delete.len(), 6, "reevec ran every phase: {b:?}");
    for (phase, ra) in &a.seen {
        let rb = b
            .seen
            .get(phase)
            .unwrap_or_else(|| panic!("reevec did not run the {phase} hook"));
        let scenario = format!("{phase} hook");
        differ(&mut seen, &scenario, "status", &ra.status, &rb.status);
        differ(&mut seen, &scenario, "pid", &ra.pid, &rb.pid);
        differ(&mut seen, &scenario, "mount ns", &ra.mount_ns, &rb.mount_ns);
        differ(
            &mut seen,
            &scenario,
            "id",
            &ra.id_matches.to_string(),
            &rb.id_matches.to_string(),
        );
        differ(&mut seen, &scenario, "env", &ra.env, &rb.env);
    }

    for phase in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ] {
        let (ca, sa, la, _) = failing_hook(&runc, phase);
        let (cb, sb, lb, out) = failing_hook(&reevec, phase);
        let scenario = format!("failing {phase} hook");
        differ(
            &mut seen,
            &scenario,
            "create",
            &ca.to_string(),
            &cb.to_string(),
        );
        differ(
            &mut seen,
            &scenario,
            "start",
            &sa.to_string(),
            &sb.to_string(),
        );
        differ(
            &mut seen,
            &scenario,
            "left",
            &la.to_string(),
            &lb.to_string(),
        );
        if !cb || !sb {
            assert!(
                out.contains("hook says no"),
                "reevec names the hook's words: {out}"
            );
        }
    }

    let ea = errors_report(&runc);
    let eb = errors_report(&reevec);
    for (name, a) in &ea {
        let b = &eb[name];
        differ(
            &mut seen,
            name,
            "exit",
            &format!("{:?}", a.code),
            &format!("{:?}", b.code),
        );
        differ(
            &mut seen,
            name,
            "text",
            &a.matched.to_string(),
            &b.matched.to_string(),
        );
    }

    let unlisted: Vec<String> = seen
        .iter()
        .filter(|(_, _, listed)| !listed)
        .map(|(s, f, _)| format!("{s} / {f}"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "differences from runc not recorded in DIFFERENCES: {unlisted:?}"
    );
    let seen: BTreeSet<(String, String)> = seen.into_iter().map(|(s, f, _)| (s, f)).collect();
    for (s, f, why) in DIFFERENCES {
        assert!(
            seen.contains(&(s.to_string(), f.to_string())),
            "the recorded difference {s} / {f} ({why}) was not seen: remove it from DIFFERENCES"
        );
    }
}
