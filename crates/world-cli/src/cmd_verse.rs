//! `world verse ...`: the ledger lifecycle against the database.

use anyhow::{Context, Result};
use serde_json::json;
use world_core::ids::{PartitionId, VerseId};
use world_core::ledger::Op;
use world_core::verse::{ChildSpec, PartitionStatus, VerseStatus};
use world_core::wev::GameSense;
use world_engine::actions;
use world_engine::verse::{default_children, owner, token, GameInput, OracleChoice};
use world_engine::{Engine, Error};

use crate::args::{OracleKind, ResolveArgs, Sense, VerseCmd};
use crate::output::{out, outln};
use crate::output::{table, Out};

fn invalid(msg: String) -> anyhow::Error {
    Error::Invalid(msg).into()
}

/// Parses a verse id like `v3`.
pub fn verse_id(s: &str) -> Result<VerseId> {
    s.parse().map_err(|_| {
        invalid(format!(
            "{s:?} is not a verse id (expected v<number>, e.g. v1)"
        ))
    })
}

/// Parses a partition id like `p2`.
pub fn partition_id(s: &str) -> Result<PartitionId> {
    s.parse().map_err(|_| {
        invalid(format!(
            "{s:?} is not a partition id (expected p<number>, e.g. p1)"
        ))
    })
}

/// Parses `NAME:PROB:TRIT`.
pub fn child_spec(s: &str) -> Result<ChildSpec> {
    Ok(child_request(s)?.spec()?)
}

/// Parses `NAME:PROB:TRIT` into the request every door sends (checked by
/// [`actions::ChildRequest::spec`]).
pub fn child_request(s: &str) -> Result<actions::ChildRequest> {
    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
    if parts.len() != 3 {
        return Err(invalid(format!(
            "child {s:?} must be NAME:PROB:TRIT, e.g. nash:0.45:-1"
        )));
    }
    Ok(actions::ChildRequest {
        name: parts[2].to_string(),
        prob: actions::NumOrStr::Str(parts[1].to_string()),
        trit: actions::NumOrStr::Str(parts[0].to_string()),
    })
}

/// The game values of `--nash`, `--optimum` and `--sense`, when given.
pub fn game_input(nash: Option<f64>, optimum: Option<f64>, sense: Sense) -> Option<GameInput> {
    Some(GameInput {
        nash: nash?,
        optimum: optimum?,
        sense: match sense {
            Sense::Cost => GameSense::Cost,
            Sense::Welfare => GameSense::Welfare,
        },
    })
}

/// `deposit` (true) or `withdraw` (false) at a root verse.
fn root_move(engine: &Engine, out: &Out, a: crate::args::MoveArgs, deposit: bool) -> Result<()> {
    let (token, verse, owner) = (token(&a.token)?, verse_id(&a.verse)?, owner(&a.owner)?);
    let amount = a.amount;
    let (op, kind, human) = if deposit {
        let human = format!("deposited {amount} {token} to {owner} in {verse}");
        (
            Op::Deposit {
                token,
                verse,
                owner,
                amount,
            },
            "deposit",
            human,
        )
    } else {
        let human = format!("withdrew {amount} {token} from {owner} in {verse}");
        (
            Op::Withdraw {
                token,
                verse,
                owner,
                amount,
            },
            "withdraw",
            human,
        )
    };
    engine.apply(op)?;
    moved(
        out,
        kind,
        json!({"verse": a.verse, "amount": amount}),
        human,
    )
}

fn moved(out: &Out, what: &str, detail: serde_json::Value, human: String) -> Result<()> {
    out.emit(&json!({ "ok": true, "op": what, "detail": detail }), || {
        outln!("{human}")
    })
}

