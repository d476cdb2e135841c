# The PyTorch side of bench/train.mjs: one case in a fresh interpreter — training steps or
# inference forwards of torchvision's GoogLeNet with both auxiliary heads, as
# bench/lib/train-ours.mjs runs them. Job JSON on argv; one `@@bench@@ {json}` line on
# stdout. Run by Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14).
#
# Training step = opt.zero_grad(); out = net(x); loss = CE(main) + 0.3·(CE(aux1) + CE(aux2));
# loss.backward(); opt.step(), each phase timed. Inference = net.eval() under torch.no_grad().
import json
import os
import resource
import sys
import time
import traceback

MARK = '@@bench@@'


def busy_ms():
    """Busy time of all CPUs so far, in ms (/proc/stat, 10 ms ticks), as bench/lib/stats.mjs."""
    try:
        with open('/proc/stat') as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return (sum(v) - v[3] - v[4]) * 10
    except OSError:
        return None


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def time_steps(step, warmup, steps):
    warm = [sum(step().values()) for _ in range(warmup)]
    phases = []
    b0, c0, w0 = busy_ms(), time.process_time(), time.perf_counter()
    for _ in range(steps):
        phases.append(step())
    wall = (time.perf_counter() - w0) * 1000
    own = (time.process_time() - c0) * 1000
    b1 = busy_ms()
    times = [sum(p.values()) for p in phases]
    return {
        'warmupMs': warm,
        'times': times,
        'median': median(times),
        'phases': {k: median([p[k] for p in phases]) for k in phases[0]},
        'cpuPerWall': own / wall,
        'bgCpus': None if b0 is None else max(0.0, (b1 - b0 - own) / wall),
    }


def cpu_capability(torch):
    """The vector ISA ATen's kernels dispatch to (torch.backends.cpu has it only from 2.0)."""
    for line in torch.__config__.show().splitlines():
        if 'CPU capability usage:' in line:
            return line.split(':', 1)[1].strip()
    return None


def run(job):
    t_import = time.perf_counter()
    import torch
    import torch.nn.functional as F
    import torchvision
    import_ms = (time.perf_counter() - t_import) * 1000

    torch.set_num_threads(job['threads'])
    if torch.get_num_threads() != job['threads']:
        raise RuntimeError(f"torch runs {torch.get_num_threads()} thread(s), {job['threads']} requested")
    torch.manual_seed(job['seed'])
    net = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False, num_classes=job['classes'])
    b, s = job['batch'], job['size']
    x = torch.rand(b, 3, s, s) * 2 - 1
    y = torch.arange(b) % job['classes']
    info = {
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'threads': torch.get_num_threads(),
        'mkldnn': torch.backends.mkldnn.is_available(),
        'cpuCapability': cpu_capability(torch),
        'importMs': import_ms,
    }
    now = time.perf_counter
    ms = lambda a, b: (b - a) * 1000

    if job['kind'] == 'train':
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=job['lr'], momentum=job['momentum'])
        losses = []

        def step():
            t0 = now()
            opt.zero_grad()
            t1 = now()
            out = net(x)
            t2 = now()
            loss = F.cross_entropy(out.logits, y) + 0.3 * (F.cross_entropy(out.aux_logits1, y) + F.cross_entropy(out.aux_logits2, y))
            t3 = now()
            loss.backward()
            t4 = now()
            opt.step()
            t5 = now()
            losses.append(loss.item())
            return {'zeroGrad': ms(t0, t1), 'forward': ms(t1, t2), 'loss': ms(t2, t3), 'backward': ms(t3, t4), 'step': ms(t4, t5)}

        r = time_steps(step, job['warmup'], job['steps'])
        r['losses'] = losses
    elif job['kind'] == 'inference':
        net.eval()

        def step():
            with torch.no_grad():
                t0 = now()
                net(x)
                t1 = now()
            return {'forward': ms(t0, t1)}

        r = time_steps(step, job['warmup'], job['steps'])
    else:
        raise ValueError(f"unknown job kind {job['kind']!r}")
    r['info'] = info
    r['memory'] = {'maxRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return r


def main():
    try:
        result = {'ok': True, 'engine': 'torch', **run(json.loads(sys.argv[1]))}
    except Exception:
        result = {'ok': False, 'engine': 'torch', 'error': traceback.format_exc()}
    sys.stdout.write(f"\n{MARK} {json.dumps(result)}\n")
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown (torch's thread pools) in the parent's wait


if __name__ == '__main__':
    main()
