//! Recognising, as the host, the process that world code says it forked.
//!
//! Sessions and templates run world code, so what they report is a claim:
//! a session says "my new template is pid 57" (in the lineage's pid
//! namespace); a branch child's ready message carries its pid as socket
//! credentials, which code holding CAP_SYS_ADMIN in the lineage can
//! forge. Before the host moves that process into a cgroup (or records it
//! as a session), it checks the claim against the kernel: the process
//! must be a child of the process that forked it (and, for a template,
//! carry that pid in the lineage namespace). Anything else (the lineage
//! manager, another world's process) is refused, however it is named.

use std::fs;

/// The parent pid and the pids by namespace (`NSpid`, outermost first) of
/// host process `pid`, read from `/proc/<pid>/status`.
fn ppid_and_nspids(pid: i32) -> Option<(i32, Vec<i32>)> {
    parse_status(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_status(s: &str) -> Option<(i32, Vec<i32>)> {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().filter_map(|x| x.parse().ok()))
    };
    let ppid = field("PPid:")?.next()?;
    let ns: Vec<i32> = field("NSpid:")?.collect();
    Some((ppid, ns))
}

/// Whether host process `pid` is a child of one of `parents` (host pids).
pub(crate) fn is_child_of(pid: i32, parents: &[i32]) -> bool {
    !parents.contains(&pid) && ppid_and_nspids(pid).is_some_and(|(pp, _)| parents.contains(&pp))
}

/// Among host pids `candidates`, the one whose parent is host pid
/// `parent` and whose pid in the lineage's namespace (the second `NSpid`
/// entry) is `ns_pid`.
pub(crate) fn forked_child(candidates: &[i32], parent: i32, ns_pid: i32) -> Option<i32> {
    candidates.iter().copied().find(|&p| {
        p != parent
            && ppid_and_nspids(p).is_some_and(|(pp, ns)| pp == parent && ns.get(1) == Some(&ns_pid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_whatever_their_order() {
        let s = "Name:\tpython3\nNSpid:\t4242\t57\nPid:\t4242\nPPid:\t4100\n";
        assert_eq!(parse_status(s), Some((4100, vec![4242, 57])));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    /// A process that is not the named parent's child is never taken,
    /// even when its numbers are right otherwise.
    #[test]
    fn only_a_child_of_the_parent_matches() {
        let me = std::process::id() as i32;
        let (parent, _) = ppid_and_nspids(me).unwrap();
        // We are our parent's child; in the host namespace we have one
        // NSpid entry only, so no lineage pid matches.
        assert_eq!(forked_child(&[me], parent, me), None);
        assert_eq!(forked_child(&[me], me, me), None);
        assert!(is_child_of(me, &[parent]));
        assert!(!is_child_of(me, &[me]));
        assert!(!is_child_of(parent, &[me]));
    }
}