/// Runs one `world verse` subcommand.
pub fn run(engine: &Engine, out: &Out, cmd: VerseCmd) -> Result<()> {
    match cmd {
        VerseCmd::Create { name, seed } => {
            let v = engine.verse_create(&name, seed)?;
            out.emit(
                &json!({ "verse": v.to_string(), "name": name, "seed": seed }),
                || outln!("{v}"),
            )
        }
        VerseCmd::Partition {
            parent,
            children,
            allow_nonconserving,
        } => {
            let parent = verse_id(&parent)?;
            let specs = if children.is_empty() {
                default_children()
            } else {
                children
                    .iter()
                    .map(|c| child_spec(c))
                    .collect::<Result<Vec<_>>>()?
            };
            let (p, kids, gf3) =
                engine.verse_partition(parent, specs.clone(), allow_nonconserving)?;
            let rows: Vec<Vec<String>> = kids
                .iter()
                .zip(&specs)
                .map(|(k, s)| {
                    vec![
                        k.to_string(),
                        s.name.clone(),
                        s.trit.to_string(),
                        s.prob.to_string(),
                    ]
                })
                .collect();
            out.emit(
                &json!({
                    "partition": p.to_string(),
                    "parent": parent.to_string(),
                    "children": kids.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                    "gf3_sum": gf3,
                }),
                || {
                    outln!("partition {p} of {parent} (gf3_sum {gf3})");
                    out!("{}", table(&["verse", "name", "trit", "prob"], &rows));
                },
            )
        }
        VerseCmd::Deposit(a) => root_move(engine, out, a, true),
        VerseCmd::Withdraw(a) => root_move(engine, out, a, false),
        VerseCmd::PushDown(a) => {
            let op = Op::PushDown {
                token: token(&a.token)?,
                owner: owner(&a.owner)?,
                parent: verse_id(&a.verse)?,
                amount: a.amount,
            };
            let applied = engine.apply(op)?;
            let cells: Vec<String> = applied
                .balance_writes
                .iter()
                .map(|(k, v)| format!("{}={v}", k.verse))
                .collect();
            moved(
                out,
                "push_down",
                json!({"verse": a.verse, "amount": a.amount, "balances": cells}),
                format!(
                    "pushed {} {} of {} down from {}: {}",
                    a.amount,
                    a.token,
                    a.owner,
                    a.verse,
                    cells.join(" ")
                ),
            )
        }
        VerseCmd::PullUp {
            partition,
            amount,
            token: t,
            owner: o,
        } => {
            let op = Op::PullUp {
                token: token(&t)?,
                owner: owner(&o)?,
                partition: partition_id(&partition)?,
                amount,
            };
            let applied = engine.apply(op)?;
            let cells: Vec<String> = applied
                .balance_writes
                .iter()
                .map(|(k, v)| format!("{}={v}", k.verse))
                .collect();
            moved(
                out,
                "pull_up",
                json!({"partition": partition, "amount": amount, "balances": cells}),
                format!(
                    "pulled {amount} {t} of {o} up through {partition}: {}",
                    cells.join(" ")
                ),
            )
        }
        VerseCmd::Transfer {
            verse,
            amount,
            token: t,
            from,
            to,
        } => {
            let op = Op::Transfer {
                token: token(&t)?,
                verse: verse_id(&verse)?,
                from: owner(&from)?,
                to: owner(&to)?,
                amount,
            };
            engine.apply(op)?;
            moved(
                out,
                "transfer",
                json!({"verse": verse, "amount": amount, "from": from, "to": to}),
                format!("transferred {amount} {t} from {from} to {to} in {verse}"),
            )
        }
        VerseCmd::Resolve(a) => resolve(engine, out, a),
        VerseCmd::Balances { verse, token: t } => balances(engine, out, verse, t),
        VerseCmd::List => list(engine, out),
        VerseCmd::Journal { limit } => {
            let rows = engine.store()?.journal(limit).map_err(Error::from)?;
            out.emit(&rows, || {
                let r: Vec<Vec<String>> = rows
                    .iter()
                    .map(|j| {
                        vec![
                            j.seq.to_string(),
                            j.applied_at.clone(),
                            j.op.clone(),
                            j.op_json.clone(),
                        ]
                    })
                    .collect();
                out!("{}", table(&["seq", "applied_at", "op", "operation"], &r));
            })
        }
        VerseCmd::Check => check(engine, out),
    }
}

fn resolve(engine: &Engine, out: &Out, a: ResolveArgs) -> Result<()> {
    let partition = partition_id(&a.partition)?;
    let oracle = match a.oracle {
        OracleKind::Explicit => {
            let w = a
                .winner
                .as_deref()
                .ok_or_else(|| invalid("the explicit oracle needs --winner VERSE".into()))?;
            OracleChoice::Explicit(verse_id(w)?)
        }
        OracleKind::Score => {
            if a.scores.is_empty() {
                return Err(invalid(
                    "the score oracle needs --score VERSE=VALUE for the children".into(),
                ));
            }
            let scores = a
                .scores
                .iter()
                .map(|s| {
                    let (v, x) = s
                        .split_once('=')
                        .ok_or_else(|| invalid(format!("score {s:?} must be VERSE=VALUE")))?;
                    let x: f64 = x
                        .parse()
                        .map_err(|_| invalid(format!("score {s:?}: {x:?} is not a number")))?;
                    Ok((verse_id(v)?, x))
                })
                .collect::<Result<Vec<_>>>()?;
            OracleChoice::Score {
                scores,
                highest: !a.lowest,
            }
        }
        OracleKind::Weighted => OracleChoice::Weighted {
            seed: a.seed.ok_or_else(|| {
                invalid("the weighted oracle needs --seed N (so the draw is reproducible)".into())
            })?,
        },
    };
    let game = game_input(a.nash, a.optimum, a.sense);
    let r = engine.verse_resolve(partition, &oracle, game)?;
    out.emit(&r, || {
        outln!(
            "resolved {} by {}: {} survives; evaporated {}",
            r.partition,
            r.oracle_source,
            r.winner,
            crate::output::join(&r.evaporated)
        );
        crate::output::resolution_tail(&r.evaporated_value, r.wev.as_ref());
        outln!(
            "recorded as {} ({:.3} ms)",
            r.resolution_id,
            r.pull_up_time_ms
        );
    })
}

