//! Unit tests of the verse tree.

use super::*;
use crate::prob::PROB_SCALE;
use crate::seed::child_seed;

fn p(s: &str) -> Prob {
    Prob::parse(s).unwrap()
}

fn seed_triple() -> Vec<ChildSpec> {
    vec![
        ChildSpec::new("nash", p("0.45"), Trit::Minus),
        ChildSpec::new("optimal", p("0.35"), Trit::Zero),
        ChildSpec::new("chaos", p("0.20"), Trit::Plus),
    ]
}

fn pair() -> Vec<ChildSpec> {
    vec![
        ChildSpec::new("a", p("0.5"), Trit::Minus),
        ChildSpec::new("b", p("0.5"), Trit::Plus),
    ]
}

#[test]
fn seed_partition() {
    let mut t = VerseTree::new();
    let root = t.create_root("world", 7).unwrap();
    assert_eq!(root, VerseId(1));
    let pid = t.partition(root, &seed_triple(), false).unwrap();
    assert_eq!(pid, PartitionId(1));
    let part = t.partition_info(pid).unwrap();
    assert_eq!(part.children, vec![VerseId(2), VerseId(3), VerseId(4)]);
    assert_eq!(part.gf3_sum, 0);
    assert!(part.is_open());
    let chaos = t.verse(VerseId(4)).unwrap();
    assert_eq!(chaos.name, "chaos");
    assert_eq!(chaos.index, 2);
    assert_eq!(chaos.seed, child_seed(7, 2));
    assert_eq!(chaos.parent_partition, Some(pid));
    assert_eq!(t.open_partition_of(root), Some(pid));
    assert_eq!(t.absolute_prob(VerseId(2)).unwrap(), p("0.45"));
    assert_eq!(t.path(VerseId(3)).unwrap(), vec![root, VerseId(3)]);
    assert_eq!(t.live_leaves(), vec![VerseId(2), VerseId(3), VerseId(4)]);
}

#[test]
fn partition_rules() {
    let mut t = VerseTree::new();
    let root = t.create_root("r", 0).unwrap();
    let one = vec![ChildSpec::new("a", Prob::ONE, Trit::Zero)];
    assert_eq!(
        t.partition(root, &one, false),
        Err(VerseError::TooFewChildren(1))
    );
    let mut dup = pair();
    dup[1].name = "a".into();
    assert_eq!(
        t.partition(root, &dup, false),
        Err(VerseError::DuplicateName("a".into()))
    );
    let mut empty = pair();
    empty[1].name.clear();
    assert_eq!(
        t.partition(root, &empty, false),
        Err(VerseError::EmptyName { index: 1 })
    );
    let mut zero = pair();
    zero[0].prob = Prob::ZERO;
    zero[1].prob = Prob::ONE;
    assert_eq!(
        t.partition(root, &zero, false),
        Err(VerseError::ZeroProb("a".into()))
    );
    let mut short = pair();
    short[1].prob = p("0.4");
    let err = t.partition(root, &short, false).unwrap_err();
    assert_eq!(err, VerseError::ProbSum(u128::from(PROB_SCALE) * 9 / 10));
    assert_eq!(
        err.to_string(),
        "child probabilities sum to 0.9, must be exactly 1"
    );
    let mut lopsided = pair();
    lopsided[1].trit = Trit::Zero;
    assert_eq!(
        t.partition(root, &lopsided, false),
        Err(VerseError::NonConserving(-1))
    );
    assert_eq!(
        t.partition(VerseId(9), &pair(), false),
        Err(VerseError::UnknownVerse(VerseId(9)))
    );
    // Nothing was added by the failures.
    assert_eq!(t.len(), 1);
    assert_eq!(t.partitions().count(), 0);
    // Allowed non-conserving partition records its sum.
    let pid = t.partition(root, &lopsided, true).unwrap();
    assert_eq!(t.partition_info(pid).unwrap().gf3_sum, -1);
    let err = t.partition(root, &pair(), false).unwrap_err();
    assert_eq!(
        err,
        VerseError::AlreadyPartitioned {
            verse: root,
            partition: pid
        }
    );
    assert_eq!(err.to_string(), "verse v1 already has open partition p1");
}

