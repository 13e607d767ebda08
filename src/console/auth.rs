//! Who may look: administrators named in a credential file (users with
//! argon2 password hashes, for the login form; tokens for scripts, kept as
//! SHA-256 digests), or a trusted header set by an authenticating proxy
//! (oauth2-proxy). Browsers get an HttpOnly, SameSite=Strict session cookie;
//! failed logins are limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "tw_session";
/// Failed logins from one address before it must wait.
const MAX_FAILURES: usize = 5;
/// The span those failures are counted over (and the wait).
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// The administrators a credential file names.
#[derive(Default)]
pub struct Credentials {
    /// User name → argon2 PHC string.
    users: HashMap<String, String>,
    /// SHA-256 of a token → the token's name.
    tokens: HashMap<[u8; 32], String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("users", &self.users.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Credentials {
    /// Reads a credential file: one entry a line, `user <name> <argon2 hash>`
    /// or `token <name> sha256:<hex digest of the token>`; `#` comments and
    /// blank lines are skipped. An error names the file and line (never the
    /// secret).
    pub fn load(path: &Path) -> Result<Credentials, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Credentials::parse(&text).map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Credentials, (usize, String)> {
        let mut c = Credentials::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (kind, name, secret) = (parts.next(), parts.next(), parts.next());
            let (Some(kind), Some(name), Some(secret), None) = (kind, name, secret, parts.next())
            else {
                return Err((
                    i + 1,
                    "expected `user <name> <argon2 hash>` or `token <name> sha256:<hex>`".into(),
                ));
            };
            match kind {
                "user" => {
                    PasswordHash::new(secret).map_err(|_| {
                        (i + 1, format!("user {name}: not an argon2 hash (make one with `trailwatch console --hash-password`)"))
                    })?;
                    c.users.insert(name.to_owned(), secret.to_owned());
                }
                "token" => {
                    let digest = secret
                        .strip_prefix("sha256:")
                        .and_then(|h| hex::decode(h).ok())
                        .and_then(|d| <[u8; 32]>::try_from(d).ok())
                        .ok_or_else(|| {
                            (
                                i + 1,
                                format!("token {name}: expected sha256:<64 hex digits>"),
                            )
                        })?;
                    c.tokens.insert(digest, name.to_owned());
                }
                other => return Err((i + 1, format!("`{other}` is neither user nor token"))),
            }
        }
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty()
    }

    /// The user, when the password is theirs.
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        let Some(phc) = self.users.get(user) else {
            // Spend about as long as a real check, so that timing does not
            // tell which names exist.
            let _ = hash_password(password);
            return false;
        };
        PasswordHash::new(phc).is_ok_and(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }

    /// The token's name, when the bearer token is known.
    pub fn check_token(&self, token: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.get(&digest).map(String::as_str)
    }
}

/// An argon2id hash (PHC string) of a password, for the credential file.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Signed-in browsers: session id → (user, expiry).
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    /// A new session for `user`, valid for `ttl`; returns its id.
    pub fn open(&self, user: &str, ttl: Duration) -> String {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let id = hex::encode(bytes);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, (_, until)| *until > now);
        live.insert(id.clone(), (user.to_owned(), now + ttl));
        id
    }

    /// The session's user, while it lasts.
    pub fn user(&self, id: &str) -> Option<String> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(user, _)| user.clone())
    }

    pub fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Failed logins per client address.
#[derive(Default)]
pub struct Failures {
    seen: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl Failures {
    /// Whether `ip` has failed too often lately.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let list = seen.entry(ip).or_default();
        list.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        list.len() >= MAX_FAILURES
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.clear(); // a flood of addresses: forget them all rather than grow
        }
        seen.entry(ip).or_default().push(Instant::now());
    }
}

/// The value of a cookie in a `Cookie` header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_tokens_and_bad_lines_are_told_apart() {
        let hash = hash_password("correct horse").expect("hash");
        let digest = hex::encode(Sha256::digest(b"tok-123"));
        let text = format!("# admins\nuser alice {hash}\n\ntoken ci sha256:{digest}\n");
        let c = Credentials::parse(&text).expect("parse");
        assert!(c.check_password("alice", "correct horse"));
        assert!(!c.check_password("alice", "wrong"));
        assert!(!c.check_password("mallory", "correct horse"));
        assert_eq!(c.check_token("tok-123"), Some("ci"));
        assert_eq!(c.check_token("tok-124"), None);
        let (line, why) = Credentials::parse("user bob not-a-hash\n").expect_err("bad");
        assert_eq!(line, 1);
        assert!(
            why.contains("argon2") && !why.contains("not-a-hash"),
            "{why}"
        );
        assert_eq!(
            Credentials::parse("\n\ntoken t sha256:zz\n")
                .expect_err("bad")
                .0,
            3
        );
    }

    #[test]
    fn sessions_end_and_failed_logins_are_limited() {
        let s = Sessions::default();
        let id = s.open("alice", Duration::from_secs(60));
        assert_eq!(s.user(&id).as_deref(), Some("alice"));
        s.close(&id);
        assert_eq!(s.user(&id), None);
        let gone = s.open("alice", Duration::ZERO);
        assert_eq!(s.user(&gone), None);
        let f = Failures::default();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..MAX_FAILURES {
            assert!(!f.blocked(ip));
            f.failed(ip);
        }
        assert!(f.blocked(ip));
        assert_eq!(cookie("a=1; tw_session=abc; b=2", COOKIE), Some("abc"));
    }
}
