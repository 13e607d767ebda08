// The built-in rules under rules/ are compiled into the binary: rebuild when
// they change. `trailwatch --version` also names the commit it was built from
// and the rule pack's version (rules/VERSION).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=rules");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TRAILWATCH_COMMIT={commit}");
    let pack = std::fs::read_to_string("rules/VERSION").unwrap_or_default();
    let version = pack
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(str::trim)
        .unwrap_or("unknown")
        .to_owned();
    println!("cargo:rustc-env=TRAILWATCH_RULES_VERSION={version}");
}