#[test]
fn resolve_evaporates_subtrees() {
    let mut t = VerseTree::new();
    let root = t.create_root("r", 1).unwrap();
    let p1 = t.partition(root, &seed_triple(), false).unwrap(); // v2 v3 v4
    let p2 = t.partition(VerseId(2), &pair(), false).unwrap(); // v5 v6
    let p3 = t.partition(VerseId(5), &pair(), false).unwrap(); // v7 v8
    assert_eq!(
        t.descendants(VerseId(2)).unwrap(),
        vec![VerseId(5), VerseId(6), VerseId(7), VerseId(8)]
    );
    // Resolve inner first: v8 evaporates.
    assert_eq!(t.resolve(p3, VerseId(7)).unwrap(), vec![VerseId(8)]);
    assert_eq!(
        t.resolve(p3, VerseId(7)),
        Err(VerseError::AlreadyResolved {
            partition: p3,
            winner: VerseId(7)
        })
    );
    assert_eq!(
        t.resolve(p2, VerseId(3)),
        Err(VerseError::NotAChild {
            partition: p2,
            verse: VerseId(3)
        })
    );
    // Resolving the top to v3 evaporates v2, v4 and v2's live subtree.
    let gone = t.resolve(p1, VerseId(3)).unwrap();
    assert_eq!(
        gone,
        vec![VerseId(2), VerseId(4), VerseId(5), VerseId(6), VerseId(7)]
    );
    let err = t.live_verse(VerseId(7)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "verse v7 has evaporated (partition p1 resolved to v3)"
    );
    assert_eq!(
        t.live_verse(VerseId(8)).unwrap_err().to_string(),
        "verse v8 has evaporated (partition p3 resolved to v7)"
    );
    // p2's parent has evaporated: it cannot be resolved any more.
    assert!(matches!(
        t.resolve(p2, VerseId(5)),
        Err(VerseError::Evaporated {
            verse: VerseId(2),
            ..
        })
    ));
    assert_eq!(t.live_leaves(), vec![VerseId(3)]);
    // The root may be partitioned again.
    let p4 = t.partition(root, &pair(), false).unwrap();
    assert_eq!(t.open_partition_of(root), Some(p4));
    assert_eq!(t.verse(root).unwrap().partitions, vec![p1, p4]);
}

#[test]
fn outcome_classes() {
    let mut t = VerseTree::new();
    let root = t.create_root("r", 1).unwrap();
    let p1 = t.partition(root, &pair(), false).unwrap(); // v2 v3
    t.resolve(p1, VerseId(2)).unwrap();
    // v1 and v2 are one class now; partitioning the root again makes v2
    // part of every new leaf's outcome.
    let p2 = t.partition(root, &pair(), false).unwrap(); // v4 v5
    assert_eq!(t.live_leaves(), vec![VerseId(4), VerseId(5)]);
    assert_eq!(
        t.outcome_verses(VerseId(4)).unwrap(),
        vec![root, VerseId(2), VerseId(4)]
    );
    // v2 shares the root's outcomes, so it cannot be split while p2 is open.
    let err = t.partition(VerseId(2), &pair(), false).unwrap_err();
    assert_eq!(
        err,
        VerseError::ClassPartitioned {
            verse: VerseId(2),
            holder: root,
            partition: p2
        }
    );
    t.resolve(p2, VerseId(5)).unwrap();
    // Now v2 can be split, but then the root cannot.
    let p3 = t.partition(VerseId(2), &pair(), false).unwrap();
    assert!(matches!(
        t.partition(root, &pair(), false),
        Err(VerseError::ClassPartitioned { .. })
    ));
    assert_eq!(t.live_leaves(), vec![VerseId(6), VerseId(7)]);
    assert_eq!(
        t.outcome_verses(VerseId(7)).unwrap(),
        vec![root, VerseId(2), VerseId(5), VerseId(7)]
    );
    let totals = t.outcome_totals_with(&[1, 10, 100, 1000, 10_000, 100_000, 1_000_000]);
    assert_eq!(totals.len(), 2);
    assert_eq!(totals[&VerseId(6)], 1 + 10 + 10_000 + 100_000);
    assert_eq!(totals[&VerseId(7)], 1 + 10 + 10_000 + 1_000_000);
    let _ = p3;
}

