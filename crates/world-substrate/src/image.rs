//! Images: immutable, read-only btrfs subvolumes every world snapshots its
//! root from. The built-in `host` image (host /usr bound read-only at start,
//! a synthesized /etc) and imported root filesystems (directory or tar),
//! with file ownership shifted into the worlds' uid range.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::btrfs;
use crate::storage::Layout;
use crate::tree::Entry;

/// Name of the built-in image.
pub const HOST_IMAGE: &str = "host";

/// Host directories the `host` image binds read-only (when they are real
/// directories on the host; symlinks like /bin -> usr/bin are copied).
const HOST_TOP: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Errors of image operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image of that name.
    #[error("unknown image '{0}' (see `world image list`)")]
    Unknown(String),
    /// Invalid image name.
    #[error("invalid image name '{0}': use 1-64 of [a-z0-9._-]")]
    BadName(String),
    /// Name taken.
    #[error("image '{0}' already exists (rm it first)")]
    Exists(String),
    /// Worlds still use it.
    #[error("image '{0}' is in use by {1} world(s); destroy them first")]
    InUse(String, usize),
    /// The built-in image cannot be removed or replaced.
    #[error("image 'host' is built in")]
    BuiltIn,
    /// Source is neither a directory nor a tar file.
    #[error("import source {0}: not a directory or tar file")]
    BadSource(PathBuf),
    /// Filesystem error.
    #[error("image {0}: {1}")]
    Io(String, #[source] io::Error),
}

/// Kind of image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// Host /usr bound read-only plus a synthesized /etc.
    Host,
    /// A complete imported root filesystem.
    Rootfs,
}

/// Record of an image.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageInfo {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ImageKind,
    /// Host directories bound read-only into worlds (host image only),
    /// relative to `/`.
    pub binds: Vec<String>,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
}

/// Validates an image name.
pub fn check_name(name: &str) -> Result<(), ImageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ImageError::BadName(name.into()))
    }
}

fn ctx(name: &str) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |e| ImageError::Io(name.to_string(), e)
}

/// Loads an image record; creates the `host` image on first use.
pub fn get(l: &Layout, name: &str, uid_base: u32) -> Result<ImageInfo, ImageError> {
    check_name(name)?;
    if let Ok(s) = fs::read(l.image_meta(name)) {
        if let Ok(info) = serde_json::from_slice(&s) {
            return Ok(info);
        }
    }
    if name == HOST_IMAGE {
        let _lock = crate::storage::Lock::take(&l.state.join("lock")).map_err(ctx(name))?;
        if let Ok(s) = fs::read(l.image_meta(name)) {
            if let Ok(info) = serde_json::from_slice(&s) {
                return Ok(info);
            }
        }
        return build_host(l, uid_base);
    }
    Err(ImageError::Unknown(name.into()))
}

