//! Time to set up (and tear down) one tenant's network: `cargo run --release -p reeve-network
//! --example setup_bench -- [N]` as root. Runs entirely in a network namespace it creates for
//! itself (the machine's interfaces and firewall are not touched): a bridge, then N tenant
//! namespaces, each given its veth, address, routes, `lo` and nftables rules with
//! `Network::setup_tenant`, timed one by one; then the same for `teardown_tenant`. Prints
//! median, p90 and max, and how the set-up time grows with the number of tenants present.

use std::time::{Duration, Instant};

use reeve_network::{netns, NetnsRef, Network, NetworkConfig};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    println!(
        "{what}: n={} median={:.2}ms p90={:.2}ms max={:.2}ms",
        d.len(),
        pct(&d, 0.5).as_secs_f64() * 1e3,
        pct(&d, 0.9).as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    if n == 0 {
        return Err("N must be at least 1".into());
    }
    // Single-threaded here: the whole process moves to a namespace of its own.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    let dir = tempfile::tempdir()?;
    let cfg = NetworkConfig {
        bridge: "rvbench0".into(),
        subnet: "10.77.0.0/16".parse()?,
        gateway_port: 8080,
        services: vec!["10.77.0.1:9000".parse()?],
        egress_nat: false,
        domain: "gw.bench".into(),
    };
    let mut net = Network::open(cfg, dir.path().join("addresses.json"))?;
    let t = Instant::now();
    net.reconcile(&[])?;
    println!(
        "bridge and base tables: {:.2}ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut namespaces = Vec::with_capacity(n);
    let mut setup = Vec::with_capacity(n);
    for i in 0..n {
        let ns = netns::create()?;
        let t = Instant::now();
        net.setup_tenant(&format!("t{i}"), &NetnsRef::Fd(ns.try_clone()?))?;
        setup.push(t.elapsed());
        namespaces.push(ns);
    }
    let first = setup[..n.min(10)].to_vec();
    let last = setup[n.saturating_sub(10)..].to_vec();
    report("setup_tenant (one tenant's network)", setup);
    report("  first 10", first);
    report(&format!("  last 10 (with {} others present)", n - 1), last);
    let mut teardown = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        net.teardown_tenant(&format!("t{i}"))?;
        teardown.push(t.elapsed());
    }
    report("teardown_tenant", teardown);
    net.destroy()?;
    Ok(())
}
