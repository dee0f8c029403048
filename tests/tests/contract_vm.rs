//! The caller contract, reevec against runc 1.1.5 in the test VM (where runc can run): the
//! scenarios of `reeve_tests::contract` run under both runtimes and their reports must be
//! equal, except for the differences listed in [`DIFFERENCES`] with their reasons (a listed
//! difference that disappears fails too, so the list stays true).
//!
//! Run: `cargo build -p reeve-runtime && tests/vm/cargo-vm-test.sh -p reeve-tests --test
//! contract_vm -- --test-threads=1 --nocapture`. Outside the VM every test prints SKIPPED.

use std::collections::BTreeSet;
use std::io::Write;

use reeve_tests::contract::{errors_report, failing_hook, hooks_report};
use reeve_tests::*;

/// (scenario, what differs, why). Each one is measured: the test fails if it is not seen.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "failing poststart hook",
        "start",
        "the runtime spec says a failing poststart hook only logs a warning and the lifecycle \
         goes on; runc 1.1 fails `start` and kills the container instead",
    ),
    (
        "failing poststart hook",
        "left",
        "same cause: runc kills the container, reevec leaves it running",
    ),
];

fn in_vm(test: &str) -> bool {
    if std::env::var("REEVE_IN_VM").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: runs only in the test VM (REEVE_IN_VM=1): \
         tests/vm/cargo-vm-test.sh -p reeve-tests --test contract_vm -- --test-threads=1"
    );
    false
}

fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn runtimes(name: &str) -> (Harness, Harness) {
    let runc = Harness::runc(&format!("{name}-runc"))
        .unwrap_or_else(|| panic!("runc must be in the VM (tests/vm/run.sh copies it)"));
    (runc, Harness::reevec(&format!("{name}-reevec")))
}

/// Compare one value per (scenario, field); returns the differences seen.
fn differ(
    seen: &mut BTreeSet<(String, String)>,
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
        assert!(
            listed,
            "{scenario} / {field}: runc {runc:?}, reevec {reevec:?}, and this difference is \
             not recorded in DIFFERENCES"
        );
        seen.insert((scenario.to_string(), field.to_string()));
    }
}

#[test]
fn hooks_and_errors_match_runc() {
    if !in_vm("hooks_and_errors_match_runc") {
        return;
    }
    let (runc, reevec) = runtimes("contract");
    let mut seen = BTreeSet::new();

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

    for (s, f, why) in DIFFERENCES {
        assert!(
            seen.contains(&(s.to_string(), f.to_string())),
            "the recorded difference {s} / {f} ({why}) was not seen: remove it from DIFFERENCES"
        );
    }
}
