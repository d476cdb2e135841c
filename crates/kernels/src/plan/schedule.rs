//! Stages and arena placement for a plan's steps.

use super::{Op, ValueId, INPUT};

/// Where a value lives while a plan runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    Input,
    Output,
    /// Float offset into the arena.
    Arena(usize),
    /// Never written nor read: no memory.
    Nowhere,
}

#[derive(Debug)]
pub struct Schedule {
    /// Steps (indices into the plan's steps) of each stage, in program order.
    pub stages: Vec<Vec<usize>>,
    pub homes: Vec<Home>,
    pub lens: Vec<usize>,
    pub arena_len: usize,
}

/// Arena offsets are multiples of this many floats (64 bytes: a cache line, so two threads
/// writing neighbouring values never share one, and every value starts 16-byte aligned
/// for the SIMD loads).
const ALIGN: usize = 16;

impl Schedule {
    pub fn new(lens: &[usize], steps: &[Op], output: ValueId, kept: &[ValueId]) -> Self {
        // The stage of a step: one past the latest stage that wrote a value it reads.
        let mut written_in = vec![None::<usize>; lens.len()];
        let mut level = Vec::with_capacity(steps.len());
        for op in steps {
            let l = op.reads().iter().filter_map(|v| written_in[v.0]).map(|s| s + 1).max().unwrap_or(0);
            level.push(l);
            let (dst, _) = op.writes();
            written_in[dst.0] = Some(written_in[dst.0].map_or(l, |s: usize| s.max(l)));
        }
        let n_stages = level.iter().map(|l| l + 1).max().unwrap_or(0);
        let mut stages = vec![Vec::new(); n_stages];
        for (i, &l) in level.iter().enumerate() {
            stages[l].push(i);
        }

        // Lifetimes in stages: from the first write to the last read (kept values: to the end).
        let mut life: Vec<Option<(usize, usize)>> = vec![None; lens.len()];
        let mut touch = |v: ValueId, s: usize| {
            let e = life[v.0].get_or_insert((s, s));
            e.0 = e.0.min(s);
            e.1 = e.1.max(s);
        };
        for (op, &l) in steps.iter().zip(&level) {
            op.reads().iter().for_each(|&v| touch(v, l));
            touch(op.writes().0, l);
        }
        for &v in kept {
            touch(v, n_stages);
        }

        let mut homes = vec![Home::Nowhere; lens.len()];
        homes[INPUT.0] = Home::Input;
        homes[output.0] = Home::Output;
        let mut placed: Vec<(usize, usize, (usize, usize))> = Vec::new(); // offset, len, lifetime; by offset
        let mut order: Vec<usize> = (0..lens.len()).filter(|&v| homes[v] == Home::Nowhere && life[v].is_some()).collect();
        // Largest first: first-fit then packs the big early activations tightly.
        order.sort_by_key(|&v| (std::cmp::Reverse(lens[v]), v));
        for v in order {
            let len = lens[v].next_multiple_of(ALIGN);
            let (a, b) = life[v].unwrap();
            // `placed` is kept in offset order, so the live ones come sorted (no sort: its
            // instantiation was 7 KB of the module).
            let busy = placed.iter().filter(|(_, _, (c, d))| a <= *d && *c <= b).map(|&(off, l, _)| (off, off + l));
            let mut at = 0;
            for (lo, hi) in busy {
                if at + len <= lo {
                    break;
                }
                at = at.max(hi);
            }
            placed.insert(placed.partition_point(|p| p.0 <= at), (at, len, (a, b)));
            homes[v] = Home::Arena(at);
        }
        let arena_len = placed.iter().map(|(off, len, _)| off + len).max().unwrap_or(0);
        Self { stages, homes, lens: lens.to_vec(), arena_len }
    }
}
