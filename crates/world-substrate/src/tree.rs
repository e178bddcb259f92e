//! Walks a host directory tree that someone else may change while we read
//! it, without ever following a symlink they swap in: the one walk behind
//! every host-side read of a user-named tree done as root (directory image
//! import, `world cp` into a world).
//!
//! Each directory is opened once (`O_NOFOLLOW` below the top) and its
//! entries are looked up through that open directory
//! (`/proc/self/fd/N/name`, so a renamed or replaced parent changes
//! nothing); each file is opened `O_NOFOLLOW` and checked through its fd
//! before a byte is read. An entry swapped for a symlink is reported as
//! that symlink (or fails the walk); it is never followed. Device nodes,
//! sockets and FIFOs are skipped (opening a FIFO would block).

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One entry met by [`walk`]; `rel` is its path below the walk's top.
#[derive(Debug)]
pub enum Entry<'a> {
    /// A directory, before its entries (`dir` is open on it).
    Dir {
        /// Path below the top.
        rel: &'a Path,
        /// Its metadata, read through the open directory.
        meta: &'a fs::Metadata,
    },
    /// The same directory, after its entries.
    DirEnd {
        /// Path below the top.
        rel: &'a Path,
        /// Its metadata (as at [`Entry::Dir`]).
        meta: &'a fs::Metadata,
    },
    /// A regular file, open for reading.
    File {
        /// Path below the top.
        rel: &'a Path,
        /// The open file (checked to be a regular file through its fd).
        file: &'a mut fs::File,
        /// Its metadata, read through the fd.
        meta: &'a fs::Metadata,
    },
    /// A symlink (never followed).
    Symlink {
        /// Path below the top.
        rel: &'a Path,
        /// Where it points.
        target: &'a Path,
        /// Its own metadata.
        meta: &'a fs::Metadata,
    },
}

/// Opens `p` without following a symlink in its last component, adding
/// `flags` (`O_DIRECTORY` for a directory).
pub fn open_nofollow(p: &Path, flags: i32) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | flags)
        .open(p)
}

/// Walks the tree at `top` (named by the user, so its own path may hold
/// symlinks; a symlink as the last component is reported, not followed),
/// calling `visit` for each entry in depth-first order. `top` itself is
/// reported with an empty `rel`.
pub fn walk(top: &Path, visit: &mut dyn FnMut(Entry<'_>) -> io::Result<()>) -> io::Result<()> {
    let m = fs::symlink_metadata(top)?;
    let rel = PathBuf::new();
    if m.file_type().is_symlink() {
        let target = fs::read_link(top)?;
        return visit(Entry::Symlink {
            rel: &rel,
            target: &target,
            meta: &m,
        });
    }
    if m.is_dir() {
        let d = open_nofollow(top, libc::O_DIRECTORY)?;
        return walk_dir(&d, &rel, visit);
    }
    let mut f = open_nofollow(top, libc::O_NONBLOCK)?;
    let m = f.metadata()?;
    if m.is_file() {
        visit(Entry::File {
            rel: &rel,
            file: &mut f,
            meta: &m,
        })?;
    }
    Ok(())
}

fn walk_dir(
    dir: &fs::File,
    rel: &Path,
    visit: &mut dyn FnMut(Entry<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let meta = dir.metadata()?;
    visit(Entry::Dir { rel, meta: &meta })?;
    let here = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let mut names: Vec<_> = fs::read_dir(&here)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        let (s, r) = (here.join(&n), rel.join(&n));
        let m = match fs::symlink_metadata(&s) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
            Err(e) => return Err(e),
        };
        let ft = m.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&s)?;
            visit(Entry::Symlink {
                rel: &r,
                target: &target,
                meta: &m,
            })?;
        } else if ft.is_dir() {
            let sub = open_nofollow(&s, libc::O_DIRECTORY)?;
            walk_dir(&sub, &r, visit)?;
        } else if ft.is_file() {
            // O_NONBLOCK: a FIFO swapped in after the check does not hang
            // the open; the fd check below skips it.
            let mut f = open_nofollow(&s, libc::O_NONBLOCK)?;
            let m = f.metadata()?;
            if !m.is_file() {
                continue; // replaced meanwhile by something that is not a file
            }
            visit(Entry::File {
                rel: &r,
                file: &mut f,
                meta: &m,
            })?;
        }
        // Device nodes, sockets, FIFOs: skipped.
    }
    visit(Entry::DirEnd { rel, meta: &meta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_kind_is_reported_once_in_order_and_links_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("t");
        fs::create_dir_all(top.join("a/b")).unwrap();
        fs::write(top.join("a/b/f"), "hello").unwrap();
        std::os::unix::fs::symlink("/etc", top.join("a/l")).unwrap();
        let mut seen = Vec::new();
        walk(&top, &mut |e| {
            seen.push(match e {
                Entry::Dir { rel, .. } => format!("d {}", rel.display()),
                Entry::DirEnd { rel, .. } => format!("e {}", rel.display()),
                Entry::File { rel, file, .. } => {
                    let mut s = String::new();
                    file.read_to_string(&mut s)?;
                    format!("f {} {s}", rel.display())
                }
                Entry::Symlink { rel, target, .. } => {
                    format!("l {} {}", rel.display(), target.display())
                }
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "d ",
                "d a",
                "d a/b",
                "f a/b/f hello",
                "e a/b",
                "l a/l /etc",
                "e a",
                "e "
            ]
        );
    }

    #[test]
    fn a_fifo_is_skipped_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut n = 0;
        walk(d.path(), &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2, "only the directory's start and end");
    }
}