/// Lists all image records (the `host` image once it was used).
pub fn list(l: &Layout) -> Result<Vec<ImageInfo>, ImageError> {
    let mut out = Vec::new();
    let dir = l.state.join("meta/images");
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        if let Ok(s) = fs::read(e.path()) {
            if let Ok(i) = serde_json::from_slice::<ImageInfo>(&s) {
                out.push(i);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish(l: &Layout, info: &ImageInfo, tmp: &Path) -> Result<(), ImageError> {
    let root = l.image_root(&info.name);
    fs::rename(tmp, &root).map_err(ctx(&info.name))?;
    btrfs::set_readonly(&root, true).map_err(ctx(&info.name))?;
    let meta = serde_json::to_vec_pretty(info).expect("image info serializes");
    fs::write(l.image_meta(&info.name), meta).map_err(ctx(&info.name))
}

fn fresh_subvol(l: &Layout, name: &str) -> Result<PathBuf, ImageError> {
    let tmp = l.image_root(&format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        let _ = btrfs::subvol_delete(&tmp);
    }
    btrfs::subvol_create(&tmp).map_err(ctx(name))?;
    Ok(tmp)
}

fn build_host(l: &Layout, base: u32) -> Result<ImageInfo, ImageError> {
    let name = HOST_IMAGE;
    let tmp = fresh_subvol(l, name)?;
    let r = populate_host(&tmp, base);
    match r {
        Ok(binds) => {
            let info = ImageInfo {
                name: name.into(),
                kind: ImageKind::Host,
                binds,
                created_at: now(),
            };
            finish(l, &info, &tmp)?;
            Ok(info)
        }
        Err(e) => {
            let _ = btrfs::subvol_delete(&tmp);
            Err(ctx(name)(e))
        }
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";
const RESOLV: &str = "# worlds have loopback networking only\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";

fn populate_host(root: &Path, base: u32) -> io::Result<Vec<String>> {
    let mut binds = vec!["usr".to_string()];
    fs::create_dir(root.join("usr"))?;
    for top in HOST_TOP {
        let host = Path::new("/").join(top);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => symlink(fs::read_link(&host)?, root.join(top))?,
            Ok(m) if m.is_dir() => {
                fs::create_dir(root.join(top))?;
                binds.push(top.to_string());
            }
            _ => {}
        }
    }
    for (d, mode) in [
        ("etc", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("tmp", 0o1777),
        ("work", 0o755),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("run", 0o755),
        ("proc", 0o555),
        ("dev", 0o755),
        ("sys", 0o555),
        ("mnt", 0o755),
        ("opt", 0o755),
    ] {
        fs::create_dir(root.join(d))?;
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(mode))?;
    }
    let etc = root.join("etc");
    for (f, body) in [
        ("passwd", PASSWD),
        ("group", GROUP),
        ("hosts", HOSTS),
        ("resolv.conf", RESOLV),
        ("nsswitch.conf", NSSWITCH),
    ] {
        fs::write(etc.join(f), body)?;
    }
    // Not secret, and many /usr programs need them.
    if let Ok(b) = fs::read("/etc/ld.so.cache") {
        fs::write(etc.join("ld.so.cache"), b)?;
    }
    if let Ok(t) = fs::read_link("/etc/os-release") {
        symlink(t, etc.join("os-release"))?;
    }
    if let Ok(rd) = fs::read_dir("/etc/alternatives") {
        fs::create_dir(etc.join("alternatives"))?;
        for e in rd.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                symlink(t, etc.join("alternatives").join(e.file_name()))?;
            }
        }
    }
    shift_tree(root, base)?;
    Ok(binds)
}

fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
}

/// Shifts ownership of every file under `root` by `base` (uid 0 -> base).
fn shift_tree(root: &Path, base: u32) -> io::Result<()> {
    let m = fs::symlink_metadata(root)?;
    let (u, g) = (m.uid().min(65_535), m.gid().min(65_535));
    lchown(root, base + u, base + g)?;
    if m.is_dir() {
        for e in fs::read_dir(root)? {
            shift_tree(&e?.path(), base)?;
        }
    }
    Ok(())
}

/// Copies the directory `src` into `dst`, shifting owners by `base`.
///
/// The source may belong to someone else, who may change it while it is
/// read: [`crate::tree::walk`] never follows a symlink swapped in, so an
/// entry swapped for a symlink is copied as that symlink; device nodes,
/// sockets and FIFOs are skipped (worlds get their own /dev).
fn copy_tree(src: &Path, dst: &Path, base: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // The user names the directory, through symlinks if they like.
    let src = fs::canonicalize(src)?;
    let own = |d: &Path, m: &fs::Metadata| {
        lchown(d, base + m.uid().min(65_535), base + m.gid().min(65_535))
    };
    crate::tree::walk(&src, &mut |e| match e {
        Entry::Dir { rel, .. } if rel.as_os_str().is_empty() => Ok(()),
        Entry::Dir { rel, .. } => fs::create_dir(dst.join(rel)),
        Entry::DirEnd { rel, .. } if rel.as_os_str().is_empty() => Ok(()),
        Entry::DirEnd { rel, meta } => {
            let d = dst.join(rel);
            fs::set_permissions(&d, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            own(&d, meta)
        }
        Entry::File { rel, file, meta } if !rel.as_os_str().is_empty() => {
            let d = dst.join(rel);
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&d)?;
            io::copy(file, &mut to)?;
            fs::set_permissions(&d, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            own(&d, meta)
        }
        Entry::Symlink { rel, target, meta } if !rel.as_os_str().is_empty() => {
            let d = dst.join(rel);
            symlink(target, &d)?;
            own(&d, meta)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source was replaced by something that is not a directory",
        )),
    })
}

fn unpack_tar(src: &Path, dst: &Path, base: u32) -> io::Result<()> {
    let f = fs::File::open(src)?;
    let mut ar = tar::Archive::new(f);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let h = entry.header();
        let kind = h.entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        let (uid, gid) = (h.uid()?.min(65_535) as u32, h.gid()?.min(65_535) as u32);
        let path = entry.path()?.into_owned();
        if !entry.unpack_in(dst)? {
            continue;
        }
        let full = dst.join(path.strip_prefix("/").unwrap_or(&path));
        let _ = lchown(&full, base + uid, base + gid);
    }
    Ok(())
}

