//! A worker of the thread team that dies mid-forward makes the run fail (not hang), the
//! team retires, and later runs give the same results on one thread; a new team works
//! again. Its own test binary: the team is process-wide, and retiring it must not disturb
//! the other tests.
// (Not with `profile`: it runs every other forward on one thread.)
#![cfg(all(feature = "threads", not(feature = "profile")))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use inception_kernels::conv::{Conv2d, ConvSpec};
use inception_kernels::plan::{team, threads, Context, Op, PlanBuilder, RunError, Slice, INPUT};

/// Three 3×3 convs on 4 images of 8×16×16: enough tasks for both threads in every stage.
fn plan(threads: usize) -> (inception_kernels::plan::Plan, Vec<f32>) {
    let (n, c, h, w) = (4, 8, 16, 16);
    let layer = |salt: u32| {
        let spec = ConvSpec { c_in: c, c_out: c, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
        let weights: Vec<f32> = (0..c * spec.k()).map(|i| (((i as u32).wrapping_mul(2654435761) ^ salt) % 1000) as f32 / 1000.0 - 0.5).collect();
        Arc::new(Conv2d::new(spec, &weights, None))
    };
    let mut pb = PlanBuilder::new(n * c * h * w);
    let mut src = INPUT;
    for salt in 0..3 {
        let dst = pb.value(n * c * h * w);
        pb.push(Op::Conv { layer: layer(salt), n, h, w, relu: true, src, dst: Slice::whole(dst, c) }).unwrap();
        src = dst;
    }
    let x = (0..n * c * h * w).map(|i| (i % 17) as f32 / 17.0).collect();
    (pb.build(src, threads).unwrap(), x)
}

fn start_team() {
    team::install(2, |work| {
        std::thread::spawn(work);
    });
    assert_eq!(threads(), 2);
}

/// A plan, its input, its output as one thread computes it, and — with the test's hold on
/// the process-wide team (the tests of this binary take turns) — a fresh team of two.
struct Setup {
    plan: inception_kernels::plan::Plan,
    x: Vec<f32>,
    want: Vec<f32>,
    out: Vec<f32>,
    ctx: Context,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn setup() -> Setup {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    team::abandon(); // the previous test's team, if any: `want` comes from one thread
    let (plan, x) = plan(2);
    let mut want = vec![0.0; plan.output_len()];
    plan.run(&x, &mut want, &mut Context::default()).unwrap();
    start_team();
    let out = vec![0.0; plan.output_len()];
    Setup { plan, x, want, out, ctx: Context::default(), _serial }
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_worker_that_panics_mid_forward_fails_the_run_at_once_then_one_thread_and_a_new_team_give_the_same_results() {
    let Setup { plan, x, want, mut out, mut ctx, _serial } = setup();
    plan.run(&x, &mut out, &mut ctx).unwrap();
    assert_eq!(out, want, "two threads");

    team::fault::panic_in_worker_after(2);
    let start = Instant::now();
    assert!(matches!(plan.run(&x, &mut out, &mut ctx), Err(RunError::WorkerFailed(_))));
    assert!(start.elapsed() < Duration::from_secs(2), "a panic is seen at once, took {:?}", start.elapsed());
    assert_eq!(threads(), 1, "the team is retired");

    out.fill(f32::NAN);
    plan.run(&x, &mut out, &mut ctx).unwrap();
    assert_eq!(out, want, "one thread after the failure");

    start_team();
    out.fill(f32::NAN);
    plan.run(&x, &mut out, &mut ctx).unwrap();
    assert_eq!(out, want, "a new team");

    team::abandon(); // what the loader does when it sees a worker's thread end
    assert_eq!(threads(), 1);
    plan.run(&x, &mut out, &mut ctx).unwrap();
    assert_eq!(out, want, "one thread after the team was abandoned");
}

#[test]
fn a_worker_that_stops_mid_forward_fails_the_run_within_about_ten_seconds() {
    let Setup { plan, x, want, mut out, mut ctx, _serial } = setup();
    team::fault::hang_in_worker_after(1);
    let start = Instant::now();
    assert!(matches!(plan.run(&x, &mut out, &mut ctx), Err(RunError::WorkerFailed(_))));
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(13), "took {took:?}");
    assert_eq!(threads(), 1);
    plan.run(&x, &mut out, &mut ctx).unwrap();
    assert_eq!(out, want);
}