#[test]
fn several_roots_and_errors() {
    let mut t = VerseTree::new();
    assert_eq!(
        t.create_root("", 0),
        Err(VerseError::EmptyName { index: 0 })
    );
    let a = t.create_root("a", 0).unwrap();
    let b = t.create_root("b", 0).unwrap();
    assert_eq!(t.roots().map(|v| v.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(t.live_leaves(), vec![a, b]);
    assert_eq!(
        t.partition_info(PartitionId(1)),
        Err(VerseError::UnknownPartition(PartitionId(1)))
    );
    assert_eq!(
        t.verse(VerseId(0)),
        Err(VerseError::UnknownVerse(VerseId(0)))
    );
    assert_eq!(
        t.path(VerseId(3)),
        Err(VerseError::UnknownVerse(VerseId(3)))
    );
    assert_eq!(t.absolute_prob(b).unwrap(), Prob::ONE);
}

#[test]
fn absolute_prob_multiplies() {
    let mut t = VerseTree::new();
    let root = t.create_root("r", 1).unwrap();
    t.partition(root, &seed_triple(), false).unwrap();
    t.partition(VerseId(2), &seed_triple(), false).unwrap(); // v5 v6 v7
    assert_eq!(t.absolute_prob(VerseId(6)).unwrap().raw(), 157_500_000);
    assert_eq!(t.root_of(VerseId(6)).unwrap(), root);
}

#[test]
fn from_parts_round_trip_and_checks() {
    let mut t = VerseTree::new();
    let root = t.create_root("r", 5).unwrap();
    let p1 = t.partition(root, &seed_triple(), false).unwrap();
    t.partition(VerseId(3), &pair(), false).unwrap();
    t.resolve(p1, VerseId(2)).unwrap();
    t.partition(root, &pair(), true).unwrap();
    let (mut verses, mut parts) = t.clone().into_parts();
    verses.reverse();
    parts.reverse();
    let back = VerseTree::from_parts(verses.clone(), parts.clone()).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.next_verse_id(), t.next_verse_id());

    let json = serde_json::to_string(&t).unwrap();
    let parsed: VerseTree = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, t);

    let mut gap = verses.clone();
    gap.retain(|v| v.id != VerseId(4));
    assert!(matches!(
        VerseTree::from_parts(gap, parts.clone()),
        Err(VerseError::Corrupt(_))
    ));
    let mut bad_seed = verses.clone();
    bad_seed
        .iter_mut()
        .find(|v| v.id == VerseId(3))
        .unwrap()
        .seed ^= 1;
    assert!(VerseTree::from_parts(bad_seed, parts.clone()).is_err());
    let mut alive = verses.clone();
    alive
        .iter_mut()
        .find(|v| v.id == VerseId(6))
        .unwrap()
        .status = VerseStatus::Live;
    assert!(VerseTree::from_parts(alive, parts.clone()).is_err());
    let mut bad_sum = parts.clone();
    bad_sum.iter_mut().find(|p| p.id == p1).unwrap().gf3_sum = 3;
    assert!(VerseTree::from_parts(verses.clone(), bad_sum).is_err());
    let mut bad_winner = parts.clone();
    bad_winner.iter_mut().find(|p| p.id == p1).unwrap().status =
        PartitionStatus::Resolved { winner: VerseId(9) };
    assert!(VerseTree::from_parts(verses, bad_winner).is_err());
}
