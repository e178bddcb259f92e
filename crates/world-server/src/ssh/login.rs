//! Who an SSH login names and what it proves: pure parsing of the user
//! name and the credential rules, kept apart from the protocol so that
//! they can be tested exhaustively.
//!
//! Two conventions are accepted:
//! * `ssh -p PORT WORLD_ID@HOST` with the API token as the password
//!   (OpenSSH prompts for it, or `sshpass`);
//! * Morph's: the user name is `WORLD_ID:TOKEN` and any key (or none) is
//!   accepted, because the secret is in the name. This is what the
//!   `morphcloud` SDK sends (`instance.ssh()`, `upload`, `download`).

/// A parsed user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The world (or Morph instance) id, as given.
    pub world: String,
    /// The token carried in the name (`WORLD_ID:TOKEN`), if any.
    pub token: Option<String>,
}

/// Longest user name considered (ids and tokens are far shorter).
pub const MAX_USER: usize = 512;

impl Login {
    /// Splits `WORLD_ID[:TOKEN]`. `None` for names that cannot be one:
    /// empty, too long, or with an empty id.
    pub fn parse(user: &str) -> Option<Login> {
        if user.is_empty() || user.len() > MAX_USER {
            return None;
        }
        let (world, token) = match user.split_once(':') {
            Some((w, t)) => (w, Some(t.to_string())),
            None => (user, None),
        };
        if world.is_empty() {
            return None;
        }
        Some(Login {
            world: world.to_string(),
            token,
        })
    }

    /// Whether this login proves the token without a password: the name
    /// carries it and it matches.
    pub fn token_in_name(&self, token: &str) -> bool {
        self.token.as_deref().is_some_and(|t| same(t, token))
    }

    /// Whether a password login proves the token: the password is the
    /// token (and a token in the name, if any, matches too).
    pub fn password_ok(&self, password: &str, token: &str) -> bool {
        same(password, token) && self.token.as_deref().is_none_or(|t| same(t, token))
    }
}

/// Constant-time comparison (the time depends on the lengths only).
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_two_conventions() {
        let l = Login::parse("w-0123456789ab").unwrap();
        assert_eq!(l.world, "w-0123456789ab");
        assert!(!l.token_in_name("tok"));
        assert!(l.password_ok("tok", "tok"));
        assert!(!l.password_ok("tok2", "tok"));
        let m = Login::parse("w-0123456789ab:tok").unwrap();
        assert!(m.token_in_name("tok"));
        assert!(!m.token_in_name("to"));
        assert!(m.password_ok("tok", "tok"));
        assert!(Login::parse("").is_none());
        assert!(Login::parse(":tok").is_none());
        assert!(Login::parse(&"w".repeat(MAX_USER + 1)).is_none());
    }

    proptest! {
        /// No name proves a token it does not carry, and a wrong password
        /// never passes, whatever the name.
        #[test]
        fn only_the_token_opens(user in "[ -~]{0,40}", pw in "[ -~]{0,20}", token in "[a-z0-9]{8,20}") {
            if let Some(l) = Login::parse(&user) {
                if l.token_in_name(&token) {
                    let tail = format!(":{}", token);
                    prop_assert!(user.ends_with(&tail));
                }
                prop_assert_eq!(l.password_ok(&pw, &token) && pw != token, false);
                prop_assert!(!l.world.is_empty() && !l.world.contains(':'));
            }
        }
    }
}