/// Imports a root filesystem from a directory or a tar file as image `name`.
pub fn import(l: &Layout, name: &str, src: &Path, base: u32) -> Result<ImageInfo, ImageError> {
    check_name(name)?;
    if name == HOST_IMAGE {
        return Err(ImageError::BuiltIn);
    }
    let _lock = crate::storage::Lock::take(&l.state.join("lock")).map_err(ctx(name))?;
    if l.image_meta(name).exists() || l.image_root(name).exists() {
        return Err(ImageError::Exists(name.into()));
    }
    let m = fs::metadata(src).map_err(|_| ImageError::BadSource(src.into()))?;
    let tmp = fresh_subvol(l, name)?;
    let r = if m.is_dir() {
        copy_tree(src, &tmp, base).and_then(|_| lchown(&tmp, base, base))
    } else {
        unpack_tar(src, &tmp, base).and_then(|_| lchown(&tmp, base, base))
    };
    let r = r.and_then(|_| {
        for d in ["proc", "dev", "tmp", "root", "work"] {
            let p = tmp.join(d);
            if fs::symlink_metadata(&p).is_err() {
                fs::create_dir(&p)?;
                lchown(&p, base, base)?;
            }
        }
        fs::set_permissions(tmp.join("tmp"), fs::Permissions::from_mode(0o1777))
    });
    if let Err(e) = r {
        let _ = btrfs::subvol_delete(&tmp);
        return Err(if m.is_dir() || e.kind() != io::ErrorKind::InvalidData {
            ctx(name)(e)
        } else {
            ImageError::BadSource(src.into())
        });
    }
    let info = ImageInfo {
        name: name.into(),
        kind: ImageKind::Rootfs,
        binds: vec![],
        created_at: now(),
    };
    if let Err(e) = finish(l, &info, &tmp) {
        let _ = btrfs::subvol_delete(&tmp);
        return Err(e);
    }
    Ok(info)
}

/// Removes an image; `users` is how many worlds use it (refuses when > 0).
pub fn remove(l: &Layout, name: &str, users: usize) -> Result<(), ImageError> {
    check_name(name)?;
    if !l.image_meta(name).exists() {
        return Err(ImageError::Unknown(name.into()));
    }
    if users > 0 {
        return Err(ImageError::InUse(name.into(), users));
    }
    btrfs::subvol_delete(&l.image_root(name)).map_err(ctx(name))?;
    fs::remove_file(l.image_meta(name)).map_err(ctx(name))
}
