use std::sync::Arc;

use super::schedule::Home;
use super::*;
use crate::conv::{Conv2d, ConvSpec};
use crate::pool::Pool2dParams;
use crate::reference;
use crate::testutil::{assert_close_scaled, data};

fn conv(c_in: usize, c_out: usize, k: usize, salt: u32) -> (Arc<Conv2d>, Vec<f32>, Vec<f32>) {
    let spec = ConvSpec { c_in, c_out, kh: k, kw: k, sh: 1, sw: 1, ph: k / 2, pw: k / 2 };
    let (w, b) = (data(c_out * spec.k(), salt), data(c_out, salt + 1));
    (Arc::new(Conv2d::new(spec, &w, Some(&b))), w, b)
}

/// A small Inception-like network on `n` images of `c × h × w`: conv 3×3 → max pool 3×3/1 →
/// [1×1 | 1×1 → 3×3 | pool → 1×1] concatenated → adaptive average pool → linear, built as
/// a plan, and the same computed op by op with the reference oracles.
fn network(n: usize, c: usize, h: usize, w: usize, threads: usize) -> (Plan, Vec<f32>, Vec<f32>) {
    let x = data(n * c * h * w, 1);
    let (stem, stem_w, stem_b) = conv(c, 8, 3, 10);
    let (b1, b1_w, b1_b) = conv(8, 4, 1, 20);
    let (b2a, b2a_w, b2a_b) = conv(8, 6, 1, 30);
    let (b2b, b2b_w, b2b_b) = conv(6, 5, 3, 40);
    let (b4, b4_w, b4_b) = conv(8, 3, 1, 50);
    let (fc_w, fc_b) = (data(10 * 12, 60), data(10, 61));
    // The fully connected layer as the wasm crate's `Linear` is: a 1×1 conv on 1×1 maps.
    let fc = Arc::new(Conv2d::new(ConvSpec { c_in: 12, c_out: 10, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0 }, &fc_w, Some(&fc_b)));
    let pool = Pool2dParams { kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, ceil_mode: false };
    let hw = h * w;

    let mut pb = PlanBuilder::new(x.len());
    let s = pb.value(n * 8 * hw);
    pb.push(Op::Conv { layer: stem, n, h, w, relu: true, src: INPUT, dst: Slice::whole(s, 8) }).unwrap();
    let cat = pb.value(n * 12 * hw);
    pb.push(Op::Conv { layer: b1, n, h, w, relu: true, src: s, dst: Slice { value: cat, channels: 12, offset: 0 } }).unwrap();
    let mid = pb.value(n * 6 * hw);
    pb.push(Op::Conv { layer: b2a, n, h, w, relu: true, src: s, dst: Slice::whole(mid, 6) }).unwrap();
    pb.push(Op::Conv { layer: b2b, n, h, w, relu: false, src: mid, dst: Slice { value: cat, channels: 12, offset: 4 } }).unwrap();
    let pooled = pb.value(n * 8 * hw);
    pb.push(Op::MaxPool { p: pool, planes: n * 8, h, w, src: s, dst: pooled }).unwrap();
    pb.push(Op::Conv { layer: b4, n, h, w, relu: true, src: pooled, dst: Slice { value: cat, channels: 12, offset: 9 } }).unwrap();
    let gap = pb.value(n * 12);
    pb.push(Op::AdaptiveAvgPool { planes: n * 12, h, w, oh: 1, ow: 1, src: cat, dst: gap }).unwrap();
    let logits = pb.value(n * 10);
    pb.push(Op::Conv { layer: fc, n, h: 1, w: 1, relu: false, src: gap, dst: Slice::whole(logits, 10) }).unwrap();
    let plan = pb.build(logits, threads).unwrap();

    let p = |c_in, c_out, k: usize| ConvSpec { c_in, c_out, kh: k, kw: k, sh: 1, sw: 1, ph: k / 2, pw: k / 2 }.with_input(h, w);
    let s = reference::conv2d(&x, n, &p(c, 8, 3), &stem_w, Some(&stem_b), true);
    let y1 = reference::conv2d(&s, n, &p(8, 4, 1), &b1_w, Some(&b1_b), true);
    let mid = reference::conv2d(&s, n, &p(8, 6, 1), &b2a_w, Some(&b2a_b), true);
    let y2 = reference::conv2d(&mid, n, &p(6, 5, 3), &b2b_w, Some(&b2b_b), false);
    let pooled = reference::max_pool2d(&s, n * 8, h, w, &pool);
    let y4 = reference::conv2d(&pooled, n, &p(8, 3, 1), &b4_w, Some(&b4_b), true);
    let mut cat = Vec::new();
    for b in 0..n {
        for (y, ch) in [(&y1, 4), (&y2, 5), (&y4, 3)] {
            cat.extend_from_slice(&y[b * ch * hw..(b + 1) * ch * hw]);
        }
    }
    let gap = reference::adaptive_avg_pool2d(&cat, n * 12, h, w, 1, 1);
    let want = reference::linear(&gap, n, &fc_w, 12, 10, Some(&fc_b));
    (plan, x, want)
}

