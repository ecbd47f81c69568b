//! The API's bearer token: what a caller of a mutating endpoint (`POST
//! /batch`) must show. Made on first start as 32 random bytes in hex, in
//! `<data dir>/api-token`, readable by its owner only; the operator finds it
//! there or in `crowdprove status`. Read-only endpoints need none.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::RngCore;

/// The token file in the data dir.
pub const TOKEN_FILE: &str = "api-token";
/// Hex characters in a token.
const TOKEN_LEN: usize = 64;

/// The API's bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Where the token of `data_dir` lives.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(TOKEN_FILE)
    }

    /// Reads the data dir's token, making it first if there is none.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(data_dir);
        if path.exists() {
            return Self::read(data_dir);
        }
        let mut bytes = [0u8; TOKEN_LEN / 2];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = protocol::hex::encode(&bytes);
        let tmp = data_dir.join(format!("{TOKEN_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            let mut file = owner_only().open(&tmp)?;
            file.write_all(token.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("cannot write the API token {}", path.display()))?;
        Ok(Self(token.into()))
    }

    /// Reads the data dir's token.
    pub fn read(data_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(data_dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the API token {}", path.display()))?;
        let token = text.trim();
        if token.len() != TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "{} is not an API token ({TOKEN_LEN} hex characters); delete it and restart the node to make a new one",
                path.display()
            );
        }
        restrict(&path)?;
        Ok(Self(token.into()))
    }

    /// The token, to send as `Authorization: Bearer <token>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value carries this token. Compares
    /// in constant time, so the answer's timing tells nothing of the token.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|v| v.trim().strip_prefix("Bearer ")) else {
            return false;
        };
        let (given, ours) = (given.trim().as_bytes(), self.0.as_bytes());
        given.len() == ours.len()
            && given
                .iter()
                .zip(ours)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(unix)]
fn owner_only() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    options
}

/// A token file others can read is made owner-only again.
#[cfg(unix)]
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(target: "api", path = %path.display(), mode = format!("{:o}", mode & 0o777), "the API token was readable by others; making it owner-only");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_owner_only_and_checked_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let token = Token::load_or_create(dir.path()).unwrap();
        assert_eq!(token.as_str().len(), TOKEN_LEN);
        assert_eq!(Token::load_or_create(dir.path()).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(Token::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let bearer = format!("Bearer {}", token.as_str());
        assert!(token.admits(Some(&bearer)));
        assert!(!token.admits(None));
        assert!(
            !token.admits(Some(token.as_str())),
            "the scheme is required"
        );
        assert!(!token.admits(Some(&bearer[..bearer.len() - 1])));
        let mut wrong = bearer.clone().into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
        assert!(!token.admits(Some(std::str::from_utf8(&wrong).unwrap())));
        std::fs::write(Token::path(dir.path()), "not a token").unwrap();
        let refused = Token::read(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("is not an API token"), "{refused}");
    }
}