fn balances(engine: &Engine, out: &Out, verse: Option<String>, t: Option<String>) -> Result<()> {
    let ledger = engine.ledger()?;
    let verse = verse.as_deref().map(verse_id).transpose()?;
    if let Some(v) = verse {
        ledger.tree().verse(v).map_err(Error::from)?;
    }
    let rows: Vec<_> = ledger
        .balances()
        .filter(|(k, _)| verse.is_none_or(|v| k.verse == v))
        .filter(|(k, _)| t.as_deref().is_none_or(|t| k.token.as_str() == t))
        .map(|(k, amount)| {
            let status = ledger
                .tree()
                .verse(k.verse)
                .map(|v| match v.status {
                    VerseStatus::Live => "live",
                    VerseStatus::Evaporated => "evaporated",
                })
                .unwrap_or("?");
            (k, amount, status)
        })
        .collect();
    let js: Vec<_> = rows
        .iter()
        .map(|(k, a, s)| json!({"token": k.token.as_str(), "verse": k.verse.to_string(), "owner": k.owner.as_str(), "amount": a, "status": s}))
        .collect();
    out.emit(&js, || {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|(k, a, s)| {
                vec![
                    k.verse.to_string(),
                    k.token.as_str().to_string(),
                    k.owner.as_str().to_string(),
                    a.to_string(),
                    s.to_string(),
                ]
            })
            .collect();
        out!(
            "{}",
            table(&["verse", "token", "owner", "amount", "status"], &r)
        );
    })
}

fn list(engine: &Engine, out: &Out) -> Result<()> {
    let ledger = engine.ledger()?;
    let tree = ledger.tree();
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for v in tree.verses() {
        let abs = tree.absolute_prob(v.id).map_err(Error::from)?;
        let depth = tree.path(v.id).map_err(Error::from)?.len() - 1;
        let status = match v.status {
            VerseStatus::Live => "live",
            VerseStatus::Evaporated => "evaporated",
        };
        let open = tree.open_partition_of(v.id).map(|p| p.to_string());
        rows.push(vec![
            format!("{}{}", "  ".repeat(depth), v.id),
            v.name.clone(),
            v.trit.map_or("-".into(), |t| t.to_string()),
            v.prob.to_string(),
            abs.to_string(),
            status.to_string(),
            open.clone().unwrap_or_else(|| "-".into()),
            format!("{:#018x}", v.seed),
        ]);
        js.push(json!({
            "verse": v.id.to_string(), "name": v.name, "parent": v.parent.map(|p| p.to_string()),
            "trit": v.trit.map(|t| t.value()), "prob": v.prob.to_string(), "abs_prob": abs.to_string(),
            "status": status, "open_partition": open, "seed": v.seed,
        }));
    }
    let parts: Vec<_> = tree
        .partitions()
        .map(|p| {
            json!({"partition": p.id.to_string(), "parent": p.parent.to_string(),
                "children": p.children.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "gf3_sum": p.gf3_sum,
                "winner": match p.status { PartitionStatus::Resolved { winner } => Some(winner.to_string()), PartitionStatus::Open => None }})
        })
        .collect();
    out.emit(&json!({"verses": js, "partitions": parts}), || {
        out!(
            "{}",
            table(
                &["verse", "name", "trit", "prob", "abs_prob", "status", "open", "seed"],
                &rows
            )
        );
    })
}

fn check(engine: &Engine, out: &Out) -> Result<()> {
    let store = engine.store()?;
    let stored = store.load_ledger().map_err(Error::from)?;
    let replayed = store.replay_journal().map_err(Error::from)?;
    let n = store.journal_len().map_err(Error::from)?;
    let same = stored == replayed;
    out.emit(
        &json!({"journal_rows": n, "replay_matches_state": same}),
        || {
            outln!("journal rows: {n}");
            outln!(
                "replaying the journal gives the stored state: {}",
                if same { "yes" } else { "NO" }
            );
        },
    )?;
    if !same {
        return Err(anyhow::anyhow!(
            "the stored ledger differs from the journal replay"
        ))
        .context("database inconsistent");
    }
    Ok(())
}
