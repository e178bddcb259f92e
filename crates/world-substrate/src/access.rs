//! Who on the host may enter WorldRuntime's directories.
//!
//! World files live under the state directory: the btrfs store image
//! (`storage.img`), its mount point (`fs/`) with every world's root in
//! `fs/worlds/<id>`, and the records in `meta/`. No host user but root
//! may list or read any of it: a world's files are its own, and a world
//! may plant a setuid binary owned by its root (a host uid) that a local
//! user must never reach.
//!
//! One other uid must pass through: a world's init runs as the world's
//! root, host uid `uid_base` (every world maps its root there), and binds
//! its root subvolume from `fs/worlds/<id>` before it pivots into it. So
//! the directories on that path get mode 0710 (owner `rwx`, nothing for
//! others) plus a POSIX access ACL granting `uid_base` search (`--x`)
//! only: it can pass through by exact name, never list. Every other
//! directory of ours is 0700 and the store image 0600. The store itself
//! is mounted `nosuid,nodev` (see `storage`). On a file system without
//! ACLs (rare for /var/lib) the passage falls back to 0711, with a
//! warning: searchable by all, listable by none.

use std::io;
use std::path::Path;

/// `ACL_USER_OBJ`, `ACL_USER`, `ACL_GROUP_OBJ`, `ACL_MASK`, `ACL_OTHER`
/// (linux/posix_acl.h), and the version of the xattr format
/// (linux/posix_acl_xattr.h).
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const XATTR_VERSION: u32 = 2;
const UNDEFINED_ID: u32 = u32::MAX;

/// The `system.posix_acl_access` value: owner `rwx`, `uid` search only,
/// owning group and others nothing.
fn search_only_acl(uid: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 5] = [
        (USER_OBJ, 7, UNDEFINED_ID),
        (USER, 1, uid),
        (GROUP_OBJ, 0, UNDEFINED_ID),
        (MASK, 1, UNDEFINED_ID),
        (OTHER, 0, UNDEFINED_ID),
    ];
    let mut v = XATTR_VERSION.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// Makes `dir` root's alone (0700).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Makes `dir` root's, with search (and only search) for host `uid`: mode
/// 0710 and an access ACL naming `uid`.
pub fn passage_for(dir: &Path, uid: u32) -> io::Result<()> {
    private_dir(dir)?;
    let acl = search_only_acl(uid);
    let p = crate::sys::cpath(dir.as_os_str())?;
    // SAFETY: a NUL-terminated path, a NUL-terminated attribute name and a
    // buffer of `acl.len()` bytes that outlives the call.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            acl.as_ptr().cast(),
            acl.len(),
            0,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
            // A file system without POSIX ACLs: search for everyone, listing
            // for nobody (world ids are 48 random bits), and say so.
            use std::os::unix::fs::PermissionsExt;
            eprintln!(
                "warning: {} does not support ACLs; it is left searchable (0711) by every host user",
                dir.display()
            );
            return std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
        }
        return Err(e);
    }
    Ok(())
}

/// Whether `dir` already is what [`passage_for`] makes (mode 0710 with
/// nothing for others), so callers can skip the work on every call.
pub fn is_passage(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o710)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_is_in_the_kernels_xattr_format() {
        let v = search_only_acl(1_000_000_000);
        assert_eq!(v.len(), 4 + 5 * 8);
        assert_eq!(&v[..4], &[2, 0, 0, 0]);
        // The named user entry: tag 2, perm 1 (search), the uid.
        assert_eq!(&v[12..20], &[2, 0, 1, 0, 0x00, 0xca, 0x9a, 0x3b]);
        // Entries in the order the kernel requires.
        let tags: Vec<u16> = v[4..]
            .chunks(8)
            .map(|e| u16::from_le_bytes([e[0], e[1]]))
            .collect();
        assert_eq!(tags, [USER_OBJ, USER, GROUP_OBJ, MASK, OTHER]);
    }
}
