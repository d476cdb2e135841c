//! Where a threaded forward loses time, stage by stage (feature `profile`; no shipped
//! build has it: `bench/threads-profile.mjs` builds one).
//!
//! Runs alternate, per plan: the even ones run every task on the calling thread (the
//! same tasks, so the same work), the odd ones on the whole pool. Per stage the serial
//! run records its time; the threaded run records, for each thread, the stage's wall time
//! (from its start to the barrier's release), the time spent inside tasks and the tasks
//! taken. Every [`PAIRS`] pairs of runs of a plan the sums go to the sink as one JSON
//! line. So, with both halves of a pair a few tens of milliseconds apart on a machine
//! whose speed drifts over seconds: speed-up = serial ÷ threaded wall, *inflation* = busy
//! time of all threads ÷ serial time (tasks running slower side by side than alone), and
//! *idle* = threads × wall − busy (waiting at barriers).
//!
//! Without the feature, [`Probe`] is empty and every call compiles to nothing.

/// Pairs of runs summed into one report.
pub const PAIRS: usize = 50;

#[cfg(feature = "profile")]
pub use enabled::*;

#[cfg(feature = "profile")]
mod enabled {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    use std::sync::{Mutex, OnceLock};

    use super::PAIRS;

    /// A monotonic clock in milliseconds (each thread may have its own origin: only
    /// differences taken on one thread are used) and where reports go.
    #[derive(Clone, Copy)]
    pub struct Hooks {
        pub now: fn() -> f64,
        pub report: fn(&str),
    }

    static HOOKS: OnceLock<Hooks> = OnceLock::new();

    /// Sums of one plan's runs since its last report, keyed by the plan's address.
    static RUNS: Mutex<BTreeMap<usize, Sums>> = Mutex::new(BTreeMap::new());

    #[derive(Default)]
    struct Sums {
        runs: usize,
        serial: Vec<f64>,
        /// `[stage][thread]`: wall, busy, tasks.
        threaded: Vec<Vec<[f64; 3]>>,
    }

    /// Installs the clock and the sink; later calls are ignored.
    pub fn install(hooks: Hooks) {
        let _ = HOOKS.set(hooks);
    }

    pub fn now() -> f64 {
        HOOKS.get().map_or(0.0, |h| (h.now)())
    }

    fn with<R>(plan: usize, f: impl FnOnce(&mut Sums) -> R) -> R {
        f(RUNS.lock().expect("profile lock").entry(plan).or_default())
    }

    /// Whether this run of `plan` is a serial one.
    pub fn serial_turn(plan: usize) -> bool {
        with(plan, |s| s.runs % 2 == 0)
    }

    /// One thread's clock over one run: per stage, wall, busy and tasks.
    pub struct Probe {
        stages: Vec<[f64; 3]>,
        stage_start: f64,
        busy: f64,
        tasks: f64,
    }

    impl Probe {
        pub fn new(stages: usize) -> Self {
            Self { stages: Vec::with_capacity(stages), stage_start: now(), busy: 0.0, tasks: 0.0 }
        }

        /// A task begins; pass the result to [`Probe::task_end`].
        pub fn task_start(&self) -> f64 {
            now()
        }

        pub fn task_end(&mut self, start: f64) {
            self.busy += now() - start;
            self.tasks += 1.0;
        }

        /// The stage is over for this thread (after the barrier).
        pub fn stage_end(&mut self) {
            let t = now();
            self.stages.push([t - self.stage_start, self.busy, self.tasks]);
            (self.stage_start, self.busy, self.tasks) = (t, 0.0, 0.0);
        }
    }

    /// Adds a serial run of `plan` (one probe) or a threaded one (one probe per thread);
    /// every [`PAIRS`] pairs, reports them with `labels` (the steps of each stage).
    pub fn record(plan: usize, probes: Vec<Probe>, labels: impl FnOnce() -> Vec<Vec<String>>) {
        let line = with(plan, |s| {
            let stages = probes[0].stages.len();
            if probes.len() == 1 {
                s.serial.resize(stages, 0.0);
                s.serial.iter_mut().zip(&probes[0].stages).for_each(|(sum, r)| *sum += r[0]);
            } else {
                s.threaded.resize(stages, vec![[0.0; 3]; probes.len()]);
                for (thread, probe) in probes.iter().enumerate() {
                    for (sum, r) in s.threaded.iter_mut().zip(&probe.stages) {
                        sum[thread].iter_mut().zip(r).for_each(|(a, b)| *a += b);
                    }
                }
            }
            s.runs += 1;
            (s.runs == 2 * PAIRS).then(|| report(&std::mem::take(s), &labels()))
        });
        if let (Some(line), Some(h)) = (line, HOOKS.get()) {
            (h.report)(&line);
        }
    }

    /// One run of a training graph (`what`: "forward" or "backward"), reported at once:
    /// `{"graph":what,"stages":[["prologue", ms, 0],[label, wall, busy of all threads],…]}`
    /// in ms; the prologue is what the run did on the calling thread before its stages.
    pub fn record_graph(what: &str, prologue: f64, probes: &[Probe], labels: &[String]) {
        let Some(h) = HOOKS.get() else { return };
        let mut out = format!("{{\"graph\":{what:?},\"stages\":[[\"prologue\",{prologue},0],");
        for (i, label) in labels.iter().enumerate() {
            let wall = probes[0].stages[i][0];
            let busy: f64 = probes.iter().map(|p| p.stages[i][1]).sum();
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}[{label:?},{wall},{busy}]");
        }
        (h.report)(&(out + "]}"));
    }

    /// `{"pairs":…,"stages":[{"steps":[…],"serial":…,"threads":[[wall,busy,tasks],…]},…]}`,
    /// times summed over the pairs, in ms.
    fn report(s: &Sums, labels: &[Vec<String>]) -> String {
        let mut out = format!("{{\"pairs\":{PAIRS},\"stages\":[");
        for (i, (serial, threads)) in s.serial.iter().zip(&s.threaded).enumerate() {
            let steps: Vec<String> = labels[i].iter().map(|l| format!("{l:?}")).collect();
            let threads: Vec<String> = threads.iter().map(|[w, b, t]| format!("[{w},{b},{t}]")).collect();
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}{{\"steps\":[{}],\"serial\":{serial},\"threads\":[{}]}}", steps.join(","), threads.join(","));
        }
        out + "]}"
    }
}

/// The no-op twin of the profiling probe, for builds without the feature.
#[cfg(not(feature = "profile"))]
pub struct Probe;

/// Without the feature every run is an ordinary one.
#[cfg(not(feature = "profile"))]
#[inline(always)]
pub fn serial_turn(_plan: usize) -> bool {
    false
}

#[cfg(not(feature = "profile"))]
impl Probe {
    #[inline(always)]
    pub fn new(_stages: usize) -> Self {
        Probe
    }

    #[inline(always)]
    pub fn task_start(&self) {}

    #[inline(always)]
    pub fn task_end(&mut self, _start: ()) {}

    #[inline(always)]
    pub fn stage_end(&mut self) {}
}
