//! Property tests of the partition rules (GF(3) conservation, probability
//! sums, seeds), SplitMix64, exact probability text and JSON round trips.

mod common;

use common::{choice, make_op, warm_up};
use proptest::prelude::*;
use world_core::{
    child_seed, conserves, gf3_residue, gf3_sum, splitmix64_output, ChildSpec, Ledger, Op, Prob,
    SplitMix64, Trit, VerseError, VerseId, VerseTree, PROB_SCALE,
};

fn trit() -> impl Strategy<Value = Trit> {
    prop::sample::select(Trit::ALL.to_vec())
}

/// Children with arbitrary (possibly zero or too large) probabilities.
fn raw_children() -> impl Strategy<Value = Vec<(u64, Trit, u8)>> {
    prop::collection::vec((0..=PROB_SCALE, trit(), 0u8..6), 0..6)
}

/// Children whose probabilities sum to exactly 1.
fn exact_children() -> impl Strategy<Value = Vec<(u64, Trit)>> {
    (
        2usize..7,
        prop::collection::vec(any::<u64>(), 7),
        prop::collection::vec(trit(), 7),
    )
        .prop_map(|(n, cuts, trits)| {
            let mut left = PROB_SCALE;
            (0..n)
                .map(|i| {
                    let raw = if i + 1 == n {
                        left
                    } else {
                        1 + cuts[i] % (left - (n - i - 1) as u64)
                    };
                    left -= raw;
                    (raw, trits[i])
                })
                .collect()
        })
}

proptest! {
    #[test]
    fn partition_accepts_exactly_the_valid(kids in raw_children(), allow in any::<bool>(), seed in any::<u64>()) {
        let mut t = VerseTree::new();
        let root = t.create_root("r", seed).unwrap();
        let specs: Vec<ChildSpec> = kids
            .iter()
            .map(|&(raw, trit, name)| ChildSpec::new(format!("n{name}"), Prob::new(raw).unwrap(), trit))
            .collect();
        let names: std::collections::BTreeSet<&str> = specs.iter().map(|c| c.name.as_str()).collect();
        let sum: u64 = kids.iter().map(|k| k.0).sum();
        let trits = kids.iter().map(|k| k.1);
        let valid = kids.len() >= 2
            && names.len() == kids.len()
            && kids.iter().all(|k| k.0 > 0)
            && sum == PROB_SCALE
            && (allow || conserves(trits.clone()));
        let before = t.clone();
        match t.partition(root, &specs, allow) {
            Ok(pid) => {
                prop_assert!(valid);
                prop_assert_eq!(t.partition_info(pid).unwrap().gf3_sum, gf3_sum(trits));
            }
            Err(e) => {
                prop_assert!(!valid, "rejected a valid partition: {}", e);
                prop_assert_eq!(t, before);
            }
        }
    }

    #[test]
    fn valid_partitions_record_and_derive(kids in exact_children(), seed in any::<u64>(), depth in 1usize..4) {
        let mut t = VerseTree::new();
        let mut parent = t.create_root("r", seed).unwrap();
        let specs: Vec<ChildSpec> =
            kids.iter().enumerate().map(|(i, &(raw, trit))| ChildSpec::new(format!("c{i}"), Prob::new(raw).unwrap(), trit)).collect();
        let conserving = conserves(kids.iter().map(|k| k.1));
        for _ in 0..depth {
            let r = t.partition(parent, &specs, false);
            if !conserving {
                prop_assert!(matches!(r, Err(VerseError::NonConserving(s)) if gf3_residue(s) != 0));
                return Ok(());
            }
            let pid = r.unwrap();
            let part = t.partition_info(pid).unwrap().clone();
            prop_assert_eq!(gf3_residue(part.gf3_sum), 0);
            let parent_verse = t.verse(parent).unwrap().clone();
            let parent_abs = t.absolute_prob(parent).unwrap().raw();
            let mut abs_sum = 0u64;
            for (i, c) in part.children.iter().enumerate() {
                let v = t.verse(*c).unwrap();
                prop_assert_eq!(v.seed, child_seed(parent_verse.seed, i as u32));
                prop_assert_eq!(v.index as usize, i);
                prop_assert_eq!(v.prob.raw(), kids[i].0);
                let abs = t.absolute_prob(*c).unwrap().raw();
                prop_assert!(abs <= parent_abs);
                abs_sum += abs;
            }
            // Floors lose at most one billionth per child.
            prop_assert!(abs_sum <= parent_abs && abs_sum + part.children.len() as u64 >= parent_abs);
            parent = part.children[0];
        }
    }

    #[test]
    fn splitmix_stream_matches_outputs(seed in any::<u64>(), n in 0usize..64) {
        let v: Vec<u64> = SplitMix64::new(seed).take(n + 1).collect();
        prop_assert_eq!(v[n], splitmix64_output(seed, n as u64));
        prop_assert_eq!(child_seed(seed, n as u32), v[n]);
    }

    #[test]
    fn prob_text_round_trips(raw in 0..=PROB_SCALE) {
        let p = Prob::new(raw).unwrap();
        prop_assert_eq!(Prob::parse(&p.to_string()).unwrap(), p);
        let padded = format!("0.{raw:09}");
        if raw < PROB_SCALE {
            prop_assert_eq!(Prob::parse(&padded).unwrap(), p);
        }
        prop_assert!((p.as_f64() - raw as f64 / 1e9).abs() < 1e-12);
    }

    #[test]
    fn prob_mul_floors(a in 0..=PROB_SCALE, b in 0..=PROB_SCALE) {
        let p = Prob::new(a).unwrap().mul(Prob::new(b).unwrap()).raw();
        let exact = u128::from(a) * u128::from(b);
        prop_assert!(u128::from(p) * u128::from(PROB_SCALE) <= exact);
        prop_assert!(exact < (u128::from(p) + 1) * u128::from(PROB_SCALE));
    }

    #[test]
    fn gf3_residue_is_mod_3(trits in prop::collection::vec(trit(), 0..40)) {
        let s = gf3_sum(trits.clone());
        prop_assert_eq!(i64::from(gf3_residue(s)), s.rem_euclid(3));
        prop_assert_eq!(conserves(trits), s % 3 == 0);
    }

    #[test]
    fn ops_and_ledgers_round_trip_json(warm in prop::collection::vec(choice(), 0..150), c in choice()) {
        let mut l = Ledger::new();
        warm_up(&mut l, &warm);
        let op = make_op(&l, c);
        let json = serde_json::to_string(&op).unwrap();
        prop_assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op.clone());
        let mut l2: Ledger = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        prop_assert_eq!(&l2, &l);
        let mut l1 = l.clone();
        prop_assert_eq!(l1.apply(&op), l2.apply(&op));
        prop_assert_eq!(&l1, &l2);
        let rebuilt = Ledger::from_parts(l1.tree().clone(), l1.balances().collect()).unwrap();
        prop_assert_eq!(&rebuilt, &l1);
        let (verses, parts) = l1.tree().clone().into_parts();
        prop_assert_eq!(&VerseTree::from_parts(verses, parts).unwrap(), l1.tree());
        if let Ok(applied) = l1.apply(&op) {
            let json = serde_json::to_string(&applied).unwrap();
            prop_assert_eq!(serde_json::from_str::<world_core::Applied>(&json).unwrap(), applied);
        }
        let _ = VerseId(0);
    }
}