fn run(plan: &Plan, x: &[f32]) -> Vec<f32> {
    let mut out = vec![f32::NAN; plan.output_len()];
    plan.run(x, &mut out, &mut Context::default()).unwrap();
    out
}

#[test]
fn network_matches_the_reference_op_by_op() {
    for (n, c, h, w) in [(1, 3, 9, 7), (2, 4, 5, 5), (3, 1, 1, 1)] {
        let (plan, x, want) = network(n, c, h, w, 1);
        assert_close_scaled(&run(&plan, &x), &want, 8 * 9 * 6 * 9, 1.0, &format!("network n={n} c={c} h={h} w={w}"));
    }
}

#[test]
fn a_batch_of_small_maps_runs_as_one_gemm_bit_for_bit_as_image_by_image() {
    // 5×5 maps: every convolution of the network takes the batched path (GEMM, ≤ 64
    // pixels), the fully connected layer too.
    let (n, c, h, w) = (3, 4, 5, 5);
    let (plan, x, _) = network(n, c, h, w, 1);
    assert_eq!(plan.steps.iter().filter(|s| matches!(s, Op::ConvBatch { .. })).count(), 6);
    let batched = run(&plan, &x);
    let (img, out) = (c * h * w, batched.len() / n);
    let (one, _, _) = network(1, c, h, w, 1);
    for b in 0..n {
        assert_eq!(run(&one, &x[b * img..(b + 1) * img]), batched[b * out..(b + 1) * out], "image {b}");
    }
    for threads in [2, 7] {
        let (split, _, _) = network(n, c, h, w, threads);
        assert_eq!(run(&split, &x), batched, "split for {threads} threads");
    }
    // 2×2 and 1×1 maps: the 3×3 convolutions run dense (`conv::dense`), the same bits.
    for (h, w) in [(2, 2), (1, 1)] {
        let (plan, x, _) = network(n, c, h, w, 2);
        assert_eq!(plan.steps.iter().filter(|s| matches!(s, Op::Unbatch { pixel_major: true, .. })).count(), 2, "{h}×{w}");
        let batched = run(&plan, &x);
        let (img, out) = (c * h * w, batched.len() / n);
        let (one, _, _) = network(1, c, h, w, 1);
        for b in 0..n {
            assert_eq!(run(&one, &x[b * img..(b + 1) * img]), batched[b * out..(b + 1) * out], "{h}×{w} image {b}");
        }
    }
}

#[test]
fn results_do_not_depend_on_how_steps_are_split() {
    // Plans split for 1, 2 and 7 threads run the same arithmetic: bit-identical outputs
    // (and, with the `threads` feature, on a team of two threads, taking tasks in whatever
    // order they come).
    #[cfg(feature = "threads")]
    assert_eq!(crate::testutil::team(), 2, "the plan must run threaded");
    let (one, x, _) = network(2, 16, 12, 10, 1);
    let want = run(&one, &x);
    for threads in [2, 7] {
        let (plan, _, _) = network(2, 16, 12, 10, threads);
        assert_eq!(run(&plan, &x), want, "split for {threads} threads");
    }
}

