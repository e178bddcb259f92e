//! Which DuckDB this build links, and which DuckDB wrote a database file.
//!
//! A DuckDB library reads the storage formats of its own and older
//! versions only. A file written by a newer DuckDB (for example by a
//! WorldRuntime built against the bundled DuckDB 2.0, before the project
//! moved to DuckDB's prebuilt 1.5 library) fails to open with DuckDB's
//! "Trying to read a database file with version number ..." message;
//! [`crate::Store::open`] turns that into [`crate::Error::StorageTooNew`],
//! naming the DuckDB that wrote the file (read from its header) and what
//! to do.

use std::io::Read;
use std::path::Path;

use crate::Result;

/// The version of the DuckDB library this build runs, such as `v1.5.6`.
pub fn library_version() -> Result<String> {
    let conn = duckdb::Connection::open_in_memory()?;
    Ok(
        conn.query_row("SELECT library_version FROM pragma_version()", [], |r| {
            r.get(0)
        })?,
    )
}

/// Offset of the magic bytes `DUCK` in a database file's first block.
const MAGIC_AT: usize = 8;
/// Offset and length of the writing library's version (`v1.5.6`, NUL
/// padded) in a database file's first block.
const WRITER_AT: usize = 52;
const WRITER_LEN: usize = 32;

/// The DuckDB version recorded in the header of the database file at
/// `path` (`v2.0.1`), if it is a DuckDB file that records one.
pub fn written_by(path: &Path) -> Option<String> {
    let mut head = [0u8; WRITER_AT + WRITER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    writer_of_header(&head)
}

fn writer_of_header(head: &[u8]) -> Option<String> {
    if head.get(MAGIC_AT..MAGIC_AT + 4)? != b"DUCK" {
        return None;
    }
    let field = head.get(WRITER_AT..WRITER_AT + WRITER_LEN)?;
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let v = std::str::from_utf8(&field[..end]).ok()?;
    let printable = !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic());
    printable.then(|| v.to_string())
}

/// Whether DuckDB refused a file because a newer storage format wrote it.
pub(crate) fn is_too_new(e: &duckdb::Error) -> bool {
    let msg = e.to_string();
    msg.contains("Trying to read a database file with version number")
        && msg.contains("newer version of DuckDB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(magic: &[u8; 4], writer: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; WRITER_AT + WRITER_LEN];
        h[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(magic);
        h[WRITER_AT..WRITER_AT + writer.len()].copy_from_slice(writer);
        h
    }

    #[test]
    fn reads_the_writer_of_a_duckdb_header() {
        assert_eq!(
            writer_of_header(&header(b"DUCK", b"v2.0.1")).as_deref(),
            Some("v2.0.1")
        );
        assert_eq!(writer_of_header(&header(b"DUCX", b"v2.0.1")), None);
        assert_eq!(writer_of_header(&header(b"DUCK", b"")), None);
        assert_eq!(writer_of_header(&header(b"DUCK", b"v1\n")), None);
        assert_eq!(writer_of_header(b"DUCK"), None);
    }

    #[test]
    fn the_linked_library_reports_its_version() {
        let v = library_version().unwrap();
        assert!(v.starts_with('v'), "{v}");
    }

    proptest! {
        /// Any bytes at all: never a panic, and a name only from a DuckDB
        /// header, made of printable ASCII.
        #[test]
        fn any_header_is_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Some(v) = writer_of_header(&bytes) {
                prop_assert_eq!(&bytes[MAGIC_AT..MAGIC_AT + 4], b"DUCK");
                prop_assert!(v.chars().all(|c| c.is_ascii_graphic()));
            }
        }
    }
}
