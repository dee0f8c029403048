//! The same bundle under crun (the reference) and reevec must show the same sandbox, except for
//! the differences listed with a reason in tests/expectations/crun-differences.txt.

use std::collections::{BTreeMap, BTreeSet};

use reeve_tests::*;

/// Facts reduced to what both runtimes must agree on: mountinfo becomes one fact per mount
/// point, `mount:<point>` = `<fs type> <ro|rw>` for each mount stacked there, bottom first
/// (mount ids, sources and options other than ro are the runtime's own business).
fn canonical(f: &Facts) -> BTreeMap<String, Vec<String>> {
    let mut m = f.0.clone();
    m.remove("mountinfo");
    for mi in f.mounts() {
        let ro = if mi.read_only() { "ro" } else { "rw" };
        m.entry(format!("mount:{}", mi.mount_point))
            .or_default()
            .push(format!("{} {ro}", mi.fstype));
    }
    m
}

fn allowed_differences() -> BTreeMap<String, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/expectations/crun-differences.txt"
    );
    let text = std::fs::read_to_string(path).expect("crun-differences.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, why) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("{path}: `{l}` is not `<fact>: <reason>`"));
            assert!(!why.trim().is_empty(), "{path}: `{l}` gives no reason");
            (k.trim().to_string(), why.trim().to_string())
        })
        .collect()
}

fn facts_under(h: &Harness, b: &Bundle, id_hint: &str) -> Facts {
    let out = h.run(b);
    assert!(
        out.success(),
        "{id_hint} under {:?} failed:\n{out}",
        h.kind()
    );
    let f = Facts::parse(&out.stdout);
    assert_eq!(
        f.all("done"),
        ["1"],
        "{id_hint} under {:?}: script incomplete:\n{out}",
        h.kind()
    );
    f
}

fn compare(variant: &str, edit: impl Fn(&mut Bundle)) {
    let Some(crun) = Harness::crun(&format!("crun-{variant}")) else {
        eprintln!("SKIPPED: crun is not installed (apt-get install crun)");
        return;
    };
    let reevec = Harness::reevec(&format!("cmp-{variant}"));
    let mut b = reevec.bundle();
    // crun cannot mount cgroup2 on this (hybrid) host; the comparison is about everything else.
    b.remove_mount("/sys/fs/cgroup");
    b.set_script(FACTS_SCRIPT);
    b.downgrade_for_crun();
    edit(&mut b);
    let theirs = canonical(&facts_under(&crun, &b, variant));
    let ours = canonical(&facts_under(&reevec, &b, variant));
    let allowed = allowed_differences();
    let keys: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    let mut bad = Vec::new();
    let mut differing = BTreeSet::new();
    for k in keys {
        let (t, o) = (theirs.get(k), ours.get(k));
        if t != o {
            differing.insert(k.clone());
            if !allowed.contains_key(k) {
                bad.push(format!("{k}:\n  crun:   {t:?}\n  reevec: {o:?}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "[{variant}] facts differ from crun:\n{}",
        bad.join("\n")
    );
    // Facts that must be equal here and are allowed to differ must actually differ in some
    // variant: a line that no longer applies is reported (not failed per variant, since a
    // difference may show in one variant only).
    for k in allowed.keys() {
        if !differing.contains(k) {
            eprintln!("[{variant}] note: allowed difference `{k}` does not differ here");
        }
    }
}

#[test]
fn same_facts_as_crun_as_root() {
    require_root!();
    compare("root", |_| {});
}

#[test]
fn same_facts_as_crun_as_user_1000() {
    require_root!();
    compare("user", |b| {
        b.set_user(1000, 1000, &[2000]);
    });
}

#[test]
fn differences_file_is_well_formed_and_every_line_is_explained() {
    let allowed = allowed_differences();
    for (k, why) in &allowed {
        assert!(!k.contains(' '), "fact names have no spaces: {k}");
        assert!(why.len() >= 10, "reason for {k} is too short: {why}");
    }
}
