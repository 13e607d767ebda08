//! Kill points: places where the chaos suite (`scripts/chaos.sh`) makes the
//! process die at once, as `kill -9` would, where random timing cannot hit
//! (inside a commit, between a receiver's answer and its commit). They are
//! the `fail` crate's failpoints, compiled only with `--features failpoints`
//! and switched on by the `FAILPOINTS` environment variable
//! (`FAILPOINTS='state.commit_object=5%return'`); in every other build the
//! macro is nothing at all.

/// Aborts the process here when the failpoint `$name` fires (its action is
/// `return`); `panic`, `sleep` and `delay` do what `fail` makes of them.
#[macro_export]
macro_rules! kill_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        {
            if fail::eval($name, |_| ()).is_some() {
                eprintln!("kill point {} fired: aborting", $name);
                std::process::abort();
            }
        }
    };
}

/// Reads `FAILPOINTS` (failpoints builds only); the returned guard keeps
/// them set for as long as it lives.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

/// The names of the kill points, for the chaos suite's schedule and to keep
/// it in step with the code (tested: each name appears in the source).
pub const NAMES: &[&str] = &[
    "state.commit_object.before_commit",
    "state.commit_object.after_commit",
    "sinks.http.after_answer",
    "sinks.file.after_write",
];

#[cfg(test)]
mod tests {
    /// Every name the chaos suite may switch on is a kill point in the code,
    /// and every kill point in the code is named here.
    #[test]
    fn the_names_are_the_kill_points_in_the_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source is UTF-8");
                    for part in text.split("kill_point!(\"").skip(1) {
                        if let Some(end) = part.find('"') {
                            found.push(part[..end].to_owned());
                        }
                    }
                }
            }
        }
        found.sort();
        let mut named: Vec<String> = super::NAMES.iter().map(|s| (*s).to_owned()).collect();
        named.sort();
        assert_eq!(found, named);
    }
}