#[test]
fn a_context_is_reused_across_plans_and_runs() {
    let (small, xs, _) = network(1, 2, 4, 4, 1);
    let (big, xb, _) = network(2, 3, 9, 9, 1);
    let mut ctx = Context::default();
    let mut out_s = vec![0.0; small.output_len()];
    let mut out_b = vec![0.0; big.output_len()];
    small.run(&xs, &mut out_s, &mut ctx).unwrap();
    big.run(&xb, &mut out_b, &mut ctx).unwrap();
    let first = out_s.clone();
    small.run(&xs, &mut out_s, &mut ctx).unwrap();
    assert_eq!(out_s, first);
    assert_eq!(out_b, run(&big, &xb));
}

#[test]
fn stages_group_independent_steps_and_values_share_memory_only_when_their_lives_do_not_overlap() {
    let (plan, _, _) = network(1, 3, 9, 7, 1);
    // stem | b1, b2a, pool | b2b, b4 | gap | fc
    let stages: Vec<Vec<usize>> = plan.schedule.stages.clone();
    assert_eq!(stages, vec![vec![0], vec![1, 2, 4], vec![3, 5], vec![6], vec![7]]);
    // Lifetimes (first write .. last read, in stages) of every arena value.
    let level: Vec<usize> = (0..plan.steps.len()).map(|i| stages.iter().position(|s| s.contains(&i)).unwrap()).collect();
    let mut life = vec![(usize::MAX, 0); plan.schedule.lens.len()];
    for (i, op) in plan.steps.iter().enumerate() {
        for v in op.reads().into_iter().chain([op.writes().0]) {
            life[v.0] = (life[v.0].0.min(level[i]), life[v.0].1.max(level[i]));
        }
    }
    let arena: Vec<(usize, usize, (usize, usize))> = plan
        .schedule
        .homes
        .iter()
        .enumerate()
        .filter_map(|(v, h)| if let Home::Arena(at) = h { Some((*at, plan.schedule.lens[v], life[v])) } else { None })
        .collect();
    let mut shared = 0;
    for (i, a) in arena.iter().enumerate() {
        assert_eq!(a.0 % 16, 0, "arena offsets are cache-line aligned");
        for b in &arena[i + 1..] {
            let lives_overlap = a.2 .0 <= b.2 .1 && b.2 .0 <= a.2 .1;
            let memory_overlaps = a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
            assert!(!(lives_overlap && memory_overlaps), "{a:?} and {b:?} share memory while both live");
            shared += usize::from(memory_overlaps);
        }
    }
    // The pooled features (stages 3–4) reuse the stem's output (stages 0–1).
    assert!(shared > 0, "no memory was reused: {arena:?}");
}

#[test]
fn kept_values_survive_the_run_and_the_input_can_be_the_output() {
    let x = data(2 * 3 * 4 * 4, 9);
    let mut pb = PlanBuilder::new(x.len());
    let r = pb.value(x.len());
    pb.push(Op::Relu { src: INPUT, dst: r }).unwrap();
    let k = pb.keep(r).unwrap();
    let k_in = pb.keep(INPUT).unwrap();
    let pooled = pb.value(2 * 3);
    pb.push(Op::AdaptiveAvgPool { planes: 6, h: 4, w: 4, oh: 1, ow: 1, src: r, dst: pooled }).unwrap();
    let plan = pb.build(pooled, 1).unwrap();
    let mut ctx = Context::default();
    let mut out = vec![0.0; 6];
    plan.run(&x, &mut out, &mut ctx).unwrap();
    let relu: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(plan.kept(k, &ctx), &relu[..]);
    assert_eq!(plan.kept(k_in, &ctx), &x[..]);
    assert_eq!(out, reference::adaptive_avg_pool2d(&relu, 6, 4, 4, 1, 1));

    // An identity plan (a Flatten, a Dropout) still writes its output buffer.
    let plan = PlanBuilder::new(x.len()).build(INPUT, 1).unwrap();
    let mut out = vec![0.0; x.len()];
    plan.run(&x, &mut out, &mut Context::default()).unwrap();
    assert_eq!(out, x);
}

