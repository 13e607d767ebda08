//! The binary needs only libc, libm and libgcc_s at run time (rustls, not
//! OpenSSL; SQLite bundled): it installs on any Debian-like system.

mod common;

use std::process::Command;

#[test]
fn the_binary_links_only_libc_libm_and_libgcc() {
    let out = Command::new("ldd")
        .arg(common::trailwatch())
        .output()
        .expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let libs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|name| name.split(".so").next().unwrap_or(name))
        .collect();
    assert!(libs.contains(&"libc"), "{text}");
    let unexpected: Vec<&&str> = libs
        .iter()
        .filter(|l| {
            !matches!(
                **l,
                "libc" | "libm" | "libgcc_s" | "linux-vdso" | "linux-gate"
            ) && !l.contains("ld-linux")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected libraries: {unexpected:?}\n{text}"
    );
}
