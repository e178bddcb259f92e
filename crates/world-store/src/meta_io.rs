//! `world_meta`: what users and front doors attach to worlds and
//! snapshots (user metadata, TTL, exposed services, E2B's environment and
//! contexts, Morph's digest), one JSON document per entity. The engine
//! owns the documents' shape (`world_engine::meta`); this module only
//! stores and loads them, every change in one transaction.

use crate::{Result, Store};

/// What a document belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKind {
    /// A world.
    World,
    /// A snapshot.
    Snapshot,
}

impl MetaKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetaKind::World => "world",
            MetaKind::Snapshot => "snapshot",
        }
    }

    fn parse(s: &str) -> Option<MetaKind> {
        match s {
            "world" => Some(MetaKind::World),
            "snapshot" => Some(MetaKind::Snapshot),
            _ => None,
        }
    }
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaDoc {
    /// The world or snapshot id.
    pub entity_id: String,
    /// Which of the two.
    pub kind: MetaKind,
    /// The JSON document.
    pub doc: String,
}

impl Store {
    /// Every stored document (rows of an unknown kind are skipped).
    pub fn meta_all(&self) -> Result<Vec<MetaDoc>> {
        let mut stmt = self
            .conn
            .prepare("SELECT entity_id, kind, doc FROM world_meta ORDER BY entity_id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (entity_id, kind, doc) = row?;
            if let Some(kind) = MetaKind::parse(&kind) {
                out.push(MetaDoc {
                    entity_id,
                    kind,
                    doc,
                });
            }
        }
        Ok(out)
    }

    /// Writes `put` (replacing documents of the same ids) and removes
    /// `delete`, in one transaction: all of it or nothing.
    pub fn meta_write(&self, put: &[MetaDoc], delete: &[String]) -> Result<()> {
        if put.is_empty() && delete.is_empty() {
            return Ok(());
        }
        // No spooled batch writes `world_meta`: no need to wait for them.
        self.write_unspooled(|conn| {
            // Two statements whatever the count (DuckDB spends about half
            // a millisecond on each): a branch of 100 writes 100 documents.
            crate::open::transaction(conn, |conn| {
                let ids: Vec<&String> = delete
                    .iter()
                    .chain(put.iter().map(|d| &d.entity_id))
                    .collect();
                for chunk in ids.chunks(500) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    conn.execute(
                        &format!("DELETE FROM world_meta WHERE entity_id IN ({marks})"),
                        duckdb::params_from_iter(chunk.iter()),
                    )?;
                }
                for chunk in put.chunks(300) {
                    let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
                    let values = chunk
                        .iter()
                        .flat_map(|d| [d.entity_id.as_str(), d.kind.as_str(), d.doc.as_str()]);
                    conn.execute(
                        &format!("INSERT INTO world_meta (entity_id, kind, doc) VALUES {rows}"),
                        duckdb::params_from_iter(values),
                    )?;
                }
                Ok(())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn doc(id: &str, kind: MetaKind, doc: &str) -> MetaDoc {
        MetaDoc {
            entity_id: id.into(),
            kind,
            doc: doc.into(),
        }
    }

    #[test]
    fn put_replaces_and_delete_removes() {
        let s = Store::open_in_memory().unwrap();
        s.meta_write(
            &[
                doc("w1", MetaKind::World, "{}"),
                doc("s1", MetaKind::Snapshot, "{\"a\":1}"),
            ],
            &[],
        )
        .unwrap();
        s.meta_write(&[doc("w1", MetaKind::World, "{\"b\":2}")], &["s1".into()])
            .unwrap();
        assert_eq!(
            s.meta_all().unwrap(),
            vec![doc("w1", MetaKind::World, "{\"b\":2}")]
        );
    }

    proptest! {
        /// After any sequence of writes the table holds exactly the last
        /// document of every id not deleted since.
        #[test]
        fn the_table_is_the_last_write(ops in proptest::collection::vec((0u8..4, any::<bool>(), 0u32..100), 0..30)) {
            let s = Store::open_in_memory().unwrap();
            let mut model = std::collections::BTreeMap::new();
            for (id, del, v) in ops {
                let id = format!("w{id}");
                if del {
                    s.meta_write(&[], std::slice::from_ref(&id)).unwrap();
                    model.remove(&id);
                } else {
                    let d = format!("{{\"v\":{v}}}");
                    s.meta_write(&[doc(&id, MetaKind::World, &d)], &[]).unwrap();
                    model.insert(id, d);
                }
            }
            let got: Vec<(String, String)> = s.meta_all().unwrap().into_iter().map(|d| (d.entity_id, d.doc)).collect();
            let want: Vec<(String, String)> = model.into_iter().collect();
            prop_assert_eq!(got, want);
        }
    }
}