#[test]
fn bad_plans_are_refused_with_the_op_and_the_sizes() {
    let (layer, _, _) = conv(3, 4, 3, 1);
    let mut pb = PlanBuilder::new(3 * 5 * 5);
    let out = pb.value(4 * 5 * 5);
    let err = |r: Result<(), BuildError>| r.unwrap_err().to_string();
    let c = |src, dst: Slice| Op::Conv { layer: layer.clone(), n: 1, h: 5, w: 5, relu: false, src, dst };
    assert!(err(pb.push(c(INPUT, Slice { value: out, channels: 4, offset: 1 }))).contains("channels [1, 5) do not fit in 4"));
    let short = pb.value(10);
    assert!(err(pb.push(c(INPUT, Slice::whole(short, 4)))).contains("the output holds 10 floats, expected 100"));
    let copy = pb.value(100);
    assert!(err(pb.push(Op::Relu { src: out, dst: copy })).contains("reads value 1 before it is completely written"));
    assert!(err(pb.push(Op::Relu { src: INPUT, dst: INPUT })).contains("cannot write over its own input"));
    let tiny = pb.value(4);
    let valid = ConvSpec { c_in: 3, c_out: 4, kh: 3, kw: 3, sh: 1, sw: 1, ph: 0, pw: 0 };
    let valid = Arc::new(Conv2d::new(valid, &data(4 * 27, 1), None));
    let big = Op::Conv { layer: valid, n: 1, h: 1, w: 1, relu: false, src: tiny, dst: Slice::whole(tiny, 4) };
    assert!(err(pb.push(big)).contains("1×1 input is smaller than the 3×3 kernel"));
    pb.push(c(INPUT, Slice::whole(out, 4))).unwrap();
    assert!(err(pb.push(c(INPUT, Slice::whole(out, 4)))).contains("already written"));
    let next = pb.value(100);
    pb.push(Op::Relu { src: out, dst: next }).unwrap();
    let other = pb.value(100);
    assert!(err(pb.push(Op::Relu { src: other, dst: out })).contains("before it is completely written"));
    assert!(pb.build(other, 1).unwrap_err().to_string().contains("not completely written"));
}

/// The profiler's report after `2·PAIRS` runs on 2 threads: one entry per stage, naming
/// its steps, with a serial time and one `[wall, busy, tasks]` per thread whose task
/// counts add up to the stage's tasks in every threaded run; and the outputs of the
/// serial and the threaded runs are the same.
#[cfg(feature = "profile")]
#[test]
fn the_profile_reports_every_stage_and_task_of_alternating_serial_and_threaded_runs() {
    use std::sync::Mutex;
    use std::time::Instant;

    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static REPORTS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    profile::install(profile::Hooks {
        now: || START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3,
        report: |line| REPORTS.lock().unwrap().push(line.to_string()),
    });
    assert_eq!(crate::testutil::team(), 2);
    {
        let (plan, x, _) = network(1, 8, 12, 10, 2);
        let mut ctx = Context::default();
        let mut outs = vec![vec![0.0; plan.output_len()]; 2];
        for run in 0..2 * profile::PAIRS {
            plan.run(&x, &mut outs[run % 2], &mut ctx).unwrap();
        }
        assert_eq!(outs[0], outs[1], "serial and threaded runs differ");

        let reports = REPORTS.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let r = &reports[0];
        assert!(r.starts_with(&format!("{{\"pairs\":{},\"stages\":[", profile::PAIRS)), "{r}");
        let stages: Vec<&str> = r.split("{\"steps\":").skip(1).collect();
        assert_eq!(stages.len(), plan.stages());
        for (stage, text) in plan.schedule.stages.iter().zip(stages) {
            for &s in stage {
                assert!(text.contains(&format!("\"{} ×{}\"", plan.steps[s].label(), plan.tasks[s])), "{text}");
            }
            let threads = text.split("\"threads\":[").nth(1).unwrap();
            let numbers: Vec<f64> = threads.split(|c| "[],}".contains(c)).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect();
            assert_eq!(numbers.len(), 6, "{text}");
            let tasks: usize = stage.iter().map(|&s| plan.tasks[s]).sum();
            assert_eq!((numbers[2] + numbers[5]) as usize, tasks * profile::PAIRS, "{text}");
            assert!(numbers.iter().all(|&t| t >= 0.0), "{text}");
        }
    }
}

