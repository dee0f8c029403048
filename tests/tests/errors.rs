//! Failures are reported with the step and the path, and leave nothing behind.

use std::time::Duration;

use reeve_tests::*;

/// Nothing of container `id` remains: no state, no process, no host mount of the bundle.
#[track_caller]
fn assert_nothing_left(h: &Harness, b: &Bundle, id: &str) {
    assert!(
        !h.state_root().join(id).exists(),
        "state dir left behind under --root: {:?}",
        list_dir(h.state_root())
    );
    let procs = poll(Duration::from_secs(3), || {
        let p = processes_using(&b.rootfs(), id);
        p.is_empty().then_some(())
    });
    assert!(
        procs.is_some(),
        "processes left behind: {:?}",
        processes_using(&b.rootfs(), id)
    );
    let bundle = b.path().to_str().expect("utf-8").to_string();
    let leaked: Vec<_> = host_mounts()
        .into_iter()
        .filter(|m| m.mount_point.contains(&bundle) || m.source.contains(&bundle))
        .collect();
    assert!(
        leaked.is_empty(),
        "host mounts of the bundle left behind: {leaked:#?}"
    );
    let st = h.exec(&["state", id]);
    st.assert_fails();
}

fn assert_names_exec_and_path(out: &Output) {
    let all = out.all();
    assert!(
        all.contains("/nonexistent"),
        "the error names the path:\n{out}"
    );
    assert!(
        all.to_lowercase().contains("exec"),
        "the error names the step (exec):\n{out}"
    );
}

#[test]
fn create_of_a_missing_binary_fails_and_leaves_nothing() {
    require_root!();
    let h = Harness::new("noexec-create");
    let mut b = h.bundle();
    b.set_args(&["/nonexistent"]);
    let (c, out) = h.create(&b);
    out.assert_fails();
    assert_names_exec_and_path(&out);
    assert_nothing_left(&h, &b, &c.id);
}

#[test]
fn run_of_a_missing_binary_fails_and_leaves_nothing() {
    require_root!();
    let h = Harness::new("noexec-run");
    let mut b = h.bundle();
    b.set_args(&["/nonexistent"]);
    b.save();
    let id = h.new_id();
    let out = h.exec(&[
        "run".as_ref(),
        "--bundle".as_ref(),
        b.path().as_os_str(),
        id.as_ref(),
    ]);
    out.assert_fails();
    assert_names_exec_and_path(&out);
    assert_nothing_left(&h, &b, &id);
}

#[test]
fn a_missing_rootfs_fails_and_leaves_nothing() {
    require_root!();
    let h = Harness::new("norootfs");
    let mut b = h.bundle();
    b.spec_mut()["root"]["path"] = serde_json::json!("no-such-rootfs");
    b.set_args(&["true"]);
    let (c, out) = h.create(&b);
    out.assert_fails();
    assert!(
        out.all().contains("no-such-rootfs"),
        "the error names the rootfs:\n{out}"
    );
    assert_nothing_left(&h, &b, &c.id);
}

/// A broken config.json is refused before anything exists, and the error (on stderr and in
/// the `--log` JSON line containerd shows its user) names the file, line, column, field and
/// the bad value with what is accepted.
#[test]
fn config_json_errors_name_line_column_field_and_value() {
    require_root!();
    let h = Harness::reevec("jsonerr");
    type Edit = Box<dyn Fn(&mut Bundle)>;
    let cases: [(&str, Edit, &str); 3] = [
        (
            "unknown rlimit",
            Box::new(|b: &mut Bundle| {
                b.spec_mut()["process"]["rlimits"] =
                    serde_json::json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]);
            }),
            "process.rlimits[0].type: unknown value \"RLIMIT_BOGUS\" (expected one of: RLIMIT_CPU",
        ),
        (
            "wrong type",
            Box::new(|b: &mut Bundle| {
                b.spec_mut()["process"]["user"]["uid"] = serde_json::json!("root");
            }),
            "process.user.uid: invalid type: string \"root\", expected u32",
        ),
        (
            "syntax",
            Box::new(|_: &mut Bundle| {}),
            "expected `,` or `}`",
        ),
    ];
    for (name, edit, want) in cases {
        let mut b = h.bundle();
        edit(&mut b);
        b.save();
        let config = b.path().join("config.json");
        if name == "syntax" {
            let text = std::fs::read_to_string(&config).expect("config");
            std::fs::write(
                &config,
                text.replacen("\"process\"", "\"x\": 1 \"process\"", 1),
            )
            .expect("break config");
        }
        let c = h.container();
        let log = h.dir().join(format!("{}.log", c.id));
        let out = h.exec(&[
            "--log",
            log.to_str().expect("utf-8"),
            "--log-format",
            "json",
            "create",
            "--bundle",
            b.path().to_str().expect("utf-8"),
            &c.id,
        ]);
        out.assert_fails();
        let prefix = format!("{}:", config.display());
        assert!(
            out.stderr.contains(&prefix),
            "{name}: names the file: {out}"
        );
        assert!(out.stderr.contains(want), "{name}: {out}");
        let last = std::fs::read_to_string(&log).expect("log file");
        let line: serde_json::Value =
            serde_json::from_str(last.lines().last().expect("a line")).expect("JSON log line");
        assert_eq!(line["level"], "error", "{line}");
        assert!(
            line["msg"].as_str().is_some_and(|m| m.contains(want)),
            "{line}"
        );
        assert_nothing_left(&h, &b, &c.id);
    }
}
