//! A training graph gives bit-identical outputs, input gradients, parameter gradients and
//! running statistics on one thread and on teams of two and three threads. Its own test
//! binary: the team is process-wide, and the one-thread run must come before any team is
//! installed (the library's unit tests install one whenever they like).
#![cfg(feature = "threads")]

use inception_kernels::conv::ConvSpec;
use inception_kernels::plan::{team, threads, Slice, ValueId, INPUT};
use inception_kernels::pool::Pool2dParams;
use inception_kernels::train::{GraphBuilder, Param, Shared, TrainOp};
use inception_kernels::weyl;

fn data(len: usize, salt: u32) -> Vec<f32> {
    let mut v = vec![0.0; len];
    weyl::fill(salt, 0, weyl::Rule { offset: 0.0, scale: 1.0, abs: false }, &mut v);
    v
}

fn param(len: usize, salt: u32) -> Param {
    Param { data: Shared::new(data(len, salt)), grad: Some(Shared::new(Vec::new())) }
}

fn read(s: &Shared) -> Vec<f32> {
    // SAFETY: no graph is running.
    unsafe { s.get() }.to_vec()
}

/// conv 3×3 → BatchNorm (train, ReLU) → max pool 3/2 ceil → conv 3×3 (ReLU) → adaptive
/// average pool 2×2 → linear, on 2 images of 3×48×48: big enough that the convolutions,
/// the BatchNorm and the pool split into several tasks on a team. Two forward + backward
/// passes (the gradients accumulate, the running statistics move twice); returns the
/// outputs, input gradients, parameter gradients and running statistics.
fn run() -> Vec<Vec<f32>> {
    let (n, c0, c1, c2, h, w, classes) = (2, 3, 16, 8, 48, 48, 10);
    let same = |c_in, c_out| ConvSpec { c_in, c_out, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    let (s1, s2) = (same(c0, c1), same(c1, c2));
    let (ph, pw) = (24, 24);
    let params = [param(c1 * s1.k(), 1), param(c1, 2), param(c1, 3), param(c1, 4), param(c2 * s2.k(), 5), param(c2, 6), param(classes * c2 * 4, 7), param(classes, 8)];
    let running = [Shared::new(vec![0.0; c1]), Shared::new(vec![1.0; c1])];
    let mut b = GraphBuilder::new(n * c0 * h * w);
    let a = b.value(n * c1 * h * w);
    let bn = b.value(n * c1 * h * w);
    let pooled = b.value(n * c1 * ph * pw);
    let d = b.value(n * c2 * ph * pw);
    let g = b.value(n * c2 * 4);
    let y = b.value(n * classes);
    let ops = [
        TrainOp::Conv { spec: s1, weight: params[0].clone(), bias: Some(params[1].clone()), n, h, w, relu: false, src: INPUT, dst: Slice::whole(a, c1) },
        TrainOp::BatchNorm { gamma: params[2].clone(), beta: params[3].clone(), running_mean: running[0].clone(), running_var: running[1].clone(), train: true, momentum: 0.1, eps: 1e-5, relu: true, n, c: c1, hw: h * w, src: a, dst: Slice::whole(bn, c1) },
        TrainOp::MaxPool { p: Pool2dParams { kh: 3, kw: 3, sh: 2, sw: 2, ph: 0, pw: 0, ceil_mode: true }, planes: n * c1, h, w, src: bn, dst: pooled },
        TrainOp::Conv { spec: s2, weight: params[4].clone(), bias: Some(params[5].clone()), n, h: ph, w: pw, relu: true, src: pooled, dst: Slice::whole(d, c2) },
        TrainOp::AdaptiveAvgPool { planes: n * c2, h: ph, w: pw, oh: 2, ow: 2, src: d, dst: g },
        TrainOp::Linear { weight: params[6].clone(), bias: Some(params[7].clone()), n, inp: c2 * 4, out: classes, src: g, dst: y },
    ];
    for op in ops {
        b.push(op).unwrap();
    }
    assert_eq!(b.output(y), Ok(0));
    assert_eq!(y, ValueId(6));
    let mut graph = b.build(true).unwrap();

    let x = data(n * c0 * h * w, 10);
    let mut out = Vec::new();
    for (pass, seed) in [(0, 11), (1, 12)] {
        graph.forward(&x, pass).unwrap();
        out.push(graph.output(0).unwrap().to_vec());
        let mut dx = vec![f32::NAN; x.len()];
        graph.backward(&[(0, &data(n * classes, seed)[..])], Some(&mut dx[..])).unwrap();
        out.push(dx);
    }
    out.extend(params.iter().map(|p| read(p.grad.as_ref().unwrap())));
    out.extend(running.iter().map(|s| read(s)));
    out
}

#[test]
fn train_graph_results_are_bit_identical_on_one_two_and_three_threads() {
    assert_eq!(threads(), 1, "no team yet");
    let one = run();
    assert!(one.iter().all(|b| !b.is_empty() && b.iter().all(|v| v.is_finite())));
    for size in [2, 3] {
        team::install(size, |work| {
            std::thread::spawn(work);
        });
        assert_eq!(threads(), size);
        let got = run();
        assert_eq!(got.len(), one.len());
        for (i, (a, b)) in one.iter().zip(&got).enumerate() {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(a) == bits(b), "{size} threads: buffer {i} differs from one thread's");
        }
    }
}