/// One conv of each kind a plan splits differently — a 1×1 on a 7×7 map (few pixel
/// strips: split by strips × row panels), a 3×3 on 14×14 (Winograd, one tile block: split
/// by output channels), a 5×5 (im2col: split by strips) — compiled for 1, 2, 3 and 7
/// threads: the task counts differ, the outputs do not (run on the test team under the
/// `threads` feature), and they match the reference.
#[test]
fn gemm_strip_and_panel_and_winograd_channel_splits_give_the_same_results_for_every_thread_count() {
    #[cfg(feature = "threads")]
    assert_eq!(crate::testutil::team(), 2, "the plans must run threaded");
    let layer = |c_in, c_out, k: usize, salt| {
        let spec = ConvSpec { c_in, c_out, kh: k, kw: k, sh: 1, sw: 1, ph: k / 2, pw: k / 2 };
        let (w, b) = (data(c_out * spec.k(), salt), data(c_out, salt + 1));
        (Arc::new(Conv2d::new(spec, &w, Some(&b))), spec, w, b)
    };
    let cases = [(layer(256, 96, 1, 1), 7), (layer(32, 48, 3, 3), 14), (layer(8, 16, 5, 5), 12)];
    for ((conv, spec, w, b), hw) in cases {
        let n = 1; // one image: every thread's share comes from splitting it
        let x = data(n * spec.c_in * hw * hw, 9);
        let want = reference::conv2d(&x, n, &spec.with_input(hw, hw), &w, Some(&b), true);
        let mut outs = Vec::new();
        let mut tasks = Vec::new();
        for threads in [1, 2, 3, 7] {
            let mut pb = PlanBuilder::new(x.len());
            let y = pb.value(n * spec.c_out * hw * hw);
            pb.push(Op::Conv { layer: conv.clone(), n, h: hw, w: hw, relu: true, src: INPUT, dst: Slice::whole(y, spec.c_out) }).unwrap();
            let plan = pb.build(y, threads).unwrap();
            tasks.push(plan.tasks[0]);
            outs.push(run(&plan, &x));
        }
        let what = format!("{:?} on {hw}×{hw} ({:?}), tasks per thread count {tasks:?}", (spec.c_in, spec.c_out, spec.kh), conv.algorithm_for(hw, hw));
        assert!(tasks[0] == 1 && tasks[1] > 1 && tasks[3] > tasks[1], "{what}: the splits must differ");
        for out in &outs[1..] {
            assert_eq!(out, &outs[0], "{what}");
        }
        assert_close_scaled(&outs[0], &want, spec.k(), 1.0, &what);
    }
}

/// Max and average pooling over 261 planes, as plan steps compiled for 1, 2 and 7 threads:
/// split into different numbers of tasks (of planes), the same outputs, the reference's.
#[test]
fn pooling_split_into_tasks_of_planes_gives_the_same_results_for_every_thread_count() {
    #[cfg(feature = "threads")]
    assert_eq!(crate::testutil::team(), 2, "the plans must run threaded");
    let (planes, h, w) = (261, 28, 28);
    let p = Pool2dParams { kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, ceil_mode: true };
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    let x = data(planes * h * w, 4);
    for avg in [false, true] {
        let (mut outs, mut tasks) = (Vec::new(), Vec::new());
        for threads in [1, 2, 7] {
            let mut pb = PlanBuilder::new(x.len());
            let y = pb.value(planes * oh * ow);
            let op = if avg { Op::AvgPool { p, count_include_pad: true, planes, h, w, src: INPUT, dst: y } } else { Op::MaxPool { p, planes, h, w, src: INPUT, dst: y } };
            pb.push(op).unwrap();
            let plan = pb.build(y, threads).unwrap();
            tasks.push(plan.tasks[0]);
            outs.push(run(&plan, &x));
        }
        assert!(tasks[0] == 1 && tasks[1] > 1 && tasks[2] > tasks[1], "avg={avg}: tasks {tasks:?}");
        assert!(outs.iter().all(|o| o == &outs[0]), "avg={avg}: outputs differ between splits {tasks:?}");
        let want = if avg { reference::avg_pool2d(&x, planes, h, w, &p, true) } else { reference::max_pool2d(&x, planes, h, w, &p) };
        assert_close_scaled(&outs[0], &want, 9, 1.0, &format!("avg={avg}"));
    }
}
