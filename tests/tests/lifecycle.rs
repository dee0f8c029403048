//! create → start → state → kill → delete, list, ps, flag order, errors and the JSON log.

use std::fs;
use std::time::Duration;

use reeve_tests::*;

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

#[test]
fn full_lifecycle() {
    require_root!();
    let h = Harness::new("life");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();

    // created: a pid, the pid file agrees, the process exists but has not exec'd yet.
    let st = c.state().expect("state after create");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    assert!(st["ociVersion"].is_string(), "{st}");
    let bundle = st["bundle"].as_str().expect("bundle in state");
    assert_eq!(
        fs::canonicalize(bundle).expect("bundle path"),
        fs::canonicalize(b.path()).expect("bundle path")
    );
    let pid = st["pid"].as_i64().expect("pid in state") as i32;
    assert!(pid > 0, "{st}");
    let from_file: i32 = fs::read_to_string(c.pid_file())
        .expect("pid file written")
        .trim()
        .parse()
        .expect("pid file holds a number");
    assert_eq!(from_file, pid, "pid file vs state");
    assert!(
        fs::metadata(format!("/proc/{pid}")).is_ok(),
        "init {pid} of a created container exists"
    );
    assert!(
        !cmdline(pid).starts_with("sleep"),
        "not started yet: {}",
        cmdline(pid)
    );

    // start: running, and the process is the container's `sleep 30`.
    c.start().assert_ok();
    assert!(
        c.wait_status("running", Duration::from_secs(5)),
        "{:?}",
        c.state()
    );
    assert_eq!(c.pid(), pid, "pid is stable across start");
    let seen = poll(Duration::from_secs(5), || {
        (cmdline(pid) == "sleep 30").then_some(())
    });
    assert!(
        seen.is_some(),
        "process {pid} runs {:?}, not `sleep 30`",
        cmdline(pid)
    );

    // list and ps.
    let list = h
        .exec(&["list", "--format", "json"])
        .json()
        .expect("list json");
    let entry = list
        .as_array()
        .expect("list is an array")
        .iter()
        .find(|e| e["id"] == c.id.as_str())
        .unwrap_or_else(|| panic!("{} not in list {list}", c.id))
        .clone();
    assert_eq!(entry["pid"].as_i64(), Some(pid as i64), "{entry}");
    assert_eq!(entry["status"], "running", "{entry}");
    let quiet = h.exec(&["list", "-q"]);
    quiet.assert_ok();
    assert!(quiet.stdout.lines().any(|l| l.trim() == c.id), "{quiet}");
    let ps = c.verb("ps", &["--format", "json"]).json().expect("ps json");
    let pids: Vec<i64> = ps
        .as_array()
        .expect("ps is an array")
        .iter()
        .filter_map(|p| p.as_i64())
        .collect();
    assert!(pids.contains(&(pid as i64)), "ps {pids:?} lacks init {pid}");

    // kill: stopped; a second kill is refused because it is not running.
    c.kill("KILL").assert_ok();
    assert!(
        c.wait_status("stopped", Duration::from_secs(5)),
        "{:?}",
        c.state()
    );
    let again = c.kill("KILL");
    again.assert_fails();
    assert!(again.stderr.contains("not running"), "{again}");

    // delete: gone.
    c.verb("delete", &[]).assert_ok();
    let gone = c.verb("state", &[]);
    gone.assert_fails();
    assert!(gone.stderr.contains("does not exist"), "{gone}");
    assert!(
        !h.state_root().join(&c.id).exists(),
        "state dir left behind: {:?}",
        list_dir(h.state_root())
    );
    assert!(
        poll(Duration::from_secs(2), || fs::metadata(format!(
            "/proc/{pid}"
        ))
        .is_err()
        .then_some(()))
        .is_some(),
        "init {pid} still exists after delete"
    );
}

#[test]
fn delete_force_of_a_missing_container_succeeds() {
    require_root!();
    let h = Harness::new("delmissing");
    let id = h.new_id();
    let out = h.exec(&["delete", "--force", &id]);
    out.assert_ok();
    let plain = h.exec(&["delete", &id]);
    plain.assert_fails();
}

#[test]
fn delete_force_kills_a_running_container() {
    require_root!();
    let h = Harness::new("delforce");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    c.start().assert_ok();
    let pid = c.pid();
    c.verb("delete", &["--force"]).assert_ok();
    c.verb("state", &[]).assert_fails();
    assert!(
        poll(Duration::from_secs(3), || fs::metadata(format!(
            "/proc/{pid}"
        ))
        .is_err()
        .then_some(()))
        .is_some(),
        "init {pid} survived delete --force"
    );
}

#[test]
fn create_with_an_existing_id_fails_and_keeps_the_first() {
    require_root!();
    let h = Harness::new("dupid");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    let (c, out) = h.create(&b);
    out.assert_ok();
    let pid = c.pid();
    let second = c.create(&b);
    second.assert_fails();
    assert!(second.stderr.contains("exists"), "{second}");
    assert_eq!(c.status(), "created", "the first container survives");
    assert_eq!(c.pid(), pid);
}

#[test]
fn flags_before_and_after_the_id() {
    require_root!();
    let h = Harness::new("flags");
    let mut b = h.bundle();
    b.set_args(&["sleep", "30"]);
    b.save();
    let bundle = b.path().to_str().expect("utf-8 path").to_string();
    let c1 = h.container();
    h.exec(&["create", &c1.id, "--bundle", &bundle]).assert_ok();
    assert_eq!(c1.status(), "created");
    let c2 = h.container();
    h.exec(&["create", "--bundle", &bundle, &c2.id]).assert_ok();
    assert_eq!(c2.status(), "created");
    h.exec(&["kill", &c2.id, "KILL"]).assert_ok();
    assert!(
        c2.wait_status("stopped", Duration::from_secs(5)),
        "{:?}",
        c2.state()
    );
    h.exec(&["delete", &c2.id]).assert_ok();
    h.exec(&["delete", "--force", &c1.id]).assert_ok();
}

#[test]
fn json_log_of_a_failing_create_ends_with_an_error_line() {
    require_root!();
    let h = Harness::new("log");
    let empty = h.dir().join("no-bundle");
    fs::create_dir(&empty).expect("mkdir");
    let log = h.dir().join("runtime.log");
    let c = h.container();
    let out = h.exec(&[
        "--log".as_ref(),
        log.as_os_str(),
        "--log-format".as_ref(),
        "json".as_ref(),
        "create".as_ref(),
        "--bundle".as_ref(),
        empty.as_os_str(),
        c.id.as_ref(),
    ]);
    out.assert_fails();
    let text = fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("log file {}: {e}\n{out}", log.display()));
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("empty log file\n{out}"));
    let v: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("last log line {last:?}: {e}"));
    assert_eq!(v["level"], "error", "{last}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("config.json"),
        "the error names config.json: {last}"
    );
}
