//! The bearer token: generated at first start into the state directory
//! with mode 0600, read on every later start.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// Where the token of a state directory lives: `<state_dir>/api-token`.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join("api-token")
}

/// Reads the token of `state_dir`, creating one (64 hex digits from
/// `/dev/urandom`, file mode 0600) if there is none yet.
pub fn load_or_create_token(state_dir: &Path) -> Result<String, Error> {
    let path = token_path(state_dir);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let t = s.trim().to_string();
        if !t.is_empty() {
            // Keep it private even if someone loosened the mode.
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            return Ok(t);
        }
    }
    std::fs::create_dir_all(state_dir)
        .map_err(|e| Error::Io(format!("create {}", state_dir.display()), e))?;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::Io("read /dev/urandom".into(), e))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::Io(format!("create {}", tmp.display()), e))?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::Io(format!("rename to {}", path.display()), e))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_with_mode_0600() {
        let d = tempfile::tempdir().unwrap();
        let a = load_or_create_token(d.path()).unwrap();
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(token_path(d.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_token(d.path()).unwrap(), a);
    }
}
